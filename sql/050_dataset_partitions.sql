-- Dataset versions as LIST partitions: stops, routes, flights, virtual_stops
-- and virtual_routes become partitioned by dataset_version, one partition per
-- version and table, named <table>_v<version>.
--
-- Why: a new version loads into fresh standalone tables (no index or foreign
-- key upkeep during COPY, no other version's rows in the way), is attached
-- when complete, and retention drops a version as five tables instead of
-- deleting millions of rows.
--
-- The life of a version:
--   odata-sync-worker: dataset_partitions_stage(v) creates the five empty
--     standalone tables, COPY fills three of them, then INSERT INTO datasets
--     (version v) fires dataset_partitions_attach(v): indexes are built on the
--     loaded tables, then each is ATTACHed. All in one transaction: a reader
--     never sees a half-loaded version, and a crash or failure rolls the
--     tables back with everything else.
--   Any other INSERT INTO datasets (tests, tools, a restore by hand) gets the
--     five partitions created empty by the same trigger, so rows of every
--     version always have a place to land (virtual-entities-generator COPYs
--     through the parent tables).
--   orchestrator retention: dataset_version_drop(v) detaches and drops the
--     five partitions and deletes the datasets row (its graphs rows cascade).
--
-- Locks: ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent, which
-- neither readers (ACCESS SHARE) nor writers (ROW EXCLUSIVE) of other
-- versions wait for; the CHECK (dataset_version = v) created with each
-- staged table lets ATTACH skip the scan that proves the partition bound.
-- The foreign key to datasets, cloned at ATTACH, holds SHARE ROW EXCLUSIVE
-- on datasets from the first ATTACH to the commit (milliseconds: the indexes
-- are built before). Detaching and dropping take ACCESS EXCLUSIVE on the
-- parents for the few catalog updates; retention asks for them with NOWAIT
-- and tries again later rather than queue readers behind it.
--
-- Existing data: each old table is renamed <table>_legacy, the partitioned
-- table is created in its place, and every existing version is copied into
-- its own partitions (staged, filled with INSERT ... SELECT, attached: the
-- same path as a new load), then the old tables are dropped. One transaction:
-- the migration either moves everything or nothing. It rewrites every row
-- once, so on a large installed system it takes about as long as loading
-- those versions did.

-- ---- the old tables step aside -----------------------------------------------

ALTER TABLE stops RENAME TO stops_legacy;
ALTER TABLE routes RENAME TO routes_legacy;
ALTER TABLE flights RENAME TO flights_legacy;
ALTER TABLE virtual_stops RENAME TO virtual_stops_legacy;
ALTER TABLE virtual_routes RENAME TO virtual_routes_legacy;
-- Index names are schema-wide: free them for the new tables. The primary
-- keys stay (renamed): they serve the per-version copy below.
ALTER TABLE stops_legacy RENAME CONSTRAINT stops_pkey TO stops_legacy_pkey;
ALTER TABLE routes_legacy RENAME CONSTRAINT routes_pkey TO routes_legacy_pkey;
ALTER TABLE flights_legacy RENAME CONSTRAINT flights_pkey TO flights_legacy_pkey;
ALTER TABLE virtual_stops_legacy RENAME CONSTRAINT virtual_stops_pkey TO virtual_stops_legacy_pkey;
ALTER TABLE virtual_routes_legacy RENAME CONSTRAINT virtual_routes_pkey TO virtual_routes_legacy_pkey;
DROP INDEX idx_stops_city, idx_routes_from_stop, idx_routes_to_stop, idx_flights_route,
    idx_flights_stops;

-- ---- the partitioned tables (columns and keys as in 001) ---------------------

CREATE TABLE stops (
    dataset_version bigint  NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id              text    NOT NULL,
    name            text    NOT NULL,
    city_name       text,
    latitude        double precision,
    longitude       double precision,
    row_hash        char(64),                       -- content hash, for added/updated/deleted counts
    PRIMARY KEY (dataset_version, id)
) PARTITION BY LIST (dataset_version);

CREATE TABLE routes (
    dataset_version  bigint  NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id               text    NOT NULL,
    name             text,
    from_stop_id     text    NOT NULL,
    to_stop_id       text    NOT NULL,
    transport_type   text,
    duration_minutes double precision,
    distance_km      double precision,
    fare             numeric(12, 2),
    row_hash         char(64),
    PRIMARY KEY (dataset_version, id)
) PARTITION BY LIST (dataset_version);

-- Real flights (is_virtual = false) and the generator's virtual flights.
CREATE TABLE flights (
    dataset_version bigint      NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id              text        NOT NULL,
    route_id        text        NOT NULL,
    from_stop_id    text        NOT NULL,
    to_stop_id      text        NOT NULL,
    departure_time  timestamptz NOT NULL,
    arrival_time    timestamptz NOT NULL,
    available_seats integer,
    is_virtual      boolean     NOT NULL DEFAULT false,
    row_hash        char(64),
    PRIMARY KEY (dataset_version, id),
    CONSTRAINT flights_check CHECK (arrival_time > departure_time)
) PARTITION BY LIST (dataset_version);

CREATE TABLE virtual_stops (
    dataset_version bigint NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id              text   NOT NULL,                -- virtual-stop-{normalized-city-name}
    name            text   NOT NULL,                -- г. {CityName}
    city_name       text   NOT NULL,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    stop_type       text   NOT NULL DEFAULT 'virtual',
    PRIMARY KEY (dataset_version, id)
) PARTITION BY LIST (dataset_version);

CREATE TABLE virtual_routes (
    dataset_version  bigint NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id               text   NOT NULL,               -- virtual-route-{from-id}-{to-id}
    name             text   NOT NULL,               -- {FromCity} → {ToCity}
    from_stop_id     text   NOT NULL,
    to_stop_id       text   NOT NULL,
    transport_type   text   NOT NULL DEFAULT 'BUS',
    duration_minutes double precision NOT NULL,
    distance_km      double precision NOT NULL,
    fare             numeric(12, 2) NOT NULL,
    PRIMARY KEY (dataset_version, id)
) PARTITION BY LIST (dataset_version);

-- The specification's "Performance Optimization" indexes, on every partition.
CREATE INDEX idx_stops_city ON stops (city_name);
CREATE INDEX idx_routes_from_stop ON routes (from_stop_id);
CREATE INDEX idx_routes_to_stop ON routes (to_stop_id);
CREATE INDEX idx_flights_route ON flights (route_id);
CREATE INDEX idx_flights_stops ON flights (from_stop_id, to_stop_id);

-- ---- one home for the partition rules ----------------------------------------

-- The tables partitioned by version, in the order every function below takes
-- them (one order for every lock taker, so two of them cannot deadlock).
CREATE FUNCTION dataset_partitioned_tables() RETURNS text[]
    LANGUAGE sql IMMUTABLE AS
$$ SELECT ARRAY['stops', 'routes', 'flights', 'virtual_stops', 'virtual_routes'] $$;

-- The partition of one table for one version: <table>_v<version>
-- (odata-sync-worker's store.c COPYs into these names).
CREATE FUNCTION dataset_partition_name(parent text, dv bigint) RETURNS text
    LANGUAGE sql IMMUTABLE AS
$$ SELECT parent || '_v' || dv $$;

-- Creates the five standalone tables of a version, empty, when missing:
-- columns, defaults and CHECKs of the parent, no index (built after the
-- load) and a CHECK that lets ATTACH trust the rows' version without a scan.
CREATE FUNCTION dataset_partitions_stage(dv bigint) RETURNS void
    LANGUAGE plpgsql AS
$$
DECLARE
    parent text;
    part text;
BEGIN
    FOREACH parent IN ARRAY dataset_partitioned_tables() LOOP
        part := dataset_partition_name(parent, dv);
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                           'CONSTRAINT %I CHECK (dataset_version = %s))',
                           part, parent, part || '_version', dv);
        END IF;
    END LOOP;
END
$$;

-- Builds the parent's indexes and primary key on each staged table of a
-- version, then attaches it (ATTACH adopts the matching indexes instead of
-- building them under its locks). Tables already attached are left alone.
CREATE FUNCTION dataset_partitions_attach(dv bigint) RETURNS void
    LANGUAGE plpgsql AS
$$
DECLARE
    parent text;
    part text;
    def text;
BEGIN
    PERFORM dataset_partitions_stage(dv);
    FOREACH parent IN ARRAY dataset_partitioned_tables() LOOP
        part := dataset_partition_name(parent, dv);
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = part::regclass);
        FOR def IN SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
                   WHERE c.conrelid = parent::regclass AND c.contype IN ('p', 'u') LOOP
            EXECUTE format('ALTER TABLE %I ADD %s', part, def);
        END LOOP;
        FOR def IN SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
                   WHERE i.indrelid = parent::regclass AND NOT EXISTS (
                       SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) LOOP
            EXECUTE regexp_replace(def, '^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+',
                                   'CREATE \1INDEX ON ' || quote_ident(part));
        END LOOP;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%s)',
                       parent, part, dv);
    END LOOP;
END
$$;

-- Every new datasets row gets its five partitions (see the top of the file).
CREATE FUNCTION datasets_partitions_trigger() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM dataset_partitions_attach(NEW.version);
    RETURN NULL;
END
$$;
CREATE TRIGGER datasets_partitions AFTER INSERT ON datasets
    FOR EACH ROW EXECUTE FUNCTION datasets_partitions_trigger();

-- Detaching and dropping a partition need ACCESS EXCLUSIVE on the five
-- parents, and dropping a table whose foreign key points at datasets needs
-- it on datasets too (its triggers there are removed). This takes all six,
-- in one order, with NOWAIT: when a reader or writer is inside, it fails at
-- once (SQLSTATE 55P03) instead of making every later statement on these
-- tables queue behind it; the caller tries again later. Held until the end
-- of the transaction, which the caller keeps to catalog updates.
CREATE FUNCTION dataset_versions_lock() RETURNS void
    LANGUAGE plpgsql AS
$$
BEGIN
    LOCK TABLE ONLY stops, routes, flights, virtual_stops, virtual_routes, datasets
        IN ACCESS EXCLUSIVE MODE NOWAIT;
END
$$;

-- Deletes a version with all its rows: the five partitions are detached and
-- dropped, then the datasets row (graphs rows of the version cascade), under
-- dataset_versions_lock(). Returns false when the version did not exist.
CREATE FUNCTION dataset_version_drop(dv bigint) RETURNS boolean
    LANGUAGE plpgsql AS
$$
DECLARE
    parent text;
    part text;
BEGIN
    PERFORM dataset_versions_lock();
    FOREACH parent IN ARRAY dataset_partitioned_tables() LOOP
        part := dataset_partition_name(parent, dv);
        IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(part)) THEN
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, part);
        END IF;
        EXECUTE format('DROP TABLE IF EXISTS %I', part);
    END LOOP;
    DELETE FROM datasets WHERE version = dv;
    RETURN FOUND;
END
$$;

-- ---- the existing versions move in --------------------------------------------

DO $$
DECLARE
    v bigint;
    parent text;
BEGIN
    FOR v IN SELECT version FROM datasets ORDER BY version LOOP
        PERFORM dataset_partitions_stage(v);
        FOREACH parent IN ARRAY dataset_partitioned_tables() LOOP
            EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE dataset_version = %s',
                           dataset_partition_name(parent, v), parent || '_legacy', v);
        END LOOP;
        PERFORM dataset_partitions_attach(v);
    END LOOP;
END
$$;

DROP TABLE stops_legacy, routes_legacy, flights_legacy, virtual_stops_legacy,
    virtual_routes_legacy;
