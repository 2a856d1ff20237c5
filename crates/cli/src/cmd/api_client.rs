//! The control plane's `/api/v1` as the operator commands (`genesis tenants`, `genesis
//! rollouts`) call it: where it is, the token, and problem documents turned into exit codes
//! (4xx: usage, exit 2; other failures: exit 1).

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::CliError;
use crate::config::Config;

/// Where the API is.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Control-plane base URL (default: `http://<server.listen>`).
    #[arg(long, env = "GENESIS_API_URL")]
    pub api_url: Option<String>,
    /// API bearer token (default: `server.api_token`).
    #[arg(long, env = "GENESIS_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// A client of the control plane's `/api/v1`, with the operator's bearer token.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    timeout: Option<Duration>,
}

impl Api {
    pub fn new(args: &ApiArgs, cfg: &Config) -> Result<Self, CliError> {
        let base = args
            .api_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.server.listen));
        let token = args
            .api_token
            .clone()
            .or_else(|| cfg.server.api_token.clone())
            .ok_or_else(|| {
                CliError::Usage(
                    "an API token is needed: --api-token, GENESIS_API_TOKEN or server.api_token"
                        .into(),
                )
            })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            timeout: None,
        })
    }

    /// The same client, waiting up to `timeout` for each answer (for calls that wait on a
    /// droplet, longer than the usual 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CliError> {
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
            .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
        let status = resp.status().as_u16();
        let value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// One workspace with its ignition.
    pub async fn workspace(&self, id: &str) -> Result<Value, CliError> {
        self.ok(
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{id}"),
            None,
        )
        .await
    }

    /// A call that must succeed; a problem document becomes a usage (4xx) or runtime error.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let (status, v) = self.call(method, path, body).await?;
        match status {
            200..=299 => Ok(v),
            400..=499 => Err(CliError::Usage(problem_text(status, &v))),
            _ => Err(CliError::Runtime(anyhow::anyhow!(problem_text(status, &v)))),
        }
    }
}

fn problem_text(status: u16, v: &Value) -> String {
    let detail = v["detail"].as_str().unwrap_or("no details");
    match v["field"].as_str() {
        // Most details already start with the field's name.
        Some(f) if !detail.starts_with(f) => format!("{status}: {f}: {detail}"),
        _ => format!("{status}: {detail}"),
    }
}
