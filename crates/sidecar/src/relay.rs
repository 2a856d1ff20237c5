//! The relay (spec 65.3): the droplet's n8n calls the control plane through here, and each
//! call leaves signed with the secret the handshake gave this sidecar
//! ([`genesis_protocol::inbound`]), which n8n never sees.
//!
//! It listens on its own port ([`genesis_protocol::inbound::RELAY_PORT`]), which the compose
//! file does not publish and Caddy does not route: only the droplet's containers reach it.
//! It forwards `/api/v1/...` only (the control plane's API, where the templates' calls go),
//! with the caller's `Authorization` (the workspace's ingest token), `Content-Type` and
//! `Accept`, the body as it came (at most [`MAX_BODY`]), and gives back the control plane's
//! answer: status, body and its headers but the connection's own.
//!
//! Written on axum and reqwest rather than a proxy crate: it forwards one kind of call to
//! one place, and the signing sits in the middle of it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The largest body relayed (the control plane's own limit).
pub const MAX_BODY: usize = 2 << 20;
/// Calls relayed at once; more wait (n8n runs a handful of executions at a time).
pub const MAX_IN_FLIGHT: usize = 32;
/// How long the control plane has to answer one call.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Request headers passed on; every other one stays on the droplet.
const PASSED: [HeaderName; 3] = [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];
/// Response headers that belong to a connection, not to the answer.
const HOP_BY_HOP: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::UPGRADE,
];

/// What the relay needs.
pub struct Relay {
    http: reqwest::Client,
    dashboard_url: String,
    workspace: Uuid,
    droplet: i64,
    secret: String,
    slots: Semaphore,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("dashboard_url", &self.dashboard_url)
            .field("droplet", &self.droplet)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay to `dashboard_url` signing as `droplet` of `workspace` with `secret`.
    pub fn new(
        http: reqwest::Client,
        dashboard_url: &str,
        workspace: Uuid,
        droplet: i64,
        secret: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            dashboard_url: dashboard_url.trim_end_matches('/').to_owned(),
            workspace,
            droplet,
            secret,
            slots: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// Its routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/v1/{*rest}", axum::routing::any(relay))
            .fallback(|| async {
                problem(
                    StatusCode::NOT_FOUND,
                    "the relay forwards calls to /api/v1/ only",
                )
            })
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, Response> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "the relay is stopping"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signed =
            genesis_protocol::inbound::sign(&self.secret, self.workspace, self.droplet, &body, now)
                .map_err(|e| {
                    tracing::error!(error = %e, "the relay's secret is unusable");
                    problem(StatusCode::INTERNAL_SERVER_ERROR, "the relay cannot sign")
                })?;
        // The path and query exactly as n8n sent them (still percent-encoded).
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{target}", self.dashboard_url);
        let mut req = self.http.request(method, &url).timeout(TIMEOUT);
        for name in PASSED {
            if let Some(v) = headers.get(&name) {
                req = req.header(name, v.clone());
            }
        }
        for (name, value) in signed {
            req = req.header(name, value);
        }
        let answer = req.body(body).send().await.map_err(|e| {
            tracing::warn!(error = %e, "the control plane did not answer a relayed call");
            problem(
                StatusCode::BAD_GATEWAY,
                "the control plane did not answer; try again",
            )
        })?;
        let status = answer.status();
        let mut out = HeaderMap::new();
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(name) {
                out.append(name.clone(), value.clone());
            }
        }
        let body = answer.bytes().await.map_err(|e| {
            tracing::warn!(error = %e, "a relayed answer was cut short");
            problem(
                StatusCode::BAD_GATEWAY,
                "the control plane's answer was cut short",
            )
        })?;
        Ok((status, out, body).into_response())
    }
}

async fn relay(
    State(relay): State<Arc<Relay>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match relay.forward(method, &uri, &headers, body).await {
        Ok(r) | Err(r) => r,
    }
}

/// An RFC 9457 answer of the relay's own.
fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

    /// A control plane that records what reached it and answers 201 with a header of its own.
    async fn control_plane() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                log.lock()
                    .expect("log")
                    .push((uri.to_string(), headers, body));
                (
                    StatusCode::CREATED,
                    [("genesis-charged-millicents", "300")],
                    "{\"ok\":true}",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn calls_reach_the_control_plane_signed_as_the_droplet_with_their_own_headers_only() {
        let (upstream, seen) = control_plane().await;
        let ws = Uuid::new_v4();
        let secret = genesis_protocol::webhook::new_secret();
        let relay = Relay::new(reqwest::Client::new(), &upstream, ws, 77, secret.clone());
        let base = serve(relay.router()).await;
        let http = reqwest::Client::new();
        let body = br#"{"from":"lin@lead.example","label":"interested"}"#;
        let r = http
            .post(format!(
                "{base}/api/v1/workspaces/{ws}/replies?note=a%2Fb&x=1"
            ))
            .header("authorization", "Bearer gws_token")
            .header("content-type", "application/json")
            .header("cookie", "n8n-auth=secret")
            .body(body.to_vec())
            .send()
            .await
            .expect("relay");
        assert_eq!(r.status(), 201, "the control plane's status comes back");
        assert_eq!(r.headers()["genesis-charged-millicents"], "300");
        assert_eq!(r.text().await.expect("body"), "{\"ok\":true}");

        let seen = seen.lock().expect("log");
        let (uri, headers, got) = &seen[0];
        assert_eq!(
            uri,
            &format!("/api/v1/workspaces/{ws}/replies?note=a%2Fb&x=1"),
            "path and query as n8n sent them"
        );
        assert_eq!(got.as_ref(), body);
        assert_eq!(headers["authorization"], "Bearer gws_token");
        assert!(headers.get("cookie").is_none(), "other headers stay behind");
        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
        let who = genesis_protocol::inbound::MessageId::parse(h("webhook-id").expect("id"))
            .expect("a relay id");
        assert_eq!((who.workspace, who.droplet), (ws, 77));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        genesis_protocol::WebhookVerifier::new(&[&secret])
            .expect("secret")
            .verify(
                h("webhook-id"),
                h("webhook-timestamp"),
                h("webhook-signature"),
                got,
                now,
            )
            .expect("signed with the droplet's secret");
    }

    #[tokio::test]
    async fn only_the_api_is_relayed_and_an_absent_control_plane_is_a_502() {
        let relay = Relay::new(
            reqwest::Client::new(),
            "http://127.0.0.1:1",
            Uuid::new_v4(),
            1,
            genesis_protocol::webhook::new_secret(),
        );
        let base = serve(relay.router()).await;
        let http = reqwest::Client::new();
        let r = http
            .get(format!("{base}/god/fleet"))
            .send()
            .await
            .expect("relay");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let r = http
            .get(format!("{base}/api/v1/workspaces"))
            .send()
            .await
            .expect("relay");
        assert_eq!(r.status(), 502);
    }
}
