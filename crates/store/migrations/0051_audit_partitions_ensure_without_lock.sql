-- Review of 0049 (issue 25; DECISIONS 104): `audit_partitions_ensure` tried a
-- `CREATE TABLE ... PARTITION OF` for every month and let a failure say the month existed.
-- Creating a partition takes an ACCESS EXCLUSIVE lock on `audit_log` before the overlap is
-- found, so an hourly pass could queue every audited insert behind a long transaction. It
-- now looks first, and creates (under a short lock timeout) only a month no partition covers.

CREATE FUNCTION genesis.audit_partition_covers(m timestamptz) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, genesis
AS $$
    SELECT EXISTS (
        SELECT 1
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS b) x
        WHERE i.inhparent = 'genesis.audit_log'::regclass
          -- MINVALUE has no quoted bound: it covers everything before its upper one.
          AND coalesce(substring(x.b FROM 'FROM \(''([^'']+)''\)')::timestamptz <= m, true)
          AND substring(x.b FROM 'TO \(''([^'']+)''\)')::timestamptz > m)
$$;

CREATE OR REPLACE FUNCTION genesis.audit_partitions_ensure(at timestamptz, ahead int) RETURNS int
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, genesis
    SET lock_timeout = '2s'
AS $$
DECLARE
    m timestamptz;
    made int := 0;
BEGIN
    IF ahead < 0 OR ahead > 24 THEN
        RAISE EXCEPTION 'audit_partitions_ensure: % months ahead is out of range', ahead;
    END IF;
    FOR k IN 0..ahead LOOP
        m := genesis.audit_month(at) + make_interval(months => k);
        CONTINUE WHEN genesis.audit_partition_covers(m);
        BEGIN
            EXECUTE format(
                'CREATE TABLE genesis.%I PARTITION OF genesis.audit_log FOR VALUES FROM (%L) TO (%L)',
                'audit_log_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM'),
                m, m + interval '1 month');
            made := made + 1;
        EXCEPTION WHEN duplicate_table THEN
            -- A table of that name exists outside the online log (a month archived, then
            -- asked for again): nothing to create.
            NULL;
        END;
    END LOOP;
    RETURN made;
END
$$;
REVOKE ALL ON FUNCTION genesis.audit_partitions_ensure(timestamptz, int) FROM PUBLIC;
