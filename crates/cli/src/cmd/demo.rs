//! `genesis demo`: what `make demo` uses to give God Mode a fleet worth looking at.
//!
//! - `populate`: creates and ignites N tenants through the control plane's API (regions
//!   round-robin, a realistic tier mix), a bounded number at a time, with one progress bar
//!   over the whole batch. Re-running it continues: a tenant that exists is not created
//!   twice, and one already live is counted as done.
//! - `chaos`: makes a few of those tenants' droplets misbehave through the simulator's
//!   operator endpoints (spec 45): some go dark (the zombie detector and reboot jobs take
//!   over), some lose power for good (they end up ORPHAN, for manual review), one drifts
//!   (a workflow deactivated behind the control plane's back: the watchdog heals it), some
//!   report high CPU (ACTIVE_DEGRADED). Only for the simulator: it needs `/sim/v1`.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use futures_util::StreamExt;
use genesis_core::Region;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::CliError;
use super::api_client::{Api, ApiArgs};
use crate::config::Config;

/// Demo helpers.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create and ignite N tenants, with a progress bar over all of them.
    Populate {
        /// Tenants.
        #[arg(long, default_value_t = 200)]
        tenants: usize,
        /// Their slugs are `<prefix>_001`, `<prefix>_002`, ...
        #[arg(long, default_value = "demo")]
        prefix: String,
        /// Ignitions started at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make some of the populated tenants' droplets misbehave (simulator only).
    Chaos {
        /// The slugs' prefix used by `populate`.
        #[arg(long, default_value = "demo")]
        prefix: String,
        /// Droplets that go dark once (zombie, reboot, back).
        #[arg(long, default_value_t = 3)]
        zombies: usize,
        /// Droplets that go dark for good (zombie, then ORPHAN).
        #[arg(long, default_value_t = 1)]
        lost: usize,
        /// Droplets whose n8n drifts (a workflow deactivated).
        #[arg(long, default_value_t = 1)]
        drift: usize,
        /// Droplets that report high CPU from now on.
        #[arg(long, default_value_t = 2)]
        degraded: usize,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// The demo's onboarding values and credentials (what the Golden Templates need).
fn tenant_body(slug: &str, region: Region, tier: &str) -> Value {
    json!({
        "name": slug.replace('_', " "),
        "slug": slug,
        "region": region.code(),
        "tier": tier,
        "onboarding": {
            "sender_email": format!("{slug}@demo.example"),
            "name": "Demo Sender",
            "company_name": slug,
            "calendly_link_1": "https://cal.example/demo",
        },
    })
}

fn credentials() -> Value {
    json!({ "credentials": {
        "gmail": {"clientId": "demo.apps.example", "clientSecret": "demo"},
        "openai": {"apiKey": "sk-demo"},
    }})
}

/// Tier of the i-th tenant: 7 in 10 standard, 2 high-priority, 1 enterprise.
fn tier_of(i: usize) -> &'static str {
    match i % 10 {
        0 => "enterprise",
        1 | 2 => "high-priority",
        _ => "standard",
    }
}

fn slug_of(prefix: &str, i: usize) -> String {
    format!("{prefix}_{:03}", i + 1)
}

/// Runs a demo command.
pub async fn run(cmd: DemoCommand, cfg: Config) -> Result<(), CliError> {
    match cmd {
        DemoCommand::Populate {
            tenants,
            prefix,
            concurrency,
            api,
        } => {
            if tenants == 0 || concurrency == 0 {
                return Err(CliError::Usage(
                    "--tenants and --concurrency must be positive".into(),
                ));
            }
            populate(&Api::new(&api, Some(&cfg))?, tenants, &prefix, concurrency).await
        }
        DemoCommand::Chaos {
            prefix,
            zombies,
            lost,
            drift,
            degraded,
            api,
        } => {
            let api = Api::new(&api, Some(&cfg))?;
            let sim = Sim {
                base: cfg.cloud.url.trim_end_matches('/').to_owned(),
                token: cfg.cloud.token.clone().unwrap_or_default(),
                http: reqwest::Client::new(),
            };
            chaos(&api, &sim, &prefix, [zombies, lost, drift, degraded]).await
        }
    }
}

/// Every workspace whose slug starts with `<prefix>_`, by slug (the API's list, page by
/// page).
async fn existing(
    api: &Api,
    prefix: &str,
) -> Result<std::collections::BTreeMap<String, Value>, CliError> {
    let mut out = std::collections::BTreeMap::new();
    let mut after = format!("{prefix}_");
    loop {
        let page = api
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/workspaces?limit=500&after={after}"),
                None,
            )
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for w in items {
            let slug = w["slug"].as_str().unwrap_or_default().to_owned();
            if slug.starts_with(&format!("{prefix}_")) {
                out.insert(slug, w);
            }
        }
        match page["next"].as_str() {
            Some(next) if next.starts_with(&format!("{prefix}_")) => after = next.to_owned(),
            _ => return Ok(out),
        }
    }
}

/// How one tenant's ignition ended.
enum Outcome {
    Live,
    RolledBack(String),
}

/// Creates (unless it exists) and ignites (unless live) one tenant; waits for the end.
async fn ignite_one(
    api: &Api,
    i: usize,
    prefix: &str,
    known: Option<&Value>,
) -> Result<Outcome, CliError> {
    let slug = slug_of(prefix, i);
    let region = Region::ALL[i % Region::ALL.len()];
    let ws = match known {
        Some(w) => api.workspace(w["id"].as_str().unwrap_or_default()).await?,
        None => {
            api.ok(
                reqwest::Method::POST,
                "/api/v1/workspaces",
                Some(&tenant_body(&slug, region, tier_of(i))),
            )
            .await?
        }
    };
    let id = ws["id"].as_str().unwrap_or_default().to_owned();
    if ws["status"] == "ACTIVE" {
        return Ok(Outcome::Live);
    }
    let running = ws["ignition"]["phase"] == "RUNNING" || ws["ignition"]["phase"] == "UNWINDING";
    if !running {
        api.ok(
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{id}/ignite"),
            Some(&credentials()),
        )
        .await?;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ws = api.workspace(&id).await?;
        match ws["ignition"]["phase"].as_str() {
            Some("DONE") => return Ok(Outcome::Live),
            Some("ROLLED_BACK") => {
                return Ok(Outcome::RolledBack(format!(
                    "{slug}: {}",
                    ws["ignition"]["error"].as_str().unwrap_or("rolled back")
                )));
            }
            _ => {}
        }
    }
}

async fn populate(api: &Api, n: usize, prefix: &str, concurrency: usize) -> Result<(), CliError> {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "igniting {bar:40} {pos}/{len} live  [{elapsed_precise}, ~{eta} left] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let known = existing(api, prefix).await?;
    let known = &known;
    let mut results = futures_util::stream::iter(0..n)
        .map(|i| async move { ignite_one(api, i, prefix, known.get(&slug_of(prefix, i))).await });
    let mut results = (&mut results).buffer_unordered(concurrency);
    let mut failed = Vec::new();
    while let Some(r) = results.next().await {
        match r {
            Ok(Outcome::Live) => bar.inc(1),
            Ok(Outcome::RolledBack(why)) => {
                failed.push(why);
                bar.set_message(format!("{} rolled back", failed.len()));
            }
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        }
    }
    bar.finish();
    if failed.is_empty() {
        eprintln!("{n} tenants live");
        Ok(())
    } else {
        Err(CliError::CheckFailed(format!(
            "{} of {n} ignitions rolled back: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

/// The simulator's operator endpoints.
struct Sim {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Sim {
    /// The cloud's id of the tenant's droplet (its `ws-<uuid>` tag, as the igniter sets it).
    async fn droplet_of(&self, workspace: &str) -> Result<Option<i64>, CliError> {
        let v: Value = self
            .http
            // A workspace id is a UUID: nothing in it needs escaping.
            .get(format!("{}/v2/droplets?tag_name=ws-{workspace}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the simulator at {}", self.base))?
            .json()
            .await
            .context("the simulator's droplet list")?;
        Ok(v["droplets"]
            .as_array()
            .and_then(|d| d.first())
            .and_then(|d| d["id"].as_i64()))
    }

    async fn act(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> bool {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.is_ok_and(|r| r.status().is_success())
    }
}

async fn chaos(api: &Api, sim: &Sim, prefix: &str, counts: [usize; 4]) -> Result<(), CliError> {
    let wanted: usize = counts.iter().sum();
    // Victims are live standard-tier tenants (spec 55: the others have promises to keep),
    // spread over the batch.
    let known = existing(api, prefix).await?;
    // Live standard tenants, every 7th first so the chaos is spread over the fleet.
    let live: Vec<(&String, &Value)> = known
        .iter()
        .filter(|(_, ws)| ws["status"] == "ACTIVE" && ws["tier"] == "standard")
        .collect();
    let spread = live.iter().skip(3).step_by(7).chain(
        live.iter()
            .enumerate()
            .filter(|(i, _)| *i < 3 || (i - 3) % 7 != 0)
            .map(|(_, t)| t),
    );
    let mut victims = Vec::new();
    for (slug, ws) in spread {
        if victims.len() == wanted {
            break;
        }
        if let Some(droplet) = sim
            .droplet_of(ws["id"].as_str().unwrap_or_default())
            .await?
        {
            victims.push(((*slug).clone(), droplet));
        }
    }
    if victims.is_empty() {
        return Err(CliError::Usage(format!(
            "no live standard tenant named {prefix}_NNN: run `genesis demo populate` first"
        )));
    }
    if victims.len() < wanted {
        eprintln!(
            "only {} live standard tenants named {prefix}_NNN: some of the {wanted} asked for are left out",
            victims.len()
        );
    }
    let mut victims = victims.into_iter();
    let [zombies, lost, drift, degraded] = counts;
    let plan: [(&str, usize); 4] = [
        ("goes dark (zombie, then rebooted)", zombies),
        ("goes dark for good (zombie, then ORPHAN)", lost),
        ("drifts (a workflow deactivated)", drift),
        ("runs hot (CPU 97 %)", degraded),
    ];
    for (kind, (what, n)) in plan.iter().enumerate() {
        for (slug, droplet) in victims.by_ref().take(*n) {
            let (method, action, body) = match kind {
                0 => (reqwest::Method::POST, "go-dark", None),
                1 => (reqwest::Method::POST, "go-dark?forever=true", None),
                2 => (reqwest::Method::POST, "drift", None),
                _ => (
                    reqwest::Method::PUT,
                    "load",
                    Some(json!({"cpu": 97.0, "memory": 45.0, "disk": 30.0})),
                ),
            };
            let done = sim
                .act(
                    method,
                    &format!("/sim/v1/droplets/{droplet}/{action}"),
                    body,
                )
                .await;
            let note = if done { "" } else { " (the simulator refused)" };
            eprintln!("  {slug} (droplet {droplet}) {what}{note}");
        }
    }
    Ok(())
}
