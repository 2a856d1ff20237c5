//! A fake of Google's OAuth 2.0 token endpoint (`POST https://oauth2.googleapis.com/token`),
//! the refresh half only: what the watchdog's `credential_expired` heal calls (spec 43.3).
//!
//! It speaks Google's wire format: a form-encoded request, a JSON answer with
//! `access_token`, `expires_in` (3599), `scope` and `token_type`, no-store caching headers,
//! and Google's error bodies (`invalid_request`, `unsupported_grant_type`, `invalid_grant`).
//!
//! The fake cannot know which accounts and clients the real Google has, so every non-empty
//! client and refresh token is accepted until a test or an operator revokes the refresh
//! token ([`FakeGoogleOAuth::revoke`]), which is then refused as Google refuses an expired
//! or revoked one.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::rejection::FormRejection;
use axum::{
    Form, Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use rand::RngCore;
use serde_json::json;

/// How long an access token lives, as Google answers (seconds).
pub const ACCESS_TOKEN_TTL_S: i64 = 3599;

#[derive(Default)]
struct Inner {
    revoked: HashSet<String>,
    refreshes: u64,
}

/// The fake token endpoint. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeGoogleOAuth {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakeGoogleOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGoogleOAuth").finish_non_exhaustive()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(
            header::CACHE_CONTROL,
            "no-cache, no-store, max-age=0, must-revalidate",
        )],
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

impl FakeGoogleOAuth {
    /// A fresh endpoint: nothing revoked, nothing refreshed.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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

    /// `POST /token`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/token", post(token))
            .with_state(self.clone())
    }
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
    match get("grant_type") {
        Some("refresh_token") => {}
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {}", other.unwrap_or_default()),
            );
        }
    }
    if get("client_id").is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    }
    if get("client_secret").is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_secret is missing.",
        );
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
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let access: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    (
        [
            (
                header::CACHE_CONTROL,
                "no-cache, no-store, max-age=0, must-revalidate",
            ),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "access_token": format!("ya29.{access}"),
            "expires_in": ACCESS_TOKEN_TTL_S,
            "scope": "https://www.googleapis.com/auth/gmail.modify",
            "token_type": "Bearer",
        })),
    )
        .into_response()
}
