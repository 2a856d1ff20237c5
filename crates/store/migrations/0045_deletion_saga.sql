-- A tenant's deletion after its grace period (issue 25, spec 64.2): the seven forward-only
-- steps, where the saga stands, and the certificate it builds as it goes.
--
--   step         how many of the seven steps are done (0: not started)
--   started_at   when the saga began; from then on the deletion cannot be called off
--   finished_at  when step 7 made the workspace TERMINATED
--   lease_*      the replica moving the saga now (a lease, so that a dead one is replaced)
--   certificate  one entry per step done: what it removed, and when
--   export_*     the final export (step 1): where it is kept, and until when (30 days)
ALTER TABLE genesis.deletions
    ADD COLUMN step integer NOT NULL DEFAULT 0 CHECK (step BETWEEN 0 AND 7),
    ADD COLUMN started_at timestamptz,
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN lease_owner uuid,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN certificate jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN export_file text,
    ADD COLUMN export_expires_at timestamptz,
    ADD CONSTRAINT deletions_started_before_steps CHECK (step = 0 OR started_at IS NOT NULL),
    ADD CONSTRAINT deletions_started_not_cancelled
        CHECK (started_at IS NULL OR cancelled_at IS NULL),
    ADD CONSTRAINT deletions_finished_after_seven CHECK ((finished_at IS NULL) = (step < 7));

CREATE INDEX deletions_running_idx ON genesis.deletions (purge_after)
    WHERE cancelled_at IS NULL AND finished_at IS NULL;
CREATE INDEX deletions_exports_idx ON genesis.deletions (export_expires_at)
    WHERE export_file IS NOT NULL;

-- Whether the deletion saga of `ws` has reached `at_step` (is past its grace period, was not
-- called off, and has done the steps before it). The privileged functions below act only
-- then: the runtime role can reach them, but only for a tenant being deleted, in order.
CREATE FUNCTION genesis.deletion_at_step(ws uuid, at_step integer) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
    SELECT EXISTS (
        SELECT 1 FROM genesis.deletions d
        WHERE d.workspace_id = ws AND d.cancelled_at IS NULL AND d.started_at IS NOT NULL
          AND d.finished_at IS NULL AND d.step = at_step - 1)
$$;
REVOKE ALL ON FUNCTION genesis.deletion_at_step(uuid, integer) FROM PUBLIC;

-- Step 4: everything the workspace owns but its history, in foreign-key order. The runtime
-- role may not delete most of these rows itself (vault, members, tokens); this is its one way.
-- Returns how many rows left each table. Idempotent: a second run removes nothing.
CREATE FUNCTION genesis.deletion_purge(ws uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    removed jsonb := '{}'::jsonb;
    n bigint;
    droplet_ids uuid[];
    ignition_ids uuid[];
BEGIN
    IF NOT genesis.deletion_at_step(ws, 4) THEN
        RAISE EXCEPTION 'workspace % is not at step 4 of its deletion', ws
            USING ERRCODE = 'GD004';
    END IF;
    -- The leads left in the shared buckets (a tenant without a partition of its own).
    PERFORM set_config('app.workspace_id', ws::text, true);
    DELETE FROM genesis.leads WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('leads', n);
    PERFORM set_config('app.workspace_id', '', true);

    SELECT coalesce(array_agg(id), '{}') INTO droplet_ids
      FROM genesis.droplets WHERE workspace_id = ws;
    SELECT coalesce(array_agg(id), '{}') INTO ignition_ids
      FROM genesis.ignitions WHERE workspace_id = ws;

    DELETE FROM genesis.ignition_log WHERE ignition_id = ANY (ignition_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('ignition_log', n);
    DELETE FROM genesis.ignitions WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('ignitions', n);
    DELETE FROM genesis.droplet_workflows WHERE droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('droplet_workflows', n);
    DELETE FROM genesis.hibernations WHERE workspace_id = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('hibernations', n);
    DELETE FROM genesis.alerts WHERE workspace_id = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('alerts', n);
    DELETE FROM genesis.sidecar_tokens WHERE workspace_id = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('sidecar_tokens', n);
    DELETE FROM genesis.provisioning_tokens
     WHERE workspace_id = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('provisioning_tokens', n);
    DELETE FROM genesis.standby_droplets WHERE claimed_by = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('standby_droplets', n);
    DELETE FROM genesis.rollout_targets WHERE workspace_id = ws OR droplet_id = ANY (droplet_ids);
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('rollout_targets', n);
    DELETE FROM genesis.droplets WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('droplets', n);

    DELETE FROM genesis.vault_credentials WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('vault_credentials', n);
    DELETE FROM genesis.onboarding_secrets WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('onboarding_secrets', n);
    DELETE FROM genesis.onboarding_progress WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('onboarding_progress', n);
    DELETE FROM genesis.oauth_flows WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('oauth_flows', n);
    DELETE FROM genesis.webhook_deliveries WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('webhook_deliveries', n);
    DELETE FROM genesis.webhook_endpoints WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('webhook_endpoints', n);
    DELETE FROM genesis.webhook_registry WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('webhook_registry', n);
    DELETE FROM genesis.workspace_tokens WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('workspace_tokens', n);
    DELETE FROM genesis.tenant_api_tokens WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('tenant_api_tokens', n);
    DELETE FROM genesis.workspace_invitations WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('workspace_invitations', n);
    DELETE FROM genesis.workspace_members WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('workspace_members', n);
    DELETE FROM genesis.notifications WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('notifications', n);
    DELETE FROM genesis.lead_imports WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('lead_imports', n);
    DELETE FROM genesis.tracking_domains WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('tracking_domains', n);
    DELETE FROM genesis.tracking_fronts WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('tracking_fronts', n);
    DELETE FROM genesis.service_limit_overrides WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed || jsonb_build_object('service_limit_overrides', n);
    DELETE FROM genesis.workspace_activity WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('workspace_activity', n);
    DELETE FROM genesis.command_journal WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('command_journal', n);
    DELETE FROM genesis.standby_pools WHERE workspace_id = ws;
    GET DIAGNOSTICS n = ROW_COUNT; removed := removed || jsonb_build_object('standby_pools', n);
    -- The tombstone keeps the id and the status; its names are the tenant's.
    UPDATE genesis.workspaces
       SET slug = 'deleted_' || replace(ws::text, '-', ''), name = 'Deleted workspace',
           onboarding = '{}'::jsonb, updated_at = now()
     WHERE id = ws;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION genesis.deletion_purge(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.deletion_purge(uuid) TO genesis_app;

-- Step 5: open reservations are voided, the wallet's balance leaves by a CLOSURE transfer to
-- `platform:closed` (the ledger stays append-only and balanced), and the references of its
-- transfers, which can name a payment and through it a person, are replaced. Only the
-- reference may change, only to 'anonymised', and only inside this function (the flag is
-- local to its transaction, and only the owner may UPDATE). The wallet's settings go.
ALTER TABLE genesis.ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
ALTER TABLE genesis.ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
    CHECK (kind IN ('DEPOSIT', 'AUTO_TOPUP', 'APIFY_SCRAPE', 'CSE_SEARCH', 'PROXY_REQUEST',
                    'EMAIL_VERIFY', 'REFUND', 'CLOSURE'));

CREATE OR REPLACE FUNCTION genesis.ledger_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('genesis.ledger_anonymise', true) = OLD.workspace_id::text
       AND NEW.reference = 'anonymised'
       AND (NEW.id, NEW.seq, NEW.debit_account, NEW.credit_account, NEW.amount, NEW.kind,
            NEW.phase, NEW.pending_id, NEW.timeout_s, NEW.timeout_at, NEW.workspace_id,
            NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.seq, OLD.debit_account, OLD.credit_account, OLD.amount, OLD.kind,
            OLD.phase, OLD.pending_id, OLD.timeout_s, OLD.timeout_at, OLD.workspace_id,
            OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger transfers are never changed or removed'
        USING ERRCODE = 'GL004';
END $$;

INSERT INTO genesis.ledger_accounts (id, debits_must_not_exceed_credits)
    VALUES ('platform:closed', false);

CREATE FUNCTION genesis.wallet_close(ws uuid) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    wallet text := 'wallet:' || ws::text;
    voided bigint;
    left_over bigint;
    anonymised bigint;
BEGIN
    IF NOT genesis.deletion_at_step(ws, 5) THEN
        RAISE EXCEPTION 'workspace % is not at step 5 of its deletion', ws
            USING ERRCODE = 'GD004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM genesis.ledger_accounts WHERE id = wallet) THEN
        DELETE FROM genesis.wallets WHERE workspace_id = ws;
        RETURN jsonb_build_object('voided', 0, 'closed_millicents', 0, 'anonymised', 0);
    END IF;
    -- Reservations still open: nothing will spend them now.
    INSERT INTO genesis.ledger_transfers (id, debit_account, credit_account, amount, kind,
                                          phase, pending_id, workspace_id, reference)
    SELECT gen_random_uuid(), t.debit_account, t.credit_account, 0, t.kind, 'void', t.id,
           ws, 'deletion'
      FROM genesis.ledger_open_pending o JOIN genesis.ledger_transfers t ON t.id = o.transfer_id
     WHERE t.workspace_id = ws;
    GET DIAGNOSTICS voided = ROW_COUNT;
    SELECT credits_posted - debits_posted INTO left_over
      FROM genesis.ledger_accounts WHERE id = wallet;
    IF left_over > 0 THEN
        -- One closure per wallet: its id is the wallet's, so a second run adds nothing.
        INSERT INTO genesis.ledger_transfers (id, debit_account, credit_account, amount, kind,
                                              phase, workspace_id, reference)
        VALUES (md5('genesis-closure:' || ws::text)::uuid, wallet, 'platform:closed',
                left_over, 'CLOSURE', 'single', ws, 'deletion')
        ON CONFLICT (id) DO NOTHING;
    END IF;
    PERFORM set_config('genesis.ledger_anonymise', ws::text, true);
    UPDATE genesis.ledger_transfers SET reference = 'anonymised'
     WHERE workspace_id = ws AND reference IS NOT NULL
       AND reference NOT IN ('anonymised', 'deletion');
    GET DIAGNOSTICS anonymised = ROW_COUNT;
    PERFORM set_config('genesis.ledger_anonymise', '', true);
    DELETE FROM genesis.wallets WHERE workspace_id = ws;
    RETURN jsonb_build_object('voided', voided, 'closed_millicents', greatest(left_over, 0),
                              'anonymised', anonymised);
END
$$;
REVOKE ALL ON FUNCTION genesis.wallet_close(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.wallet_close(uuid) TO genesis_app;

-- Step 6: the audit rows of the workspace lose their personal fields (actor, subject,
-- details), each keeping the MAC those fields had (computed by the caller, who holds the
-- audit key), so the hash chain still verifies. The runtime role stays append-only: this
-- is its one way to change a row, for a workspace at step 6, and only once per row.
CREATE FUNCTION genesis.audit_anonymise(ws uuid, ids bigint[], macs bytea[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, genesis
AS $$
DECLARE
    n bigint;
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
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION genesis.audit_anonymise(uuid, bigint[], bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION genesis.audit_anonymise(uuid, bigint[], bytea[]) TO genesis_app;
