-- Regional failovers (issue 26, spec 66.4; DECISIONS 109): the mass restoration of every
-- tenant whose droplet is in a failed datacenter, as one row per failover and one per tenant,
-- in the failed region's database. Each tenant's restore is an ignition saga of its own (a
-- restore saga: `params.restore`), so it is idempotent and resumes after a crash; these rows
-- say which saga restores whom, from which snapshot, and how far the failover has come.
CREATE TABLE genesis.failovers (
    id                  uuid PRIMARY KEY,
    from_datacenter     text NOT NULL,
    to_datacenter       text NOT NULL CHECK (to_datacenter <> from_datacenter),
    -- provisioning: restores are being started and run; verifying: every restore saga has
    -- finished and the new droplets' heartbeats are awaited; restored: phase 3 is done;
    -- closed: phase 4 is done (the failed region's droplets are deleted).
    phase               text NOT NULL
                        CHECK (phase IN ('provisioning', 'verifying', 'restored', 'closed')),
    operator            text NOT NULL,
    reason              text NOT NULL,
    -- An operator allowed tenants to be restored outside their residency area (spec 62):
    -- audited when the failover starts.
    residency_override  boolean NOT NULL DEFAULT false,
    started_at          timestamptz NOT NULL DEFAULT now(),
    provisioned_at      timestamptz,
    restored_at         timestamptz,
    -- Phase 4, option A: the operator asked for the failed datacenter's droplets to go.
    cleanup_requested_at timestamptz,
    closed_at           timestamptz
);
-- One failover at a time out of a datacenter.
CREATE UNIQUE INDEX failovers_one_open_idx ON genesis.failovers (from_datacenter)
    WHERE phase <> 'closed';

CREATE TABLE genesis.failover_tenants (
    failover_id     uuid NOT NULL REFERENCES genesis.failovers (id) ON DELETE CASCADE,
    workspace_id    uuid NOT NULL REFERENCES genesis.workspaces (id) ON DELETE CASCADE,
    -- The droplet in the failed datacenter.
    old_droplet_id  uuid NOT NULL REFERENCES genesis.droplets (id) ON DELETE CASCADE,
    -- restore: from the snapshot copied to the target; reignite: no usable backup, a fresh
    -- droplet from the vault and the templates; held: not moved (its residency forbids the
    -- target and no override was given).
    plan            text NOT NULL CHECK (plan IN ('restore', 'reignite', 'held')),
    snapshot_id     uuid REFERENCES genesis.snapshots (id) ON DELETE SET NULL,
    image_id        bigint,
    -- When the snapshot was asked for: what the tenant wrote after it is lost (the RPO).
    snapshot_at     timestamptz,
    -- waiting: not started; restoring: its saga runs; restored: its saga finished and the
    -- new droplet hand-shook; verified: the new droplet's heartbeat arrived; failed: its saga
    -- rolled back (the operator is told); held: see plan.
    state           text NOT NULL
                    CHECK (state IN ('waiting', 'restoring', 'restored', 'verified', 'failed', 'held')),
    ignition_id     uuid,
    new_droplet_id  uuid,
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (failover_id, workspace_id),
    CHECK ((plan = 'held') = (state = 'held')),
    CHECK ((plan = 'restore') = (image_id IS NOT NULL))
);
CREATE INDEX failover_tenants_state_idx ON genesis.failover_tenants (failover_id, state);

GRANT SELECT, INSERT, UPDATE ON genesis.failovers TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.failover_tenants TO genesis_app;
