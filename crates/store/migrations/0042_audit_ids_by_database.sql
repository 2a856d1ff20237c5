-- The audit log's ids and times are the database's (issue 25, spec 63.1): the runtime role
-- could insert a row with `OVERRIDING SYSTEM VALUE`, id -1, dated 2001. A trigger now
-- assigns both on every insert, whatever the statement said. It runs as the owner (the
-- identity sequence is the owner's), and cannot be switched off by the runtime role.
CREATE FUNCTION genesis.audit_assign_id_and_time() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
BEGIN
    NEW.id := nextval(pg_get_serial_sequence('genesis.audit_log', 'id'));
    NEW.occurred_at := now();
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION genesis.audit_assign_id_and_time() FROM PUBLIC;

CREATE TRIGGER audit_log_assign_id_and_time BEFORE INSERT ON genesis.audit_log
    FOR EACH ROW EXECUTE FUNCTION genesis.audit_assign_id_and_time();
