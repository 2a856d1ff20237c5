-- The atomic handshake (spec 42): one-time provisioning tokens and long-lived sidecar tokens,
-- both stored only as SHA-256 hashes; what the handshake records on the droplet.

CREATE TABLE genesis.provisioning_tokens (
    token_hash   bytea PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    droplet_id   uuid NOT NULL REFERENCES genesis.droplets (id),
    expires_at   timestamptz NOT NULL,
    consumed_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provisioning_tokens_droplet_idx ON genesis.provisioning_tokens (droplet_id);

CREATE TABLE genesis.sidecar_tokens (
    token_hash   bytea PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    droplet_id   uuid NOT NULL REFERENCES genesis.droplets (id),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sidecar_tokens_droplet_idx ON genesis.sidecar_tokens (droplet_id);

ALTER TABLE genesis.droplets
    ADD COLUMN webhook_base_url   text,
    ADD COLUMN sidecar_public_key text;

GRANT SELECT, INSERT, UPDATE ON genesis.provisioning_tokens TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.sidecar_tokens TO genesis_app;
