//! The security page (spec 65.1): where each rotation stands across the fleet: the vault's
//! master key versions, sidecar tokens, webhook secrets, OAuth tokens and the
//! command-signing key, with the droplets a key rotation still waits for.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use genesis_store::vault_rotation::{RotationCounts, VersionCount};
use maud::html;

use super::layout::{html_response, page};
use super::session::SignedIn;
use crate::{AppState, Problem};

/// Where the page lives.
pub const PATH: &str = "/god/security";

/// `GET /god/security`.
pub async fn security(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let mut counts = RotationCounts::default();
    let mut versions: Vec<(String, VersionCount)> = Vec::new();
    for shard in state.stores.shards() {
        counts.add(&shard.db.rotation_counts().await?);
        for v in shard.db.vault_status().await? {
            versions.push((shard.label(), v));
        }
    }
    let keys = crate::app::command_keys::status(&state.stores).await?;
    let active = keys
        .keys
        .iter()
        .find(|k| k.state == genesis_store::CommandKeyState::Active);
    let next = keys
        .keys
        .iter()
        .find(|k| k.state == genesis_store::CommandKeyState::Next);
    let last_retired = keys
        .keys
        .iter()
        .find(|k| k.state != genesis_store::CommandKeyState::Next && k.unconfirmed > 0);
    let awake_behind = keys.behind.iter().filter(|l| l.awake()).count();
    let current = state.vault.as_ref().map(|k| k.current());
    let stale: i64 = versions
        .iter()
        .filter(|(_, v)| match state.vault.as_deref() {
            Some(keys) => i32::try_from(v.target(keys)).ok() != Some(v.key_version),
            None => true,
        })
        .map(|(_, v)| v.rows)
        .sum();
    let body = html! {
        main {
            h1 { "Security" }
            p.quiet { "Where each rotation of spec 65.1 stands. Due: past its age. In flight: \
                       begun, not finished. Behind: a droplet or tenant that has not caught up." }
            table #rotations {
                tr { th.text { "Secret" } th.text { "Schedule" } th { "Up to date" } th { "Due" } th { "In flight" } th { "Behind" } }
                tr #rotation-vault {
                    td.text { "Vault master key" }
                    td.text { "by the operator: " code { "genesis vault rotate" } }
                    td { @match current { Some(c) => { "version " (c) }, None => { "no key" } } }
                    td { (stale) " secrets under older versions" }
                    td { "—" }
                    td { "—" }
                }
                tr #rotation-tokens {
                    td.text { "Sidecar tokens" }
                    td.text { "30 days, renewed at a heartbeat in the last 7" }
                    td { (counts.tokens_fresh) }
                    td { (counts.tokens_renewing) }
                    td { "—" }
                    td { (counts.tokens_expired) " expired (re-attest)" }
                }
                tr #rotation-webhooks {
                    td.text { "Webhook secrets" }
                    td.text { "90 days, a week of both signing" }
                    td { (counts.endpoints - counts.endpoints_due) " of " (counts.endpoints) }
                    td { (counts.endpoints_due) }
                    td { (counts.endpoints_overlapping) " overlapping" }
                    td { (counts.endpoints_unrevealed) " tenants yet to fetch theirs" }
                }
                tr #rotation-oauth {
                    td.text { "OAuth tokens" }
                    td.text { "14 days before expiry, checked daily" }
                    td { (counts.oauth_fresh) }
                    td { (counts.oauth_due) }
                    td { "—" }
                    td { (counts.oauth_expired) " expired (the watchdog heals)" }
                }
                tr #rotation-command-key {
                    td.text { "Command-signing key" }
                    td.text { "90 days; switched once every awake sidecar trusts the next (a week at most)" }
                    td { @match active {
                        Some(k) => { code { (k.kid) } " since " (k.activated_at.unwrap_or(k.created_at).format("%Y-%m-%d")) },
                        None => { "the configured key (stored at the first pass)" },
                    } }
                    td { "—" }
                    td { @match next { Some(k) => { code { (k.kid) } " since " (k.created_at.format("%Y-%m-%d %H:%M")) }, None => { "—" } } }
                    td { @if next.is_some() {
                        (awake_behind) " awake, " (keys.behind.len() - awake_behind) " asleep not yet confirmed"
                    } @else if let Some(k) = last_retired {
                        (k.unconfirmed) " never confirmed " code { (k.kid) } " (told when they wake)"
                    } @else { "0" } }
                }
            }
            @if !keys.behind.is_empty() {
                h2 { "Droplets the key rotation waits for" }
                table #command-key-behind {
                    tr { th.text { "Droplet" } th.text { "Tenant" } th.text { "State" } }
                    @for l in keys.behind.iter().take(50) {
                        tr { td.text { code { (l.droplet) } } td.text { code { (l.workspace) } } td.text { (l.state) } }
                    }
                }
            }
            h2 { "Vault secrets by key version" }
            @if versions.is_empty() { p { "No sealed secret yet." } } @else {
                table #vault-versions {
                    tr { th.text { "Database" } th.text { "Table" } th { "Key version" } th { "Rows" } }
                    @for (db, v) in &versions {
                        tr { td.text { (db) } td.text { code { (v.table) } } td { (v.key_version) } td { (v.rows) } }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Security", Some(&me), body),
    ))
}
