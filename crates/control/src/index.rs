//! `GET /`: what this server is and where to go next, so that someone (or a CLI) who lands
//! on the bare address learns it is a Genesis control plane instead of meeting a 404.
//!
//! Browsers (an `Accept` naming `text/html`) get a short page of links; everything else
//! gets the same as JSON, which `genesis auth login` reads to tell a control plane from
//! any other server.

use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::api::doc::{DOCS_PATH, OPENAPI_PATH};

/// The `service` value clients look for.
pub const SERVICE: &str = "genesis-control-plane";

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let version = env!("CARGO_PKG_VERSION");
    if wants_html {
        return Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Genesis Engine control plane</title></head><body>\
             <h1>Genesis Engine control plane</h1><p>Version {version}.</p><ul>\
             <li><a href=\"/god\">God Mode</a> (operators)</li>\
             <li><a href=\"{DOCS_PATH}\">API reference</a> \
             (<a href=\"{OPENAPI_PATH}\">OpenAPI document</a>)</li>\
             <li><a href=\"/readyz\">Readiness</a> and <a href=\"/metrics\">metrics</a></li>\
             </ul></body></html>"
        ))
        .into_response();
    }
    axum::Json(json!({
        "service": SERVICE,
        "version": version,
        "links": {
            "docs": DOCS_PATH,
            "openapi": OPENAPI_PATH,
            "god_mode": "/god",
            "api": "/api/v1",
            "health": "/healthz",
            "ready": "/readyz",
            "metrics": "/metrics",
        }
    }))
    .into_response()
}
