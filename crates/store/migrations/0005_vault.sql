-- The credential vault (issue 6, minimal): tenant credentials encrypted at rest with
-- AES-256-GCM under a versioned master key; the plaintext never reaches the database.

CREATE TABLE genesis.vault_credentials (
    workspace_id  uuid NOT NULL REFERENCES genesis.workspaces (id),
    credential_id uuid NOT NULL,
    kind          text NOT NULL,
    name          text NOT NULL,
    key_version   integer NOT NULL,
    nonce         bytea NOT NULL,
    ciphertext    bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, credential_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.vault_credentials TO genesis_app;
