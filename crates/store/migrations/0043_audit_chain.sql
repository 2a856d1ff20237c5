-- The audit log becomes tamper-evident (issue 25, spec 63.1): each region's rows are
-- hash-chained, each row's link an HMAC over the previous link and the row, under a key the
-- database never holds (`server.audit_key`). A database owner can change or remove rows,
-- but cannot compute the links that would hide it; `genesis audit verify` finds the first
-- broken one.
--
-- Rows are written unsealed, by any transaction, without waiting for each other; a sealer
-- (the `audit-seal` reconciler) later gives them their place in the chain in the order it
-- finds them committed. Chaining at insert time would make every audited transaction of a
-- region queue behind one lock until it commits.
--
--   chain_seq     the row's place in the chain, from 1, without gaps
--   chain_hash    HMAC(key, previous chain_hash, chain_seq, the row's fields, personal)
--   personal_mac  set only when a tenant's deletion anonymises the row: the HMAC its
--                 personal fields (actor, subject, details) had, so that the chain still
--                 verifies and the original values are gone
ALTER TABLE genesis.audit_log
    ADD COLUMN chain_seq bigint UNIQUE,
    ADD COLUMN chain_hash bytea,
    ADD COLUMN personal_mac bytea,
    ADD CONSTRAINT audit_log_sealed_whole CHECK ((chain_seq IS NULL) = (chain_hash IS NULL));

CREATE INDEX audit_log_unsealed_idx ON genesis.audit_log (id) WHERE chain_hash IS NULL;

-- An insert cannot arrive sealed or anonymised: those columns are the sealer's and the
-- deletion's, through the functions below.
CREATE OR REPLACE FUNCTION genesis.audit_assign_id_and_time() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
BEGIN
    NEW.id := nextval(pg_get_serial_sequence('genesis.audit_log', 'id'));
    NEW.occurred_at := now();
    NEW.chain_seq := NULL;
    NEW.chain_hash := NULL;
    NEW.personal_mac := NULL;
    RETURN NEW;
END
$$;

-- Seals `ids` as chain places `first_seq`, `first_seq + 1`, ... with `hashes`. Only the
-- runtime role's way to touch the chain columns, and it can only fill them: a sealed row is
-- never resealed, the places must follow the chain's head without a gap, and a batch that
-- does not fit is refused whole. The caller holds the chain's advisory lock (it read the
-- head under it); the function takes it again, so a caller that did not is still serialised.
CREATE FUNCTION genesis.audit_seal(ids bigint[], hashes bytea[], first_seq bigint)
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
    SELECT coalesce(max(chain_seq), 0) INTO head FROM genesis.audit_log;
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
REVOKE ALL ON FUNCTION genesis.audit_seal(bigint[], bytea[], bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.audit_seal(bigint[], bytea[], bigint) TO genesis_app;
