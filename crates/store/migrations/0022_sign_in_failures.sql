-- Refused God Mode sign-ins, counted per account *and* source address (issue 19).
--
-- Counting per account alone let anyone lock an operator out for the window by guessing
-- five times from anywhere, even while the operator typed the right password from their own
-- desk. Counting per (account, source) keeps the brake on guessing without handing out that
-- weapon. One row per pair, updated in place: a flood of guesses does not grow the table
-- beyond the pairs the per-source rate limit lets through, and rows older than the window
-- are deleted as new ones are written.
CREATE TABLE genesis.sign_in_failures (
    email        text NOT NULL,
    source       text NOT NULL,
    failures     integer NOT NULL CHECK (failures > 0),
    window_start timestamptz NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (email, source)
);

CREATE INDEX sign_in_failures_last_idx ON genesis.sign_in_failures (last_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.sign_in_failures TO genesis_app;

-- Failures were counted from the audit log; nothing reads it that way any more.
DROP INDEX IF EXISTS genesis.audit_log_login_failed_idx;
