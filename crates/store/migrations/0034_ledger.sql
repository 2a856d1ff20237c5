-- The Genesis Wallet's ledger (issue 23, spec 58), after TigerBeetle's model.
--
-- Money moves only by transfers: each debits one account and credits another by the same
-- integer amount of millicents (a thousandth of a cent). Transfers are never changed or
-- removed. An account's four running totals are derived from its transfers, by the trigger
-- below and by nothing else, and a wallet's totals are held by a CHECK so that a wallet can
-- never spend more than it was given: the database refuses the transfer that would.
--
-- A pending transfer reserves money (it counts against the wallet at once) until a later
-- transfer posts it (all of it or less), voids it, or expires it at its timeout; each pending
-- transfer is resolved at most once (a unique index). Lives in the workspace's regional
-- database, beside the workspace and its audit log, so every transfer is audited in its own
-- transaction (decision 84).

CREATE TABLE genesis.ledger_accounts (
    id              text PRIMARY KEY
                    CHECK (id ~ '^(wallet:[0-9a-f-]{36}|platform:[a-z_]{1,40})$'),
    -- The wallet's workspace; none for the platform's own accounts.
    workspace_id    uuid UNIQUE REFERENCES genesis.workspaces (id),
    -- A wallet: its debits (pending and posted) may never exceed its posted credits.
    debits_must_not_exceed_credits boolean NOT NULL,
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_no_overdraft CHECK (
        NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted),
    CHECK ((workspace_id IS NULL) = (id LIKE 'platform:%'))
);

CREATE TABLE genesis.ledger_transfers (
    -- Chosen by the client: the same id is the same transfer.
    id             uuid PRIMARY KEY,
    -- The order transfers were applied in.
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- No foreign keys to the accounts: their KEY SHARE locks, taken before the trigger's row
    -- locks, would deadlock concurrent transfers. The trigger refuses an unknown account.
    debit_account  text NOT NULL,
    credit_account text NOT NULL,
    amount         bigint NOT NULL CHECK (amount >= 0),
    kind           text NOT NULL CHECK (kind IN ('DEPOSIT', 'AUTO_TOPUP', 'APIFY_SCRAPE',
                       'CSE_SEARCH', 'PROXY_REQUEST', 'EMAIL_VERIFY', 'REFUND')),
    -- single: posted at once; pending: reserved; post, void, expire: resolve `pending_id`.
    phase          text NOT NULL CHECK (phase IN ('single', 'pending', 'post', 'void', 'expire')),
    pending_id     uuid REFERENCES genesis.ledger_transfers (id),
    -- How long a pending transfer may stay unresolved (part of its identity), and when that
    -- is: then it is expired.
    timeout_s      integer CHECK (timeout_s BETWEEN 1 AND 86400),
    timeout_at     timestamptz,
    -- The wallet's workspace (every transfer has a wallet on one side).
    workspace_id   uuid NOT NULL REFERENCES genesis.workspaces (id),
    -- What it is for: a payment, a managed call, the transfer a refund gives back.
    reference      text CHECK (length(reference) <= 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account <> credit_account),
    CHECK ((phase IN ('post', 'void', 'expire')) = (pending_id IS NOT NULL)),
    CHECK ((phase = 'pending') = (timeout_s IS NOT NULL AND timeout_at IS NOT NULL))
);
-- A pending transfer is resolved once.
CREATE UNIQUE INDEX ledger_transfers_resolved_once ON genesis.ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_workspace ON genesis.ledger_transfers (workspace_id, seq DESC);
-- The lifetime figures of spec 58.1 sum these few kinds.
CREATE INDEX ledger_transfers_credits ON genesis.ledger_transfers (workspace_id, kind)
    WHERE kind IN ('DEPOSIT', 'AUTO_TOPUP', 'REFUND');
CREATE INDEX ledger_transfers_month ON genesis.ledger_transfers (created_at);

-- Pending transfers not resolved yet, by timeout: what the expiry sweep reads. Not part of
-- the ledger (the ledger says the same thing); rows go when their transfer is resolved.
CREATE TABLE genesis.ledger_open_pending (
    transfer_id uuid PRIMARY KEY REFERENCES genesis.ledger_transfers (id),
    timeout_at  timestamptz NOT NULL
);
CREATE INDEX ledger_open_pending_timeout ON genesis.ledger_open_pending (timeout_at);

-- Checks a transfer before it is stored, and completes a resolving one from its pending
-- transfer (a void or an expiry resolves the whole amount). No side effects here: an
-- insert's BEFORE trigger also runs for a row that ON CONFLICT then skips.
CREATE FUNCTION genesis.ledger_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = genesis, pg_temp AS $$
DECLARE
    p genesis.ledger_transfers%ROWTYPE;
BEGIN
    IF NEW.phase IN ('post', 'void', 'expire') THEN
        SELECT * INTO p FROM genesis.ledger_transfers WHERE id = NEW.pending_id;
        IF NOT FOUND OR p.phase <> 'pending' THEN
            RAISE EXCEPTION 'transfer % is not a pending transfer', NEW.pending_id
                USING ERRCODE = 'GL001';
        END IF;
        IF NEW.debit_account <> p.debit_account OR NEW.credit_account <> p.credit_account
           OR NEW.kind <> p.kind OR NEW.workspace_id <> p.workspace_id THEN
            RAISE EXCEPTION 'a resolving transfer must name its pending transfer''s accounts'
                USING ERRCODE = 'GL002';
        END IF;
        IF NEW.phase = 'post' AND NEW.amount > p.amount THEN
            RAISE EXCEPTION 'cannot post % of a pending %', NEW.amount, p.amount
                USING ERRCODE = 'GL003';
        END IF;
        IF NEW.phase <> 'post' THEN
            NEW.amount := p.amount;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_check BEFORE INSERT ON genesis.ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION genesis.ledger_check();

-- Applies the transfers one statement stored to their accounts' totals, where the
-- no-overdraft CHECK holds them: each account is updated once per statement with the sum of
-- its transfers (a batch of thousands updating one hot account row thousands of times would
-- build a version chain PostgreSQL walks on every update). Accounts are locked in id order,
-- so concurrent statements over the same accounts never deadlock. A second resolution of
-- one pending transfer never gets here: the unique index on pending_id refuses it first.
CREATE FUNCTION genesis.ledger_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = genesis, pg_temp AS $$
DECLARE
    wanted int;
    locked int;
BEGIN
    SELECT count(DISTINCT acc) INTO wanted FROM (
        SELECT debit_account AS acc FROM new_rows UNION ALL SELECT credit_account FROM new_rows
    ) a;
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM genesis.ledger_accounts
        WHERE id IN (SELECT debit_account FROM new_rows UNION SELECT credit_account FROM new_rows)
        ORDER BY id FOR NO KEY UPDATE
    ) l;
    IF locked <> wanted THEN
        RAISE EXCEPTION 'a transfer names an account that does not exist' USING ERRCODE = 'GL005';
    END IF;

    INSERT INTO genesis.ledger_open_pending (transfer_id, timeout_at)
        SELECT id, timeout_at FROM new_rows WHERE phase = 'pending';
    DELETE FROM genesis.ledger_open_pending o USING new_rows r
        WHERE r.pending_id IS NOT NULL AND o.transfer_id = r.pending_id;

    WITH moves AS (
        -- (account, debit side?, pending change, posted change) per transfer.
        SELECT r.debit_account AS account, true AS debit,
               CASE WHEN r.phase = 'pending' THEN r.amount ELSE 0 END
                 - CASE WHEN r.phase IN ('post', 'void', 'expire') THEN p.amount ELSE 0 END AS dq,
               CASE WHEN r.phase IN ('single', 'post') THEN r.amount ELSE 0 END AS dp
        FROM new_rows r LEFT JOIN genesis.ledger_transfers p ON p.id = r.pending_id
        UNION ALL
        SELECT r.credit_account, false,
               CASE WHEN r.phase = 'pending' THEN r.amount ELSE 0 END
                 - CASE WHEN r.phase IN ('post', 'void', 'expire') THEN p.amount ELSE 0 END,
               CASE WHEN r.phase IN ('single', 'post') THEN r.amount ELSE 0 END
        FROM new_rows r LEFT JOIN genesis.ledger_transfers p ON p.id = r.pending_id
    ), sums AS (
        SELECT account,
               coalesce(sum(dq) FILTER (WHERE debit), 0) AS debits_pending,
               coalesce(sum(dp) FILTER (WHERE debit), 0) AS debits_posted,
               coalesce(sum(dq) FILTER (WHERE NOT debit), 0) AS credits_pending,
               coalesce(sum(dp) FILTER (WHERE NOT debit), 0) AS credits_posted
        FROM moves GROUP BY account
    )
    UPDATE genesis.ledger_accounts a
        SET debits_pending = a.debits_pending + s.debits_pending,
            debits_posted = a.debits_posted + s.debits_posted,
            credits_pending = a.credits_pending + s.credits_pending,
            credits_posted = a.credits_posted + s.credits_posted
        FROM sums s WHERE a.id = s.account;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_apply AFTER INSERT ON genesis.ledger_transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION genesis.ledger_apply();

-- Transfers are immutable, whoever asks.
CREATE FUNCTION genesis.ledger_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger transfers are never changed or removed'
        USING ERRCODE = 'GL004';
END $$;

CREATE TRIGGER ledger_immutable BEFORE UPDATE OR DELETE ON genesis.ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION genesis.ledger_immutable();

-- A new account starts at zero, whatever the insert says: money only arrives by transfers.
CREATE FUNCTION genesis.ledger_account_opens_empty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.debits_pending := 0;
    NEW.debits_posted := 0;
    NEW.credits_pending := 0;
    NEW.credits_posted := 0;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_account_opens_empty BEFORE INSERT ON genesis.ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION genesis.ledger_account_opens_empty();

-- The platform's side of every wallet transfer: where deposits come from (the payment
-- provider) and where spending goes (revenue).
INSERT INTO genesis.ledger_accounts (id, debits_must_not_exceed_credits) VALUES
    ('platform:payments', false),
    ('platform:revenue', false);

-- A wallet's settings (spec 58.1) and where its alerts stand (58.2). Its balance is the
-- ledger's.
CREATE TABLE genesis.wallets (
    workspace_id         uuid PRIMARY KEY REFERENCES genesis.workspaces (id),
    auto_topup_enabled   boolean NOT NULL DEFAULT false,
    auto_topup_threshold bigint NOT NULL DEFAULT 500000 CHECK (auto_topup_threshold >= 0),
    auto_topup_amount    bigint NOT NULL DEFAULT 2000000
                         CHECK (auto_topup_amount >= 500000 AND auto_topup_amount % 1000 = 0),
    -- The payment provider's customer and saved payment method (ids, never card numbers),
    -- and what the tenant is shown of the card.
    customer_ref         text CHECK (length(customer_ref) <= 255),
    payment_method_ref   text CHECK (length(payment_method_ref) <= 255),
    card_brand           text CHECK (length(card_brand) <= 40),
    card_last4           text CHECK (card_last4 ~ '^[0-9]{4}$'),
    -- An automatic top-up asked of the provider and not answered yet (one at a time): the
    -- claim, which also names the charge to the provider (its idempotency key).
    topup_started_at     timestamptz,
    -- The lowest alert level sent since the balance was last above $5: ok, low_5, low_1, empty.
    alert_level          text NOT NULL DEFAULT 'ok'
                         CHECK (alert_level IN ('ok', 'low_5', 'low_1', 'empty')),
    -- Since when managed services are halted (the kill-switch), if they are.
    halted_at            timestamptz,
    -- The last entry of the wallet's Redis journal written here (the syncer's mark; a
    -- reloaded cache numbers on from it).
    synced_seq           bigint NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON genesis.ledger_accounts TO genesis_app;
GRANT SELECT, INSERT ON genesis.ledger_transfers TO genesis_app;
GRANT SELECT ON genesis.ledger_open_pending TO genesis_app;
GRANT SELECT, INSERT, UPDATE ON genesis.wallets TO genesis_app;
