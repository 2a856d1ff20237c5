//! Fakes of the wholesale services behind the managed-service gateway (spec 57.2), speaking
//! the subset of each vendor's API the gateway forwards:
//!
//! - **Google Custom Search JSON API**: `GET /customsearch/v1?key&cx&q[&num&start]`. A
//!   missing key is 403 `PERMISSION_DENIED`; a wrong key 400 with reason `API_KEY_INVALID`;
//!   a missing `q` or `cx`, `num` outside 1–10 or `start + num > 101` 400
//!   `INVALID_ARGUMENT`; past the daily quota 429 `RESOURCE_EXHAUSTED`. Google's error
//!   envelope: `{"error": {"code", "message", "errors": [{"message", "domain",
//!   "reason"}], "status"}}`.
//! - **ZeroBounce** (e-mail verification): `GET /v2/validate?api_key&email&ip_address`. As
//!   the real one, a wrong key is answered **200** with `{"error": "Invalid API Key or your
//!   account ran out of credits"}`, and a missing e-mail 200 with its own `error`; a result
//!   has `address`, `status` (valid, invalid, catch-all, unknown, spamtrap, abuse,
//!   do_not_mail), `sub_status`, `free_email`, `domain`, `mx_found`, `processed_at`, among
//!   others.
//!
//! - **Apify**: running an Actor and getting its dataset, in [`crate::apify`].
//!
//! They are mounted under a prefix (`/google`, `/zerobounce`, `/apify`) as their hosts share one
//! listener here. Results are made up but stable: the same query gives the same answer.
//! Faults for tests: the next `n` calls to a service answer a given status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

/// The key and engine id the fakes accept (the control plane's wholesale credentials).
pub const CSE_KEY: &str = "AIzaSyFakeGenesisWholesaleKey0000000000";
/// The programmable search engine id.
pub const CSE_CX: &str = "0123456789abcdef0";
/// ZeroBounce's key.
pub const ZEROBOUNCE_KEY: &str = "zb-fake-genesis-wholesale";

#[derive(Default)]
struct Inner {
    /// Calls per service (`google_cse`, `email_verify`).
    calls: HashMap<String, u64>,
    /// Forced answers: the next `n` calls of a service get this status.
    faults: HashMap<String, (u16, u32)>,
    /// Queries left today, per service (None: unlimited).
    quota: HashMap<String, u64>,
    /// How long an Apify run takes.
    run_time: std::time::Duration,
}

/// The fakes. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeWholesale {
    inner: Arc<Mutex<Inner>>,
}

impl FakeWholesale {
    /// Fakes with no faults and no quotas.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls a service has answered (faults included).
    pub fn calls(&self, service: &str) -> u64 {
        self.lock().calls.get(service).copied().unwrap_or(0)
    }

    /// The next `n` calls of `service` answer `status` (5xx: the vendor failing).
    pub fn fail_next(&self, service: &str, status: u16, n: u32) {
        self.lock().faults.insert(service.to_owned(), (status, n));
    }

    /// `service` answers only `left` more queries today.
    pub fn set_quota(&self, service: &str, left: u64) {
        self.lock().quota.insert(service.to_owned(), left);
    }

    /// Every Apify run from now on takes `d` (runs in flight, for concurrency limits).
    pub fn set_run_time(&self, d: std::time::Duration) {
        self.lock().run_time = d;
    }

    pub(crate) fn run_time(&self) -> std::time::Duration {
        self.lock().run_time
    }

    /// Counts a call; the forced answer when a fault is set, or when the quota is spent.
    pub(crate) fn enter(&self, service: &str) -> Option<Response> {
        let mut inner = self.lock();
        *inner.calls.entry(service.to_owned()).or_default() += 1;
        if let Some((status, left)) = inner.faults.get_mut(service)
            && *left > 0
        {
            *left -= 1;
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Some((status, "upstream failure (simulated)").into_response());
        }
        if let Some(left) = inner.quota.get_mut(service) {
            if *left == 0 {
                return Some(google_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'.",
                    "rateLimitExceeded",
                    "RESOURCE_EXHAUSTED",
                ));
            }
            *left -= 1;
        }
        None
    }

    /// The routes: `/google/customsearch/v1`, `/zerobounce/v2/validate`,
    /// `/apify/v2/acts/{actor}/run-sync-get-dataset-items`, and
    /// `POST /sim/v1/wholesale/faults` (`{"service", "status", "count"}`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/google/customsearch/v1", get(cse))
            .route("/zerobounce/v2/validate", get(zerobounce))
            .route(
                "/apify/v2/acts/{actor}/run-sync-get-dataset-items",
                post(crate::apify::run_sync_get_dataset_items),
            )
            .route("/sim/v1/wholesale/faults", post(set_fault))
            .with_state(self.clone())
    }
}

/// A search's words as a URL path segment, for made-up result links.
pub(crate) fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn google_error(status: StatusCode, message: &str, reason: &str, code: &str) -> Response {
    (
        status,
        Json(json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "errors": [{ "message": message, "domain": "global", "reason": reason }],
                "status": code,
            }
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CseQuery {
    key: Option<String>,
    cx: Option<String>,
    q: Option<String>,
    num: Option<String>,
    start: Option<String>,
}

/// A number parameter Google refuses with 400 when it is not one.
fn number(v: &Option<String>, default: u32) -> Option<u32> {
    match v {
        None => Some(default),
        Some(s) => s.parse().ok(),
    }
}

async fn cse(State(f): State<FakeWholesale>, Query(q): Query<CseQuery>) -> Response {
    if let Some(r) = f.enter("google_cse") {
        return r;
    }
    let Some(key) = q.key.as_deref().filter(|k| !k.is_empty()) else {
        return google_error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            "forbidden",
            "PERMISSION_DENIED",
        );
    };
    if key != CSE_KEY {
        return google_error(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
            "badRequest",
            "INVALID_ARGUMENT",
        );
    }
    let invalid = || {
        google_error(
            StatusCode::BAD_REQUEST,
            "Request contains an invalid argument.",
            "badRequest",
            "INVALID_ARGUMENT",
        )
    };
    let (Some(cx), Some(query)) = (q.cx.as_deref(), q.q.as_deref().filter(|s| !s.is_empty()))
    else {
        return invalid();
    };
    if cx != CSE_CX {
        return google_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "notFound",
            "NOT_FOUND",
        );
    }
    let (Some(num), Some(start)) = (number(&q.num, 10), number(&q.start, 1)) else {
        return invalid();
    };
    if !(1..=10).contains(&num) || start < 1 || start + num > 101 {
        return invalid();
    }
    let slug = slug(query);
    let items: Vec<_> = (start..start + num)
        .map(|i| {
            json!({
                "kind": "customsearch#result",
                "title": format!("{query} — result {i}"),
                "htmlTitle": format!("<b>{query}</b> — result {i}"),
                "link": format!("https://example-{i}.com/{slug}"),
                "displayLink": format!("example-{i}.com"),
                "snippet": format!("A page about {query}."),
            })
        })
        .collect();
    Json(json!({
        "kind": "customsearch#search",
        "queries": {
            "request": [{ "searchTerms": query, "count": num, "startIndex": start, "cx": cx }]
        },
        "searchInformation": { "searchTime": 0.21, "totalResults": "100" },
        "items": items,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ZbQuery {
    api_key: Option<String>,
    email: Option<String>,
    #[allow(dead_code)]
    ip_address: Option<String>,
}

async fn zerobounce(State(f): State<FakeWholesale>, Query(q): Query<ZbQuery>) -> Response {
    if let Some(r) = f.enter("email_verify") {
        return r;
    }
    if q.api_key.as_deref() != Some(ZEROBOUNCE_KEY) {
        return Json(json!({ "error": "Invalid API Key or your account ran out of credits" }))
            .into_response();
    }
    let Some(email) = q.email.as_deref().filter(|e| !e.is_empty()) else {
        return Json(json!({ "error": "Missing parameter: email" })).into_response();
    };
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let (status, sub) = if domain.is_empty() || !domain.contains('.') {
        ("invalid", "failed_syntax_check")
    } else if local.starts_with("bounce") || local.starts_with("invalid") {
        ("invalid", "mailbox_not_found")
    } else if domain.starts_with("catchall") {
        ("catch-all", "")
    } else if local == "abuse" {
        ("abuse", "")
    } else {
        ("valid", "")
    };
    let free = matches!(
        domain,
        "gmail.com" | "yahoo.com" | "outlook.com" | "hotmail.com"
    );
    Json(json!({
        "address": email,
        "status": status,
        "sub_status": sub,
        "free_email": free,
        "did_you_mean": null,
        "account": local,
        "domain": domain,
        "domain_age_days": "4000",
        "smtp_provider": if free { "google" } else { "" },
        "mx_found": if status == "invalid" && sub == "failed_syntax_check" { "false" } else { "true" },
        "mx_record": format!("mx.{domain}"),
        "firstname": null,
        "lastname": null,
        "gender": null,
        "country": null,
        "region": null,
        "city": null,
        "zipcode": null,
        "processed_at": "2026-12-06 12:00:00.000",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Fault {
    service: String,
    status: u16,
    count: u32,
}

async fn set_fault(State(f): State<FakeWholesale>, Json(fault): Json<Fault>) -> StatusCode {
    f.fail_next(&fault.service, fault.status, fault.count);
    StatusCode::NO_CONTENT
}
