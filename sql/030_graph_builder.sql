-- graph-builder: crash-safe bookkeeping of the Redis keys of each graph.
--
-- keys_pending is true from the moment a build may write keys under
-- graph:{version}:* until that version is activated or its keys were
-- deleted, so a later build can remove what a crashed or failed one left.
-- error keeps why a build failed (validation failures also fill validation).
ALTER TABLE graphs ADD COLUMN IF NOT EXISTS keys_pending boolean NOT NULL DEFAULT false;
ALTER TABLE graphs ADD COLUMN IF NOT EXISTS error text;
CREATE INDEX IF NOT EXISTS idx_graphs_keys_pending ON graphs (version) WHERE keys_pending;
