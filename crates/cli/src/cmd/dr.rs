//! `genesis dr`: disaster recovery (spec 66).
//!
//! - `status`: per regional database, the live droplets, how many have a snapshot and a
//!   cross-region copy from the last 36 hours, the snapshots kept and what they cost a month
//!   (spec 66.5: $0.25 per snapshot-month, counting each datacenter copy), and the open
//!   failovers.
//! - `failover --region fra1 [--to lon1] [--dry-run]`: declares a regional failover (spec
//!   66.4), then follows its phases with a progress bar each until every tenant is restored
//!   and verified. The control plane's `failover` reconciler does the work; this command
//!   writes the declaration and watches, so it may be interrupted and run again with
//!   `--watch`.
//! - `cleanup --region fra1`: phase 4, staying in the new region: the failed datacenter's
//!   droplets are deleted once it answers again.
//! - `failback --region fra1`: phase 4, going home (a second, planned migration): the last
//!   failover's tenants move back, each from a snapshot taken for the move; then
//!   `cleanup --region lon1` deletes what they leave in the backup datacenter.
//!
//! These work on the databases directly, not through the API: in a regional outage the
//! operator's tools must not depend on the region's own front door.
//!
//! Exit codes of `failover` (when it waits): 0 when every tenant was moved and verified, 3
//! when some restores failed or tenants were held for residency (the operator must look).

use std::time::Duration;

use genesis_control::app::failover::{FailoverRequest, assess, declare, failback, resolve};
use genesis_core::dr::{FailoverPhase, RestorePlan, RestoreState};
use genesis_store::Database;
use genesis_store::failovers::Failover;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::CliError;
use crate::config::Config;
use crate::output::{Output, print, print_object};

/// `genesis dr ...`
#[derive(Debug, clap::Subcommand)]
pub enum DrCommand {
    /// Backup coverage and snapshot cost, per regional database, and open failovers.
    Status,
    /// Declare a regional failover and follow it (spec 66.4).
    Failover(FailoverArgs),
    /// Phase 4, staying in the new region: delete the failed datacenter's droplets.
    Cleanup {
        /// The failed datacenter (`fra1`); after a failback, the backup one (`lon1`).
        #[arg(long)]
        region: String,
    },
    /// Phase 4, going home: move the last failover's tenants back to --region, each from a
    /// snapshot taken for the move, and follow it.
    Failback {
        /// The datacenter that failed and is back (`fra1`).
        #[arg(long)]
        region: String,
        /// Why (recorded in the audit log).
        #[arg(long, default_value = "the region recovered")]
        reason: String,
        /// Declare and return at once.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `genesis dr failover`
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// The failed datacenter (`fra1`).
    #[arg(long)]
    pub region: String,
    /// Where its tenants go; spec 66.3's backup datacenter by default.
    #[arg(long)]
    pub to: Option<String>,
    /// Show the assessment only: who would be restored, re-ignited or held.
    #[arg(long)]
    pub dry_run: bool,
    /// Let EU tenants be restored outside the EU (audited with the reason).
    #[arg(long)]
    pub override_residency: bool,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "regional outage")]
    pub reason: String,
    /// Follow the open failover out of --region instead of declaring one.
    #[arg(long)]
    pub watch: bool,
    /// Declare and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{u}"))
}

/// The open failover out of `from` in any regional database (a failback lives with its
/// tenants, in the database of the region it takes them home to), with its database.
async fn open_anywhere(
    stores: &genesis_store::RegionalStore,
    from: &str,
) -> Result<(Database, Failover), CliError> {
    for shard in stores.shards() {
        if let Some(f) = shard
            .db
            .failovers(true)
            .await?
            .into_iter()
            .find(|f| f.from_datacenter == from)
        {
            return Ok((shard.db.clone(), f));
        }
    }
    Err(CliError::Usage(format!(
        "no failover out of {from} is open"
    )))
}

fn bar(multi: &MultiProgress, label: &str, len: u64) -> ProgressBar {
    let b = multi.add(ProgressBar::new(len));
    let style = ProgressStyle::with_template("{prefix:<14} [{bar:40}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    b.set_style(style);
    b.set_prefix(label.to_owned());
    b
}

/// Follows a failover until phase 3 ends; answers its final figures.
async fn follow(db: &Database, f: &Failover, out: Output) -> Result<serde_json::Value, CliError> {
    let multi = MultiProgress::new();
    if out == Output::Json {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let c = db.failover_counts(f.id).await?;
    let moved = (c.total() - c.plan(RestorePlan::Held)).max(0) as u64;
    let provisioning = bar(&multi, "provisioning", moved);
    let verification = bar(&multi, "verification", moved);
    loop {
        let now = db.failover_get(f.id).await?;
        let c = db.failover_counts(f.id).await?;
        let done = c.state(RestoreState::Restored)
            + c.state(RestoreState::Verified)
            + c.state(RestoreState::Failed);
        provisioning.set_position(done as u64);
        provisioning.set_message(format!(
            "{} running, {} failed",
            c.state(RestoreState::Restoring),
            c.state(RestoreState::Failed)
        ));
        verification.set_position(c.state(RestoreState::Verified) as u64);
        let rto = chrono::Utc::now() - now.started_at;
        verification.set_message(format!("RTO so far {}s", rto.num_seconds()));
        if matches!(now.phase, FailoverPhase::Restored | FailoverPhase::Closed) {
            provisioning.finish();
            verification.finish();
            return Ok(summary(&now, &c));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn summary(f: &Failover, c: &genesis_store::failovers::FailoverCounts) -> serde_json::Value {
    let secs = |to: Option<chrono::DateTime<chrono::Utc>>| {
        to.map(|t| (t - f.started_at).num_milliseconds() as f64 / 1000.0)
    };
    serde_json::json!({
        "id": f.id,
        "from": f.from_datacenter,
        "to": f.to_datacenter,
        "phase": f.phase.code(),
        "failback_of": f.failback_of,
        "restored": c.state(RestoreState::Verified),
        "reignited": c.plan(RestorePlan::Reignite),
        "failed": c.state(RestoreState::Failed),
        "held": c.plan(RestorePlan::Held),
        "provisioned_after_s": secs(f.provisioned_at),
        "verified_after_s": secs(f.restored_at),
    })
}

async fn failover(args: FailoverArgs, cfg: Config, out: Output) -> Result<(), CliError> {
    let req = FailoverRequest {
        from: args.region.clone(),
        to: args.to.clone(),
        residency_override: args.override_residency,
        operator: operator(),
        reason: args.reason.clone(),
    };
    let (region, _) = resolve(&req).map_err(|e| CliError::Usage(e.to_string()))?;
    let stores = cfg.regional_store()?;
    let db = stores.for_region(region).clone();
    let f = if args.watch {
        open_anywhere(&stores, &args.region).await?.1
    } else if args.dry_run {
        let plan = assess(&db, &req).await.map_err(failover_error)?;
        let hours = plan
            .worst_rpo_hours
            .map_or_else(|| "-".to_owned(), |h| format!("{h:.1} h"));
        print(
            out,
            &plan,
            &[
                "FROM",
                "TO",
                "RESTORE",
                "RE-IGNITE",
                "HELD (RESIDENCY)",
                "WORST DATA LOSS",
            ],
            vec![vec![
                plan.from.clone(),
                plan.to.clone(),
                plan.restore.to_string(),
                plan.reignite.to_string(),
                plan.held.to_string(),
                hours,
            ]],
        );
        return Ok(());
    } else {
        let (plan, f) = declare(&stores, &req, &operator())
            .await
            .map_err(failover_error)?;
        if out == Output::Table {
            eprintln!(
                "failover {} declared: {} -> {}: {} to restore, {} to re-ignite, {} held",
                f.id, plan.from, plan.to, plan.restore, plan.reignite, plan.held
            );
            if plan.held > 0 {
                eprintln!(
                    "{} tenants stay: {} is outside their residency area \
                     (--override-residency moves them, audited)",
                    plan.held, plan.to
                );
            }
        }
        f
    };
    if args.no_wait {
        let c = db.failover_counts(f.id).await?;
        print_object(out, &summary(&f, &c));
        return Ok(());
    }
    let done = follow(&db, &f, out).await?;
    print_object(out, &done);
    let troubled = done["failed"].as_i64().unwrap_or(0) + done["held"].as_i64().unwrap_or(0);
    if troubled > 0 {
        return Err(CliError::CheckFailed(format!(
            "{troubled} tenants were not moved; `genesis dr status` lists them"
        )));
    }
    Ok(())
}

fn failover_error(e: genesis_control::app::failover::FailoverError) -> CliError {
    match e {
        genesis_control::app::failover::FailoverError::Invalid(m) => CliError::Usage(m),
        genesis_control::app::failover::FailoverError::Store(s) => s.into(),
    }
}

/// Runs a DR command.
pub async fn run(cmd: DrCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    match cmd {
        DrCommand::Failover(args) => return failover(args, cfg, out).await,
        DrCommand::Failback {
            region,
            reason,
            no_wait,
        } => {
            let stores = cfg.regional_store()?;
            let f = failback(&stores, &region, &operator(), &reason, &operator())
                .await
                .map_err(failover_error)?;
            let (db, _) = open_anywhere(&stores, &f.from_datacenter).await?;
            let c = db.failover_counts(f.id).await?;
            if no_wait {
                print_object(out, &summary(&f, &c));
                return Ok(());
            }
            if out == Output::Table {
                eprintln!(
                    "failback {} declared: {} -> {}: {} tenants to move home",
                    f.id,
                    f.from_datacenter,
                    f.to_datacenter,
                    c.plan(RestorePlan::Migrate)
                );
            }
            let done = follow(&db, &f, out).await?;
            print_object(out, &done);
            if done["failed"].as_i64().unwrap_or(0) > 0 {
                return Err(CliError::CheckFailed(
                    "some tenants were not moved home; `genesis dr status` lists them".into(),
                ));
            }
        }
        DrCommand::Cleanup { region } => {
            let req = FailoverRequest {
                from: region.clone(),
                to: None,
                residency_override: false,
                operator: operator(),
                reason: String::new(),
            };
            resolve(&req).map_err(|e| CliError::Usage(e.to_string()))?;
            let stores = cfg.regional_store()?;
            let (db, f) = open_anywhere(&stores, &region).await?;
            let f = db
                .failover_request_cleanup(f.id, &operator(), &operator())
                .await?;
            let c = db.failover_counts(f.id).await?;
            print_object(out, &summary(&f, &c));
        }
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
            let mut open = Vec::new();
            for shard in stores.shards() {
                for f in shard.db.failovers(true).await? {
                    let c = shard.db.failover_counts(f.id).await?;
                    open.push(summary(&f, &c));
                }
            }
            // The failovers are a second table; `-o json` keeps one document (the coverage).
            if !open.is_empty() && out == Output::Table {
                let rows = open
                    .iter()
                    .map(|f| {
                        [
                            "from",
                            "to",
                            "phase",
                            "restored",
                            "reignited",
                            "failed",
                            "held",
                        ]
                        .iter()
                        .map(|k| match &f[*k] {
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .collect()
                    })
                    .collect();
                print(
                    out,
                    &open,
                    &[
                        "FROM",
                        "TO",
                        "PHASE",
                        "VERIFIED",
                        "RE-IGNITED",
                        "FAILED",
                        "HELD",
                    ],
                    rows,
                );
            }
            // Region outages the watch has open (spec 66.1): a third table, table mode only.
            let mut incidents = Vec::new();
            for shard in stores.shards() {
                incidents.extend(shard.db.region_incidents(true, 100).await?);
            }
            if !incidents.is_empty() && out == Output::Table {
                let rows = incidents
                    .iter()
                    .map(|i| {
                        vec![
                            i.region.clone(),
                            i.level.to_uppercase(),
                            i.opened_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                            format!("{}/{}", i.silent, i.watched),
                            format!("{}/{}", i.probe_failures, i.probes),
                            match (i.failover_id, i.confirmed_at) {
                                (Some(f), _) => format!("failover {f}"),
                                (None, Some(_)) => {
                                    "confirm: genesis dr failover --region <datacenter>".into()
                                }
                                (None, None) => "watching".into(),
                            },
                        ]
                    })
                    .collect();
                print(
                    out,
                    &incidents,
                    &[
                        "REGION",
                        "OUTAGE",
                        "SINCE",
                        "SILENT",
                        "CLOUD LOOKS FAILED",
                        "NEXT",
                    ],
                    rows,
                );
            }
        }
    }
    Ok(())
}
