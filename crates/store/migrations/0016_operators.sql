-- God Mode's operators (spec 44) and their sign-in sessions. They live in the coordinator
-- database, with the rollouts: an operator sees the whole fleet, not one region.
--
-- Nothing here is a secret in clear: a password is kept as its argon2id PHC string, and a
-- session as the SHA-256 of the random token its cookie carries (a leaked table signs no one
-- in).

CREATE TABLE genesis.operators (
    id            uuid PRIMARY KEY,
    -- Lower-cased by the application; one account per address.
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE genesis.operator_sessions (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    operator_id  uuid NOT NULL REFERENCES genesis.operators (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    -- Where the sign-in came from (for the audit trail and an operator's own review).
    client       text
);

CREATE INDEX operator_sessions_operator_idx ON genesis.operator_sessions (operator_id);

GRANT SELECT, INSERT, UPDATE ON genesis.operators TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.operator_sessions TO genesis_app;

-- Counting an address's recent refused sign-ins (the brake on password guessing) reads
-- only those rows.
CREATE INDEX audit_log_login_failed_idx ON genesis.audit_log (actor, occurred_at)
    WHERE event = 'LOGIN_FAILED';
