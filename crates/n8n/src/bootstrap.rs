//! Headless bootstrap of a fresh n8n: no owner and no API key exist until we make them.
//!
//! 1. Wait for `GET /healthz/readiness`.
//! 2. `POST /rest/owner/setup` (email, first and last name, a generated password); n8n answers
//!    with the `n8n-auth` session cookie. The password is saved (0600) before anything else, so
//!    a crash after this step is recovered by logging in.
//! 3. `POST /rest/api-keys` with the cookie and the scopes the sidecar needs; the key is
//!    `data.rawApiKey`. Saved with the password.
//!
//! A second boot reuses the saved key; if n8n no longer accepts it, logs in with the saved
//! password and mints a new one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::N8n;
use crate::error::N8nError;
use crate::secret_file::{read_optional, write_private};

/// The public-API scopes the sidecar uses (names from n8n 2.8.4's `@n8n/permissions`).
pub const SIDECAR_SCOPES: [&str; 17] = [
    "workflow:create",
    "workflow:read",
    "workflow:update",
    "workflow:delete",
    "workflow:list",
    "workflow:activate",
    "workflow:deactivate",
    "execution:read",
    "execution:list",
    "credential:create",
    "credential:update",
    "credential:delete",
    "credential:list",
    "tag:create",
    "tag:list",
    "workflowTags:update",
    "workflowTags:list",
];

/// Where and how to bootstrap.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// n8n's base URL.
    pub base_url: String,
    /// Owner credentials and API key are kept here (mode 0600).
    pub state_file: PathBuf,
    /// The owner account's email.
    pub owner_email: String,
    /// How long to wait for n8n to become ready.
    pub readiness_timeout: Duration,
}

/// What the state file holds.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    email: String,
    password: String,
    api_key: Option<String>,
}

/// The outcome: a ready client, and whether an earlier boot's key was reused.
#[derive(Debug)]
pub struct Bootstrapped {
    /// The API client.
    pub client: N8n,
    /// True when the saved key still worked.
    pub reused: bool,
}

fn password() -> String {
    // n8n wants 8-64 characters with a digit and an upper-case letter.
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let body: String = (0..30)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect();
    format!("G7{body}")
}

fn save(path: &Path, stored: &Stored) -> Result<(), N8nError> {
    let bytes = serde_json::to_vec(&json!({
        "email": stored.email,
        "password": stored.password,
        "api_key": stored.api_key,
    }))
    .map_err(|e| N8nError::Bootstrap(e.to_string()))?;
    write_private(path, &bytes).map_err(|e| N8nError::Bootstrap(format!("{}: {e}", path.display())))
}

fn load(path: &Path) -> Result<Option<Stored>, N8nError> {
    let bytes =
        read_optional(path).map_err(|e| N8nError::Bootstrap(format!("{}: {e}", path.display())))?;
    bytes
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| N8nError::Bootstrap(format!("{}: unreadable: {e}", path.display())))
        })
        .transpose()
}

/// Waits until n8n says it is ready.
pub async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> Result<(), N8nError> {
    let started = Instant::now();
    loop {
        let ok = http
            .get(format!("{base}/healthz/readiness"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(N8nError::Bootstrap(format!(
                "n8n at {base} not ready after {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `n8n-auth` cookie of a response, as a `Cookie` header value.
fn auth_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("n8n-auth="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Posts to n8n's internal REST API. n8n 2.8.4 answers its readiness probe a few seconds
/// before it mounts `/rest` (until then: 404 "Cannot POST"), so a 404 is retried until
/// `deadline`.
async fn post_json(
    http: &reqwest::Client,
    url: String,
    cookie: Option<&str>,
    body: Value,
    deadline: Instant,
) -> Result<(Option<String>, Value), N8nError> {
    loop {
        match post_raw(http, &url, cookie, &body).await {
            Err(N8nError::NotFound(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(N8nError::NotFound(_)) => {
                return Err(N8nError::Bootstrap(format!(
                    "{url} still answers 404 after n8n said it was ready"
                )));
            }
            other => return other,
        }
    }
}

async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    body: &Value,
) -> Result<(Option<String>, Value), N8nError> {
    let mut req = http.post(url).json(body);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| N8nError::Transport(e.to_string()))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(N8nError::NotFound(url.to_owned()));
    }
    let cookie = auth_cookie(&resp);
    let v: Value = resp
        .json()
        .await
        .map_err(|e| N8nError::Decode(format!("{url}: {e}")))?;
    if !status.is_success() {
        return Err(N8nError::Bootstrap(format!("{url} answered {status}: {v}")));
    }
    Ok((cookie, v))
}

async fn mint_key(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    deadline: Instant,
) -> Result<String, N8nError> {
    let (_, v) = post_json(
        http,
        format!("{base}/rest/api-keys"),
        Some(cookie),
        json!({"label": "genesis-sidecar", "scopes": SIDECAR_SCOPES, "expiresAt": null}),
        deadline,
    )
    .await?;
    v.pointer("/data/rawApiKey")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| N8nError::Bootstrap("no data.rawApiKey in the api-keys answer".into()))
}

/// Brings a fresh n8n to "has an owner and an API key", or reuses what an earlier boot made.
pub async fn bootstrap(
    http: &reqwest::Client,
    o: &BootstrapOptions,
) -> Result<Bootstrapped, N8nError> {
    let base = o.base_url.trim_end_matches('/');
    let deadline = Instant::now() + o.readiness_timeout;
    wait_ready(http, base, o.readiness_timeout).await?;
    let client = |key: &str| N8n::with_http(base, key, http.clone());
    if let Some(mut stored) = load(&o.state_file)? {
        if let Some(key) = &stored.api_key {
            let c = client(key)?;
            match c.workflow_list().await {
                Ok(_) => {
                    return Ok(Bootstrapped {
                        client: c,
                        reused: true,
                    });
                }
                Err(N8nError::Unauthorized(_)) => {
                    tracing::warn!(
                        "the saved n8n API key is no longer accepted; minting a new one"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let (cookie, _) = post_json(
            http,
            format!("{base}/rest/login"),
            None,
            json!({"emailOrLdapLoginId": stored.email, "password": stored.password}),
            deadline,
        )
        .await?;
        let cookie =
            cookie.ok_or_else(|| N8nError::Bootstrap("login set no n8n-auth cookie".into()))?;
        let key = mint_key(http, base, &cookie, deadline).await?;
        stored.api_key = Some(key.clone());
        save(&o.state_file, &stored)?;
        return Ok(Bootstrapped {
            client: client(&key)?,
            reused: false,
        });
    }
    let mut stored = Stored {
        email: o.owner_email.clone(),
        password: password(),
        api_key: None,
    };
    save(&o.state_file, &stored)?;
    let (cookie, _) = post_json(
        http,
        format!("{base}/rest/owner/setup"),
        None,
        json!({"email": stored.email, "firstName": "Genesis", "lastName": "Sidecar", "password": stored.password}),
        deadline,
    )
    .await?;
    let cookie =
        cookie.ok_or_else(|| N8nError::Bootstrap("owner setup set no n8n-auth cookie".into()))?;
    let key = mint_key(http, base, &cookie, deadline).await?;
    stored.api_key = Some(key.clone());
    save(&o.state_file, &stored)?;
    Ok(Bootstrapped {
        client: client(&key)?,
        reused: false,
    })
}
