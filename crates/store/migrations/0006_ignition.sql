-- The ignition saga (spec 41.1, 50.6): one row per saga (the fold of its log, updated in the
-- same transaction as each log entry), the append-only saga log, the webhook registry the
-- saga fills and its rollback empties, and the outbox of user notifications.

ALTER TABLE genesis.workspaces
    ADD COLUMN onboarding jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The latest heartbeat and metrics report of each droplet (issue 7 batches these writes).
ALTER TABLE genesis.droplets
    ADD COLUMN last_heartbeat_at timestamptz,
    ADD COLUMN last_heartbeat    jsonb,
    ADD COLUMN last_metrics_at   timestamptz,
    ADD COLUMN last_metrics      jsonb;

CREATE TABLE genesis.ignitions (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES genesis.workspaces (id),
    -- Generated when the saga is built, so re-running the droplet step adopts, never duplicates.
    droplet_id      uuid NOT NULL,
    phase           text NOT NULL CHECK (phase IN ('RUNNING', 'UNWINDING', 'DONE', 'ROLLED_BACK')),
    -- Running: the step being done. Unwinding: the step being undone. Final: NULL.
    step            text,
    step_started_at timestamptz NOT NULL DEFAULT now(),
    failed_step     text,
    error           text,
    params          jsonb NOT NULL,
    outputs         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Bumped by every recorded move; a writer holding a stale version lost the race.
    version         bigint NOT NULL DEFAULT 0,
    -- Continuation jobs queued so far (their ids are derived from it).
    wakeups         integer NOT NULL DEFAULT 0,
    -- Who is running actions for this saga, until when: one executor at a time, even when
    -- recovery and a reclaimed job both wake the same saga.
    lease_owner     uuid,
    lease_until     timestamptz,
    -- Time executors spent working on it (waits excluded): the control plane's share.
    busy_ms         bigint NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
-- At most one saga in flight per workspace.
CREATE UNIQUE INDEX ignitions_one_in_flight ON genesis.ignitions (workspace_id)
    WHERE phase IN ('RUNNING', 'UNWINDING');
CREATE INDEX ignitions_workspace_idx ON genesis.ignitions (workspace_id, started_at);

CREATE TABLE genesis.ignition_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ignition_id  uuid NOT NULL REFERENCES genesis.ignitions (id),
    step         text NOT NULL,
    event        text NOT NULL CHECK (event IN (
                     'action_started', 'action_done', 'action_failed',
                     'undo_started', 'undo_done', 'undo_failed')),
    at           timestamptz NOT NULL DEFAULT now(),
    elapsed_ms   bigint,
    detail       jsonb
);
CREATE INDEX ignition_log_ignition_idx ON genesis.ignition_log (ignition_id, id);

CREATE TABLE genesis.webhook_registry (
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    name         text NOT NULL,
    workflow_id  text NOT NULL,
    url          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE genesis.notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    kind         text NOT NULL,
    subject      text NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX notifications_undelivered_idx ON genesis.notifications (created_at)
    WHERE delivered_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.ignitions TO genesis_app;
GRANT SELECT, INSERT ON genesis.ignition_log TO genesis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.webhook_registry TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.notifications TO genesis_app;
