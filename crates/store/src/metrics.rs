//! The metric aggregator's store (spec 44.2): sidecars' periodic reports added up per
//! 15-minute bucket and region (migration 0017), and read back as a series for God Mode.
//!
//! # Guarantees
//! - A report is added once: each droplet remembers the end of the last period it added,
//!   and a report whose period does not end later (a retried or replayed delivery) changes
//!   nothing. The check and the additions are one transaction.
//! - A report lands in the bucket its period ends in. Periods are as long as the sidecar's
//!   report interval (15 minutes by default), so a bucket holds about one report per droplet.
//!
//! # Caveats
//! - Success counts are `success_rate x executions`, rounded, per report: the protocol
//!   carries a rate, not a count.

use chrono::{DateTime, Utc};
use genesis_core::DropletId;
use serde::Serialize;

use crate::{Database, StoreError};

/// What one report adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsFigures {
    /// Executions in the period.
    pub executions: i64,
    /// Of which succeeded.
    pub succeeded: i64,
    /// Their durations summed, ms.
    pub duration_ms_sum: i64,
    /// Emails sent.
    pub emails_sent: i64,
    /// Error counts by type.
    pub errors: Vec<(String, i64)>,
}

/// One bucket of the fleet's history (all regions, or one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsBucket {
    /// Start of the 15-minute bucket.
    pub bucket: DateTime<Utc>,
    /// Reports added.
    pub reports: i64,
    /// Executions.
    pub executions: i64,
    /// Of which succeeded.
    pub succeeded: i64,
    /// Durations summed, ms.
    pub duration_ms_sum: i64,
    /// Emails sent.
    pub emails_sent: i64,
}

impl Database {
    /// Adds `droplet`'s report for the period ending at `period_end` to its region's bucket,
    /// unless the droplet already added a period ending at or after it. Returns whether it
    /// was added.
    pub async fn fleet_metrics_add(
        &self,
        droplet: DropletId,
        period_end: DateTime<Utc>,
        figures: &MetricsFigures,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let region = sqlx::query_scalar!(
            r#"UPDATE genesis.droplets SET metrics_period_end = $2
               WHERE id = $1 AND (metrics_period_end IS NULL OR metrics_period_end < $2)
               RETURNING region"#,
            droplet.as_uuid(),
            period_end,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(region) = region else {
            return Ok(false);
        };
        sqlx::query!(
            r#"INSERT INTO genesis.fleet_metrics
                 (bucket, region, reports, executions, succeeded, duration_ms_sum, emails_sent)
               VALUES (date_bin('15 minutes', $1, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                       $2, 1, $3, $4, $5, $6)
               ON CONFLICT (bucket, region) DO UPDATE SET
                 reports = fleet_metrics.reports + 1,
                 executions = fleet_metrics.executions + excluded.executions,
                 succeeded = fleet_metrics.succeeded + excluded.succeeded,
                 duration_ms_sum = fleet_metrics.duration_ms_sum + excluded.duration_ms_sum,
                 emails_sent = fleet_metrics.emails_sent + excluded.emails_sent"#,
            period_end,
            region,
            figures.executions,
            figures.succeeded,
            figures.duration_ms_sum,
            figures.emails_sent,
        )
        .execute(&mut *tx)
        .await?;
        if !figures.errors.is_empty() {
            let (types, counts): (Vec<String>, Vec<i64>) = figures.errors.iter().cloned().unzip();
            sqlx::query!(
                r#"INSERT INTO genesis.fleet_metric_errors (bucket, error_type, count)
                   SELECT date_bin('15 minutes', $1, TIMESTAMPTZ '2000-01-01 00:00:00+00'), t, n
                   FROM unnest($2::text[], $3::bigint[]) AS e(t, n)
                   ON CONFLICT (bucket, error_type) DO UPDATE SET
                     count = fleet_metric_errors.count + excluded.count"#,
                period_end,
                &types,
                &counts,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The buckets since `since`, oldest first, summed over every region or only `region`'s.
    /// Buckets nothing was reported in are absent.
    pub async fn fleet_metrics_series(
        &self,
        since: DateTime<Utc>,
        region: Option<&str>,
    ) -> Result<Vec<MetricsBucket>, StoreError> {
        Ok(sqlx::query_as!(
            MetricsBucket,
            r#"SELECT bucket AS "bucket!", sum(reports)::bigint AS "reports!",
                      sum(executions)::bigint AS "executions!", sum(succeeded)::bigint AS "succeeded!",
                      sum(duration_ms_sum)::bigint AS "duration_ms_sum!",
                      sum(emails_sent)::bigint AS "emails_sent!"
               FROM genesis.fleet_metrics
               WHERE bucket >= $1 AND ($2::text IS NULL OR region = $2)
               GROUP BY bucket ORDER BY bucket"#,
            since,
            region,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// The most frequent error types since `since` (all regions), most frequent first.
    pub async fn fleet_metric_top_errors(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT error_type, sum(count)::bigint AS "n!" FROM genesis.fleet_metric_errors
               WHERE bucket >= $1 GROUP BY error_type ORDER BY 2 DESC, 1 LIMIT $2"#,
            since,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| (r.error_type, r.n))
        .collect())
    }
}
