-- E-mail delivery from the notifications outbox (issue 24).
--
-- A row is due when `next_attempt_at` has passed and it is neither delivered nor dead. A
-- sender claims a row by moving `next_attempt_at` a lease ahead and counting the attempt, in
-- one statement; a sender that dies mid-send leaves the row to come due again when the lease
-- runs out. A row that failed for good (a permanent SMTP refusal, no one to write to, or
-- every retry spent) is dead: kept, with its last error, for God Mode to show and replay.
ALTER TABLE genesis.notifications
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error      text,
    ADD COLUMN dead_at         timestamptz,
    -- Who it went to, as sent (owners are resolved at send time).
    ADD COLUMN sent_to         text[],
    ADD CONSTRAINT notifications_delivered_or_dead CHECK (delivered_at IS NULL OR dead_at IS NULL);

DROP INDEX genesis.notifications_undelivered_idx;
CREATE INDEX notifications_due_idx ON genesis.notifications (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX notifications_dead_idx ON genesis.notifications (dead_at)
    WHERE dead_at IS NOT NULL;

-- Advisory notices a person asked not to receive again (the one-click unsubscribe of
-- RFC 8058). Notices the law or the contract requires (a verification link, a deletion, the
-- kill-switch) are never suppressed, whatever is here.
CREATE TABLE genesis.notification_opt_outs (
    email      text NOT NULL CHECK (email = lower(email)),
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email, kind)
);

GRANT SELECT, INSERT ON genesis.notification_opt_outs TO genesis_app;

-- The links behind those unsubscribes: one per message sent, kept as the SHA-256 of what
-- the message carries, so the link names neither the address nor the kind.
CREATE TABLE genesis.notification_unsubscribe_links (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    email        text NOT NULL CHECK (email = lower(email)),
    kind         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON genesis.notification_unsubscribe_links TO genesis_app;
