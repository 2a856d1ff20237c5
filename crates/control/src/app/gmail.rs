//! The wizard's "Connect Gmail" (spec 60.1 stage 3, 60.2): OAuth 2.0's authorization-code
//! grant with PKCE (RFC 7636, S256), through the `oauth2` crate.
//!
//! - **What is asked.** `gmail.send`, the only Gmail scope: the engine sends mail, and
//!   never reads it. With it `openid email`, identity scopes that grant no mailbox access
//!   but tell us which address the engine sends from (Google's userinfo answers the address
//!   only to a token with `email`). Offline access, so a refresh token comes back.
//! - **The round trip.** [`start`] records the flow under the SHA-256 of its `state` (a
//!   [`RegionToken`], so the callback knows which database holds it) with the PKCE
//!   verifier sealed, and sends the browser to Google. [`callback`] takes the flow once
//!   (a replayed callback is refused), checks that the same account came back, exchanges
//!   the code with the verifier, checks that `gmail.send` was granted (Google's consent is
//!   granular: a person can untick it), reads the address, and confirms the stage with the
//!   refresh token sealed. Nothing is saved unless all of that held.
//! - **Never shown.** The tokens go from Google's answer into the vault; pages show the
//!   address only.

use std::time::Duration;

use chrono::Utc;
use genesis_store::onboarding::{Confirmation, FlowTake, NewSecret, SavedStage, SecretKind};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::json;

use super::accounts::RegionToken;
use super::tenant_access::Access;
use crate::providers::GoogleApp;
use crate::{AppState, Problem};

/// The one Gmail scope the engine needs.
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
/// Identity scopes: which address sends.
pub const IDENTITY_SCOPES: [&str; 2] = ["openid", "email"];
/// How long a person has on Google's pages.
pub const FLOW_TTL: Duration = Duration::from_secs(15 * 60);
/// Where Google sends the browser back (one fixed path: Google matches it exactly).
pub const CALLBACK_PATH: &str = "/app/oauth/google/callback";

/// The platform's Google client, or 503 saying Gmail cannot be connected here.
pub(crate) fn google(state: &AppState) -> Result<&GoogleApp, Problem> {
    state.providers.google.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "connecting Gmail is not configured on this platform yet; ask its operator",
        )
    })
}

type Client = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(app: &GoogleApp, origin: &str) -> Result<Client, Problem> {
    let bad = |what: &str| {
        tracing::error!(what, "the Google OAuth configuration holds an invalid URL");
        Problem::unavailable("connecting Gmail is misconfigured on this platform")
    };
    Ok(BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(app.auth_url.clone()).map_err(|_| bad("auth_url"))?)
        .set_token_uri(TokenUrl::new(app.token_url.clone()).map_err(|_| bad("token_url"))?)
        .set_redirect_uri(
            RedirectUrl::new(format!("{origin}{CALLBACK_PATH}")).map_err(|_| bad("origin"))?,
        )
        // Google takes the client's credentials in the body as well as in Basic auth.
        .set_auth_type(AuthType::RequestBody))
}

/// Checks the sender's name: what recipients see in the From line.
pub fn parse_sender_name(raw: &str) -> Result<String, Problem> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Problem::invalid_field(
            "sender_name",
            "enter your name, as recipients should see it",
        ));
    }
    if name.chars().count() > 80 {
        return Err(Problem::invalid_field(
            "sender_name",
            "use at most 80 characters",
        ));
    }
    if name.chars().any(char::is_control) || name.contains(['<', '>', '"']) {
        return Err(Problem::invalid_field(
            "sender_name",
            "use letters, spaces and ordinary punctuation only",
        ));
    }
    Ok(name.to_owned())
}

/// Starts "Connect Gmail" (owners): answers the address of Google's consent page.
pub async fn start(
    state: &AppState,
    access: &Access,
    sender_name: &str,
    origin: &str,
) -> Result<String, Problem> {
    let account = access.owner("connect Gmail")?;
    let sender_name = parse_sender_name(sender_name)?;
    let app = google(state)?;
    let keys = super::wizard::vault(state)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let flow = RegionToken::new(access.workspace.region);
    let csrf = flow.token.clone();
    let (url, _) = client(app, origin)?
        .authorize_url(move || CsrfToken::new(csrf))
        .add_scope(Scope::new(GMAIL_SEND.into()))
        .add_scopes(IDENTITY_SCOPES.map(|s| Scope::new(s.into())))
        .set_pkce_challenge(challenge)
        .add_extra_param("access_type", "offline")
        // A refresh token comes only with a fresh consent.
        .add_extra_param("prompt", "consent")
        .add_extra_param("login_hint", &account.email)
        .url();
    state
        .stores
        .for_region(access.workspace.region)
        .oauth_flow_open(
            keys,
            &flow.digest(),
            access.workspace.id,
            account.id,
            &sender_name,
            verifier.secret(),
            FLOW_TTL,
        )
        .await?;
    Ok(url.to_string())
}

/// What Google sent the browser back with.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackQuery {
    /// The flow.
    #[serde(default)]
    pub state: String,
    /// The code to exchange (on consent).
    pub code: Option<String>,
    /// Google's error (`access_denied` when the person cancelled).
    pub error: Option<String>,
}

/// Why a callback connected nothing: the workspace it was for (when known) and what the
/// person is told.
#[derive(Debug)]
pub struct CallbackRefusal {
    /// The workspace whose email stage should show the message.
    pub workspace: Option<genesis_core::WorkspaceId>,
    /// The message, for people.
    pub problem: Problem,
}

fn refused(workspace: Option<genesis_core::WorkspaceId>, detail: &str) -> CallbackRefusal {
    CallbackRefusal {
        workspace,
        problem: Problem::invalid_field("gmail", detail),
    }
}

/// Finishes "Connect Gmail" for `account`: see the module's doc. Answers the workspace and
/// the connected address.
pub async fn callback(
    state: &AppState,
    account: &genesis_store::Account,
    q: &CallbackQuery,
    origin: &str,
) -> Result<(genesis_core::WorkspaceId, String), CallbackRefusal> {
    let stale = "this Gmail connection is no longer valid (it was used, or is too old); \
                 press \"Connect Gmail\" again";
    let Some(token) = RegionToken::parse(&q.state) else {
        return Err(refused(None, stale));
    };
    let keys = super::wizard::vault(state).map_err(|p| CallbackRefusal {
        workspace: None,
        problem: p,
    })?;
    let db = state.stores.for_region(token.region);
    let flow = match db.oauth_flow_take(keys, &token.digest()).await {
        Ok(FlowTake::Fresh(flow)) => flow,
        Ok(FlowTake::Used | FlowTake::Expired | FlowTake::Unknown) => {
            return Err(refused(None, stale));
        }
        Err(e) => {
            return Err(CallbackRefusal {
                workspace: None,
                problem: e.into(),
            });
        }
    };
    let ws = flow.workspace;
    if flow.account != account.id {
        // Someone else's flow: say nothing about it.
        return Err(refused(None, stale));
    }
    if let Some(error) = &q.error {
        let detail = if error == "access_denied" {
            "you cancelled on Google's page, so Gmail is not connected; press \"Connect \
             Gmail\" to try again"
                .to_owned()
        } else {
            format!("Google did not connect Gmail ({error}); press \"Connect Gmail\" to try again")
        };
        return Err(refused(Some(ws), &detail));
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(refused(
            Some(ws),
            "Google sent no authorization; press \"Connect Gmail\" again",
        ));
    };
    let app = google(state).map_err(|p| CallbackRefusal {
        workspace: Some(ws),
        problem: p,
    })?;
    let client = client(app, origin).map_err(|p| CallbackRefusal {
        workspace: Some(ws),
        problem: p,
    })?;
    let http = state.providers.http.clone();
    let send = move |req: oauth2::HttpRequest| {
        let http = http.clone();
        async move { carry(&http, req).await }
    };
    let answer = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .request_async(&send)
        .await;
    let token = match answer {
        Ok(t) => t,
        Err(RequestTokenError::ServerResponse(e)) => {
            tracing::warn!(workspace = %ws, error = ?e.error(), "Google refused the code");
            return Err(refused(
                Some(ws),
                "Google refused to complete the connection (the authorization expired or was \
                 already used); press \"Connect Gmail\" again",
            ));
        }
        Err(e) => {
            tracing::warn!(workspace = %ws, error = %e, "Google's token endpoint failed");
            return Err(CallbackRefusal {
                workspace: Some(ws),
                problem: Problem::unavailable(
                    "Google could not be reached to finish connecting Gmail; try again in a minute",
                ),
            });
        }
    };
    let granted = token
        .scopes()
        .is_some_and(|s| s.iter().any(|s| s.as_str() == GMAIL_SEND));
    if !granted {
        return Err(refused(
            Some(ws),
            "Google did not give permission to send email: press \"Connect Gmail\" again and \
             leave \"Send email on your behalf\" ticked",
        ));
    }
    let Some(refresh) = token.refresh_token() else {
        return Err(refused(
            Some(ws),
            "Google sent no long-lived access; press \"Connect Gmail\" again",
        ));
    };
    let address = userinfo_email(state, app, token.access_token().secret())
        .await
        .map_err(|problem| CallbackRefusal {
            workspace: Some(ws),
            problem,
        })?;
    let expires_in = token.expires_in().map_or(3599, |d| d.as_secs());
    let now_ms = Utc::now().timestamp_millis();
    let scope = token
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    // n8n's `oauthTokenData`, as its own OAuth flow stores it; the refresher and the
    // sidecar read `expiry_date`.
    let secret = json!({
        "access_token": token.access_token().secret(),
        "refresh_token": refresh.secret(),
        "scope": scope,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "expiry_date": now_ms + i64::try_from(expires_in).unwrap_or(3599) * 1000,
    })
    .to_string();
    let value = json!({"address": address, "name": flow.sender_name});
    db.onboarding_confirm(
        ws,
        &Confirmation {
            stage: SavedStage::Email,
            value: &value,
            template: &[("sender_email", &address), ("name", &flow.sender_name)],
            secrets: &[NewSecret {
                kind: SecretKind::Gmail,
                hint: &address,
                secret: secret.as_bytes(),
            }],
            keys: Some(keys),
        },
        &account.actor(),
    )
    .await
    .map_err(|e| CallbackRefusal {
        workspace: Some(ws),
        problem: e.into(),
    })?;
    Ok((ws, address))
}

/// The address a token belongs to, from Google's userinfo.
async fn userinfo_email(
    state: &AppState,
    app: &GoogleApp,
    access_token: &str,
) -> Result<String, Problem> {
    let unreachable =
        || Problem::unavailable("Google could not be reached to read your address; try again");
    let res = state
        .providers
        .http
        .get(&app.userinfo_url)
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|_| unreachable())?;
    if !res.status().is_success() {
        tracing::warn!(status = %res.status(), "Google's userinfo refused the new token");
        return Err(unreachable());
    }
    let body: serde_json::Value = res.json().await.map_err(|_| unreachable())?;
    match (body["email"].as_str(), body["email_verified"].as_bool()) {
        (Some(email), Some(true)) => Ok(email.to_owned()),
        _ => Err(Problem::invalid_field(
            "gmail",
            "Google did not share which address this is; press \"Connect Gmail\" again and \
             allow it",
        )),
    }
}

/// Why our HTTP client could not carry an OAuth request.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CarryError(String);

/// Carries one of the `oauth2` crate's requests over our client (reqwest 0.13; the crate's
/// own integration is for an older reqwest).
async fn carry(
    http: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, CarryError> {
    let (parts, body) = req.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let res = builder
        .send()
        .await
        .map_err(|e| CarryError(e.to_string()))?;
    let mut out = oauth2::http::Response::builder().status(res.status());
    for (name, value) in res.headers() {
        out = out.header(name, value);
    }
    let bytes = res.bytes().await.map_err(|e| CarryError(e.to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| CarryError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_name_is_one_plain_line() {
        assert_eq!(
            parse_sender_name("  Ada Lovelace ").ok().as_deref(),
            Some("Ada Lovelace")
        );
        for bad in ["", "   ", "a\nb", "Ada <x@y>", &"x".repeat(81)] {
            assert_eq!(
                parse_sender_name(bad)
                    .err()
                    .and_then(|p| p.field)
                    .as_deref(),
                Some("sender_name"),
                "{bad:?}"
            );
        }
    }
}
