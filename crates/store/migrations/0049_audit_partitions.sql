-- The audit log is partitioned by month (issue 25, spec 63.2; DECISIONS 104).
--
--   genesis.audit_log          the online log: this month, the months ahead, and at least
--                              the last 13 months (spec 63.2: 90 days at least). What the
--                              dashboards and the sealer read.
--   genesis.audit_archive      months moved out of the online log, kept 7 years, read by
--                              `genesis audit verify`, a tenant's export and its deletion.
--   genesis.audit_history      both, as one view.
--   genesis.audit_partitions   the catalogue of months that left the online log: where each
--                              archival stands, and for a dropped month the chain's place
--                              and link at its end (the checkpoint the verifier starts from).
--
-- The `audit-retention` reconciler creates months ahead, archives old ones (DETACH
-- CONCURRENTLY, then ATTACH to the archive) and drops archived months past 7 years.
--
-- The rows so far become the first partition as they are, without a copy. A partitioned
-- table's unique constraints must contain its partition key, so the primary key becomes
-- (id, occurred_at) and chain places are no longer a UNIQUE constraint: ids come from one
-- sequence through the insert trigger, places from the sealer under the chain's lock, and
-- the verifier reports a duplicated place as a broken link.

-- 1. The existing table becomes partition p0, detached from its identity and triggers.
ALTER TABLE genesis.audit_log RENAME TO audit_log_p0;
DROP TRIGGER audit_log_assign_id_and_time ON genesis.audit_log_p0;
DROP TRIGGER audit_log_category_known ON genesis.audit_log_p0;
ALTER TABLE genesis.audit_log_p0 ALTER COLUMN id DROP IDENTITY;
REVOKE ALL ON genesis.audit_log_p0 FROM genesis_app;
-- Its primary key (id) gives way to the partitioned table's (id, occurred_at).
ALTER TABLE genesis.audit_log_p0 DROP CONSTRAINT audit_log_pkey;
DO $$
DECLARE
    i record;
BEGIN
    FOR i IN SELECT c.relname FROM pg_index x
               JOIN pg_class c ON c.oid = x.indexrelid
              WHERE x.indrelid = 'genesis.audit_log_p0'::regclass
                AND c.relname LIKE 'audit\_log\_%' AND c.relname NOT LIKE 'audit\_log\_p0\_%'
    LOOP
        EXECUTE format('ALTER INDEX genesis.%I RENAME TO %I', i.relname,
                       'audit_log_p0_' || substr(i.relname, 11));
    END LOOP;
END
$$;

CREATE SEQUENCE genesis.audit_log_id_seq;
SELECT setval('genesis.audit_log_id_seq',
              coalesce((SELECT max(id) FROM genesis.audit_log_p0), 0) + 1, false);

-- 2. The online log.
CREATE TABLE genesis.audit_log (
    id            bigint NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    category      text NOT NULL,
    event         text NOT NULL,
    workspace_id  uuid,
    subject       text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    chain_seq     bigint,
    chain_hash    bytea,
    personal_mac  bytea,
    CONSTRAINT audit_log_sealed_whole CHECK ((chain_seq IS NULL) = (chain_hash IS NULL)),
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE INDEX audit_log_workspace_idx ON genesis.audit_log (workspace_id, occurred_at);
CREATE INDEX audit_log_event_idx ON genesis.audit_log (event, occurred_at);
CREATE INDEX audit_log_subject_idx ON genesis.audit_log (subject, id) WHERE subject IS NOT NULL;
CREATE INDEX audit_log_time_idx ON genesis.audit_log (occurred_at, id);
CREATE INDEX audit_log_actor_time_idx ON genesis.audit_log (actor text_pattern_ops, occurred_at, id);
CREATE INDEX audit_log_category_time_idx ON genesis.audit_log (category, occurred_at, id);
CREATE INDEX audit_log_unsealed_idx ON genesis.audit_log (id) WHERE chain_hash IS NULL;
CREATE INDEX audit_log_chain_idx ON genesis.audit_log (chain_seq) WHERE chain_seq IS NOT NULL;
CREATE INDEX audit_log_id_idx ON genesis.audit_log (id);

-- Months are UTC months.
CREATE FUNCTION genesis.audit_month(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE
AS $$ SELECT date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

DO $$
BEGIN
    EXECUTE format(
        'ALTER TABLE genesis.audit_log ATTACH PARTITION genesis.audit_log_p0
           FOR VALUES FROM (MINVALUE) TO (%L)',
        genesis.audit_month(now()) + interval '1 month');
END
$$;

-- Creates the online log's partitions for the month of `at` and the `ahead` months after
-- it, where missing; returns how many it created. A month already covered (by p0, or by an
-- earlier call) is skipped.
CREATE FUNCTION genesis.audit_partitions_ensure(at timestamptz, ahead int) RETURNS int
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
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
        BEGIN
            EXECUTE format(
                'CREATE TABLE genesis.%I PARTITION OF genesis.audit_log FOR VALUES FROM (%L) TO (%L)',
                'audit_log_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM'),
                m, m + interval '1 month');
            made := made + 1;
        EXCEPTION WHEN duplicate_table OR invalid_object_definition THEN
            -- Already there, or inside a partition that covers it (p0).
            NULL;
        END;
    END LOOP;
    RETURN made;
END
$$;
REVOKE ALL ON FUNCTION genesis.audit_partitions_ensure(timestamptz, int) FROM PUBLIC;
SELECT genesis.audit_partitions_ensure(now() + interval '1 month', 3);

-- 3. Ids and times are the database's. The id is assigned whatever the statement said; a
-- time other than the transaction's is refused (the row was routed to a partition by it,
-- and cannot be moved from a trigger).
CREATE OR REPLACE FUNCTION genesis.audit_assign_id_and_time() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
BEGIN
    IF NEW.occurred_at IS DISTINCT FROM now() THEN
        RAISE EXCEPTION 'the audit log dates its rows itself: occurred_at cannot be given'
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.id := nextval('genesis.audit_log_id_seq');
    NEW.chain_seq := NULL;
    NEW.chain_hash := NULL;
    NEW.personal_mac := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_assign_id_and_time BEFORE INSERT ON genesis.audit_log
    FOR EACH ROW EXECUTE FUNCTION genesis.audit_assign_id_and_time();
CREATE TRIGGER audit_log_category_known BEFORE INSERT ON genesis.audit_log
    FOR EACH ROW EXECUTE FUNCTION genesis.audit_category_known();

GRANT SELECT, INSERT ON genesis.audit_log TO genesis_app;

-- 4. The archive, the catalogue and the whole history.
CREATE TABLE genesis.audit_archive (LIKE genesis.audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_archive_workspace_idx ON genesis.audit_archive (workspace_id, occurred_at);
CREATE INDEX audit_archive_chain_idx ON genesis.audit_archive (chain_seq);
GRANT SELECT ON genesis.audit_archive TO genesis_app;

CREATE TABLE genesis.audit_partitions (
    name         text PRIMARY KEY CHECK (name ~ '^audit_log_p[0-9]+$'),
    -- As PostgreSQL prints it (`FOR VALUES FROM (...) TO (...)`), to attach it again.
    bound        text NOT NULL,
    upper_bound  timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('archiving', 'archived', 'dropped')),
    rows         bigint NOT NULL,
    first_seq    bigint,
    last_seq     bigint,
    last_hash    bytea,
    archived_at  timestamptz,
    dropped_at   timestamptz,
    CHECK ((last_seq IS NULL) = (last_hash IS NULL))
);
GRANT SELECT ON genesis.audit_partitions TO genesis_app;

CREATE VIEW genesis.audit_history AS
    SELECT * FROM genesis.audit_archive
    UNION ALL
    SELECT * FROM genesis.audit_log;
GRANT SELECT ON genesis.audit_history TO genesis_app;

-- The chain's head: its last sealed place and link, wherever it is now (online, archived,
-- or only in the checkpoint of a dropped month).
CREATE FUNCTION genesis.audit_chain_head(OUT seq bigint, OUT hash bytea)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
    SELECT s, h FROM (
        (SELECT chain_seq, chain_hash FROM genesis.audit_log
          WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1)
        UNION ALL
        (SELECT chain_seq, chain_hash FROM genesis.audit_archive
          WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1)
        UNION ALL
        (SELECT last_seq, last_hash FROM genesis.audit_partitions
          WHERE state = 'dropped' AND last_seq IS NOT NULL ORDER BY last_seq DESC LIMIT 1)
    ) AS c(s, h)
    ORDER BY s DESC LIMIT 1
$$;
REVOKE ALL ON FUNCTION genesis.audit_chain_head() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.audit_chain_head() TO genesis_app;

CREATE OR REPLACE FUNCTION genesis.audit_seal(ids bigint[], hashes bytea[], first_seq bigint)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    head bigint;
    sealed bigint;
BEGIN
    IF cardinality(ids) IS DISTINCT FROM cardinality(hashes) THEN
        RAISE EXCEPTION 'audit_seal: % ids but % hashes', cardinality(ids), cardinality(hashes);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('genesis.audit_chain'));
    SELECT coalesce((SELECT seq FROM genesis.audit_chain_head()), 0) INTO head;
    IF first_seq <> head + 1 THEN
        RAISE EXCEPTION 'audit_seal: the chain ends at %, not %', head, first_seq - 1;
    END IF;
    UPDATE genesis.audit_log a
       SET chain_seq = first_seq + s.ord - 1, chain_hash = s.hash
      FROM unnest(ids, hashes) WITH ORDINALITY AS s(id, hash, ord)
     WHERE a.id = s.id AND a.chain_hash IS NULL AND octet_length(s.hash) = 32;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    IF sealed <> cardinality(ids) THEN
        RAISE EXCEPTION 'audit_seal: % of % rows could be sealed', sealed, cardinality(ids);
    END IF;
    RETURN sealed;
END
$$;

-- A deletion's anonymising reaches archived months too (spec 63.2: "GDPR: can delete on
-- request").
CREATE OR REPLACE FUNCTION genesis.audit_anonymise(ws uuid, ids bigint[], macs bytea[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    n bigint;
    m bigint;
BEGIN
    IF NOT genesis.deletion_at_step(ws, 6) THEN
        RAISE EXCEPTION 'workspace % is not at step 6 of its deletion', ws
            USING ERRCODE = 'GD004';
    END IF;
    IF cardinality(ids) IS DISTINCT FROM cardinality(macs) THEN
        RAISE EXCEPTION 'audit_anonymise: % ids but % MACs', cardinality(ids), cardinality(macs);
    END IF;
    UPDATE genesis.audit_log a
       SET personal_mac = s.mac, actor = 'anonymised', subject = NULL, details = '{}'::jsonb
      FROM unnest(ids, macs) AS s(id, mac)
     WHERE a.id = s.id AND a.workspace_id = ws AND a.personal_mac IS NULL
       AND octet_length(s.mac) = 32;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE genesis.audit_archive a
       SET personal_mac = s.mac, actor = 'anonymised', subject = NULL, details = '{}'::jsonb
      FROM unnest(ids, macs) AS s(id, mac)
     WHERE a.id = s.id AND a.workspace_id = ws AND a.personal_mac IS NULL
       AND octet_length(s.mac) = 32;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
