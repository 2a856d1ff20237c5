//! `genesis rollouts`: fleet template rollouts through the control plane's API (spec 56):
//! start one (with `--wait`, a live progress bar until it stops), show one or all, pause,
//! resume, abort.
//!
//! Exit codes of `start --wait` and `status --watch`: 0 when the rollout completed, 4 when it
//! paused (a person must resume or abort it), 1 when it was aborted.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::CliError;
use super::api_client::{Api, ApiArgs, ListArgs, path_segment};
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis rollouts ...`
#[derive(Debug, clap::Subcommand)]
pub enum RolloutsCommand {
    /// Start a rollout of the template version this control plane carries.
    Start(StartArgs),
    /// One rollout batch by batch (or, without an id, the latest ones).
    Status {
        /// Rollout id.
        id: Option<String>,
        /// Follow it with a progress bar until it stops.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Rollouts, newest first: every one, or --limit of them.
    List {
        #[command(flatten)]
        page: ListArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Stop starting batches (queued updates still finish).
    Pause {
        /// Rollout id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Continue a paused rollout with its next batch.
    Resume {
        /// Rollout id.
        id: String,
        /// Follow it with a progress bar until it stops.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Cancel every droplet not updated yet (asks first).
    Abort {
        /// Rollout id.
        id: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `genesis rollouts start`
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Spec 56.1's scenario: it sets the default batches and thresholds.
    #[arg(long, value_parser = crate::values::scenarios())]
    pub scenario: String,
    /// Swap n8n's container to this image (spec 56.2) instead of redeploying workflows.
    #[arg(long)]
    pub n8n_image: Option<String>,
    /// Which droplets: all, region:<code>, tier:<tier>, workspaces:<id>,<id>...
    #[arg(long, default_value = "all")]
    pub scope: String,
    /// Droplets per batch (0: one batch).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Seconds between batches.
    #[arg(long)]
    pub pause_between_s: Option<u64>,
    /// Pause when a batch's failures reach this percentage (0 never pauses).
    #[arg(long)]
    pub pause_at_percent: Option<f64>,
    /// Abort when all failures reach this percentage (0 never aborts).
    #[arg(long)]
    pub abort_at_percent: Option<f64>,
    /// The first batch's size (then batches double).
    #[arg(long)]
    pub canary: Option<u32>,
    /// Follow it with a progress bar until it stops.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The API's scope object for `--scope`.
fn scope(raw: &str) -> Result<Value, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--scope {raw:?}: expected all, region:<code>, tier:<tier> or workspaces:<id>,<id>"
        ))
    };
    if raw == "all" {
        return Ok(json!({"kind": "all"}));
    }
    let (kind, value) = raw.split_once(':').ok_or_else(bad)?;
    Ok(match kind {
        "region" => json!({"kind": "region", "region": value}),
        "tier" => json!({"kind": "tier", "tier": value}),
        "workspaces" => json!({
            "kind": "workspaces",
            "ids": value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()
        }),
        _ => return Err(bad()),
    })
}

/// Runs a rollouts command.
pub async fn run(cmd: RolloutsCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    match cmd {
        RolloutsCommand::Start(a) => {
            let api = Api::new(&a.api, cfg)?;
            let mut body = json!({ "scenario": a.scenario, "scope": scope(&a.scope)? });
            for (k, v) in [
                ("batch_size", a.batch_size.map(Value::from)),
                ("pause_between_s", a.pause_between_s.map(Value::from)),
                ("pause_at_percent", a.pause_at_percent.map(Value::from)),
                ("abort_at_percent", a.abort_at_percent.map(Value::from)),
                ("canary", a.canary.map(Value::from)),
                ("n8n_image", a.n8n_image.clone().map(Value::from)),
            ] {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            let r = api
                .ok(reqwest::Method::POST, "/api/v1/rollouts", Some(&body))
                .await?;
            let id = r["id"].as_str().unwrap_or_default().to_owned();
            eprintln!(
                "rollout {id} of template {} started: {} droplets in {} batches",
                r["target_version"].as_str().unwrap_or("?"),
                r["totals"]["pending"].as_i64().unwrap_or(0),
                r["batches"].as_i64().unwrap_or(0)
            );
            if a.wait {
                follow(&api, &id, out).await
            } else {
                show(out, &r);
                Ok(())
            }
        }
        RolloutsCommand::Status { id, watch, api } => {
            let api = Api::new(&api, cfg)?;
            match id {
                Some(id) if watch => follow(&api, &id, out).await,
                Some(id) => {
                    let r = api
                        .ok(
                            reqwest::Method::GET,
                            &format!("/api/v1/rollouts/{}", path_segment(&id)),
                            None,
                        )
                        .await?;
                    show(out, &r);
                    Ok(())
                }
                None => {
                    let page = ListArgs {
                        limit: None,
                        after: None,
                    };
                    list(&api, page, out).await
                }
            }
        }
        RolloutsCommand::List { page, api } => list(&Api::new(&api, cfg)?, page, out).await,
        RolloutsCommand::Pause { id, api } => {
            control(&Api::new(&api, cfg)?, &id, "pause", out).await
        }
        RolloutsCommand::Abort { id, yes, api } => {
            let api = Api::new(&api, cfg)?;
            super::confirm(
                &format!(
                    "Abort rollout {id}? Droplets not updated yet are cancelled, and an \
                     aborted rollout cannot be resumed."
                ),
                yes,
            )?;
            control(&api, &id, "abort", out).await
        }
        RolloutsCommand::Resume { id, wait, api } => {
            let api = Api::new(&api, cfg)?;
            if wait {
                api.ok(
                    reqwest::Method::POST,
                    &format!("/api/v1/rollouts/{}/resume", path_segment(&id)),
                    Some(&json!({})),
                )
                .await?;
                follow(&api, &id, out).await
            } else {
                control(&api, &id, "resume", out).await
            }
        }
    }
}

/// Lists rollouts, newest first.
async fn list(api: &Api, page: ListArgs, out: Output) -> Result<(), CliError> {
    let list = api.list("/api/v1/rollouts", page).await?;
    let rows = list
        .items
        .iter()
        .map(|r| {
            vec![
                r["id"].as_str().unwrap_or_default().to_owned(),
                r["target_version"].as_str().unwrap_or_default().to_owned(),
                r["scenario"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{}/{}",
                    r["current_batch"].as_i64().unwrap_or(0),
                    r["batches"].as_i64().unwrap_or(0)
                ),
                r["created_at"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    print(
        out,
        &list,
        &["ID", "VERSION", "SCENARIO", "STATUS", "BATCH", "STARTED"],
        rows,
    );
    list.say_if_more("genesis rollouts list");
    Ok(())
}

async fn control(api: &Api, id: &str, action: &str, out: Output) -> Result<(), CliError> {
    let r = api
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/rollouts/{}/{action}", path_segment(id)),
            Some(&json!({})),
        )
        .await?;
    show(out, &r);
    Ok(())
}

/// Polls the rollout with a progress bar until it is no longer RUNNING.
async fn follow(api: &Api, id: &str, out: Output) -> Result<(), CliError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The bar is drawn only once the first answer gave it a length: never a full bar at 0/0.
    let mut drawing = false;
    let r = loop {
        let r = api
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/rollouts/{}", path_segment(id)),
                None,
            )
            .await?;
        let t = &r["totals"];
        let n = |k: &str| t[k].as_i64().unwrap_or(0).max(0) as u64;
        bar.set_length(n("pending") + n("done") + n("failed") + n("deferred") + n("cancelled"));
        bar.set_position(n("done") + n("failed") + n("deferred") + n("cancelled"));
        if !drawing {
            bar.enable_steady_tick(Duration::from_millis(120));
            drawing = true;
        }
        bar.set_message(format!(
            "batch {}/{} · done {} · failed {} · deferred {}",
            (r["current_batch"].as_i64().unwrap_or(0) + 1).min(r["batches"].as_i64().unwrap_or(0)),
            r["batches"].as_i64().unwrap_or(0),
            n("done"),
            n("failed"),
            n("deferred"),
        ));
        if r["status"] != "RUNNING" {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    show(out, &r);
    let reason = r["reason"].as_str().unwrap_or("no reason recorded");
    match r["status"].as_str() {
        Some("COMPLETED") => Ok(()),
        Some("PAUSED") => {
            eprintln!("paused: {reason}; `genesis rollouts resume {id}` or `abort {id}`");
            std::process::exit(4);
        }
        _ => Err(CliError::Runtime(anyhow::anyhow!(
            "rollout aborted: {reason}"
        ))),
    }
}

/// The policy in the units its flags take: `batches of 5 · 30 s between · pause at 5 %`.
fn policy_text(p: &Value) -> String {
    let mut parts = vec![match p["batch_size"].as_u64() {
        Some(0) | None => "one batch".to_owned(),
        Some(n) => format!("batches of {n}"),
    }];
    if let Some(c) = p["canary"].as_u64() {
        parts.push(format!("canary {c}"));
    }
    parts.push(format!(
        "{} s between",
        p["pause_between_s"].as_f64().unwrap_or(0.0)
    ));
    for (key, what) in [("pause_at_percent", "pause"), ("abort_at_percent", "abort")] {
        if let Some(v) = p[key].as_f64() {
            parts.push(format!("{what} at {v} %"));
        }
    }
    parts.join(" · ")
}

fn show(out: Output, r: &Value) {
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let mut rows = vec![
        vec!["id".to_owned(), s("id")],
        vec!["version".to_owned(), s("target_version")],
        vec!["scenario".to_owned(), s("scenario")],
        vec!["status".to_owned(), s("status")],
    ];
    if let Some(reason) = r["reason"].as_str() {
        rows.push(vec!["reason".into(), reason.to_owned()]);
    }
    rows.push(vec!["policy".into(), policy_text(&r["policy"])]);
    for b in r["per_batch"].as_array().into_iter().flatten() {
        let n = |k: &str| b[k].as_i64().unwrap_or(0);
        rows.push(vec![
            format!("  batch {}", n("batch") + 1),
            format!(
                "done {} · failed {} · pending {} · deferred {} · cancelled {}",
                n("done"),
                n("failed"),
                n("pending"),
                n("deferred"),
                n("cancelled")
            ),
        ]);
    }
    for f in r["failures"].as_array().into_iter().flatten() {
        rows.push(vec![
            format!("  failed {}", f["droplet"].as_str().unwrap_or_default()),
            f["error"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    print(out, r, &["FIELD", "VALUE"], rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_into_the_api_objects() {
        assert_eq!(scope("all").ok(), Some(json!({"kind": "all"})));
        assert_eq!(
            scope("region:us-east").ok(),
            Some(json!({"kind": "region", "region": "us-east"}))
        );
        assert_eq!(
            scope("workspaces:a, b,").ok(),
            Some(json!({"kind": "workspaces", "ids": ["a", "b"]}))
        );
        assert!(matches!(scope("everything"), Err(CliError::Usage(m)) if m.contains("--scope")));
        assert!(scope("planet:mars").is_err());
    }
}
