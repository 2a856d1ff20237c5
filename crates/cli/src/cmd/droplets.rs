//! `genesis droplets`: one droplet through the control plane's API: show it, or send its
//! sidecar a health check, a logs request, a restart of n8n or an image pull (each audited
//! under the API's operator and journaled on the droplet's page).

use std::time::Duration;

use serde_json::{Value, json};

use super::CliError;
use super::api_client::{Api, ApiArgs, path_segment};
use crate::config::Config;
use crate::output::{Output, print};

/// How long a restart may take: the sidecar waits for n8n to answer again (up to five
/// minutes) before it replies.
const RESTART_TIMEOUT: Duration = Duration::from_secs(330);

/// `genesis droplets ...`
#[derive(Debug, clap::Subcommand)]
pub enum DropletsCommand {
    /// The droplet, its last heartbeat and its recent commands.
    Get {
        /// Droplet id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// n8n's status and the droplet's load, asked of its sidecar now.
    Health {
        /// Droplet id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The newest lines of n8n's output, oldest first.
    Logs {
        /// Droplet id.
        id: String,
        /// How many lines (1 to 2000).
        #[arg(long, short = 'n', default_value_t = 200)]
        lines: u32,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Restart n8n and wait until it answers again.
    Restart {
        /// Droplet id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Pull an image onto the droplet ahead of a swap.
    Pull {
        /// Droplet id.
        id: String,
        /// Image reference with a tag or digest, e.g. n8nio/n8n:2.8.4.
        image: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs a droplets command.
pub async fn run(cmd: DropletsCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    let (id, op, body, api) = match cmd {
        DropletsCommand::Get { id, api } => {
            let api = Api::new(&api, cfg)?;
            let d = api
                .ok(
                    reqwest::Method::GET,
                    &format!("/api/v1/droplets/{}", path_segment(&id)),
                    None,
                )
                .await?;
            let cell = |k: &str| match &d[k] {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                v => v.to_string(),
            };
            print(
                out,
                &d,
                &[
                    "ID",
                    "STATE",
                    "REGION",
                    "WORKSPACE",
                    "CLOUD ID",
                    "LAST HEARTBEAT",
                ],
                vec![vec![
                    cell("id"),
                    cell("state"),
                    cell("region"),
                    cell("workspace_id"),
                    cell("provider_id"),
                    cell("last_heartbeat_at"),
                ]],
            );
            return Ok(());
        }
        DropletsCommand::Health { id, api } => (id, "health", None, api),
        DropletsCommand::Logs { id, lines, api } => {
            (id, "logs", Some(json!({"lines": lines})), api)
        }
        DropletsCommand::Restart { id, api } => (id, "restart", None, api),
        DropletsCommand::Pull { id, image, api } => {
            (id, "pull", Some(json!({"image": image})), api)
        }
    };
    let mut api = Api::new(&api, cfg)?;
    if op == "restart" {
        eprintln!("restarting n8n on droplet {id}; waiting until it answers again...");
        api = api.with_timeout(RESTART_TIMEOUT);
    }
    let r = api
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/droplets/{}/{op}", path_segment(&id)),
            body.as_ref(),
        )
        .await?;
    let reply = &r["reply"]["result"];
    match (out, op) {
        (Output::Json, _) => print(out, &r, &[], Vec::new()),
        (Output::Table, "logs") => {
            let lines = reply["logs"].as_array().cloned().unwrap_or_default();
            if lines.is_empty() {
                eprintln!("n8n has written nothing yet");
            }
            for line in lines {
                outln!("{}", line.as_str().unwrap_or_default());
            }
        }
        (Output::Table, "health") => {
            let cell = |k: &str| match &reply[k] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                v => v.to_string(),
            };
            print(
                out,
                &r,
                &["N8N", "CPU %", "MEMORY MIB", "DISK %"],
                vec![vec![
                    cell("n8n_status"),
                    cell("cpu_usage_percent"),
                    cell("memory_usage_mb"),
                    cell("disk_usage_percent"),
                ]],
            );
        }
        (Output::Table, "restart") => match reply["new_pid"].as_u64() {
            Some(pid) => outln!("n8n restarted (process {pid}) and answers again"),
            None => outln!("n8n restarted and answers again"),
        },
        (Output::Table, _) => outln!("pulled"),
    }
    Ok(())
}
