-- The Ohio exception, isolated (issue 25): the legacy table had no row-level security, so
-- any tenant session could read or write it. Now only a transaction whose tenant context is
-- the registered legacy workspace sees a row, as every partition of `genesis.leads` does.
--
-- Which workspace owns a legacy table is written by `genesis migrate` (from `[ohio]`), as
-- the owner: the runtime role may read the registry, never change it. Until it is written,
-- nobody sees the table (fail-closed).
CREATE TABLE genesis.legacy_tenants (
    table_name   text PRIMARY KEY CHECK (table_name IN ('leads_ohio')),
    workspace_id uuid NOT NULL
);
GRANT SELECT ON genesis.legacy_tenants TO genesis_app;

ALTER TABLE genesis.leads_ohio ENABLE ROW LEVEL SECURITY;
ALTER TABLE genesis.leads_ohio FORCE ROW LEVEL SECURITY;
CREATE POLICY leads_ohio_legacy_tenant ON genesis.leads_ohio
    USING (genesis.current_workspace_id() =
           (SELECT workspace_id FROM genesis.legacy_tenants WHERE table_name = 'leads_ohio'))
    WITH CHECK (genesis.current_workspace_id() =
           (SELECT workspace_id FROM genesis.legacy_tenants WHERE table_name = 'leads_ohio'));
