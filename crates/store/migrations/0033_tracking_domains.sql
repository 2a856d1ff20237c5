-- A tenant's tracking domains (issue 22, spec 61.4): host names the tenant points at their
-- engine with a CNAME, that the engine's Caddy then serves (with its own certificate) for
-- the tracking links of their campaigns.
--
-- state: pending (no record yet), wrong_target (the record points elsewhere: `found` says
-- where), verified (DNS points at the engine; the engine has not confirmed it serves it),
-- active (the engine serves it). A host may be claimed by several workspaces; only the one
-- whose engine it points at gets further than wrong_target, so a claim reveals nothing.
CREATE TABLE genesis.tracking_domains (
    workspace_id  uuid NOT NULL REFERENCES genesis.workspaces (id),
    host          text NOT NULL CHECK (host = lower(host) AND length(host) BETWEEN 3 AND 253),
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'wrong_target', 'verified', 'active')),
    -- What DNS answered instead, for wrong_target.
    found         text,
    -- Why a verified host is not served yet (the engine sleeps, its front failed).
    detail        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    checked_at    timestamptz,
    activated_at  timestamptz,
    -- When the reconciler looks at DNS again.
    next_check_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, host)
);
CREATE INDEX tracking_domains_due ON genesis.tracking_domains (next_check_at);

-- What each workspace's engine was last told to serve, and when to tell it again (Caddy
-- forgets on a restart what its Caddyfile does not hold; the sidecar restores its own
-- list, and this covers a sidecar that lost it too).
CREATE TABLE genesis.tracking_fronts (
    workspace_id uuid PRIMARY KEY REFERENCES genesis.workspaces (id),
    served       text[] NOT NULL DEFAULT '{}',
    sync_at      timestamptz NOT NULL DEFAULT now(),
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tracking_fronts_due ON genesis.tracking_fronts (sync_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.tracking_domains TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.tracking_fronts TO genesis_app;
