//! A fake of Google's OAuth 2.0 for web server applications: the authorization endpoint
//! (`GET https://accounts.google.com/o/oauth2/v2/auth`) with a consent page a browser clicks
//! through, the token endpoint (`POST https://oauth2.googleapis.com/token`) for both the
//! authorization-code grant (with PKCE) and refreshes, and OpenID's userinfo
//! (`GET https://openidconnect.googleapis.com/v1/userinfo`).
//!
//! It speaks Google's wire format: form-encoded requests, JSON answers with `access_token`,
//! `expires_in` (3599), `scope`, `token_type` and (offline access) `refresh_token`,
//! no-store caching headers, and Google's errors: on its own page for a request it cannot
//! trust to redirect (`invalid_client`, `redirect_uri_mismatch`, `invalid_request`,
//! `invalid_scope`), as a redirect for a person's refusal (`access_denied`), and as JSON at
//! the token endpoint (`invalid_grant` for a used, unknown or expired code or a wrong PKCE
//! verifier). Consent is granular, as Google's is now: the person may untick a scope, and
//! the token's `scope` then lacks it.
//!
//! What it cannot know: the real Google's accounts and clients. Authorization needs a client
//! registered with [`FakeGoogleOAuth::register_client`] (its secret and exact redirect URIs);
//! the person's address is typed on the consent page. Refreshes accept any non-empty client
//! (the watchdog's heal tests predate registration) until a test revokes the refresh token
//! ([`FakeGoogleOAuth::revoke`]), which is then refused as Google refuses an expired or
//! revoked one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long an access token lives, as Google answers (seconds).
pub const ACCESS_TOKEN_TTL_S: i64 = 3599;

/// How long an authorization code can be exchanged (Google: a few minutes).
pub const CODE_TTL: Duration = Duration::from_secs(600);

/// The scope that lets a client send mail as the person, and nothing else.
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";

/// Scopes the consent page can show, and what it says of each.
const KNOWN_SCOPES: [(&str, &str); 8] = [
    ("openid", "Associate you with your personal info on Google"),
    ("email", "See your primary Google Account email address"),
    ("profile", "See your personal info"),
    (
        "https://www.googleapis.com/auth/userinfo.email",
        "See your primary Google Account email address",
    ),
    (
        "https://www.googleapis.com/auth/userinfo.profile",
        "See your personal info",
    ),
    (GMAIL_SEND, "Send email on your behalf"),
    (
        "https://www.googleapis.com/auth/gmail.modify",
        "Read, compose and send emails from your Gmail account",
    ),
    (
        "https://www.googleapis.com/auth/gmail.readonly",
        "View your email messages and settings",
    ),
];

/// Identity scopes: granted with sign-in itself, never offered as a tick box.
fn is_identity(scope: &str) -> bool {
    matches!(
        scope,
        "openid"
            | "email"
            | "profile"
            | "https://www.googleapis.com/auth/userinfo.email"
            | "https://www.googleapis.com/auth/userinfo.profile"
    )
}

/// A registered OAuth client.
#[derive(Debug, Clone)]
struct Client {
    secret: String,
    redirect_uris: Vec<String>,
}

/// An authorization request waiting on the consent page.
#[derive(Debug, Clone)]
struct Pending {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    challenge: Option<(String, String)>,
    offline: bool,
    login_hint: Option<String>,
}

/// A code handed out and not yet exchanged.
#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: Option<(String, String)>,
    offline: bool,
    email: String,
    issued: Instant,
}

/// What an access token stands for.
#[derive(Debug, Clone)]
struct Grant {
    email: String,
    scopes: Vec<String>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    /// Codes exchanged once: a second exchange is refused (and, as at Google, is a sign of
    /// theft, so the tokens it granted are revoked).
    spent: HashMap<String, Vec<String>>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    revoked: HashSet<String>,
    refreshes: u64,
    exchanges: u64,
}

/// The fake Google. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeGoogleOAuth {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakeGoogleOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGoogleOAuth").finish_non_exhaustive()
    }
}

const NO_STORE: (header::HeaderName, &str) = (
    header::CACHE_CONTROL,
    "no-cache, no-store, max-age=0, must-revalidate",
);

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [NO_STORE],
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Google's own error page: the request is not trusted enough to be sent back.
fn error_page(error: &str, detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><html><head><title>Error {error}</title></head><body>\
             <h1>Access blocked: this app's request is invalid</h1>\
             <p id=\"error\">Error 400: {error}</p><p>{}</p></body></html>",
            escape(detail)
        )),
    )
        .into_response()
}

impl FakeGoogleOAuth {
    /// A fresh Google: no client, nothing granted, nothing revoked.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an OAuth client, as the Google Cloud console does: its secret and the exact
    /// redirect URIs it may use.
    pub fn register_client(&self, id: &str, secret: &str, redirect_uris: &[&str]) {
        self.lock().clients.insert(
            id.to_owned(),
            Client {
                secret: secret.to_owned(),
                redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            },
        );
    }

    /// Chaos: the user revoked access (or the refresh token expired); refreshes with it are
    /// refused from now on.
    pub fn revoke(&self, refresh_token: &str) {
        self.lock().revoked.insert(refresh_token.to_owned());
    }

    /// Successful refreshes so far.
    pub fn refreshes(&self) -> u64 {
        self.lock().refreshes
    }

    /// Codes exchanged for tokens so far.
    pub fn exchanges(&self) -> u64 {
        self.lock().exchanges
    }

    /// Whether `refresh_token` was issued by this fake and still works.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        let g = self.lock();
        g.refresh.contains_key(refresh_token) && !g.revoked.contains(refresh_token)
    }

    /// `GET /o/oauth2/v2/auth` (+ its consent form), `POST /token`, `GET /v1/userinfo`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/o/oauth2/v2/auth/consent", post(consent))
            .route("/token", post(token))
            .route("/v1/userinfo", get(userinfo))
            .with_state(self.clone())
    }
}

async fn authorize(
    State(google): State<FakeGoogleOAuth>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return error_page("invalid_request", "Missing required parameter: client_id");
    };
    let mut g = google.lock();
    let Some(client) = g.clients.get(client_id).cloned() else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(
                "<!doctype html><html><head><title>Error invalid_client</title></head><body>\
                 <h1>Access blocked: authorization error</h1>\
                 <p id=\"error\">Error 401: invalid_client</p>\
                 <p>The OAuth client was not found.</p></body></html>",
            ),
        )
            .into_response();
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(
            "redirect_uri_mismatch",
            &format!(
                "You can't sign in to this app because it doesn't comply with Google's OAuth \
                 2.0 policy. redirect_uri={redirect_uri}"
            ),
        );
    }
    match get("response_type") {
        Some("code") => {}
        None => {
            return error_page(
                "invalid_request",
                "Required parameter is missing: response_type",
            );
        }
        Some(other) => {
            return error_page(
                "unsupported_response_type",
                &format!("Invalid response_type: {other}"),
            );
        }
    }
    let Some(scope) = get("scope") else {
        return error_page("invalid_request", "Missing required parameter: scope");
    };
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !KNOWN_SCOPES.iter().any(|(k, _)| k == s))
    {
        return error_page(
            "invalid_scope",
            &format!("Some requested scopes were invalid. {{invalid=[{unknown}]}}"),
        );
    }
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), m) => {
            let method = m.unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return error_page(
                    "invalid_request",
                    &format!("Invalid code_challenge_method: {method}"),
                );
            }
            if !(43..=128).contains(&c.len()) {
                return error_page("invalid_request", "Invalid code_challenge.");
            }
            Some((c.to_owned(), method.to_owned()))
        }
        (None, Some(_)) => {
            return error_page("invalid_request", "Missing code_challenge.");
        }
    };
    let offline = match get("access_type") {
        None | Some("online") => false,
        Some("offline") => true,
        Some(other) => {
            return error_page("invalid_request", &format!("Invalid access_type: {other}"));
        }
    };
    let id = random_token(18);
    let pending = Pending {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: scopes.clone(),
        state: get("state").map(str::to_owned),
        challenge,
        offline,
        login_hint: get("login_hint").map(str::to_owned),
    };
    let hint = pending.login_hint.clone().unwrap_or_default();
    g.pending.insert(id.clone(), pending);
    drop(g);
    let rows: String = scopes
        .iter()
        .filter_map(|s| KNOWN_SCOPES.iter().find(|(k, _)| k == s))
        .map(|(scope, words)| {
            if is_identity(scope) {
                format!("<li>{}</li>", escape(words))
            } else {
                format!(
                    "<li><label><input type=\"checkbox\" name=\"grant\" value=\"{}\" checked> {}</label></li>",
                    escape(scope),
                    escape(words)
                )
            }
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><title>Sign in - Google Accounts</title></head><body>\
         <h1>Choose what {client} can access</h1>\
         <form method=\"post\" action=\"/o/oauth2/v2/auth/consent\">\
         <input type=\"hidden\" name=\"request\" value=\"{id}\">\
         <p><label>Google Account <input id=\"account\" name=\"account\" type=\"email\" value=\"{hint}\"></label></p>\
         <ul>{rows}</ul>\
         <button id=\"deny\" name=\"decision\" value=\"deny\">Cancel</button>\
         <button id=\"allow\" name=\"decision\" value=\"allow\">Continue</button>\
         </form></body></html>",
        client = escape(client_id),
        hint = escape(&hint),
    ))
    .into_response()
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{sep}{}", ser.finish())).into_response()
}

async fn consent(
    State(google): State<FakeGoogleOAuth>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page("invalid_request", "The consent form could not be read.");
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut g = google.lock();
    // A consent page is answered once; a second submit finds nothing.
    let Some(p) = field("request").and_then(|id| g.pending.remove(id)) else {
        return error_page(
            "invalid_request",
            "This sign-in request has expired. Start again.",
        );
    };
    let mut back: Vec<(&str, &str)> = Vec::new();
    if let Some(state) = &p.state {
        back.push(("state", state));
    }
    if field("decision") != Some("allow") {
        back.push(("error", "access_denied"));
        return redirect_with(&p.redirect_uri, &back);
    }
    let email = field("account").map(str::trim).unwrap_or_default();
    if !email.contains('@') {
        return error_page(
            "invalid_request",
            "Enter the Google Account's email address.",
        );
    }
    let ticked: Vec<&str> = form
        .iter()
        .filter(|(n, _)| n == "grant")
        .map(|(_, v)| v.as_str())
        .collect();
    let scopes: Vec<String> = p
        .scopes
        .iter()
        .filter(|s| is_identity(s) || ticked.contains(&s.as_str()))
        .cloned()
        .collect();
    let code = format!("4/0{}", random_token(36));
    g.codes.insert(
        code.clone(),
        Code {
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            scopes: scopes.clone(),
            challenge: p.challenge.clone(),
            offline: p.offline,
            email: email.to_owned(),
            issued: Instant::now(),
        },
    );
    drop(g);
    let scope = scopes.join(" ");
    back.push(("code", &code));
    back.push(("scope", &scope));
    redirect_with(&p.redirect_uri, &back)
}

async fn token(
    State(google): State<FakeGoogleOAuth>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid request: the body must be application/x-www-form-urlencoded.",
        );
    };
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let grant = get("grant_type");
    if !matches!(grant, Some("refresh_token" | "authorization_code")) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {}", grant.unwrap_or_default()),
        );
    }
    let Some(client_id) = get("client_id") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    };
    let Some(secret) = get("client_secret") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_secret is missing.",
        );
    };
    if grant == Some("authorization_code") {
        return exchange(&google, client_id, secret, &form);
    }
    let Some(refresh) = get("refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let mut g = google.lock();
    if g.revoked.contains(refresh) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        );
    }
    g.refreshes += 1;
    let grant = g.refresh.get(refresh).cloned().unwrap_or_else(|| Grant {
        email: String::new(),
        scopes: vec![GMAIL_SEND.to_owned()],
    });
    let access = format!("ya29.{}", random_token(24));
    let scope = grant.scopes.join(" ");
    g.access.insert(access.clone(), grant);
    (
        [NO_STORE, (header::PRAGMA, "no-cache")],
        Json(json!({
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL_S,
            "scope": scope,
            "token_type": "Bearer",
        })),
    )
        .into_response()
}

/// RFC 7636 §4.6: the verifier's S256 (or plain) transform must equal the challenge.
fn verifier_matches(verifier: &str, (challenge, method): &(String, String)) -> bool {
    let valid_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !(43..=128).contains(&verifier.len()) || !valid_chars {
        return false;
    }
    let transformed = match method.as_str() {
        "S256" => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.to_owned(),
    };
    transformed == *challenge
}

fn exchange(
    google: &FakeGoogleOAuth,
    client_id: &str,
    secret: &str,
    form: &BTreeMap<String, String>,
) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut g = google.lock();
    match g.clients.get(client_id) {
        Some(c) if c.secret == secret => {}
        _ => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
        }
    }
    let Some(code_value) = get("code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: code",
        );
    };
    if let Some(tokens) = g.spent.get(code_value).cloned() {
        // A replayed code: refused, and what it granted is revoked.
        for t in tokens {
            g.access.remove(&t);
            g.revoked.insert(t);
        }
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
    }
    let Some(code) = g.codes.get(code_value).cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Malformed auth code.",
        );
    };
    if code.issued.elapsed() > CODE_TTL || code.client_id != client_id {
        g.codes.remove(code_value);
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
    }
    if get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    if let Some(challenge) = &code.challenge {
        match get("code_verifier") {
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Missing code verifier.",
                );
            }
            Some(v) if !verifier_matches(v, challenge) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid code verifier.",
                );
            }
            Some(_) => {}
        }
    }
    g.codes.remove(code_value);
    g.exchanges += 1;
    let grant = Grant {
        email: code.email.clone(),
        scopes: code.scopes.clone(),
    };
    let access = format!("ya29.{}", random_token(24));
    g.access.insert(access.clone(), grant.clone());
    let mut body = json!({
        "access_token": access,
        "expires_in": ACCESS_TOKEN_TTL_S,
        "scope": code.scopes.join(" "),
        "token_type": "Bearer",
    });
    let mut granted = vec![access];
    if code.offline {
        let refresh = format!("1//0{}", random_token(48));
        g.refresh.insert(refresh.clone(), grant);
        body["refresh_token"] = json!(refresh);
        granted.push(refresh);
    }
    g.spent.insert(code_value.to_owned(), granted);
    ([NO_STORE, (header::PRAGMA, "no-cache")], Json(body)).into_response()
}

async fn userinfo(State(google): State<FakeGoogleOAuth>, headers: HeaderMap) -> Response {
    let unauthorized = |error: &str, description: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"https://accounts.google.com/\", error=\"{error}\""),
            )],
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("invalid_request", "Invalid Credentials");
    };
    let Some(grant) = google.lock().access.get(token).cloned() else {
        return unauthorized("invalid_token", "Invalid Credentials");
    };
    let mut body =
        json!({ "sub": format!("{:x}", Sha256::digest(grant.email.as_bytes()))[..21].to_owned() });
    let has = |s: &str| grant.scopes.iter().any(|g| g == s);
    if has("email") || has("https://www.googleapis.com/auth/userinfo.email") {
        body["email"] = json!(grant.email);
        body["email_verified"] = json!(true);
    }
    if has("profile") || has("https://www.googleapis.com/auth/userinfo.profile") {
        let local = grant.email.split('@').next().unwrap_or_default();
        body["name"] = json!(local);
        body["given_name"] = json!(local);
    }
    Json(body).into_response()
}
