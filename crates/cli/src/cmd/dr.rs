//! `genesis dr status`: disaster recovery coverage (spec 66): per regional database, the
//! live droplets, how many have a snapshot and a cross-region copy from the last 36 hours,
//! the snapshots kept and what they cost a month (spec 66.5: $0.25 per snapshot-month,
//! counting each datacenter copy).

use super::CliError;
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis dr ...`
#[derive(Debug, clap::Subcommand)]
pub enum DrCommand {
    /// Backup coverage and snapshot cost, per regional database.
    Status,
}

/// Runs a DR command.
pub async fn run(cmd: DrCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    match cmd {
        DrCommand::Status => {
            let stores = cfg.regional_store()?;
            let now = chrono::Utc::now();
            let mut all = Vec::new();
            let mut rows = Vec::new();
            for shard in stores.shards() {
                let c = shard.db.snapshot_coverage(now).await?;
                let cents = c.monthly_cost_cents();
                let percent = |part| {
                    c.percent_of_droplets(part)
                        .map_or_else(|| "-".into(), |p| format!("{p}%"))
                };
                rows.push(vec![
                    shard.label(),
                    c.droplets.to_string(),
                    format!("{} ({})", c.fresh, percent(c.fresh)),
                    format!(
                        "{} ({})",
                        c.fresh_cross_region,
                        percent(c.fresh_cross_region)
                    ),
                    c.copies.to_string(),
                    format!("${}.{:02}", cents / 100, cents % 100),
                    c.in_flight.to_string(),
                ]);
                all.push(serde_json::json!({
                    "regions": shard.label(), "coverage": c, "monthly_cost_cents": cents,
                }));
            }
            print(
                out,
                &all,
                &[
                    "REGIONS",
                    "DROPLETS",
                    "FRESH SNAPSHOT",
                    "FRESH COPY",
                    "SNAPSHOTS",
                    "COST/MONTH",
                    "IN FLIGHT",
                ],
                rows,
            );
        }
    }
    Ok(())
}
