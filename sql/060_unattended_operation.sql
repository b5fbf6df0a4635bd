-- What months of unattended operation need beyond 040.
--
-- schedule: the last scheduled tick of each source, so the 6-hourly
-- schedule survives restarts of the orchestrator and two orchestrators
-- (during a rollout) claim one tick once.
--
-- datasets.virtual_from / virtual_through: the local dates (Asia/Yakutsk)
-- that the dataset's virtual flights cover; virtual_generation counts the
-- generations and top-ups, and graphs.virtual_generation says which one a
-- graph was built from, so graph-builder rebuilds when the virtual data moved
-- on even though the dataset version did not.
CREATE TABLE schedule (
    source_id    text PRIMARY KEY,
    interval_s   integer     NOT NULL,
    last_tick_at timestamptz NOT NULL,             -- the tick last claimed
    last_run_id  text,                             -- the run it started, if any
    updated_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE datasets
    ADD COLUMN virtual_from       date,
    ADD COLUMN virtual_through    date,
    ADD COLUMN virtual_generation integer NOT NULL DEFAULT 0;

ALTER TABLE graphs ADD COLUMN virtual_generation integer NOT NULL DEFAULT 0;

-- Datasets generated before this migration: 365 days from their local date.
UPDATE datasets
   SET virtual_from = (created_at AT TIME ZONE 'Asia/Yakutsk')::date,
       virtual_through = (created_at AT TIME ZONE 'Asia/Yakutsk')::date + 364,
       virtual_generation = 1
 WHERE stats ? 'virtualStops';
UPDATE graphs g SET virtual_generation = d.virtual_generation
  FROM datasets d WHERE d.version = g.dataset_version;
