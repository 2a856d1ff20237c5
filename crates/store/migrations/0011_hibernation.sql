-- Hibernation (spec 55): what each tenant last did (spec 55.1's criteria), its manual hold,
-- the notice it was sent (spec 55.2 step 1), and each hibernation episode (for the savings
-- the God Mode dashboard shows).

CREATE TABLE genesis.workspace_activity (
    workspace_id      uuid PRIMARY KEY REFERENCES genesis.workspaces (id),
    last_campaign_at  timestamptz,
    last_execution_at timestamptz,
    last_login_at     timestamptz,
    hibernation_hold  boolean NOT NULL DEFAULT false,
    notice_at         timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genesis.hibernations (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES genesis.workspaces (id),
    droplet_id    uuid NOT NULL REFERENCES genesis.droplets (id),
    hibernated_at timestamptz NOT NULL DEFAULT now(),
    woken_at      timestamptz,
    wake_trigger  text,
    final_metrics jsonb
);

-- A droplet is in at most one open episode.
CREATE UNIQUE INDEX hibernations_open_idx ON genesis.hibernations (droplet_id) WHERE woken_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.workspace_activity, genesis.hibernations TO genesis_app;
GRANT USAGE ON SEQUENCE genesis.hibernations_id_seq TO genesis_app;
