-- The command journal: every signed command the control plane sent to a sidecar and what
-- came of it (God Mode's droplet page, spec 44.1). Written in batches; kept 7 days.
-- Keyed by workspace and the cloud's droplet id, which is what a command's token is scoped to.

CREATE TABLE genesis.command_journal (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid NOT NULL,
    provider_id  bigint NOT NULL,
    action       text NOT NULL,
    sent_at      timestamptz NOT NULL,
    elapsed_ms   bigint NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'failed', 'refused', 'unreachable')),
    detail       text
);
CREATE INDEX command_journal_droplet_idx ON genesis.command_journal (workspace_id, provider_id, id);
CREATE INDEX command_journal_sent_idx ON genesis.command_journal (sent_at);

GRANT SELECT, INSERT, DELETE ON genesis.command_journal TO genesis_app;
