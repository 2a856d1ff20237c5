-- Outbound webhooks to tenants' own systems (issue 24, spec 65.3 and 65.4).
--
-- An endpoint's signing secret (`whsec_…`) is shown once and kept sealed under the vault's
-- master key, bound to the endpoint's id. While a secret rotates (every 90 days, or when the
-- tenant asks), the previous one is kept until `previous_until` and both sign: a receiver
-- holding either verifies.
CREATE TABLE genesis.webhook_endpoints (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES genesis.workspaces (id),
    url                  text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    events               text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 16),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    key_version          integer NOT NULL,
    nonce                bytea NOT NULL,
    ciphertext           bytea NOT NULL,
    previous_key_version integer,
    previous_nonce       bytea,
    previous_ciphertext  bytea,
    previous_until       timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    rotated_at           timestamptz NOT NULL DEFAULT now(),
    -- When the tenant was shown the current secret: at registration and at a rotation they
    -- asked for, in the answer; after an automatic rotation, once, when they ask
    -- (NULL until then).
    secret_revealed_at   timestamptz DEFAULT now(),
    disabled_at          timestamptz
);
CREATE INDEX webhook_endpoints_workspace_idx ON genesis.webhook_endpoints (workspace_id)
    WHERE disabled_at IS NULL;

-- One event for one endpoint: written in the transaction of the change it reports (so an
-- event is never lost and never reported for a change that rolled back), then delivered on
-- 65.4's schedule by the webhook sender, which leases a row the way the mail sender does.
-- Its id is the `webhook-id` a receiver deduplicates on: the same on every attempt.
CREATE TABLE genesis.webhook_deliveries (
    id              uuid PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES genesis.webhook_endpoints (id),
    workspace_id    uuid NOT NULL REFERENCES genesis.workspaces (id),
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    dead_at         timestamptz,
    CHECK (delivered_at IS NULL OR dead_at IS NULL)
);
CREATE INDEX webhook_deliveries_due_idx ON genesis.webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint_idx ON genesis.webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_dead_idx ON genesis.webhook_deliveries (dead_at)
    WHERE dead_at IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.webhook_endpoints TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.webhook_deliveries TO genesis_app;
