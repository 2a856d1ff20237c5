-- Tenant lead data (spec 40): one partition per workspace, created and removed only by the
-- partition manager.

-- The tenant context of the current transaction. Fail-closed (spec 40.4): a missing setting
-- (NULL) or an empty one gives NULL, which equals no workspace_id, so zero rows; a malformed
-- one makes the cast fail, so the statement errors. Never another tenant's rows.
-- STABLE, never IMMUTABLE: an IMMUTABLE wrapper around current_setting may be folded into a
-- cached plan and then return one tenant's rows to another.
-- One expression with no FROM clause, so the planner inlines it. Measured per tenant query
-- (~0.2 ms): a non-inlined SQL function cost ~0.15 ms, a regex-validated one 0.09 ms, this
-- cast 0.024 ms, and RLS itself (USING true) 0.009 ms.
CREATE FUNCTION genesis.current_workspace_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid
$$;
REVOKE ALL ON FUNCTION genesis.current_workspace_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.current_workspace_id() TO genesis_app;

CREATE TABLE genesis.leads (
    workspace_id  uuid NOT NULL,
    id            uuid NOT NULL,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    first_name    text,
    last_name     text,
    company       text,
    status        text NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'contacted', 'replied', 'booked', 'bounced', 'unsubscribed')),
    data          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
) PARTITION BY HASH (workspace_id);

-- Two levels: 64 hash buckets, each LIST-partitioned by workspace, holding the per-tenant
-- partitions `leads_p_<slug>`. ATTACH and every connection's relcache rebuild after it cost
-- O(partitions of the parent touched); with buckets that is ~N/64 instead of N (at 15,000
-- tenants: ~234 instead of 15,000). `workspace_id = $1` still prunes both levels at plan time.
-- The bucket count is `LEAD_BUCKETS` in crates/store/src/partitions.rs (a test checks both agree).
DO $$
BEGIN
    FOR r IN 0..63 LOOP
        EXECUTE format(
            'CREATE TABLE genesis.%I PARTITION OF genesis.leads
                 FOR VALUES WITH (MODULUS 64, REMAINDER %s) PARTITION BY LIST (workspace_id)',
            'leads_h' || lpad(r::text, 2, '0'), r);
        -- Like leaf partitions: RLS forced with no policy, no grants. Reads go through the root.
        EXECUTE format('ALTER TABLE genesis.%I ENABLE ROW LEVEL SECURITY', 'leads_h' || lpad(r::text, 2, '0'));
        EXECUTE format('ALTER TABLE genesis.%I FORCE ROW LEVEL SECURITY', 'leads_h' || lpad(r::text, 2, '0'));
    END LOOP;
END
$$;

-- Partitioned indexes: the manager builds a matching index on each standalone partition
-- before ATTACH, so attaching never builds an index under a lock.
CREATE INDEX leads_status_created_idx ON genesis.leads (workspace_id, status, created_at DESC, id DESC);
CREATE UNIQUE INDEX leads_email_key ON genesis.leads (workspace_id, email);

ALTER TABLE genesis.leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE genesis.leads FORCE ROW LEVEL SECURITY;

CREATE POLICY leads_tenant_isolation ON genesis.leads
    USING (workspace_id = genesis.current_workspace_id())
    WITH CHECK (workspace_id = genesis.current_workspace_id());

-- The parent only: the runtime role has no privilege on any partition.
GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.leads TO genesis_app;
