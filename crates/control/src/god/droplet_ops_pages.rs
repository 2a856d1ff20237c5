//! The droplet page's buttons: a health check, the newest log lines, a restart of n8n and
//! an image pull, each through [`crate::app::droplet_ops`] under the operator's own name,
//! and each answered with a page showing what the sidecar said; and a hard reboot and the
//! destruction of a lost (ORPHAN) droplet, through [`crate::app::droplet_power`], each
//! asked for confirmation first.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use genesis_core::{DropletEvent, DropletState};
use genesis_protocol::command::CommandReply;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{csrf_input, html_response, page, problem_page};
use super::session::{SignedIn, safe_next};
use crate::app::droplet_ops::{DEFAULT_LOG_LINES, DropletOp, MAX_LOG_LINES, run};
use crate::app::droplet_power;
use crate::app::support_access::Caller;
use crate::extract::ApiForm;
use crate::{AppState, Problem};

/// The forms, for a droplet's section (its page or its tenant's); `back` is where the
/// power buttons return. Buttons that cannot apply in `state` are not shown.
pub fn forms(me: &SignedIn, droplet: &str, state: DropletState, back: &str) -> Markup {
    let to = |op: &str| format!("/god/droplets/{droplet}/ops/{op}");
    let power = |op: &str| format!("/god/droplets/{droplet}/power/{op}");
    html! {
        section.droplet-ops #droplet-ops {
            h3 { "Actions" }
            form.inline method="post" action=(to("health")) {
                (csrf_input(me)) button type="submit" { "Health check" }
            }
            " "
            form.inline method="post" action=(to("logs")) {
                (csrf_input(me))
                label { "Lines " input type="number" name="lines" min="1" max=(MAX_LOG_LINES) value=(DEFAULT_LOG_LINES); }
                " " button #show-logs type="submit" { "Show logs" }
            }
            " "
            form.inline method="post" action=(to("restart")) {
                (csrf_input(me))
                button #restart-n8n type="submit" data-confirm="Restart n8n on this droplet? Running executions stop." { "Restart n8n" }
            }
            " "
            form.inline method="post" action=(to("pull")) {
                (csrf_input(me))
                label { "Image " input type="text" name="image" placeholder="n8nio/n8n:2.8.4" required; }
                " " button type="submit" { "Pull image" }
            }
            " "
            form.inline #ssh-key-form method="post" action={ "/god/droplets/" (droplet) "/ssh-key" } {
                (csrf_input(me))
                label { "SSH public key (Emergency grant) "
                    input type="text" name="public_key" placeholder="ssh-ed25519 AAAA… you@laptop" required; }
                " " button type="submit" data-confirm="Install this key for the rest of your Emergency grant?" { "Install SSH key" }
            }
            @if state.next(DropletEvent::RebootIssued).is_ok() {
                " "
                form.inline method="post" action=(power("reboot")) {
                    (csrf_input(me)) input type="hidden" name="back" value=(back);
                    button.danger #reboot type="submit" data-confirm="Hard-reboot this droplet? Its tenant's n8n is down until it boots again (about a minute)." { "Reboot" }
                }
            }
            @if state == DropletState::Orphan {
                " "
                form.inline method="post" action=(power("destroy")) {
                    (csrf_input(me)) input type="hidden" name="back" value=(back);
                    button.danger #destroy type="submit" data-confirm="Destroy this lost droplet at the cloud? This cannot be undone." { "Destroy" }
                }
            }
        }
    }
}

/// What a power button sends.
#[derive(Debug, Deserialize)]
pub struct PowerForm {
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /god/droplets/{id}/power/{reboot|destroy}`: through the droplet's state machine,
/// under the operator's name; then back to the page the button was on.
pub async fn power(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path((id, op)): Path<(String, String)>,
    ApiForm(form): ApiForm<PowerForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let back = safe_next(form.back.as_deref());
    let done = match op.as_str() {
        "reboot" => droplet_power::reboot(&state, &id, Caller::Operator(&me.operator)).await,
        "destroy" => {
            droplet_power::destroy_orphan(&state, &id, Caller::Operator(&me.operator)).await
        }
        _ => Err(Problem::not_found("droplet action")),
    };
    Ok(match done {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(p) => problem_page(&me, &p, &back),
    })
}

/// What a form sends.
#[derive(Debug, Deserialize)]
pub struct OpForm {
    csrf: String,
    #[serde(default)]
    lines: Option<String>,
    #[serde(default)]
    image: Option<String>,
}

/// `POST /god/droplets/{id}/ops/{op}`.
pub async fn run_op(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path((id, op)): Path<(String, String)>,
    ApiForm(form): ApiForm<OpForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let back = format!("/god/droplets/{id}");
    let lines = match form.lines.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let p = Problem::invalid_field("lines", "must be a whole number");
                return Ok(problem_page(&me, &p, &back));
            }
        },
    };
    let result = match DropletOp::parse(&op, lines, form.image.as_deref()) {
        Ok(op) => run(&state, &id, &op, Caller::Operator(&me.operator)).await,
        Err(p) => Err(p),
    };
    let r = match result {
        Ok(r) => r,
        Err(p) => return Ok(problem_page(&me, &p, &back)),
    };
    let body = html! {
        main {
            h1 { code { (r.action) } " on droplet " code { (r.droplet_id) } }
            (reply(&r.reply))
            p { a href=(back) { "Back to the droplet" } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(&r.action, Some(&me), body),
    ))
}

/// What the SSH key form sends.
#[derive(Debug, Deserialize)]
pub struct SshKeyForm {
    csrf: String,
    #[serde(default)]
    public_key: String,
}

/// `POST /god/droplets/{id}/ssh-key`: a short-lived key for the operator's Emergency grant
/// (spec 63.3), through [`crate::app::droplet_ops::install_ssh_key`].
pub async fn ssh_key(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<SshKeyForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let back = format!("/god/droplets/{id}");
    let r = match crate::app::droplet_ops::install_ssh_key(
        &state,
        &id,
        &form.public_key,
        Caller::Operator(&me.operator),
    )
    .await
    {
        Ok(r) => r,
        Err(p) => return Ok(problem_page(&me, &p, &back)),
    };
    let body = html! {
        main {
            h1 { "SSH key installed on droplet " code { (r.droplet_id) } }
            (reply(&r.reply))
            p { a href=(back) { "Back to the droplet" } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("SSH key", Some(&me), body),
    ))
}

fn reply(reply: &CommandReply) -> Markup {
    match reply {
        CommandReply::GetLogs { logs } => html! {
            @if logs.is_empty() {
                p.quiet #logs-empty { "n8n has written nothing yet." }
            } @else {
                pre #logs { @for line in logs { (line) "\n" } }
            }
        },
        CommandReply::HealthCheck {
            n8n_status,
            disk_usage_percent,
            memory_usage_mb,
            cpu_usage_percent,
        } => html! {
            dl.facts #health {
                dt { "n8n" } dd { (format!("{n8n_status:?}").to_lowercase()) }
                dt { "CPU" } dd { (format!("{cpu_usage_percent:.1}")) " %" }
                dt { "Memory" } dd { (memory_usage_mb) " MiB" }
                dt { "Disk" } dd { (format!("{disk_usage_percent:.1}")) " %" }
            }
        },
        CommandReply::RestartN8n { new_pid, .. } => html! {
            p #restarted { "n8n restarted and answers again"
                @if let Some(pid) = new_pid { " (process " (pid) ")" } "." }
        },
        CommandReply::PullImage { .. } => html! { p #pulled { "The image is on the droplet." } },
        CommandReply::InstallSshKey {
            fingerprint,
            expires_at,
        } => html! {
            p #ssh-installed { "Key " code { (fingerprint) } " works until "
                (chrono::DateTime::from_timestamp(*expires_at, 0).map(|t| t.format("%H:%M:%S UTC").to_string()).unwrap_or_default())
                ", when sshd refuses it and the sidecar removes it. Log in as root at the droplet's address." }
        },
        other => html! { pre { (serde_json::to_string_pretty(other).unwrap_or_default()) } },
    }
}
