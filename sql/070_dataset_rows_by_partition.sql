-- A dataset version's rows are held to their version by the partition they
-- land in, not by a foreign key checked row by row.
--
-- 050 kept each partitioned table's foreign key to datasets (version). On a
-- partition PostgreSQL enforces it with a trigger per inserted row, a look-up
-- in datasets for every row: for virtual-entities-generator's flights (5.8
-- million at 16 times the specification's largest data) that took about as
-- long as the load itself (measured: 365,000 flights 4.2 s with the key,
-- 2.4 s without). The key adds nothing the partitions do not guarantee:
--   * a row lands only in its version's partition, and a version's
--     partitions are attached only by the INSERT of its datasets row
--     (dataset_partitions_attach, 050): a row of a version that does not
--     exist is refused ("no partition of relation ... found for row");
--   * deleting a datasets row drops its partitions first (the trigger below),
--     as the key's ON DELETE CASCADE deleted its rows.

DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN SELECT c.conrelid::regclass AS tbl, c.conname FROM pg_constraint c
              WHERE c.contype = 'f' AND c.confrelid = 'datasets'::regclass
                AND c.conparentid = 0
                AND c.conrelid::regclass::text = ANY (dataset_partitioned_tables()) LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
END
$$;

-- Detaches and drops the five partitions of a version, where they exist.
CREATE FUNCTION dataset_partitions_drop(dv bigint) RETURNS void
    LANGUAGE plpgsql AS
$$
DECLARE
    parent text;
    part text;
BEGIN
    FOREACH parent IN ARRAY dataset_partitioned_tables() LOOP
        part := dataset_partition_name(parent, dv);
        IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(part)) THEN
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, part);
        END IF;
        EXECUTE format('DROP TABLE IF EXISTS %I', part);
    END LOOP;
END
$$;

-- Retention's way (050's contract, unchanged): under dataset_versions_lock().
CREATE OR REPLACE FUNCTION dataset_version_drop(dv bigint) RETURNS boolean
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM dataset_versions_lock();
    PERFORM dataset_partitions_drop(dv);
    DELETE FROM datasets WHERE version = dv;
    RETURN FOUND;
END
$$;

-- Any other DELETE FROM datasets (a tool, a hand) takes the rows with it.
CREATE FUNCTION datasets_delete_trigger() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM dataset_partitions_drop(OLD.version);
    RETURN OLD;
END
$$;
CREATE TRIGGER datasets_partitions_drop BEFORE DELETE ON datasets
    FOR EACH ROW EXECUTE FUNCTION datasets_delete_trigger();
