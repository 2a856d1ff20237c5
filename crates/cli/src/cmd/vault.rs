//! `genesis vault status|rotate`: the vault's master keys (spec 65.1).
//!
//! To rotate: add a new key under `[vault] keys`, make it `current` (new secrets are
//! sealed under it from the next start), then run `genesis vault rotate`, which rewraps
//! every older secret in every regional database with a progress bar. It may be stopped
//! and run again: it resumes. `status` shows which versions are still in use; a version no
//! row uses can be removed from the configuration.
//!
//! A tenant's secret belongs under its region's current version when the region has a ring
//! of its own (`[vault.regions.<code>]`, spec 62.2), and the fleet's otherwise: giving a
//! region a ring and running `rotate` moves its tenants' secrets onto it.

use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis vault ...`
#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Sealed secrets per table and master key version, in every regional database.
    Status,
    /// Rewrap every secret not under the current key version (resumable).
    Rotate {
        /// Rows read per table per round.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

/// Runs a vault command.
pub async fn run(cmd: VaultCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    let keys = cfg
        .vault
        .required("there is nothing to rotate (see config/genesis.example.toml)")?;
    let stores = cfg.regional_store()?;
    match cmd {
        VaultCommand::Status => {
            let mut all = Vec::new();
            let mut rows = Vec::new();
            for shard in stores.shards() {
                for c in shard
                    .db
                    .vault_status()
                    .await
                    .map_err(|e| CliError::Runtime(e.into()))?
                {
                    let note = if u32::try_from(c.key_version).ok() == Some(c.target(&keys)) {
                        "current"
                    } else if keys
                        .versions()
                        .contains(&u32::try_from(c.key_version).unwrap_or(0))
                    {
                        "to rewrap"
                    } else {
                        "KEY NOT CONFIGURED"
                    };
                    let region = c.region.map_or("fleet", |r| r.code());
                    rows.push(vec![
                        shard.label(),
                        c.table.clone(),
                        region.to_owned(),
                        c.key_version.to_string(),
                        c.rows.to_string(),
                        note.to_owned(),
                    ]);
                    all.push(serde_json::json!({
                        "database": shard.label(), "table": c.table, "ring": region,
                        "key_version": c.key_version, "rows": c.rows, "state": note,
                    }));
                }
            }
            print(
                out,
                &serde_json::json!({
                    "current": keys.current(),
                    "regions": keys
                        .regional_currents()
                        .into_iter()
                        .map(|(r, v)| (r.code(), v))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                    "items": all,
                }),
                &["DATABASE", "TABLE", "RING", "KEY VERSION", "ROWS", "STATE"],
                rows,
            );
        }
        VaultCommand::Rotate { batch } => {
            if !(1..=10_000).contains(&batch) {
                return Err(CliError::Usage(
                    "--batch must be between 1 and 10000".into(),
                ));
            }
            for shard in stores.shards() {
                let stale: i64 = shard
                    .db
                    .vault_status()
                    .await
                    .map_err(|e| CliError::Runtime(e.into()))?
                    .iter()
                    .filter(|c| u32::try_from(c.key_version).ok() != Some(c.target(&keys)))
                    .map(|c| c.rows)
                    .sum();
                let bar = ProgressBar::new(u64::try_from(stale).unwrap_or(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} secrets rewrapped",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(shard.label());
                let mut total = 0u64;
                loop {
                    let done = shard
                        .db
                        .vault_rewrap_batch(&keys, batch)
                        .await
                        .map_err(|e| {
                            CliError::Runtime(anyhow::anyhow!("{}: {e}", shard.label()))
                        })?;
                    total += done.rewrapped;
                    bar.inc(done.rewrapped);
                    if done.rewrapped + done.raced == 0 {
                        break;
                    }
                }
                bar.finish();
                shard
                    .db
                    .vault_rewrap_audit(&keys, total, "cli:vault-rotate")
                    .await
                    .map_err(|e| CliError::Runtime(e.into()))?;
                eprintln!(
                    "{}: {total} secrets rewrapped under their ring's current version",
                    shard.label()
                );
            }
            let targets: Vec<u32> = std::iter::once(keys.current())
                .chain(keys.regional_currents().into_iter().map(|(_, v)| v))
                .collect();
            let old: Vec<String> = keys
                .versions()
                .into_iter()
                .filter(|v| !targets.contains(v))
                .map(|v| v.to_string())
                .collect();
            if !old.is_empty() {
                eprintln!(
                    "Every secret is under its ring's current version. Key version(s) {} can now be removed from the configuration.",
                    old.join(", ")
                );
            }
        }
    }
    Ok(())
}
