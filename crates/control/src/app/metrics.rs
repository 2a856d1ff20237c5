//! The fleet's execution metrics over time (spec 44.2): the sidecars' periodic reports,
//! added up per 15-minute bucket by `genesis_store::metrics`, over every regional database,
//! with the empty buckets of the window filled in. God Mode charts them and serves them as
//! JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use crate::{AppState, Problem};

/// The bucket width the store aggregates by.
pub const BUCKET_MINUTES: i64 = 15;
/// The longest window a page shows (a week).
pub const MAX_HOURS: u32 = 168;
/// Error types listed.
const TOP_ERRORS: i64 = 10;

/// One 15-minute bucket as charted.
#[derive(Debug, Clone, Serialize)]
pub struct BucketView {
    /// Start of the bucket.
    pub bucket: DateTime<Utc>,
    /// Reports that arrived for it.
    pub reports: i64,
    /// Executions.
    pub executions: i64,
    /// Succeeded / executions (none without executions).
    pub success_rate: Option<f64>,
    /// Mean duration, ms (none without executions).
    pub avg_duration_ms: Option<f64>,
    /// Emails sent.
    pub emails_sent: i64,
}

/// The whole window.
#[derive(Debug, Serialize)]
pub struct MetricsView {
    /// Hours shown.
    pub hours: u32,
    /// The region shown, or all.
    pub region: Option<String>,
    /// Every bucket of the window, oldest first, empty ones included (a gap in reports is
    /// something to see, not to hide).
    pub buckets: Vec<BucketView>,
    /// The window's sums.
    pub totals: BucketView,
    /// The most frequent error types in the window.
    pub top_errors: Vec<(String, i64)>,
}

fn view_of(
    bucket: DateTime<Utc>,
    reports: i64,
    executions: i64,
    succeeded: i64,
    duration_ms_sum: i64,
    emails_sent: i64,
) -> BucketView {
    let per = |x: i64| (executions > 0).then(|| x as f64 / executions as f64);
    BucketView {
        bucket,
        reports,
        executions,
        success_rate: per(succeeded),
        avg_duration_ms: per(duration_ms_sum),
        emails_sent,
    }
}

/// The window ending now, over every regional database.
pub async fn metrics_of(
    state: &AppState,
    hours: u32,
    region: Option<String>,
) -> Result<MetricsView, Problem> {
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(Problem::invalid_field(
            "hours",
            format!("must be between 1 and {MAX_HOURS}"),
        ));
    }
    if let Some(r) = &region {
        genesis_core::Region::parse(r).map_err(|e| Problem::invalid_field("region", e))?;
    }
    let width = Duration::minutes(BUCKET_MINUTES);
    let now = Utc::now();
    let last = now.duration_trunc(width).unwrap_or(now);
    let first = last - Duration::hours(i64::from(hours)) + width;
    // bucket → (reports, executions, succeeded, duration sum, emails)
    let mut sums: BTreeMap<DateTime<Utc>, [i64; 5]> = BTreeMap::new();
    let mut errors: BTreeMap<String, i64> = BTreeMap::new();
    for db in state.stores.distinct() {
        for b in db.fleet_metrics_series(first, region.as_deref()).await? {
            let s = sums.entry(b.bucket).or_default();
            for (slot, v) in s.iter_mut().zip([
                b.reports,
                b.executions,
                b.succeeded,
                b.duration_ms_sum,
                b.emails_sent,
            ]) {
                *slot += v;
            }
        }
        for (t, n) in db.fleet_metric_top_errors(first, TOP_ERRORS).await? {
            *errors.entry(t).or_default() += n;
        }
    }
    let mut buckets = Vec::new();
    let mut total = [0i64; 5];
    let mut at = first;
    while at <= last {
        let s = sums.get(&at).copied().unwrap_or_default();
        for (t, v) in total.iter_mut().zip(s) {
            *t += v;
        }
        buckets.push(view_of(at, s[0], s[1], s[2], s[3], s[4]));
        at += width;
    }
    let mut top_errors: Vec<(String, i64)> = errors.into_iter().collect();
    top_errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_errors.truncate(TOP_ERRORS as usize);
    Ok(MetricsView {
        hours,
        region,
        totals: view_of(first, total[0], total[1], total[2], total[3], total[4]),
        buckets,
        top_errors,
    })
}

/// The most points a fleet-states line has: a month of minutes is averaged down to this.
pub const FLEET_POINTS: i64 = 480;

/// The longest step read from minute samples (4 minutes: a window of up to 32 hours);
/// longer windows read the hourly sums.
pub const MAX_MINUTE_STEP: i64 = 4;

/// Fleet states over time: for each state, droplets per time step (all regions, or one).
#[derive(Debug, Serialize)]
pub struct FleetHistory {
    /// The first step.
    pub from: DateTime<Utc>,
    /// Minutes per step (1 for up to 8 hours, more for longer windows).
    pub step_minutes: i64,
    /// Number of steps.
    pub steps: usize,
    /// state code → droplets per step (the mean of the minutes sampled in it; `None`
    /// where nothing was sampled).
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}

/// Fleet states over the last `hours` (1 to 720: samples are kept 30 days), from the
/// fleet sampler's once-a-minute counts.
pub async fn fleet_history(
    state: &AppState,
    hours: u32,
    region: Option<&str>,
) -> Result<FleetHistory, Problem> {
    const KEPT_HOURS: u32 = genesis_store::fleet::FLEET_SAMPLES_KEPT_DAYS as u32 * 24;
    if !(1..=KEPT_HOURS).contains(&hours) {
        return Err(Problem::invalid_field(
            "hours",
            format!("must be between 1 and {KEPT_HOURS}"),
        ));
    }
    if let Some(r) = region {
        genesis_core::Region::parse(r).map_err(|e| Problem::invalid_field("region", e))?;
    }
    let minutes = i64::from(hours) * 60;
    let fine_step = (minutes + FLEET_POINTS - 1) / FLEET_POINTS;
    // Up to a day and a half, steps of minutes from the minute samples (at most ~90,000
    // rows); longer windows step by whole hours, from the hourly sums.
    let hourly = fine_step > MAX_MINUTE_STEP;
    let (unit, step_minutes) = if hourly {
        (Duration::hours(1), (fine_step + 59) / 60 * 60)
    } else {
        (Duration::minutes(1), fine_step)
    };
    let steps = usize::try_from((minutes + step_minutes - 1) / step_minutes).unwrap_or_default();
    let now = Utc::now();
    // The window ends with the minute (or hour) now running: the sampler's latest row is
    // stamped with it.
    let end = now.duration_trunc(unit).unwrap_or(now) + unit;
    let from = end - Duration::minutes(step_minutes * steps as i64);
    // Each regional database holds its own regions, so the fleet's mean in a step is the
    // sum of each database's mean (its droplets over the minutes it sampled). A state missing
    // from a sampled step had no droplet then (0); a step no database sampled has no point.
    let mut sampled = vec![false; steps];
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for db in state.stores.distinct() {
        let rows = if hourly {
            db.fleet_sample_hour_steps(from, step_minutes, steps as i64, region)
                .await?
        } else {
            db.fleet_sample_steps(from, step_minutes, steps as i64, region)
                .await?
        };
        for row in rows {
            let Some(i) = usize::try_from(row.step).ok().filter(|i| *i < steps) else {
                continue;
            };
            if row.minutes <= 0 {
                continue;
            }
            sampled[i] = true;
            series.entry(row.state).or_insert_with(|| vec![0.0; steps])[i] +=
                row.droplets as f64 / row.minutes as f64;
        }
    }
    let series = series
        .into_iter()
        .map(|(st, v)| {
            let means = v
                .into_iter()
                .zip(&sampled)
                .map(|(mean, seen)| seen.then_some(mean))
                .collect();
            (st, means)
        })
        .collect();
    Ok(FleetHistory {
        from,
        step_minutes,
        steps,
        series,
    })
}
