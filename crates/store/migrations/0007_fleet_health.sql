-- Fleet health (spec 54, 43): each droplet's heartbeat counters for the degraded/recovered
-- rules, and alerts an operator must look at (manual review of orphans, drift).

ALTER TABLE genesis.droplets
    ADD COLUMN health_counters jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- When the droplet entered its current state (the reboot deadline counts from here).
    ADD COLUMN state_since timestamptz NOT NULL DEFAULT now();
-- The zombie detector's scan: droplets that should be reporting, oldest heartbeat first.
CREATE INDEX droplets_heartbeat_idx ON genesis.droplets (last_heartbeat_at)
    WHERE state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED', 'REBOOTING');

CREATE TABLE genesis.alerts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid REFERENCES genesis.workspaces (id),
    droplet_id   uuid REFERENCES genesis.droplets (id),
    kind         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    summary      text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
-- One open alert per droplet and kind.
CREATE UNIQUE INDEX alerts_one_open ON genesis.alerts (droplet_id, kind) WHERE resolved_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.alerts TO genesis_app;

-- A droplet's history is its audit trail.
CREATE INDEX audit_log_subject_idx ON genesis.audit_log (subject, id) WHERE subject IS NOT NULL;
