-- Per-tenant limits of spec 59.2 that differ from the service matrix's defaults (issue 23):
-- an operator raises one tenant's daily search allowance, or lowers a noisy one's. Kept in
-- the workspace's regional database beside its wallet; every change is audited with it.
CREATE TABLE genesis.service_limit_overrides (
    workspace_id          uuid NOT NULL REFERENCES genesis.workspaces (id),
    service               text NOT NULL CHECK (service ~ '^[a-z0-9_]{1,40}$'),
    rpm_per_tenant        integer CHECK (rpm_per_tenant > 0),
    daily_per_tenant      integer CHECK (daily_per_tenant > 0),
    concurrent_per_tenant integer CHECK (concurrent_per_tenant > 0),
    -- Why, for whoever reads it next.
    reason                text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, service),
    CHECK (num_nonnulls(rpm_per_tenant, daily_per_tenant, concurrent_per_tenant) > 0)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.service_limit_overrides TO genesis_app;
