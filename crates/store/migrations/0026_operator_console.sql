-- The operator's console (issue 21).
--
-- An alert can be acknowledged ("someone is on it") before it is resolved; both are
-- audited, and who acknowledged it is shown beside it.
ALTER TABLE genesis.alerts
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by text,
    ADD CONSTRAINT alerts_ack_whole CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL));

-- The audit-log viewer lists newest first by (occurred_at, id), a key that orders the
-- regional databases' logs together, and filters by actor and by category.
CREATE INDEX audit_log_time_idx ON genesis.audit_log (occurred_at, id);
CREATE INDEX audit_log_actor_time_idx ON genesis.audit_log (actor text_pattern_ops, occurred_at, id);
CREATE INDEX audit_log_category_time_idx ON genesis.audit_log (category, occurred_at, id);

-- Fleet states over time (God Mode's metrics page): droplets per region and state,
-- sampled once a minute by the fleet sampler and kept 30 days (~7 M rows at most for 5
-- regions and 14 states; in practice a few per minute).
CREATE TABLE genesis.fleet_samples (
    sampled_at  timestamptz NOT NULL,
    region      text NOT NULL,
    state       text NOT NULL,
    droplets    integer NOT NULL CHECK (droplets >= 0),
    PRIMARY KEY (sampled_at, region, state)
);
GRANT SELECT, INSERT, DELETE ON genesis.fleet_samples TO genesis_app;
