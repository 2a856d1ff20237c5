//! `genesis tenants`: tenants through the control plane's API (what an operator's laptop
//! does): create and ignite with a live progress bar of the saga's steps, get, list.
//!
//! Unlike `genesis admin tenants` (direct database administration), these commands go through
//! `/api/v1` over HTTP, so they work against any control plane the token opens.

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_core::deletion::DeletionTrigger;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::CliError;
use super::api_client::{Api, ApiArgs, ListArgs, path_segment};
use crate::config::Config;
use crate::output::{Output, print, print_object};

/// The deletion triggers' codes, as the core names them (spec 64.1).
fn trigger_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(DeletionTrigger::ALL.map(DeletionTrigger::code))
}

/// `genesis tenants ...`
#[derive(Debug, clap::Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant and, with --ignite or --wait, ignite it.
    Create(CreateArgs),
    /// Ignite an existing tenant (again, after a rollback).
    Ignite {
        /// Workspace id.
        id: String,
        /// Credentials, `key=<json>` or `key=@file.json` (keys from the template manifest:
        /// gmail, openai).
        #[arg(long = "credential", value_name = "KEY=JSON")]
        credentials: Vec<String>,
        /// Follow the ignition with a progress bar until it finishes.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One tenant with its ignition.
    Get {
        /// Workspace id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Wake a hibernating tenant (spec 55.3); with --wait, until its droplet reports again.
    Wake {
        /// Workspace id.
        id: String,
        /// Wait until the droplet is ACTIVE_HEALTHY.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Keep a tenant from hibernating (spec 55.1's manual hold), or lift the hold.
    Hold {
        /// Workspace id.
        id: String,
        /// Lift the hold instead of setting it.
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Start a tenant's deletion (spec 64.1). `user` and `non-payment` give 7 days of
    /// grace, `cancelled` 30; `tos` and `fraud` are immediate, irreversible and need a
    /// --reason.
    Delete {
        /// Workspace id or slug.
        id: String,
        /// Why: user, cancelled, non-payment, tos or fraud.
        #[arg(long, value_parser = trigger_parser())]
        trigger: String,
        /// Why, in words (required for tos and fraud; kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Call off a tenant's deletion during its grace period.
    CancelDeletion {
        /// Workspace id or slug.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Where a tenant's deletion stands: its grace period, its saga's steps, and once
    /// finished, the certificate of what was removed and when.
    Deletion {
        /// Workspace id or slug.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Export everything a tenant holds (spec 64.3: leads, campaigns, settings without
    /// secrets, members, wallet transfers, its audit log) as a ZIP, with a progress bar.
    /// Beyond 500k leads the export has several parts: FILE, then FILE's stem with
    /// `-part2.zip`, `-part3.zip`...
    Export {
        /// Workspace id or slug.
        id: String,
        /// Where to write it.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Tenants in slug order: every one, or --limit of them.
    List {
        #[command(flatten)]
        page: ListArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `genesis tenants create`
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Slug (a-z, 0-9, _).
    #[arg(long)]
    pub slug: String,
    /// Region.
    #[arg(long, default_value = "us-east", value_parser = crate::values::regions())]
    pub region: String,
    /// Tier.
    #[arg(long, default_value = "standard", value_parser = crate::values::tiers())]
    pub tier: String,
    /// Onboarding value `key=value` (spec 53.3: sender_email, name, company_name,
    /// calendly_link_1).
    #[arg(long = "onboarding", value_name = "KEY=VALUE")]
    pub onboarding: Vec<String>,
    /// Credential `key=<json>` or `key=@file.json`.
    #[arg(long = "credential", value_name = "KEY=JSON")]
    pub credentials: Vec<String>,
    /// Ignite right after creating.
    #[arg(long)]
    pub ignite: bool,
    /// Ignite and follow the ignition with a progress bar until it finishes (implies
    /// --ignite).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn pairs(raw: &[String], what: &str) -> Result<BTreeMap<String, String>, CliError> {
    raw.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::Usage(format!("--{what} {p:?}: expected KEY=VALUE")))
        })
        .collect()
}

fn credentials(raw: &[String]) -> Result<Value, CliError> {
    let mut out = serde_json::Map::new();
    for (k, v) in pairs(raw, "credential")? {
        let text = match v.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!("--credential {k}: cannot read {path}: {e}"))
            })?,
            None => v,
        };
        let data: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("--credential {k}: not JSON: {e}")))?;
        out.insert(k, data);
    }
    Ok(json!({ "credentials": out }))
}

/// Runs a tenants command.
pub async fn run(cmd: TenantsCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    match cmd {
        TenantsCommand::Create(a) => {
            let api = Api::new(&a.api, cfg)?;
            let creds = credentials(&a.credentials)?;
            let body = json!({
                "name": a.name, "slug": a.slug, "region": a.region, "tier": a.tier,
                "onboarding": pairs(&a.onboarding, "onboarding")?,
            });
            let ws = api
                .ok(reqwest::Method::POST, "/api/v1/workspaces", Some(&body))
                .await?;
            let id = ws["id"].as_str().unwrap_or_default().to_owned();
            eprintln!("created {} ({id})", a.slug);
            let next = format!(
                "`genesis tenants ignite {} --credential gmail=@gmail.json --credential \
                 openai=@openai.json --wait`",
                a.slug
            );
            if a.ignite || a.wait {
                let result = ignite(&api, &id, &creds, a.wait, out).await;
                if result.is_err() {
                    eprintln!("{} stays PENDING; once fixed, ignite it: {next}", a.slug);
                }
                result
            } else {
                show(out, &ws);
                eprintln!("{} is PENDING until it is ignited: {next}", a.slug);
                Ok(())
            }
        }
        TenantsCommand::Ignite {
            id,
            credentials: c,
            wait,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            ignite(&api, &id, &credentials(&c)?, wait, out).await
        }
        TenantsCommand::Wake { id, wait, api } => {
            let api = Api::new(&api, cfg)?;
            wake(&api, &id, wait, out).await
        }
        TenantsCommand::Hold { id, off, api } => {
            let api = Api::new(&api, cfg)?;
            let (status, v) = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/api/v1/workspaces/{}/hibernation", path_segment(&id)),
                    Some(&json!({ "hold": !off })),
                )
                .await?;
            if status != 204 {
                return Err(CliError::Usage(format!(
                    "{status}: {}",
                    v["detail"].as_str().unwrap_or("refused")
                )));
            }
            eprintln!(
                "{id}: {}",
                if off {
                    "hold lifted; it may hibernate when idle"
                } else {
                    "held awake"
                }
            );
            Ok(())
        }
        TenantsCommand::Delete {
            id,
            trigger,
            reason,
            yes,
            api,
        } => {
            let irreversible = DeletionTrigger::from_code(&trigger)
                .is_some_and(DeletionTrigger::needs_operator_reason);
            if irreversible && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(CliError::Usage(format!(
                    "a deletion for {trigger} needs --reason"
                )));
            }
            super::confirm(
                &if irreversible {
                    format!("Delete {id} now, for good, with no way back?")
                } else {
                    format!("Start the deletion of {id}?")
                },
                yes,
            )?;
            let api = Api::new(&api, cfg)?;
            let (status, v) = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/workspaces/{}/deletion", path_segment(&id)),
                    Some(&json!({ "trigger": trigger, "reason": reason })),
                )
                .await?;
            if status != 202 {
                return Err(CliError::Usage(
                    v["detail"].as_str().unwrap_or("refused").to_owned(),
                ));
            }
            print_object(out, &v);
            eprintln!(
                "{id}: {}",
                if irreversible {
                    "being deleted now; this cannot be called off".to_owned()
                } else {
                    format!(
                        "deleted for good after {}, unless called off before (genesis tenants cancel-deletion {id})",
                        v["purge_after"].as_str().unwrap_or("the grace period")
                    )
                }
            );
            Ok(())
        }
        TenantsCommand::Export { id, out: file, api } => {
            let api = Api::new(&api, cfg)?;
            export(&api, &id, &file, out).await
        }
        TenantsCommand::Deletion { id, api } => {
            let api = Api::new(&api, cfg)?;
            let (status, v) = api
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/workspaces/{}/deletion", path_segment(&id)),
                    None,
                )
                .await?;
            if status != 200 {
                return Err(CliError::Usage(
                    v["detail"]
                        .as_str()
                        .unwrap_or("this workspace is not being deleted")
                        .to_owned(),
                ));
            }
            print_object(out, &v);
            let p = &v["progress"];
            let done = p["step"].as_i64().unwrap_or(0);
            eprintln!(
                "{id}: {}",
                if p["finished_at"].is_string() {
                    "deleted; the certificate lists what was removed".to_owned()
                } else if done > 0 {
                    format!("deletion under way, step {done} of 7 done")
                } else {
                    format!(
                        "in its grace period until {}",
                        v["purge_after"].as_str().unwrap_or("?")
                    )
                }
            );
            if let Some(e) = p["last_error"].as_str() {
                eprintln!("{id}: the last step failed and will be retried: {e}");
            }
            Ok(())
        }
        TenantsCommand::CancelDeletion { id, api } => {
            let api = Api::new(&api, cfg)?;
            let (status, v) = api
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/workspaces/{}/deletion", path_segment(&id)),
                    None,
                )
                .await?;
            if status != 200 {
                return Err(CliError::Usage(
                    v["detail"].as_str().unwrap_or("refused").to_owned(),
                ));
            }
            eprintln!(
                "{id}: deletion called off; the workspace is {} again",
                v["status"].as_str().unwrap_or("back")
            );
            Ok(())
        }
        TenantsCommand::Get { id, api } => {
            let api = Api::new(&api, cfg)?;
            let ws = api.workspace(&id).await?;
            show(out, &ws);
            Ok(())
        }
        TenantsCommand::List { page, api } => {
            let api = Api::new(&api, cfg)?;
            let list = api.list("/api/v1/workspaces", page).await?;
            let rows = list
                .items
                .iter()
                .map(|w| {
                    ["slug", "id", "region", "tier", "status"]
                        .iter()
                        .map(|k| w[*k].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .collect();
            print(
                out,
                &list,
                &["SLUG", "ID", "REGION", "TIER", "STATUS"],
                rows,
            );
            list.say_if_more("genesis tenants list");
            Ok(())
        }
    }
}

/// Wakes a tenant; with `wait`, follows its droplet until it reports again.
/// Where part `n` of an export asked for as `file` is written.
fn part_path(file: &std::path::Path, n: usize) -> std::path::PathBuf {
    if n <= 1 {
        return file.to_path_buf();
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    file.with_file_name(format!("{stem}-part{n}.zip"))
}

/// `genesis tenants export`: asks for the export, follows it with a bar of leads written,
/// then downloads each part (resuming a cut-off download where it stopped).
async fn export(api: &Api, id: &str, file: &std::path::Path, out: Output) -> Result<(), CliError> {
    if file.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a directory: give --out a file name",
            file.display()
        )));
    }
    let started = api
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{}/exports", path_segment(id)),
            None,
        )
        .await?;
    let export = started["id"].as_str().unwrap_or_default().to_owned();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} leads {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job = loop {
        let job = api
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/workspaces/{}/exports/{export}", path_segment(id)),
                None,
            )
            .await?;
        if let Some(total) = job["leads_total"].as_u64() {
            bar.set_length(total);
            bar.set_position(job["leads_written"].as_u64().unwrap_or(0));
        }
        if job["state"] != "RUNNING" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    bar.finish_and_clear();
    if job["state"] != "READY" {
        return Err(CliError::Usage(format!(
            "the export failed: {}",
            job["error"].as_str().unwrap_or("no reason given")
        )));
    }
    let links: Vec<String> = job["links"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut written = Vec::new();
    for (i, link) in links.iter().enumerate() {
        let path = part_path(file, i + 1);
        let bytes = download(&format!("{}{link}", api.base()), &path, &export).await?;
        written.push(json!({ "part": i + 1, "file": path.display().to_string(), "bytes": bytes }));
    }
    print_object(
        out,
        &json!({
            "export": export,
            "leads": job["leads_total"],
            "parts": written,
            "expires_at": job["expires_at"],
        }),
    );
    eprintln!(
        "{id}: exported {} leads into {} file(s)",
        job["leads_total"].as_i64().unwrap_or(0),
        written.len()
    );
    Ok(())
}

/// Downloads `url` to `path` through a `.partial` file named after the export, renamed
/// into place once whole; its size. A download cut off mid-stream is resumed from where it
/// stopped (`Range`), up to three times.
async fn download(url: &str, path: &std::path::Path, export: &str) -> Result<u64, CliError> {
    let partial = path.with_extension(format!("{export}.partial"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match download_once(url, &partial).await {
            Ok(()) => break,
            Err(Cut(why)) if attempt < 4 => {
                eprintln!("the download was cut off ({why}); resuming");
            }
            Err(Cut(why)) => {
                return Err(CliError::Usage(format!(
                    "the download was cut off ({why}); {} holds what arrived",
                    partial.display()
                )));
            }
        }
    }
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    Ok(tokio::fs::metadata(path).await.map_or(0, |m| m.len()))
}

/// Why one download attempt stopped.
struct Cut(String);

async fn download_once(url: &str, partial: &std::path::Path) -> Result<(), Cut> {
    use tokio::io::AsyncWriteExt as _;
    let have = tokio::fs::metadata(partial).await.map_or(0, |m| m.len());
    let mut req = reqwest::Client::new().get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = req.send().await.map_err(|e| Cut(e.to_string()))?;
    let status = resp.status().as_u16();
    let append = status == 206;
    if !(status == 200 || append) {
        let detail: Value = resp.json().await.unwrap_or(Value::Null);
        return Err(Cut(format!(
            "refused ({status}): {}",
            detail["detail"].as_str().unwrap_or("no reason given")
        )));
    }
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(partial)
        .await
        .map_err(|e| Cut(format!("{}: {e}", partial.display())))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| Cut(e.to_string()))? {
        f.write_all(&chunk)
            .await
            .map_err(|e| Cut(format!("{}: {e}", partial.display())))?;
    }
    f.flush().await.map_err(|e| Cut(e.to_string()))
}

async fn wake(api: &Api, id: &str, wait: bool, out: Output) -> Result<(), CliError> {
    let r = api
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{}/wake", path_segment(id)),
            Some(&json!({})),
        )
        .await?;
    let Some(droplet) = r["droplet"].as_str().map(str::to_owned) else {
        eprintln!(
            "{id} is not asleep ({})",
            r["state"].as_str().unwrap_or("?")
        );
        print_object(out, &r);
        return Ok(());
    };
    eprintln!("{id}: powering on droplet {droplet}");
    if !wait {
        print_object(out, &r);
        return Ok(());
    }
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = std::time::Instant::now();
    loop {
        let d = api
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/droplets/{droplet}"),
                None,
            )
            .await?;
        let state = d["state"].as_str().unwrap_or_default().to_owned();
        bar.set_message(format!(
            "{state} ({:.0} s)",
            started.elapsed().as_secs_f64()
        ));
        if state == "ACTIVE_HEALTHY" {
            bar.finish_and_clear();
            eprintln!(
                "{id} is awake after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bar.finish_and_clear();
            return Err(CliError::Runtime(anyhow::anyhow!(
                "{id} is still {state} after 10 minutes"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn show(out: Output, ws: &Value) {
    let ig = &ws["ignition"];
    let mut rows = vec![
        vec![
            "id".to_owned(),
            ws["id"].as_str().unwrap_or_default().to_owned(),
        ],
        vec![
            "slug".to_owned(),
            ws["slug"].as_str().unwrap_or_default().to_owned(),
        ],
        vec![
            "status".to_owned(),
            ws["status"].as_str().unwrap_or_default().to_owned(),
        ],
    ];
    if ig.is_object() {
        rows.push(vec![
            "ignition".into(),
            ig["phase"].as_str().unwrap_or_default().to_owned(),
        ]);
        if let Some(step) = ig["step"].as_str() {
            rows.push(vec!["step".into(), step.to_owned()]);
        }
        if let Some(e) = ig["error"].as_str() {
            rows.push(vec!["error".into(), e.to_owned()]);
        }
        for s in ig["steps"].as_array().into_iter().flatten() {
            let ms = s["elapsed_ms"]
                .as_i64()
                .map(|m| format!(" ({m} ms)"))
                .unwrap_or_default();
            rows.push(vec![
                format!("  {}", s["step"].as_str().unwrap_or_default()),
                format!("{}{ms}", s["status"].as_str().unwrap_or_default()),
            ]);
        }
    }
    for h in ws["webhooks"].as_array().into_iter().flatten() {
        rows.push(vec![
            format!("webhook {}", h["name"].as_str().unwrap_or_default()),
            h["url"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    if let Some(t) = ws["lead_intake_token"].as_str() {
        rows.push(vec!["lead intake token (shown once)".into(), t.to_owned()]);
    }
    print(out, ws, &["FIELD", "VALUE"], rows);
}

async fn ignite(
    api: &Api,
    id: &str,
    creds: &Value,
    wait: bool,
    out: Output,
) -> Result<(), CliError> {
    let ig = api
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/workspaces/{}/ignite", path_segment(id)),
            Some(creds),
        )
        .await?;
    eprintln!("ignition {} started", ig["id"].as_str().unwrap_or_default());
    // The lead-intake token is shown this once: the vault keeps it, nothing shows it again.
    let token = ig["lead_intake"]["token"].as_str().map(str::to_owned);
    if let Some(t) = &token {
        eprintln!(
            "lead intake: send {} with every lead (shown once): {t}",
            ig["lead_intake"]["header"]
                .as_str()
                .unwrap_or("X-Genesis-Token")
        );
    }
    if !wait {
        show(out, &json!({"id": id, "ignition": ig}));
        return Ok(());
    }
    let total = ig["steps_total"].as_u64().unwrap_or(6);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let ws = loop {
        let ws = api.workspace(id).await?;
        let ig = &ws["ignition"];
        let done = ig["steps"]
            .as_array()
            .map(|s| s.iter().filter(|x| x["status"] == "done").count())
            .unwrap_or(0);
        bar.set_position(done as u64);
        let phase = ig["phase"].as_str().unwrap_or_default();
        let step = ig["step"].as_str().unwrap_or_default();
        bar.set_message(match phase {
            "UNWINDING" => format!("rolling back: undoing {step}"),
            _ => step.to_owned(),
        });
        if phase == "DONE" || phase == "ROLLED_BACK" {
            break ws;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    let mut ws = ws;
    if let (Some(t), Some(obj)) = (token, ws.as_object_mut()) {
        obj.insert("lead_intake_token".into(), Value::String(t));
    }
    show(out, &ws);
    match ws["ignition"]["phase"].as_str() {
        Some("DONE") => {
            eprintln!("{} is ACTIVE", ws["slug"].as_str().unwrap_or(id));
            Ok(())
        }
        _ => Err(CliError::Runtime(anyhow::anyhow!(
            "ignition failed at {} and was rolled back: {}",
            ws["ignition"]["failed_step"].as_str().unwrap_or("?"),
            ws["ignition"]["error"]
                .as_str()
                .unwrap_or("no reason recorded")
        ))),
    }
}
