-- Droplet snapshots (issue 26, spec 66.2 and 66.5; DECISIONS 106): one row per snapshot the
-- platform asked DigitalOcean for, in the tenant's regional database, from the request to
-- its deletion. The name is the key between the row and the cloud: it is chosen before the
-- action is started, so a snapshot whose answer was lost is still found by it.
CREATE TABLE genesis.snapshots (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES genesis.workspaces (id),
    -- The snapshot's row goes with its droplet's: a tenant's deletion removes the images at
    -- the cloud first (saga step 2), then the rows (step 4).
    droplet_id           uuid NOT NULL REFERENCES genesis.droplets (id) ON DELETE CASCADE,
    kind                 text NOT NULL CHECK (kind IN ('daily', 'weekly', 'pre_update')),
    name                 text NOT NULL UNIQUE,
    state                text NOT NULL CHECK (state IN ('taking', 'available', 'failed', 'deleted')),
    action_id            bigint,
    image_id             bigint UNIQUE,
    datacenter           text,
    size_gb              double precision,
    -- Where its cross-region copy goes (spec 66.3), and how the transfer stands.
    backup_datacenter    text,
    transfer_action_id   bigint,
    transfer_state       text CHECK (transfer_state IN ('transferring', 'done', 'failed')),
    transfer_started_at  timestamptz,
    requested_at         timestamptz NOT NULL,
    available_at         timestamptz,
    expires_at           timestamptz NOT NULL,
    deleted_at           timestamptz,
    why_deleted          text,
    CHECK ((state = 'available') <= (image_id IS NOT NULL)),
    CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
);
CREATE INDEX snapshots_droplet_idx ON genesis.snapshots (droplet_id, requested_at DESC);
CREATE INDEX snapshots_open_idx ON genesis.snapshots (state, expires_at) WHERE state <> 'deleted';
GRANT SELECT, INSERT, UPDATE ON genesis.snapshots TO genesis_app;
