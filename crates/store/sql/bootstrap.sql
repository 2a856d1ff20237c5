-- Cluster- and database-level set-up that migrations cannot do for themselves, run by an
-- administrator (a superuser, or a role with CREATEROLE that owns the database).
-- Idempotent and safe to run concurrently (roles are cluster-wide and tests create databases
-- in parallel); the caller serializes it with an advisory lock as well.
--
-- genesis_owner: owns the schema and every table; migrations and the partition manager act as
--                it (SET ROLE). NOLOGIN: nobody connects as the owner directly.
-- genesis_app:   the runtime role. Not an owner, no BYPASSRLS, no DDL; tenant data only through
--                RLS; plans are always custom (spec 40.2, see DESIGN §5 on generic plans at
--                15k partitions).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'genesis_owner') THEN
    BEGIN
      CREATE ROLE genesis_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'genesis_app') THEN
    BEGIN
      CREATE ROLE genesis_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
    WHERE r.rolname = 'genesis_app' AND s.setdatabase = 0
      AND 'plan_cache_mode=force_custom_plan' = ANY (s.setconfig)
  ) THEN
    ALTER ROLE genesis_app SET plan_cache_mode = 'force_custom_plan';
  END IF;
  -- The administrator must be able to act as the owner (a no-op for superusers).
  IF NOT pg_has_role(current_user, 'genesis_owner', 'MEMBER') THEN
    EXECUTE format('GRANT genesis_owner TO %I', current_user);
  END IF;
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO genesis_owner', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO genesis_app', current_database());
  EXECUTE format('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
END
$$;
CREATE SCHEMA IF NOT EXISTS genesis AUTHORIZATION genesis_owner;
