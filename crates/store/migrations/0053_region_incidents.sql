-- Region outages as the platform saw them (issue 26, spec 66.1; DECISIONS 111): one row per
-- incident, in the region's own database, from the first pass that found the region
-- degraded or failed to the pass that found it clear long enough. The `region-watch`
-- reconciler writes it; `genesis dr status` and God Mode's DR page read it; an operator's
-- (or the policy's) failover is linked to it.
CREATE TABLE genesis.region_incidents (
    id              uuid PRIMARY KEY,
    region          text NOT NULL,
    -- degraded: one signal is up (heartbeats lost, or the cloud failing there); failed:
    -- both, held for the confirmation time. A failed incident stays failed until it closes.
    level           text NOT NULL CHECK (level IN ('degraded', 'failed')),
    opened_at       timestamptz NOT NULL,
    confirmed_at    timestamptz,
    -- Since when the verdicts were failed, or clear, without a break (NULL when the last
    -- was not).
    failing_since   timestamptz,
    clear_since     timestamptz,
    -- What the last pass saw.
    watched         bigint NOT NULL,
    silent          bigint NOT NULL,
    probes          integer NOT NULL,
    probe_failures  integer NOT NULL,
    seen_at         timestamptz NOT NULL,
    -- The failover declared for it, and by whom (an operator, or the policy).
    failover_id     uuid REFERENCES genesis.failovers (id),
    closed_at       timestamptz,
    CHECK ((level = 'failed') = (confirmed_at IS NOT NULL))
);
-- One open incident per region.
CREATE UNIQUE INDEX region_incidents_open_idx ON genesis.region_incidents (region)
    WHERE closed_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON genesis.region_incidents TO genesis_app;
