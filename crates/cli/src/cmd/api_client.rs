//! The control plane's `/api/v1` as the operator commands (`genesis tenants`, `genesis
//! rollouts`, `genesis droplets`) call it: where it is, the token, and answers turned into
//! errors people can read.
//!
//! Where the API is comes from, in order: `--api-url`/`--api-token` (or `GENESIS_API_URL`
//! and `GENESIS_API_TOKEN`), the saved context in use (`genesis auth login`), and last the
//! configuration's `server.listen` and `server.api_token` (a control plane's own machine).
//! None of them needs a database.
//!
//! A refusal keeps the server's problem document ([`ApiError`]): people read its detail,
//! `-o json` prints it whole with its status. Something that answers but is not a Genesis
//! control plane (a wrong port, a proxy's error page) is called that, not a parse error.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::CliError;
use crate::config::Config;
use crate::contexts::Contexts;

/// Where the API is.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Control-plane base URL (default: the saved context, then `http://<server.listen>`).
    #[arg(long, env = "GENESIS_API_URL", help_heading = "Connection")]
    pub api_url: Option<String>,
    /// API bearer token (default: the saved context, then `server.api_token`).
    #[arg(
        long,
        env = "GENESIS_API_TOKEN",
        hide_env_values = true,
        help_heading = "Connection"
    )]
    pub api_token: Option<String>,
}

/// Which part of a list to show.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Show at most this many (1 to 500), and say how to get the rest.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Start after this item (the `next` a limited list printed).
    #[arg(long)]
    pub after: Option<String>,
}

/// A refusal from the control plane, or an answer that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status (0 when nothing answered).
    pub status: u16,
    /// What a person reads.
    pub message: String,
    /// The problem document as the server sent it (RFC 9457), or one made up here for
    /// answers that carried none.
    pub problem: Value,
}

impl ApiError {
    /// Bad input or a refused request (4xx) is the caller's to fix: exit 2; anything else
    /// exits 1.
    pub fn is_usage(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

/// A client of the control plane's `/api/v1`, with the operator's bearer token.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    timeout: Option<Duration>,
}

use genesis_control::index::SERVICE;

/// Items per request when a list is followed to its end: the API's default page.
const PAGE: u32 = 100;

impl Api {
    /// The API as flags, the saved context or the configuration name it.
    pub fn new(args: &ApiArgs, cfg: Option<&Config>) -> Result<Self, CliError> {
        // The contexts file is read only when the flags leave something open: a broken one
        // must not stop a command that names its control plane in full.
        let context = if args.api_url.is_some() && args.api_token.is_some() {
            None
        } else {
            Contexts::default_path()
                .ok()
                .map(|p| Contexts::load(&p))
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?
                .and_then(|c| c.current().map(|(_, ctx)| ctx.clone()))
        };
        let base = args
            .api_url
            .clone()
            .or_else(|| context.as_ref().map(|c| c.api_url.clone()))
            .or_else(|| cfg.map(|c| format!("http://{}", c.server.listen)));
        let token = args
            .api_token
            .clone()
            .or_else(|| context.as_ref().map(|c| c.api_token.clone()))
            .or_else(|| cfg.and_then(|c| c.server.api_token.clone()));
        match (base, token) {
            (Some(base), Some(token)) => Self::at(&base, &token),
            (None, _) => Err(CliError::Usage(
                "no control plane to talk to: run `genesis auth login --api-url URL`, or set \
                 GENESIS_API_URL and GENESIS_API_TOKEN"
                    .into(),
            )),
            (Some(base), None) => Err(CliError::Usage(format!(
                "no API token for {base}: run `genesis auth login --api-url {base}`, or set \
                 GENESIS_API_TOKEN"
            ))),
        }
    }

    /// The API at `base` with `token`.
    pub fn at(base: &str, token: &str) -> Result<Self, CliError> {
        let base = base.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if parsed.is_none() {
            return Err(CliError::Usage(format!(
                "{base:?} is not a control plane address: expected http(s)://host[:port]"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            base: base.to_owned(),
            token: token.to_owned(),
            http,
            timeout: None,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same client, waiting up to `timeout` for each answer (for calls that wait on a
    /// droplet, longer than the usual 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks that `base` is a Genesis control plane and that the token opens its API:
    /// the control plane's version.
    pub async fn identify(&self) -> Result<String, CliError> {
        let resp = self
            .http
            .get(format!("{}/", self.base))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable_error(&self.base, &e))?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if v["service"] != SERVICE {
            return Err(not_a_control_plane(&self.base, status).into());
        }
        // Any cheap API call proves the token.
        match self
            .ok(reqwest::Method::GET, "/api/v1/rollouts?limit=1", None)
            .await
        {
            Err(CliError::Api(e)) if e.status == 401 => {
                return Err(CliError::Usage(format!(
                    "{} is a Genesis control plane, but it refused this API token",
                    self.base
                )));
            }
            other => other?,
        };
        Ok(v["version"].as_str().unwrap_or("unknown").to_owned())
    }

    /// One request; the status and the JSON body (`Null` when the body was not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CliError> {
        let (status, _, v) = self.send(method, path, body).await?;
        Ok((status, v))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, bool, Value), CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unreachable_error(&self.base, &e))?;
        let status = resp.status().as_u16();
        let problem = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/problem+json"));
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Ok((status, problem, value))
    }

    /// One workspace (by id or slug) with its ignition.
    pub async fn workspace(&self, id: &str) -> Result<Value, CliError> {
        self.ok(
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{}", path_segment(id)),
            None,
        )
        .await
    }

    /// A call that must succeed (2xx). A refusal becomes an [`ApiError`] carrying the
    /// server's problem document; an answer that is neither JSON nor a problem says the
    /// address is not a control plane.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let (status, is_problem, v) = self.send(method, path, body).await?;
        match status {
            204 => Ok(Value::Null),
            200..=299 if !v.is_null() => Ok(v),
            200..=299 => Err(not_a_control_plane(&self.base, status).into()),
            _ if is_problem && v.is_object() => Err(refusal(status, v).into()),
            _ => Err(not_a_control_plane(&self.base, status).into()),
        }
    }

    /// A `{items, next}` list at `path` (no query), starting after `page.after`: with a limit,
    /// its first page of that size (and `next` if more follow); without, every page
    /// followed to the end.
    pub async fn list(&self, path: &str, page: ListArgs) -> Result<List, CliError> {
        let ListArgs { limit, mut after } = page;
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let size = limit.unwrap_or(PAGE);
        loop {
            let mut page_path = format!("{path}{join}limit={size}");
            if let Some(a) = &after {
                page_path.push_str(&format!("&after={}", path_segment(a)));
            }
            let page = self.ok(reqwest::Method::GET, &page_path, None).await?;
            let Some(got) = page["items"].as_array() else {
                return Err(not_a_control_plane(&self.base, 200).into());
            };
            items.extend(got.iter().cloned());
            let next = page["next"].as_str().filter(|_| !got.is_empty());
            match next {
                Some(n) if limit.is_none() => after = Some(n.to_owned()),
                _ => {
                    return Ok(List {
                        items,
                        next: next.map(str::to_owned),
                    });
                }
            }
        }
    }
}

/// A list as the API shapes every one: the items, and where the next page starts.
#[derive(Debug, serde::Serialize)]
pub struct List {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

impl List {
    /// Says on standard error (never in a pipe's data) that more items follow, and how to
    /// get them.
    pub fn say_if_more(&self, command: &str) {
        if let Some(next) = &self.next {
            eprintln!(
                "{} shown; more follow: `{command} --after {next}`, or leave out --limit for all",
                self.items.len()
            );
        }
    }
}
/// A path segment or query value with the characters URLs reserve escaped (ids and slugs
/// never have any; whatever a user typed must not change the path).
pub fn path_segment(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// The server's problem document as an error people read: its detail, with the field in
/// front for input that was refused (422) when the detail does not already start with it.
/// A conflict's field names the resource's state, not something typed, and its detail is
/// already a sentence ("the workspace has no droplet to wake").
fn refusal(status: u16, problem: Value) -> ApiError {
    let detail = problem["detail"]
        .as_str()
        .or_else(|| problem["title"].as_str())
        .unwrap_or("the control plane refused the request")
        .to_owned();
    let message = match problem["field"].as_str() {
        Some(f) if status == 422 && !f.is_empty() && !detail.starts_with(f) => {
            format!("{f}: {detail}")
        }
        _ => detail,
    };
    ApiError {
        status,
        message,
        problem,
    }
}

fn not_a_control_plane(base: &str, status: u16) -> ApiError {
    let message = format!(
        "{base} does not answer like a Genesis control plane (HTTP {status}); check the \
         address (--api-url, GENESIS_API_URL or `genesis context use`)"
    );
    ApiError {
        status: if status < 400 { 502 } else { status },
        problem: serde_json::json!({
            "type": "about:blank",
            "title": "Not a Genesis control plane",
            "status": status,
            "detail": message,
        }),
        message,
    }
}

fn unreachable_error(base: &str, e: &reqwest::Error) -> CliError {
    let why = if e.is_timeout() {
        "it did not answer in time".to_owned()
    } else if e.is_connect() {
        "nothing accepted the connection (is it running, and is the address right?)".to_owned()
    } else {
        // reqwest's own chain ("error sending request for url (...)") repeats the URL.
        let mut source: &dyn std::error::Error = e;
        while let Some(s) = source.source() {
            source = s;
        }
        source.to_string()
    };
    CliError::Runtime(anyhow::anyhow!(
        "cannot reach the control plane at {base}: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_a_sentence_with_its_field() {
        let e = refusal(
            422,
            serde_json::json!({"detail": "must be between 1 and 500", "field": "limit"}),
        );
        assert_eq!(e.message, "limit: must be between 1 and 500");
        assert!(e.is_usage());
        let e = refusal(
            409,
            serde_json::json!({"detail": "slug \"a\" is already in use", "field": "slug"}),
        );
        assert_eq!(e.message, "slug \"a\" is already in use", "no field twice");
        let e = refusal(
            409,
            serde_json::json!({"detail": "the workspace has no droplet to wake", "field": "id"}),
        );
        assert_eq!(
            e.message, "the workspace has no droplet to wake",
            "a conflict is a sentence"
        );
        let e = refusal(503, serde_json::json!({"title": "Service Unavailable"}));
        assert_eq!(e.message, "Service Unavailable");
        assert!(!e.is_usage());
    }

    #[test]
    fn a_bad_address_is_refused_before_any_request() {
        for bad in ["localhost:8080", "ftp://x", "http://", ""] {
            let e = Api::at(bad, "t").err().expect(bad);
            assert!(
                e.to_string().contains("is not a control plane address"),
                "{bad}: {e}"
            );
        }
        assert!(Api::at("http://127.0.0.1:8080/", "t").is_ok());
    }

    #[test]
    fn path_segments_cannot_leave_their_segment() {
        assert_eq!(path_segment("acme_corp"), "acme_corp");
        assert_eq!(path_segment("../x?y"), "..%2Fx%3Fy");
    }
}
