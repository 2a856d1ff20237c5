//! `genesis leads ...`: seeding and counting lead data (operator tooling and the demo).

use std::time::Instant;

use clap::Subcommand;
use genesis_core::{Email, LeadStatus};
use genesis_store::NewLead;

use super::{CliError, workspaces::resolve};
use crate::{
    config::Config,
    output::{Output, print},
};

/// Lead commands.
#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Import synthetic leads into a workspace (COPY, in batches, with progress).
    Seed {
        /// Workspace id or slug.
        #[arg(long)]
        workspace: String,
        /// How many leads.
        #[arg(long, default_value_t = 1_000)]
        count: u64,
    },
    /// Count a workspace's leads per status.
    Count {
        /// Workspace id or slug.
        #[arg(long)]
        workspace: String,
    },
}

/// Synthetic but plausible leads, spread over the funnel statuses.
pub fn synthetic(workspace_slug: &str, from: u64, n: u64) -> Vec<NewLead> {
    const FIRST: [&str; 8] = [
        "ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "linus",
    ];
    const COMPANY: [&str; 5] = ["Acme", "Globex", "Initech", "Umbrella", "Hooli"];
    (from..from + n)
        .filter_map(|i| {
            let email = Email::parse(&format!(
                "{}.{i}@{}.example",
                FIRST[(i % 8) as usize],
                workspace_slug.replace('_', "-")
            ))
            .ok()?;
            let mut l = NewLead::with_email(email);
            l.first_name = Some(FIRST[(i % 8) as usize].to_string());
            l.company = Some(COMPANY[(i % 5) as usize].to_string());
            // Mostly new, a realistic tail further down the funnel.
            l.status = match i % 20 {
                0..=11 => LeadStatus::New,
                12..=15 => LeadStatus::Contacted,
                16 | 17 => LeadStatus::Replied,
                18 => LeadStatus::Booked,
                _ => LeadStatus::Bounced,
            };
            Some(l)
        })
        .collect()
}

/// Runs a leads command.
pub async fn run(cmd: LeadsCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    let stores = cfg.regional_store()?;
    match cmd {
        LeadsCommand::Seed { workspace, count } => {
            let ws = resolve(&stores, &workspace).await?;
            let db = stores.for_region(ws.region);
            let started = Instant::now();
            let (mut inserted, mut done) = (0u64, 0u64);
            const BATCH: u64 = 10_000;
            while done < count {
                let n = BATCH.min(count - done);
                let batch = synthetic(ws.slug.as_str(), done, n);
                let mut s = db.tenant_session(ws.id).await?;
                inserted += s.lead_import(&batch).await?.inserted;
                s.commit().await?;
                done += n;
                if count > BATCH {
                    eprint!("\r  seeding {}: {done}/{count}", ws.slug);
                }
            }
            if count > BATCH {
                eprintln!();
            }
            let secs = started.elapsed().as_secs_f64();
            print(
                out,
                &serde_json::json!({"workspace": ws.slug, "requested": count, "inserted": inserted, "seconds": secs}),
                &["workspace", "requested", "inserted", "seconds"],
                vec![vec![
                    ws.slug.to_string(),
                    count.to_string(),
                    inserted.to_string(),
                    format!("{secs:.2}"),
                ]],
            );
        }
        LeadsCommand::Count { workspace } => {
            let ws = resolve(&stores, &workspace).await?;
            let mut s = stores.for_region(ws.region).tenant_session(ws.id).await?;
            let mut counts = Vec::new();
            for status in LeadStatus::ALL {
                counts.push((status, s.lead_count(Some(status)).await?));
            }
            s.commit().await?;
            let json: serde_json::Map<_, _> = counts
                .iter()
                .map(|(s, n)| (s.code().to_string(), (*n).into()))
                .collect();
            print(
                out,
                &json,
                &["status", "leads"],
                counts
                    .iter()
                    .map(|(s, n)| vec![s.to_string(), n.to_string()])
                    .collect(),
            );
        }
    }
    Ok(())
}
