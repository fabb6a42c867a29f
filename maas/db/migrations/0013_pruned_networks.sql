-- A built network whose directory was deleted to save disk (MAAS_KEEP_NETWORKS) is 'pruned': it
-- stays listed with its feeds, but can no longer be activated.
ALTER TABLE networks DROP CONSTRAINT networks_status_check;
ALTER TABLE networks ADD CONSTRAINT networks_status_check
    CHECK (status IN ('building', 'built', 'failed', 'pruned'));
ALTER TABLE networks ADD COLUMN pruned_at timestamptz;
