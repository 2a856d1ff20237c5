-- Workspace-scoped tokens (issue 18): the token a tenant's own n8n presents when its Golden
-- Template calls the control plane back (`ingest`: import and read that workspace's leads).
-- Only the SHA-256 of a token is kept; the token itself lives in the vault, encrypted, to
-- be injected into the tenant's n8n as a credential. Purged with the vault.

CREATE TABLE genesis.workspace_tokens (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    kind         text NOT NULL CHECK (kind IN ('ingest')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX workspace_tokens_workspace_idx ON genesis.workspace_tokens (workspace_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.workspace_tokens TO genesis_app;
