//! `genesis webhooks ...`: a workspace's outbound webhook endpoints and their deliveries
//! through the control plane's API (spec 65.4): list, add (the secret is printed once),
//! remove, deliveries (`--dead` for the dead letters), and replay.

use serde_json::Value;

use super::CliError;
use super::api_client::{Api, ApiArgs, path_segment};
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis webhooks ...`
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// The workspace's endpoints.
    List {
        /// The workspace's id or slug.
        workspace: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Register an endpoint; its signing secret is printed once.
    Add {
        /// The workspace's id or slug.
        workspace: String,
        /// Where events are POSTed (https://…).
        url: String,
        /// An event to send (repeat, or separate with commas): tenant.active,
        /// tenant.hibernated, tenant.woken, lead.created, lead.replied, wallet.low,
        /// wallet.empty, campaign.error.
        #[arg(long = "event", required = true, value_delimiter = ',')]
        events: Vec<String>,
        /// A note.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove an endpoint.
    Remove {
        /// The workspace's id or slug.
        workspace: String,
        /// The endpoint's id.
        endpoint: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The newest deliveries, or the dead letters only.
    Deliveries {
        /// The workspace's id or slug.
        workspace: String,
        /// Only those whose every attempt failed.
        #[arg(long)]
        dead: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Send a dead-lettered delivery again (from the start of the schedule).
    Replay {
        /// The workspace's id or slug.
        workspace: String,
        /// The delivery's id.
        delivery: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn events(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs a webhooks command.
pub async fn run(cmd: WebhooksCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    match cmd {
        WebhooksCommand::List { workspace, api } => {
            let api = Api::new(&api, cfg)?;
            let v = api
                .ok(
                    reqwest::Method::GET,
                    &format!("/api/v1/workspaces/{}/webhooks", path_segment(&workspace)),
                    None,
                )
                .await?;
            let rows = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        text(&e["id"]),
                        text(&e["url"]),
                        events(&e["events"]),
                        text(&e["description"]),
                    ]
                })
                .collect();
            print(out, &v, &["ID", "URL", "EVENTS", "DESCRIPTION"], rows);
        }
        WebhooksCommand::Add {
            workspace,
            url,
            events: chosen,
            description,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            let body =
                serde_json::json!({ "url": url, "events": chosen, "description": description });
            let v = api
                .ok(
                    reqwest::Method::POST,
                    &format!("/api/v1/workspaces/{}/webhooks", path_segment(&workspace)),
                    Some(&body),
                )
                .await?;
            print(
                out,
                &v,
                &["ID", "URL", "EVENTS", "SECRET"],
                vec![vec![
                    text(&v["id"]),
                    text(&v["url"]),
                    events(&v["events"]),
                    text(&v["secret"]),
                ]],
            );
            if matches!(out, Output::Table) {
                eprintln!(
                    "Keep the secret now: it is not shown again. Verify each delivery's webhook-signature with it."
                );
            }
        }
        WebhooksCommand::Remove {
            workspace,
            endpoint,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            api.ok(
                reqwest::Method::DELETE,
                &format!(
                    "/api/v1/workspaces/{}/webhooks/{}",
                    path_segment(&workspace),
                    path_segment(&endpoint)
                ),
                None,
            )
            .await?;
            eprintln!("{workspace}: endpoint {endpoint} removed");
        }
        WebhooksCommand::Deliveries {
            workspace,
            dead,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            let v = api
                .ok(
                    reqwest::Method::GET,
                    &format!(
                        "/api/v1/workspaces/{}/webhook-deliveries{}",
                        path_segment(&workspace),
                        if dead { "?dead=true" } else { "" }
                    ),
                    None,
                )
                .await?;
            let rows = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let state = if !d["delivered_at"].is_null() {
                        "delivered"
                    } else if !d["dead_at"].is_null() {
                        "dead"
                    } else {
                        "pending"
                    };
                    vec![
                        text(&d["id"]),
                        text(&d["event"]),
                        state.to_owned(),
                        text(&d["attempts"]),
                        text(&d["last_status"]),
                        text(&d["last_error"]),
                    ]
                })
                .collect();
            print(
                out,
                &v,
                &[
                    "ID",
                    "EVENT",
                    "STATE",
                    "ATTEMPTS",
                    "LAST STATUS",
                    "LAST ERROR",
                ],
                rows,
            );
        }
        WebhooksCommand::Replay {
            workspace,
            delivery,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            api.ok(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/workspaces/{}/webhook-deliveries/{}/replay",
                    path_segment(&workspace),
                    path_segment(&delivery)
                ),
                Some(&serde_json::json!({})),
            )
            .await?;
            eprintln!("{workspace}: delivery {delivery} queued again");
        }
    }
    Ok(())
}
