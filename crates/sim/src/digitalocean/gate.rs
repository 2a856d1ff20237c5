//! What stands in front of every `/v2` call, as at DigitalOcean: authentication, the token's
//! rate limits with their headers, injected faults, and settling of due actions.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::Simulator;

/// DigitalOcean's error response.
pub fn error(status: StatusCode, id: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"id": id, "message": message.into()}))).into_response()
}

/// DigitalOcean's 404.
pub fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

/// DigitalOcean's 422 for a request it understood but will not do.
pub fn unprocessable(message: impl Into<String>) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        message,
    )
}

/// A body that is not the JSON the endpoint takes.
pub fn bad_request(what: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("The request body is not valid JSON for {what}."),
    )
}

fn server_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "Unexpected server-side error",
    )
}

/// Paths the simulator does not serve.
pub async fn unknown_path() -> Response {
    not_found()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn set_limit_headers(resp: &mut Response, limit: u32, remaining: u32, reset_in: Duration) {
    let h = resp.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(limit));
    h.insert("ratelimit-remaining", HeaderValue::from(remaining));
    h.insert(
        "ratelimit-reset",
        HeaderValue::from(unix_now() + reset_in.as_secs().max(1)),
    );
}

fn rate_limited(limit: u32, reset_in: Duration) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "API Rate limit exceeded.",
    );
    set_limit_headers(&mut r, limit, 0, reset_in);
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(reset_in.as_secs().max(1)));
    r
}

enum Verdict {
    Pass { remaining: u32, reset_in: Duration },
    Limited { reset_in: Duration },
    Fail { remaining: u32, reset_in: Duration },
}

/// Authentication, rate limiting, fault injection and settling, in front of every `/v2` call.
pub async fn gate(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you",
        );
    }
    let endpoint = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or_else(|| req.uri().path())
    );
    tracing::trace!(target: "genesis_sim::calls", %endpoint, "request");
    let limit = sim.cfg.per_window;
    let verdict = admit(&sim, &endpoint);
    sim.settle_and_notify();
    let (mut resp, remaining, reset_in) = match verdict {
        Verdict::Limited { reset_in } => return rate_limited(limit, reset_in),
        Verdict::Fail {
            remaining,
            reset_in,
        } => (server_error(), remaining, reset_in),
        Verdict::Pass {
            remaining,
            reset_in,
        } => (next.run(req).await, remaining, reset_in),
    };
    set_limit_headers(&mut resp, limit, remaining, reset_in);
    resp
}

fn admit(sim: &Simulator, endpoint: &str) -> Verdict {
    let now = Instant::now();
    let w = sim.cfg.rate_window;
    let mut s = sim.lock();
    while s
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= w)
    {
        s.window.pop_front();
    }
    while s
        .long_window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= w * 60)
    {
        s.long_window.pop_front();
    }
    let reset_in = s
        .window
        .front()
        .map(|t| w.saturating_sub(now.duration_since(*t)))
        .unwrap_or(w);
    if s.faults.force_429 > 0 {
        s.faults.force_429 -= 1;
        return Verdict::Limited { reset_in };
    }
    if s.window.len() as u32 >= sim.cfg.per_window
        || s.long_window.len() as u32 >= sim.cfg.per_long_window
    {
        s.stats.rate_limited += 1;
        return Verdict::Limited { reset_in };
    }
    s.window.push_back(now);
    s.long_window.push_back(now);
    s.stats.accepted += 1;
    s.stats.max_in_window = s.stats.max_in_window.max(s.window.len() as u64);
    let remaining = sim.cfg.per_window.saturating_sub(s.window.len() as u32);
    let rate = s
        .faults
        .endpoint_error_rates
        .get(endpoint)
        .copied()
        .unwrap_or(s.faults.error_rate);
    if s.chance(rate) {
        s.stats.injected_errors += 1;
        return Verdict::Fail {
            remaining,
            reset_in,
        };
    }
    Verdict::Pass {
        remaining,
        reset_in,
    }
}

/// A processed write whose response the network "loses" (answered 500).
pub fn maybe_lose(sim: &Simulator, resp: Response) -> Response {
    let mut s = sim.lock();
    let rate = s.faults.lost_response_rate;
    if s.chance(rate) {
        s.stats.injected_errors += 1;
        return server_error();
    }
    resp
}

/// `http://<host>` of the request, for the absolute URLs DigitalOcean puts in links.
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The 201 that answers an accepted action, after arming its timer (see `boot`); subject
/// to the lost-response fault like every write.
pub fn action_accepted(sim: &Simulator, action: &super::state::ActionRecord) -> Response {
    sim.arm(action);
    maybe_lose(
        sim,
        (
            StatusCode::CREATED,
            Json(json!({"action": super::render::action(action)})),
        )
            .into_response(),
    )
}

/// A path id, or `None` for anything DigitalOcean would answer 404 to.
pub fn parse_id(raw: &str) -> Option<i64> {
    raw.parse().ok()
}
