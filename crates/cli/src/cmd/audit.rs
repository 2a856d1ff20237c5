//! `genesis audit verify [--region R]`: checks each regional database's audit hash chain
//! (spec 63.1) and names the first broken link. Exit 3 when a link is broken.
//!
//! `genesis audit seal` seals what is waiting now, as the running control plane's
//! `audit-seal` reconciler does every few seconds (for a database no control plane serves,
//! or before a verify that must cover the last minute).
//!
//! `genesis audit retention` runs one pass of the `audit-retention` reconciler now (spec
//! 63.2: months ahead made, old months archived, months past 7 years dropped) and lists,
//! per database, the months that left the online log.

use genesis_control::app::audit::{RegionChain, verify};
use genesis_core::Region;

use super::CliError;
use crate::config::Config;
use crate::output::{Output, print};

/// Rows sealed per transaction.
const SEAL_BATCH: i64 = 5_000;

/// `genesis audit ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of every regional audit log, or of one region's.
    Verify {
        /// Only the database that serves this region (`us-east`, `eu-west`, ...).
        #[arg(long)]
        region: Option<String>,
    },
    /// Seal the rows written since the last seal into each region's chain, now.
    Seal,
    /// Apply the retention now (months ahead, archive, drop), and list archived months.
    Retention,
}

/// Runs an audit command.
pub async fn run(cmd: AuditCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    match cmd {
        AuditCommand::Seal => {
            let Some(key) = super::serve::audit_key(&cfg, true)? else {
                return Err(CliError::Usage("server.audit_key is not set".into()));
            };
            let stores = cfg.regional_store()?;
            let mut rows = Vec::new();
            for shard in stores.shards() {
                let sealed = shard.db.audit_seal_backlog(&key, SEAL_BATCH, None).await?;
                rows.push((shard.label(), sealed));
            }
            print(
                out,
                &rows
                    .iter()
                    .map(|(r, n)| serde_json::json!({ "regions": r, "sealed": n }))
                    .collect::<Vec<_>>(),
                &["REGIONS", "SEALED"],
                rows.iter()
                    .map(|(r, n)| vec![r.clone(), n.to_string()])
                    .collect(),
            );
        }
        AuditCommand::Retention => {
            let stores = cfg.regional_store()?;
            let mut all = Vec::new();
            let mut rows = Vec::new();
            for shard in stores.shards() {
                let pass = shard.db.audit_retention_pass(chrono::Utc::now()).await?;
                for w in &pass.waiting {
                    eprintln!(
                        "{}: {w} is due for the archive but holds unsealed rows (run `genesis audit seal`)",
                        shard.label()
                    );
                }
                let months = shard.db.audit_archived_months().await?;
                for m in &months {
                    rows.push(vec![
                        shard.label(),
                        m.name.clone(),
                        m.upper_bound.format("%Y-%m-%d").to_string(),
                        m.state.clone(),
                        m.rows.to_string(),
                        m.last_seq.map_or_else(|| "-".into(), |s| s.to_string()),
                    ]);
                }
                all.push(serde_json::json!({
                    "regions": shard.label(), "pass": pass, "months": months,
                }));
            }
            print(
                out,
                &all,
                &[
                    "REGIONS",
                    "PARTITION",
                    "ENDS",
                    "STATE",
                    "ROWS",
                    "LAST PLACE",
                ],
                rows,
            );
        }
        AuditCommand::Verify { region } => {
            let region = region
                .as_deref()
                .map(Region::parse)
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let Some(key) = super::serve::audit_key(&cfg, true)? else {
                return Err(CliError::Usage("server.audit_key is not set".into()));
            };
            let stores = cfg.regional_store()?;
            let chains = verify(&stores, &key, region).await?;
            let rows = chains.iter().map(row).collect();
            print(
                out,
                &chains,
                &[
                    "REGIONS",
                    "SEALED",
                    "PLACES",
                    "UNSEALED",
                    "BROKEN",
                    "FIRST BROKEN LINK",
                ],
                rows,
            );
            let broken: u64 = chains.iter().map(|c| c.report.broken).sum();
            for c in &chains {
                if let Some(oldest) = c.report.oldest_unsealed
                    && chrono::Utc::now() - oldest > chrono::TimeDelta::minutes(10)
                {
                    eprintln!(
                        "{}: {} rows are not sealed yet, the oldest from {} (is the control plane running with server.audit_key?)",
                        c.regions,
                        c.report.unsealed,
                        oldest.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                }
            }
            if broken > 0 {
                return Err(CliError::CheckFailed(format!(
                    "{broken} broken links in the audit chain"
                )));
            }
            eprintln!("every audit chain is intact");
        }
    }
    Ok(())
}

fn row(c: &RegionChain) -> Vec<String> {
    let r = &c.report;
    let mut places = match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "-".into(),
    };
    if let Some(c) = r.checkpoint_seq {
        places.push_str(&format!(" (1-{c} past retention)"));
    }
    vec![
        c.regions.clone(),
        r.sealed.to_string(),
        places,
        r.unsealed.to_string(),
        r.broken.to_string(),
        r.first_break
            .as_ref()
            .map_or_else(|| "-".into(), ToString::to_string),
    ]
}
