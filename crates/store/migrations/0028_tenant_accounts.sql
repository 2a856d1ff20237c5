-- Tenants' own accounts (issue 22, spec 60.1 stage 1 and 62.2).
--
-- Residency: an account (its address and password hash) lives in the database of the region
-- its owner chose at sign-up, with the workspaces it creates. The coordinating database
-- holds only a claim: the SHA-256 of the address and the region that holds it, which makes
-- an address unique across regions (claimed atomically, like slugs) and tells a sign-in
-- where to look, without keeping the address itself outside its region.
--
-- Nothing here is a secret in clear: passwords are argon2id PHC strings, and sessions,
-- e-mail links and API tokens are kept as the SHA-256 of what their holder has.

CREATE TABLE genesis.account_claims (
    email_sha256 bytea PRIMARY KEY CHECK (length(email_sha256) = 32),
    region       text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genesis.accounts (
    id            uuid PRIMARY KEY,
    -- Lower-cased by the application; one account per address.
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    region        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    verified_at   timestamptz,
    disabled_at   timestamptz
);

-- The links sent by e-mail to prove an address: single use, expiring.
CREATE TABLE genesis.account_verifications (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    account_id   uuid NOT NULL REFERENCES genesis.accounts (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX account_verifications_account_idx ON genesis.account_verifications (account_id);

CREATE TABLE genesis.account_sessions (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    account_id   uuid NOT NULL REFERENCES genesis.accounts (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    client       text
);
CREATE INDEX account_sessions_account_idx ON genesis.account_sessions (account_id)
    WHERE revoked_at IS NULL;

-- Who may act on a workspace. The row lives with the workspace; the account may live in
-- another region's database (an invited colleague), so it is named, not referenced.
CREATE TABLE genesis.workspace_members (
    workspace_id   uuid NOT NULL REFERENCES genesis.workspaces (id),
    account_id     uuid NOT NULL,
    account_region text NOT NULL,
    email          text NOT NULL CHECK (email = lower(email)),
    role           text NOT NULL CHECK (role IN ('owner', 'member')),
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, account_id)
);
CREATE INDEX workspace_members_account_idx ON genesis.workspace_members (account_id);

CREATE TABLE genesis.workspace_invitations (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    email        text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role         text NOT NULL CHECK (role IN ('owner', 'member')),
    invited_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX workspace_invitations_workspace_idx ON genesis.workspace_invitations (workspace_id);

-- Tokens a tenant makes for its own scripts: named, shown once, revocable.
CREATE TABLE genesis.tenant_api_tokens (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX tenant_api_tokens_live_name_idx ON genesis.tenant_api_tokens (workspace_id, name)
    WHERE revoked_at IS NULL;

-- Notifications to a person rather than a workspace (an address to verify, an invitation).
ALTER TABLE genesis.notifications
    ALTER COLUMN workspace_id DROP NOT NULL,
    ADD COLUMN recipient text,
    ADD CONSTRAINT notifications_addressed CHECK (workspace_id IS NOT NULL OR recipient IS NOT NULL);

GRANT SELECT, INSERT, DELETE ON genesis.account_claims TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.accounts TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.account_verifications TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.account_sessions TO genesis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.workspace_members TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.workspace_invitations TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.tenant_api_tokens TO genesis_app;
