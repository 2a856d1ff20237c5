//! Fakes of the AI providers whose keys a tenant pastes in the wizard (spec 60.1 stage 4):
//! OpenAI's `GET /v1/models`, Anthropic's `GET /v1/models` and Relevance AI's
//! `POST /latest/agents/list`, the cheapest calls that prove a key works.
//!
//! Each answers as the vendor does, with its error envelope and status for a missing or
//! wrong key:
//! - OpenAI: `Authorization: Bearer`, 401 `{"error": {"message", "type":
//!   "invalid_request_error", "param": null, "code": "invalid_api_key"}}`, the key masked in
//!   the message as OpenAI masks it.
//! - Anthropic: `x-api-key` and a required `anthropic-version` header (400 without it),
//!   401 `{"type": "error", "error": {"type": "authentication_error", "message": "invalid
//!   x-api-key"}}`, a `request-id` header on every answer.
//! - Relevance AI: `Authorization: <project>:<key>` on the project's regional host
//!   (`api-<region>.stack.tryrelevance.com/latest`); 401 with its envelope `{message,
//!   error_type, error_audience}`.
//!
//! The vendors' hosts are mounted under a prefix each (`/openai`, `/anthropic`,
//! `/relevance/<region>`), since they share one listener here; base URLs are configuration.
//! The fakes cannot know real accounts, so a key works only if it was issued here
//! ([`FakeAiProviders::issue`]), and stops working once revoked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use rand::RngCore;
use serde_json::json;

/// The AI vendors the wizard knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// OpenAI.
    OpenAi,
    /// Anthropic.
    Anthropic,
    /// Relevance AI.
    Relevance,
}

/// Relevance AI's regions, as its hosts name them.
pub const RELEVANCE_REGIONS: [&str; 3] = ["bcbe5a", "d7b62b", "f1db6c"];

#[derive(Default)]
struct Inner {
    keys: HashSet<(Vendor, String)>,
    checks: u64,
}

/// The fakes. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeAiProviders {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakeAiProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAiProviders").finish_non_exhaustive()
    }
}

fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl FakeAiProviders {
    /// No key issued yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new working key of `vendor`, shaped as the vendor's are. A Relevance key is
    /// answered as `<project id>:<key>` with its region: `bcbe5a:<project>:<key>`.
    pub fn issue(&self, vendor: Vendor) -> String {
        let (stored, shown) = match vendor {
            Vendor::OpenAi => {
                let k = format!("sk-proj-{}", random(96));
                (k.clone(), k)
            }
            Vendor::Anthropic => {
                let k = format!("sk-ant-api03-{}AA", random(69));
                (k.clone(), k)
            }
            Vendor::Relevance => {
                let project = uuid_like();
                let key = format!("sk-{}", random(30));
                let region = RELEVANCE_REGIONS[0];
                (
                    format!("{region}:{project}:{key}"),
                    format!("{region}:{project}:{key}"),
                )
            }
        };
        self.lock().keys.insert((vendor, stored));
        shown
    }

    /// Chaos: the key was deleted in the vendor's console.
    pub fn revoke(&self, vendor: Vendor, key: &str) {
        self.lock().keys.remove(&(vendor, key.to_owned()));
    }

    /// Calls answered so far (each a key check).
    pub fn checks(&self) -> u64 {
        self.lock().checks
    }

    fn knows(&self, vendor: Vendor, key: &str) -> bool {
        let mut g = self.lock();
        g.checks += 1;
        g.keys.contains(&(vendor, key.to_owned()))
    }

    /// `/openai/v1/models`, `/anthropic/v1/models`,
    /// `/relevance/{region}/latest/agents/list`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/openai/v1/models", get(openai_models))
            .route("/anthropic/v1/models", get(anthropic_models))
            .route(
                "/relevance/{region}/latest/agents/list",
                post(relevance_agents),
            )
            .with_state(self.clone())
    }
}

fn uuid_like() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// OpenAI shows the first 3 and last 4 characters of a wrong key.
fn openai_mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

async fn openai_models(State(fake): State<FakeAiProviders>, h: HeaderMap) -> Response {
    let error = |message: String, code: serde_json::Value| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {
                "message": message, "type": "invalid_request_error", "param": null, "code": code
            }})),
        )
            .into_response()
    };
    let Some(key) = header(&h, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return error(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You \
             can obtain an API key from https://platform.openai.com/account/api-keys."
                .into(),
            serde_json::Value::Null,
        );
    };
    if !fake.knows(Vendor::OpenAi, key) {
        return error(
            format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                openai_mask(key)
            ),
            json!("invalid_api_key"),
        );
    }
    Json(json!({"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": 1_715_367_049, "owned_by": "system"},
        {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"},
    ]}))
    .into_response()
}

async fn anthropic_models(State(fake): State<FakeAiProviders>, h: HeaderMap) -> Response {
    let request_id = format!("req_011C{}", random(16));
    let error = |status: StatusCode, kind: &str, message: &str| {
        (
            status,
            [("request-id", request_id.clone())],
            Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
        )
            .into_response()
    };
    let Some(key) = header(&h, "x-api-key") else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    };
    if header(&h, "anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    if !fake.knows(Vendor::Anthropic, key) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    (
        [("request-id", request_id.clone())],
        Json(json!({
            "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929",
                      "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
            "has_more": false,
            "first_id": "claude-sonnet-4-5-20250929",
            "last_id": "claude-sonnet-4-5-20250929",
        })),
    )
        .into_response()
}

async fn relevance_agents(
    State(fake): State<FakeAiProviders>,
    Path(region): Path<String>,
    h: HeaderMap,
) -> Response {
    if !RELEVANCE_REGIONS.contains(&region.as_str()) {
        // No such host: the closest a shared listener can come to a DNS failure.
        return (StatusCode::NOT_FOUND, "no such region").into_response();
    }
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "message": "Not authorized - please check your API key and project are correct",
                "error_type": "UnauthorizedError",
                "error_audience": "user",
            })),
        )
            .into_response()
    };
    let Some(auth) = header(&h, "authorization") else {
        return unauthorized();
    };
    // A key is valid only in its project's region.
    if !fake.knows(Vendor::Relevance, &format!("{region}:{auth}")) {
        return unauthorized();
    }
    Json(json!({"results": [], "total": 0})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_masks_all_but_the_ends() {
        assert_eq!(openai_mask("sk-abcdefgh1234"), "sk-********1234");
        assert_eq!(openai_mask("short"), "*****");
    }
}
