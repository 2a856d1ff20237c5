-- The audit log's categories are spec 63.1's eight, and `operations` for fleet-wide operator
-- actions (DECISIONS 101). The application writes them from a closed enum
-- (genesis_core::audit::AuditCategory); the database refuses any other on insert, whoever
-- inserts.
--
-- A trigger, not a CHECK: rows written before this migration keep their old names
-- (handshake, hibernation, vault, watchdog, fleet, rollout, notifications, operator): they
-- are hash-chained, so they cannot be renamed, and a CHECK, even NOT VALID, would also refuse
-- the anonymising UPDATE a deletion makes to them (spec 64.2 step 6).

CREATE OR REPLACE FUNCTION genesis.audit_category_known() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, genesis
AS $$
BEGIN
    IF NEW.category NOT IN ('provisioning', 'credentials', 'workflows', 'droplet', 'security',
                            'support', 'billing', 'data', 'operations') THEN
        RAISE EXCEPTION 'unknown audit category %', NEW.category
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_category_known
    BEFORE INSERT ON genesis.audit_log
    FOR EACH ROW EXECUTE FUNCTION genesis.audit_category_known();
