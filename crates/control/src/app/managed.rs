//! The managed-service gateway (spec 57.2, 58.2): a tenant's n8n calls
//! `/api/v1/managed/{service}/...` with its workspace token, and the gateway prices the call
//! from the service matrix, holds the money, forwards the call to the wholesale vendor with
//! Genesis's own key, and posts the cost when the vendor delivered or gives the money back
//! when it did not. The tenant gets the vendor's answer.
//!
//! Only the vendor paths listed here are forwarded, each priced or free: the gateway is not
//! an open proxy with Genesis's keys.

use axum::http::Method;
use genesis_core::WorkspaceId;
use genesis_core::money::Millicents;

use super::wallet::{Hold, Wallets};
use crate::{AppState, Problem};

/// How long a vendor may take to answer a lookup. Shorter than a hold's timeout, so no post
/// comes after its reservation expired.
pub const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The longest an Apify run may take: its `timeout`, which the gateway sets (a tenant may ask
/// for less). Apify's synchronous call waits up to 300 s, longer than a hold lives; a run
/// bounded at 90 s answers well within the default hold (120 s).
pub const APIFY_RUN_TIMEOUT_S: u64 = 90;

/// The largest request body the gateway forwards (an Actor's input).
pub const MAX_CALL_BODY: usize = 64 * 1024;

/// The Apify Actors the gateway runs by default. An Actor's wholesale cost depends on the
/// Actor, so the price in the matrix only holds for the Actors Genesis has priced.
pub const DEFAULT_APIFY_ACTORS: [&str; 2] = [
    "apify~google-search-scraper",
    "apify~website-content-crawler",
];

/// Where the wholesale vendors are, and Genesis's credentials with each. A vendor without
/// credentials is not offered (503).
#[derive(Clone, Default)]
pub struct Upstreams {
    /// Google's API host (`https://www.googleapis.com`).
    pub google_url: String,
    /// The Custom Search key.
    pub cse_key: Option<String>,
    /// The programmable search engine's id.
    pub cse_cx: Option<String>,
    /// ZeroBounce's API host (`https://api.zerobounce.net`).
    pub zerobounce_url: String,
    /// ZeroBounce's key.
    pub zerobounce_key: Option<String>,
    /// Apify's API host (`https://api.apify.com`).
    pub apify_url: String,
    /// Apify's token.
    pub apify_token: Option<String>,
    /// The Actors tenants may run (`username~actor-name`).
    pub apify_actors: Vec<String>,
    /// The residential network behind the proxy door.
    pub proxy: Option<super::proxy_tunnel::ResidentialProxy>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("google_url", &self.google_url)
            .field("zerobounce_url", &self.zerobounce_url)
            .field("apify_url", &self.apify_url)
            .field("apify_actors", &self.apify_actors)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Upstreams {
    /// The real vendors, without credentials.
    pub fn real() -> Self {
        Self {
            google_url: "https://www.googleapis.com".into(),
            zerobounce_url: "https://api.zerobounce.net".into(),
            apify_url: "https://api.apify.com".into(),
            apify_actors: DEFAULT_APIFY_ACTORS.map(str::to_owned).to_vec(),
            ..Default::default()
        }
    }

    /// The vendors at a simulator's address (`/google`, `/zerobounce`, `/apify`), without
    /// credentials.
    pub fn at(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            google_url: format!("{base}/google"),
            zerobounce_url: format!("{base}/zerobounce"),
            apify_url: format!("{base}/apify"),
            apify_actors: DEFAULT_APIFY_ACTORS.map(str::to_owned).to_vec(),
            ..Default::default()
        }
    }
}

/// A call as the tenant's n8n made it.
#[derive(Debug, Clone)]
pub struct ManagedCall {
    /// The service's id in the matrix (`google_cse`).
    pub service: String,
    /// The method.
    pub method: Method,
    /// The vendor path after the service (`customsearch/v1`).
    pub path: String,
    /// The query string's pairs.
    pub query: Vec<(String, String)>,
    /// The body's content type.
    pub content_type: Option<String>,
    /// The body (an Actor's input), at most [`MAX_CALL_BODY`] bytes.
    pub body: axum::body::Bytes,
}

/// The vendor's answer, and what it cost the tenant.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The vendor's status.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its body.
    pub body: axum::body::Bytes,
    /// The vendor's headers the tenant's workflow may need (Apify's paging), passed on.
    pub headers: Vec<(String, String)>,
    /// What the tenant was charged.
    pub charged: Millicents,
}

/// Vendor headers passed on to the tenant, by prefix: the dataset's paging. Everything else
/// (cookies, rate-limit state of Genesis's account, request ids) stays with the gateway.
const PASSED_HEADERS: [&str; 1] = ["x-apify-pagination-"];

/// Where a call goes, and whether the vendor delivered.
struct Route {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    /// Genesis's token, sent as `Authorization: Bearer` (kept out of the URL, so out of
    /// access logs).
    bearer: Option<String>,
    /// A JSON body to send.
    json_body: Option<axum::body::Bytes>,
    /// How long the vendor may take.
    timeout: std::time::Duration,
    /// Whether a 2xx answer still means the vendor did not deliver (ZeroBounce answers
    /// errors with 200 and an `error` field).
    error_in_body: bool,
}

impl Route {
    fn get(url: String, query: Vec<(String, String)>, error_in_body: bool) -> Self {
        Self {
            method: Method::GET,
            url,
            query,
            bearer: None,
            json_body: None,
            timeout: UPSTREAM_TIMEOUT,
            error_in_body,
        }
    }
}

/// The query without the parameters the gateway sets itself (a tenant cannot pass its own
/// key, nor override Genesis's).
fn tenant_query(q: &[(String, String)], reserved: &[&str]) -> Vec<(String, String)> {
    q.iter()
        .filter(|(k, _)| !reserved.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn unoffered(service: &str) -> Problem {
    Problem::unavailable(format!(
        "the managed service {service:?} is not set up on this platform"
    ))
}

/// The vendor request a call maps to; 404 for a path the gateway does not forward.
fn route(up: &Upstreams, call: &ManagedCall) -> Result<Route, Problem> {
    let not_offered = || {
        Problem::not_found(&format!(
            "{} {} of managed service {:?}",
            call.method, call.path, call.service
        ))
    };
    match (call.service.as_str(), &call.method, call.path.as_str()) {
        ("google_cse", &Method::GET, "customsearch/v1") => {
            let (Some(key), Some(cx)) = (&up.cse_key, &up.cse_cx) else {
                return Err(unoffered(&call.service));
            };
            let mut query = tenant_query(&call.query, &["key", "cx"]);
            query.push(("key".into(), key.clone()));
            query.push(("cx".into(), cx.clone()));
            Ok(Route::get(
                format!("{}/customsearch/v1", up.google_url),
                query,
                false,
            ))
        }
        ("email_verify", &Method::GET, "v2/validate") => {
            let Some(key) = &up.zerobounce_key else {
                return Err(unoffered(&call.service));
            };
            let mut query = tenant_query(&call.query, &["api_key"]);
            query.push(("api_key".into(), key.clone()));
            if !query.iter().any(|(k, _)| k == "ip_address") {
                query.push(("ip_address".into(), String::new()));
            }
            Ok(Route::get(
                format!("{}/v2/validate", up.zerobounce_url),
                query,
                true,
            ))
        }
        ("apify", &Method::POST, path) => {
            let actor = path
                .strip_prefix("v2/acts/")
                .and_then(|p| p.strip_suffix("/run-sync-get-dataset-items"))
                .ok_or_else(not_offered)?;
            if !up.apify_actors.iter().any(|a| a == actor) {
                return Err(Problem::forbidden(format!(
                    "the Actor {actor:?} is not one the managed Apify runs (these are: {})",
                    up.apify_actors.join(", ")
                )));
            }
            let Some(token) = &up.apify_token else {
                return Err(unoffered(&call.service));
            };
            Ok(Route {
                method: Method::POST,
                url: format!(
                    "{}/v2/acts/{actor}/run-sync-get-dataset-items",
                    up.apify_url
                ),
                query: apify_query(&call.query)?,
                bearer: Some(token.clone()),
                json_body: Some(json_input(call)?),
                timeout: std::time::Duration::from_secs(APIFY_RUN_TIMEOUT_S + 10),
                error_in_body: false,
            })
        }
        _ => Err(not_offered()),
    }
}

/// The query of an Apify run: the dataset's paging and shape pass through; the run's
/// `timeout` is at most [`APIFY_RUN_TIMEOUT_S`]; anything that changes what the run costs
/// (`memory`, `maxItems`, `maxTotalChargeUsd`, `build`) or who pays (`token`) is dropped.
fn apify_query(q: &[(String, String)]) -> Result<Vec<(String, String)>, Problem> {
    const PASSED: [&str; 8] = [
        "format",
        "clean",
        "offset",
        "limit",
        "fields",
        "omit",
        "desc",
        "skipEmpty",
    ];
    let mut out: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| PASSED.contains(&k.as_str()))
        .cloned()
        .collect();
    let timeout = match q.iter().find(|(k, _)| k == "timeout") {
        None => APIFY_RUN_TIMEOUT_S,
        Some((_, v)) => v
            .parse::<u64>()
            .ok()
            .filter(|t| *t >= 1)
            .ok_or_else(|| {
                Problem::invalid_field("timeout", "must be a whole number of seconds, at least 1")
            })?
            .min(APIFY_RUN_TIMEOUT_S),
    };
    out.push(("timeout".into(), timeout.to_string()));
    Ok(out)
}

/// The call's body as an Actor's input: a JSON object, or nothing (`{}`).
fn json_input(call: &ManagedCall) -> Result<axum::body::Bytes, Problem> {
    if call.body.is_empty() {
        return Ok(axum::body::Bytes::from_static(b"{}"));
    }
    let is_json = call
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Problem::unsupported_media(
            "an Actor's input is a JSON object, sent as application/json",
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(&call.body) {
        Ok(serde_json::Value::Object(_)) => Ok(call.body.clone()),
        Ok(_) => Err(Problem::bad_body("an Actor's input must be a JSON object")),
        Err(e) => Err(Problem::bad_body(format_args!(
            "the Actor's input is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// Whether the vendor delivered what was paid for.
fn delivered(route: &Route, status: u16, body: &[u8]) -> bool {
    if !(200..300).contains(&status) {
        return false;
    }
    if route.error_in_body {
        return serde_json::from_slice::<serde_json::Value>(body)
            .map(|v| v.get("error").is_none())
            .unwrap_or(false);
    }
    true
}

/// One managed call: price, hold, forward, then post or give back (spec 58.2).
pub async fn call(
    state: &AppState,
    workspace: WorkspaceId,
    call: ManagedCall,
) -> Result<Forwarded, Problem> {
    let wallets = state.wallets.as_ref().ok_or_else(|| {
        Problem::unavailable("managed services need the wallet, which needs Redis")
    })?;
    let service = wallets
        .settings()
        .matrix
        .get(&call.service)
        .filter(|s| s.per_call().is_some())
        .ok_or_else(|| Problem::not_found(&format!("managed service {:?}", call.service)))?
        .clone();
    let mut route = route(&state.providers.managed, &call)?;
    // The vendor's answer must come while the hold still lives.
    let hold_life = std::time::Duration::from_secs(
        u64::try_from(wallets.settings().hold_timeout_s).unwrap_or(0),
    );
    route.timeout = route
        .timeout
        .min(hold_life.saturating_sub(std::time::Duration::from_secs(10)))
        .max(std::time::Duration::from_secs(1));
    let (price, hold, admitted) = hold_and_admit(wallets, &service, workspace).await?;
    let answer = forward(state, &route).await;
    if let Some(a) = &admitted {
        let unused = answer.is_err();
        if let Err(e) = wallets.limits().release(a, unused).await {
            tracing::warn!(error = %e, "a rate-limit slot was not released; its lease will lapse");
        }
    }
    match answer {
        Ok(Answer {
            status,
            content_type,
            body,
            headers,
        }) if delivered(&route, status, &body) => {
            settle(wallets, &hold, Some(price)).await?;
            metrics::counter!("genesis_managed_calls_total", "service" => service.id.clone(), "outcome" => "charged").increment(1);
            Ok(Forwarded {
                status,
                content_type,
                body,
                headers,
                charged: if hold.unbilled {
                    Millicents::ZERO
                } else {
                    price
                },
            })
        }
        Ok(Answer {
            status,
            content_type,
            body,
            headers,
        }) => {
            settle(wallets, &hold, None).await?;
            metrics::counter!("genesis_managed_calls_total", "service" => service.id.clone(), "outcome" => "not_delivered").increment(1);
            if status >= 500 {
                return Err(Problem::with_status(
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!(
                        "{} failed (status {status}); nothing was charged",
                        service.name
                    ),
                ));
            }
            Ok(Forwarded {
                status,
                content_type,
                body,
                headers,
                charged: Millicents::ZERO,
            })
        }
        Err(e) => {
            settle(wallets, &hold, None).await?;
            metrics::counter!("genesis_managed_calls_total", "service" => service.id.clone(), "outcome" => "unreachable").increment(1);
            tracing::warn!(service = %service.id, error = %e, "managed service unreachable");
            Err(Problem::with_status(
                axum::http::StatusCode::BAD_GATEWAY,
                format!("{} did not answer; nothing was charged", service.name),
            ))
        }
    }
}

/// Prices one call of `service`, holds the money, then admits it under the registry's
/// limits: the price, the hold and the admission. The limits come after the money: a
/// refused reservation costs the registry nothing, and a refused admission gives the money
/// back at once.
pub(super) async fn hold_and_admit(
    wallets: &Wallets,
    service: &genesis_core::services::Service,
    workspace: WorkspaceId,
) -> Result<(Millicents, Hold, Option<genesis_queue::limits::Admitted>), Problem> {
    let (price, kind) = Wallets::price(service, 1)?;
    let hold = wallets
        .reserve(workspace, kind, price, &format!("managed:{}", service.id))
        .await?;
    match admit(wallets, service, workspace).await {
        Ok(admitted) => Ok((price, hold, admitted)),
        Err(p) => {
            settle(wallets, &hold, None).await?;
            Err(p)
        }
    }
}

/// Admits one call of `service` under its limits in the registry (spec 59.2), or refuses it
/// with 429 and `Retry-After`. `None`: the service has no limits.
async fn admit(
    wallets: &Wallets,
    service: &genesis_core::services::Service,
    workspace: WorkspaceId,
) -> Result<Option<genesis_queue::limits::Admitted>, Problem> {
    use genesis_queue::limits::Admission;
    let limits = wallets.limits_for(service, workspace).await;
    if !limits.any() {
        return Ok(None);
    }
    let admission = wallets
        .limits()
        .acquire(&service.id, workspace.as_uuid(), &limits)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "rate-limit registry unavailable");
            Problem::unavailable(
                "the service's limits cannot be checked right now; try again shortly",
            )
        })?;
    match admission {
        Admission::Admitted(a) => Ok(Some(a)),
        Admission::Refused {
            limit,
            retry_after_ms,
        } => {
            metrics::counter!("genesis_rate_limit_refusals_total", "service" => service.id.clone(), "limit" => limit.clone())
                .increment(1);
            let what = match limit.as_str() {
                "daily_per_tenant" => {
                    format!("this workspace's daily allowance of {}", service.name)
                }
                "daily_global" => format!("the platform's daily allowance of {}", service.name),
                "concurrent_per_tenant" => {
                    format!("this workspace's calls to {} in flight", service.name)
                }
                "concurrent_global" => {
                    format!("the platform's calls to {} in flight", service.name)
                }
                _ => format!("the request rate allowed for {}", service.name),
            };
            Err(Problem::too_many(format!(
                "{what} is used up; nothing was charged. Try again later."
            ))
            .retry_after(retry_after_ms.div_ceil(1000)))
        }
    }
}

/// Posts `cost` (or voids, for `None`), retrying a few times while Redis does not answer:
/// each retry carries the same settlement id, so it settles once.
pub(super) async fn settle(
    wallets: &Wallets,
    hold: &Hold,
    cost: Option<Millicents>,
) -> Result<(), Problem> {
    let id = uuid::Uuid::now_v7();
    let mut last = None;
    for wait_ms in [0u64, 50, 200, 800] {
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        let r = match cost {
            Some(c) => wallets.post_as(hold, id, c).await,
            None => wallets.void_as(hold, id).await,
        };
        match r {
            Ok(()) => return Ok(()),
            Err(p) if p.status == 503 => last = Some(p),
            Err(p) => return Err(p),
        }
    }
    Err(last.unwrap_or_else(Problem::internal))
}

/// Why a vendor could not be asked.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    /// The configured address is not a URL.
    #[error("the vendor's configured address is not a URL: {0}")]
    Url(String),
    /// The vendor did not answer.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// What a vendor answered.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: axum::body::Bytes,
    headers: Vec<(String, String)>,
}

async fn forward(state: &AppState, route: &Route) -> Result<Answer, ForwardError> {
    let url = reqwest::Url::parse_with_params(&route.url, &route.query)
        .map_err(|e| ForwardError::Url(e.to_string()))?;
    let mut req = state
        .providers
        .http
        .request(route.method.clone(), url)
        .timeout(route.timeout);
    if let Some(token) = &route.bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = &route.json_body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| PASSED_HEADERS.iter().any(|p| k.as_str().starts_with(p)))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = resp.bytes().await?;
    Ok(Answer {
        status,
        content_type,
        body,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Upstreams {
        Upstreams {
            cse_key: Some("k".into()),
            cse_cx: Some("cx".into()),
            zerobounce_key: Some("z".into()),
            apify_token: Some("apify_api_x".into()),
            ..Upstreams::at("http://sim")
        }
    }

    fn call(service: &str, method: Method, path: &str, q: &[(&str, &str)]) -> ManagedCall {
        ManagedCall {
            service: service.into(),
            method,
            path: path.into(),
            query: q
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            content_type: Some("application/json".into()),
            body: axum::body::Bytes::from_static(br#"{"queries": "x"}"#),
        }
    }

    const RUN: &str = "v2/acts/apify~google-search-scraper/run-sync-get-dataset-items";

    #[test]
    fn an_apify_run_costs_what_the_matrix_priced() {
        let r = route(
            &up(),
            &call(
                "apify",
                Method::POST,
                RUN,
                &[
                    ("token", "mine"),
                    ("memory", "32768"),
                    ("maxTotalChargeUsd", "500"),
                    ("limit", "5"),
                    ("timeout", "3600"),
                ],
            ),
        )
        .expect("routed");
        assert_eq!(
            r.url,
            "http://sim/apify/v2/acts/apify~google-search-scraper/run-sync-get-dataset-items"
        );
        assert_eq!(r.bearer.as_deref(), Some("apify_api_x"), "Genesis's token");
        assert_eq!(
            r.query,
            [("limit", "5"), ("timeout", "90")].map(|(a, b)| (a.to_string(), b.to_string())),
            "what changes the cost is dropped; the run is bounded"
        );
        assert_eq!(r.method, Method::POST);
        // An Actor nobody priced, a bad timeout, a body that is not an input: refused here.
        let other = route(
            &up(),
            &call(
                "apify",
                Method::POST,
                "v2/acts/someone~miner/run-sync-get-dataset-items",
                &[],
            ),
        )
        .err()
        .expect("refused");
        assert_eq!(other.status, 403);
        let bad = route(
            &up(),
            &call("apify", Method::POST, RUN, &[("timeout", "0")]),
        )
        .err()
        .expect("refused");
        assert_eq!(bad.status, 422);
        let mut text = call("apify", Method::POST, RUN, &[]);
        text.content_type = Some("text/plain".into());
        assert_eq!(route(&up(), &text).err().map(|p| p.status), Some(415));
        let mut list = call("apify", Method::POST, RUN, &[]);
        list.body = axum::body::Bytes::from_static(b"[1]");
        assert_eq!(route(&up(), &list).err().map(|p| p.status), Some(400));
        let mut empty = call("apify", Method::POST, RUN, &[]);
        empty.body = axum::body::Bytes::new();
        assert_eq!(
            route(&up(), &empty).ok().and_then(|r| r.json_body),
            Some(axum::body::Bytes::from_static(b"{}"))
        );
        // The asynchronous API is not forwarded.
        for path in [
            "v2/acts/apify~google-search-scraper/runs",
            "v2/datasets/abc/items",
        ] {
            let m = if path.ends_with("runs") {
                Method::POST
            } else {
                Method::GET
            };
            assert_eq!(
                route(&up(), &call("apify", m, path, &[]))
                    .err()
                    .map(|p| p.status),
                Some(404),
                "{path}"
            );
        }
    }

    #[test]
    fn a_tenant_cannot_bring_or_override_the_key() {
        let r = route(
            &up(),
            &call(
                "google_cse",
                Method::GET,
                "customsearch/v1",
                &[("q", "x"), ("key", "mine"), ("cx", "mine")],
            ),
        )
        .expect("routed");
        assert_eq!(r.url, "http://sim/google/customsearch/v1");
        assert_eq!(
            r.query,
            [("q", "x"), ("key", "k"), ("cx", "cx")].map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn only_listed_paths_are_forwarded() {
        for (svc, m, p) in [
            ("google_cse", Method::POST, "customsearch/v1"),
            (
                "google_cse",
                Method::GET,
                "customsearch/v1/siterestrict/../../admin",
            ),
            ("email_verify", Method::GET, "v2/getcredits"),
            ("openai", Method::GET, "v1/models"),
        ] {
            let err = route(&up(), &call(svc, m, p, &[])).err().expect("refused");
            assert_eq!(err.status, 404, "{svc} {p}");
        }
        let no_keys = Upstreams::at("http://sim");
        let err = route(
            &no_keys,
            &call("google_cse", Method::GET, "customsearch/v1", &[]),
        )
        .err()
        .expect("refused");
        assert_eq!(err.status, 503);
    }

    #[test]
    fn zerobounce_errors_in_a_200_are_not_delivered() {
        let r = route(
            &up(),
            &call(
                "email_verify",
                Method::GET,
                "v2/validate",
                &[("email", "a@b.co")],
            ),
        )
        .expect("routed");
        assert!(!delivered(
            &r,
            200,
            br#"{"error":"Invalid API Key or your account ran out of credits"}"#
        ));
        assert!(delivered(
            &r,
            200,
            br#"{"address":"a@b.co","status":"valid"}"#
        ));
        assert!(!delivered(&r, 200, b"not json"));
        assert!(!delivered(&r, 503, b"{}"));
    }
}
