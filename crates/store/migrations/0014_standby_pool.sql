-- The hot-standby pool (spec 55.4 strategy 3): warm blank droplets per region, claimed by a
-- High-Priority tenant while its own droplet wakes, and destroyed once the tenant is back on
-- its own droplet (a standby that held one tenant's credentials never serves another).
--
-- Every droplet row needs an owning workspace, and every sidecar is scoped to one: each
-- region's pool is owned by one reserved workspace (Enterprise tier, so it never hibernates;
-- never ignited, so rollouts and tenant listings leave it out).

CREATE TABLE genesis.standby_pools (
    region       text PRIMARY KEY CHECK (region IN ('us-east', 'us-west', 'eu-west', 'eu-north', 'apac')),
    workspace_id uuid NOT NULL UNIQUE REFERENCES genesis.workspaces (id)
);

CREATE TABLE genesis.standby_droplets (
    droplet_id  uuid PRIMARY KEY REFERENCES genesis.droplets (id),
    region      text NOT NULL,
    claimed_by  uuid REFERENCES genesis.workspaces (id),
    claimed_at  timestamptz,
    serving_at  timestamptz,
    released_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((claimed_by IS NULL) = (claimed_at IS NULL)),
    CHECK (serving_at IS NULL OR claimed_at IS NOT NULL)
);

-- A tenant is served by at most one standby at a time.
CREATE UNIQUE INDEX standby_droplets_one_claim_idx
    ON genesis.standby_droplets (claimed_by) WHERE claimed_by IS NOT NULL AND released_at IS NULL;
CREATE INDEX standby_droplets_free_idx
    ON genesis.standby_droplets (region, created_at) WHERE claimed_by IS NULL AND released_at IS NULL;

GRANT SELECT, INSERT ON genesis.standby_pools TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.standby_droplets TO genesis_app;
