-- The wizard's secrets (spec 60.1 stages 3 to 5, issue 22): the tenant's Gmail grant, AI
-- keys and DKIM private key, kept apart from `vault_credentials`, which holds what an ignition injected into
-- a droplet and which a rolled-back ignition purges. These are the tenant's answers: a
-- retry after a rollback must find them. Sealed (AES-256-GCM) under the vault's master key,
-- bound to the workspace and the kind as associated data; `hint` is what a page may show
-- (a masked key, the Gmail address).
CREATE TABLE genesis.onboarding_secrets (
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    kind         text NOT NULL CHECK (kind IN ('gmail', 'openai', 'anthropic', 'relevance', 'dkim')),
    hint         text NOT NULL,
    key_version  integer NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, kind)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.onboarding_secrets TO genesis_app;

-- An OAuth authorization in flight: the callback's `state` (hashed) names it; it is used at
-- most once and expires. The PKCE verifier is sealed like any secret.
CREATE TABLE genesis.oauth_flows (
    state_sha256 bytea PRIMARY KEY CHECK (length(state_sha256) = 32),
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    account_id   uuid NOT NULL REFERENCES genesis.accounts (id),
    -- What the tenant typed before leaving for the provider (the sender's name).
    sender_name  text NOT NULL,
    provider     text NOT NULL CHECK (provider IN ('google')),
    key_version  integer NOT NULL,
    nonce        bytea NOT NULL,
    verifier     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX oauth_flows_expiry ON genesis.oauth_flows (expires_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.oauth_flows TO genesis_app;

-- Stages 3 (the Gmail address that sends), 4 (which AI keys were checked, masked) and 5
-- (the sending domain, its DKIM selector and public key; confirmed once DNS serves them).
ALTER TABLE genesis.onboarding_progress
    ADD COLUMN email                jsonb CHECK (email IS NULL OR jsonb_typeof(email) = 'object'),
    ADD COLUMN email_confirmed_at   timestamptz,
    ADD COLUMN ai_keys              jsonb CHECK (ai_keys IS NULL OR jsonb_typeof(ai_keys) = 'object'),
    ADD COLUMN ai_keys_confirmed_at timestamptz,
    ADD COLUMN dns                  jsonb CHECK (dns IS NULL OR jsonb_typeof(dns) = 'object'),
    ADD COLUMN dns_confirmed_at     timestamptz;
