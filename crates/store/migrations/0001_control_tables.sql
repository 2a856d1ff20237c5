-- Control-plane tables (no personal data) and the append-only audit log.
-- Runs as genesis_owner with search_path = genesis.

REVOKE ALL ON SCHEMA genesis FROM PUBLIC;
GRANT USAGE ON SCHEMA genesis TO genesis_app;

CREATE TABLE genesis.workspaces (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9_]{1,50}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region      text NOT NULL CHECK (region IN ('us-east', 'us-west', 'eu-west', 'eu-north', 'apac')),
    tier        text NOT NULL CHECK (tier IN ('standard', 'high-priority', 'enterprise')),
    status      text NOT NULL,
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per lead partition; written only by the partition manager (as the owner).
CREATE TABLE genesis.partition_registry (
    workspace_id    uuid PRIMARY KEY REFERENCES genesis.workspaces (id),
    partition_name  text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genesis.droplets (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES genesis.workspaces (id),
    provider_id  bigint UNIQUE,
    region       text NOT NULL,
    state        text NOT NULL,
    version      bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX droplets_workspace_idx ON genesis.droplets (workspace_id);
CREATE INDEX droplets_state_idx ON genesis.droplets (state);

-- Append-only for the runtime role: it may INSERT and SELECT, never UPDATE/DELETE/TRUNCATE.
CREATE TABLE genesis.audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    category      text NOT NULL,
    event         text NOT NULL,
    workspace_id  uuid,
    subject       text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_workspace_idx ON genesis.audit_log (workspace_id, occurred_at);
CREATE INDEX audit_log_event_idx ON genesis.audit_log (event, occurred_at);

GRANT SELECT, INSERT, UPDATE ON genesis.workspaces TO genesis_app;
GRANT SELECT ON genesis.partition_registry TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.droplets TO genesis_app;
GRANT SELECT, INSERT ON genesis.audit_log TO genesis_app;
