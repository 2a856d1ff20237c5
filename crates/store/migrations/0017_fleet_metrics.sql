-- The metric aggregator (spec 44.2): each sidecar's periodic report, added up per
-- 15-minute bucket and region, so God Mode can chart the platform over time without keeping
-- one row per report (15,000 droplets x 96 reports a day).
--
-- A report names the period it counts; the droplet remembers the end of the last period it
-- added, and a report that does not move past it (a retried delivery) is not added twice.

ALTER TABLE genesis.droplets
    ADD COLUMN metrics_period_end timestamptz;

CREATE TABLE genesis.fleet_metrics (
    bucket          timestamptz NOT NULL,
    region          text NOT NULL,
    reports         bigint NOT NULL DEFAULT 0,
    executions      bigint NOT NULL DEFAULT 0,
    -- success_rate x executions, summed: the bucket's rate is succeeded / executions.
    succeeded       bigint NOT NULL DEFAULT 0,
    -- avg_duration_ms x executions, summed: the bucket's mean is this / executions.
    duration_ms_sum bigint NOT NULL DEFAULT 0,
    emails_sent     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, region)
);

CREATE TABLE genesis.fleet_metric_errors (
    bucket     timestamptz NOT NULL,
    error_type text NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (bucket, error_type)
);

GRANT SELECT, INSERT, UPDATE ON genesis.fleet_metrics, genesis.fleet_metric_errors TO genesis_app;
