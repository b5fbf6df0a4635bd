-- Tables of the specification (datasets, stops, routes, flights, virtual_stops,
-- virtual_routes, graphs) and the orchestrator's run tracking.
--
-- Every dataset version is a full snapshot: real and virtual rows carry the
-- dataset_version they belong to, so a graph is always built from one
-- consistent version and older versions can be pruned as a whole.

CREATE TABLE datasets (
    version          bigserial PRIMARY KEY,
    source_id        text        NOT NULL DEFAULT 'default',
    data_hash        char(64)    NOT NULL,
    trigger_event_id text        UNIQUE,          -- the event that created it (replay guard)
    run_id           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    stops_count      integer     NOT NULL DEFAULT 0,
    routes_count     integer     NOT NULL DEFAULT 0,
    flights_count    integer     NOT NULL DEFAULT 0,
    added_count      integer     NOT NULL DEFAULT 0,
    updated_count    integer     NOT NULL DEFAULT 0,
    deleted_count    integer     NOT NULL DEFAULT 0,
    backup_key       text,                          -- S3 object of the raw data, when backed up
    stats            jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_datasets_source ON datasets (source_id, version DESC);

CREATE TABLE stops (
    dataset_version bigint  NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id              text    NOT NULL,
    name            text    NOT NULL,
    city_name       text,
    latitude        double precision,
    longitude       double precision,
    row_hash        char(64),                       -- content hash, for added/updated/deleted counts
    PRIMARY KEY (dataset_version, id)
);

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
);

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
    CHECK (arrival_time > departure_time)
);

CREATE TABLE cities (
    name            text PRIMARY KEY,
    normalized_name text NOT NULL UNIQUE,
    district        text,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    population      integer
);

CREATE TABLE virtual_stops (
    dataset_version bigint NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    id              text   NOT NULL,                -- virtual-stop-{normalized-city-name}
    name            text   NOT NULL,                -- г. {CityName}
    city_name       text   NOT NULL,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    stop_type       text   NOT NULL DEFAULT 'virtual',
    PRIMARY KEY (dataset_version, id)
);

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
);

CREATE TABLE graphs (
    version          text PRIMARY KEY,              -- graph-v{epoch-ms}
    dataset_version  bigint NOT NULL REFERENCES datasets (version) ON DELETE CASCADE,
    status           text   NOT NULL,               -- building | active | failed | retired
    node_count       integer NOT NULL DEFAULT 0,
    edge_count       integer NOT NULL DEFAULT 0,
    build_ms         integer,
    redis_bytes      bigint,
    validation       jsonb  NOT NULL DEFAULT '{}'::jsonb,
    run_id           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    activated_at     timestamptz
);
CREATE INDEX idx_graphs_dataset ON graphs (dataset_version, status);

-- The specification's "Performance Optimization" indexes, on the snapshot keys.
CREATE INDEX idx_stops_city ON stops (city_name);
CREATE INDEX idx_routes_from_stop ON routes (from_stop_id);
CREATE INDEX idx_routes_to_stop ON routes (to_stop_id);
CREATE INDEX idx_flights_route ON flights (route_id);
CREATE INDEX idx_flights_stops ON flights (from_stop_id, to_stop_id);

-- Orchestrator: registered workers, runs and their steps.
CREATE TABLE workers (
    worker_id    text PRIMARY KEY,
    worker_name  text    NOT NULL,
    version      text    NOT NULL,
    position     integer NOT NULL,                  -- order in the pipeline
    critical     boolean NOT NULL,                  -- a failure stops the run
    max_attempts integer NOT NULL,
    timeout_s    integer NOT NULL
);
INSERT INTO workers VALUES
    ('odata-sync-worker', 'OData Synchronization Worker', '1.0.0', 1, true, 3, 600),
    ('virtual-entities-generator', 'Virtual Entities Generator Worker', '1.0.0', 2, false, 2, 300),
    ('graph-builder', 'Graph Builder Worker', '1.0.0', 3, true, 2, 600);

CREATE TABLE runs (
    run_id          text PRIMARY KEY,
    source_id       text        NOT NULL DEFAULT 'default',
    trigger         text        NOT NULL,           -- schedule | api | kafka | retry
    status          text        NOT NULL,           -- queued | running | succeeded | failed | cancelled | timed_out
    force           boolean     NOT NULL DEFAULT false,
    only_worker     text REFERENCES workers (worker_id), -- single-worker execution
    idempotency_key text UNIQUE,
    message         text,
    dataset_version bigint,
    graph_version   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX idx_runs_created ON runs (created_at DESC);
CREATE INDEX idx_runs_status ON runs (status);
-- At most one active run per source.
CREATE UNIQUE INDEX idx_runs_one_active ON runs (source_id) WHERE status IN ('queued', 'running');

CREATE TABLE run_steps (
    run_id         text    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    worker_id      text    NOT NULL REFERENCES workers (worker_id),
    status         text    NOT NULL,    -- queued | running | succeeded | failed | skipped | retrying | cancelled | timed_out
    attempts       integer NOT NULL DEFAULT 0,
    started_at     timestamptz,
    finished_at    timestamptz,
    execution_ms   bigint,
    message        text,
    error          text,
    data_processed jsonb   NOT NULL DEFAULT '{"added":0,"updated":0,"deleted":0}'::jsonb,
    PRIMARY KEY (run_id, worker_id)
);
CREATE INDEX idx_run_steps_worker ON run_steps (worker_id, finished_at DESC);
