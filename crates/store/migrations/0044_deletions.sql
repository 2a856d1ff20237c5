-- A tenant's end (issue 25, spec 64.1): why it is being deleted, when the grace period ends,
-- what status it returns to if the deletion is called off, and which reminders were sent.
-- One open request per workspace; called-off ones stay as history.
CREATE TABLE genesis.deletions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES genesis.workspaces (id),
    trigger          text NOT NULL
        CHECK (trigger IN ('user', 'cancelled', 'non-payment', 'tos', 'fraud')),
    reason           text,
    requested_by     text NOT NULL,
    requested_at     timestamptz NOT NULL,
    purge_after      timestamptz NOT NULL,
    reversible       boolean NOT NULL,
    previous_status  text NOT NULL,
    -- The campaigns day 0 paused (droplet_id, key), resumed if the deletion is called off.
    paused_workflows jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- The last reminder sent, in days after the request (0: none yet).
    reminded_day     integer NOT NULL DEFAULT 0,
    cancelled_at     timestamptz,
    cancelled_by     text,
    CHECK (purge_after >= requested_at),
    CHECK (reversible OR reason IS NOT NULL),
    CHECK ((cancelled_at IS NULL) = (cancelled_by IS NULL)),
    CHECK (reversible OR cancelled_at IS NULL)
);
CREATE UNIQUE INDEX deletions_open_idx ON genesis.deletions (workspace_id)
    WHERE cancelled_at IS NULL;
CREATE INDEX deletions_due_idx ON genesis.deletions (purge_after)
    WHERE cancelled_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.deletions TO genesis_app;
