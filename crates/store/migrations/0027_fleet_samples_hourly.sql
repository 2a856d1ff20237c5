-- Fleet history by the hour (issue 21): 30 days of minute samples are up to ~1.7 M rows at
-- 15,000 droplets, and averaging them for a 30-day chart took 1.4 s. The sampler now also
-- adds each minute's counts into the hour they fall in; charts of more than a day or two
-- read these ~29,000 rows instead.
CREATE TABLE genesis.fleet_samples_hourly (
    hour            timestamptz NOT NULL,
    region          text NOT NULL,
    state           text NOT NULL,
    -- The sum over the hour's sampled minutes of the droplets in this state and region.
    droplet_minutes bigint NOT NULL CHECK (droplet_minutes >= 0),
    PRIMARY KEY (hour, region, state)
);

-- Minutes sampled in each hour (any state, any region): the divisor of the hour's means.
CREATE TABLE genesis.fleet_sample_hours (
    hour    timestamptz PRIMARY KEY,
    minutes integer NOT NULL CHECK (minutes BETWEEN 1 AND 60)
);

INSERT INTO genesis.fleet_samples_hourly (hour, region, state, droplet_minutes)
SELECT date_trunc('hour', sampled_at), region, state, sum(droplets)
FROM genesis.fleet_samples GROUP BY 1, 2, 3;

INSERT INTO genesis.fleet_sample_hours (hour, minutes)
SELECT date_trunc('hour', sampled_at), count(DISTINCT sampled_at)
FROM genesis.fleet_samples GROUP BY 1;

GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.fleet_samples_hourly TO genesis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON genesis.fleet_sample_hours TO genesis_app;
