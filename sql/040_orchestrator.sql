-- Orchestrator: what reruns and delayed retries need beyond 001.
--
-- last_input keeps the envelope a step was last given, so a timed-out or
-- failed step can be retried or rerun without its original message;
-- first_failed_at is the x-first-failure-at header of its retries.
ALTER TABLE run_steps
    ADD COLUMN last_input      jsonb,
    ADD COLUMN first_failed_at timestamptz;

-- A trigger produced by another system (or by hand with kcat) while a run is
-- active is still a run the workers will process, so it must be trackable:
-- the one-active-run rule binds the runs the orchestrator starts itself
-- (api, schedule, retry); the API also refuses while any run is active.
DROP INDEX idx_runs_one_active;
CREATE UNIQUE INDEX idx_runs_one_active ON runs (source_id)
    WHERE status IN ('queued', 'running') AND trigger <> 'kafka';

CREATE INDEX idx_runs_trigger ON runs (trigger, created_at DESC);
CREATE INDEX idx_run_steps_started ON run_steps (worker_id, started_at DESC);
