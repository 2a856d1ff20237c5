-- Fleet template rollouts (spec 56). A rollout and its targets live in the coordinating
-- database (the first of the regional set): one rollout spans every region, so its targets
-- name their droplet's region instead of holding a foreign key into another database.

CREATE TABLE genesis.rollouts (
    id             uuid PRIMARY KEY,
    target_version text NOT NULL,
    scenario       text NOT NULL,
    policy         jsonb NOT NULL,
    scope          jsonb NOT NULL,
    status         text NOT NULL CHECK (status IN ('RUNNING', 'PAUSED', 'COMPLETED', 'ABORTED')),
    reason         text,
    batches        integer NOT NULL CHECK (batches >= 0),
    current_batch  integer NOT NULL DEFAULT 0,
    batch_queued   boolean NOT NULL DEFAULT false,
    next_batch_at  timestamptz NOT NULL DEFAULT now(),
    version        bigint NOT NULL DEFAULT 0,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One rollout in flight at a time: two would race to update the same droplets.
CREATE UNIQUE INDEX rollouts_one_in_flight ON genesis.rollouts ((true))
    WHERE status IN ('RUNNING', 'PAUSED');

CREATE TABLE genesis.rollout_targets (
    rollout_id   uuid NOT NULL REFERENCES genesis.rollouts (id),
    droplet_id   uuid NOT NULL,
    workspace_id uuid NOT NULL,
    region       text NOT NULL,
    batch        integer NOT NULL,
    status       text NOT NULL DEFAULT 'PENDING'
                 CHECK (status IN ('PENDING', 'DONE', 'FAILED', 'DEFERRED', 'CANCELLED')),
    error        text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, droplet_id)
);

CREATE INDEX rollout_targets_batch_idx ON genesis.rollout_targets (rollout_id, batch, status);

GRANT SELECT, INSERT, UPDATE ON genesis.rollouts, genesis.rollout_targets TO genesis_app;
