//! The droplet's web front: Caddy, driven through its admin API to serve the tenant's
//! tracking domains (spec 61.4).
//!
//! The admin API listens on a Unix socket that only Caddy's and the sidecar's containers
//! mount ([`genesis_protocol::front::CADDY_ADMIN_SOCKET`]), and Caddy refuses any request
//! whose `Origin` is not [`CADDY_ADMIN_ORIGIN`]. The tracking domains live in one route of
//! their own (`@id` [`TRACKING_ROUTE_ID`]), first in the HTTPS server: their host names
//! match it, it serves n8n's public paths ([`N8N_PUBLIC_PATHS`]) and answers 404 for the
//! rest, so a tracking domain never reaches the sidecar's command endpoint. Adding a host
//! to a route is what makes Caddy obtain its certificate.
//!
//! Caddy starts from its Caddyfile, which does not hold the route: the sidecar keeps the
//! list in its state directory and writes it again when it starts ([`TrackingDomains`]),
//! and the control plane sends the whole list again from time to time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use genesis_protocol::front::{
    CADDY_ADMIN_ORIGIN, MAX_TRACKING_DOMAINS, N8N_PUBLIC_PATHS, TRACKING_ROUTE_ID, is_host_name,
};
use serde_json::{Value, json};

/// Why the front could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// Caddy's admin API did not answer.
    #[error("Caddy's admin API did not answer: {0}")]
    Unreachable(String),
    /// Caddy answered with an error.
    #[error("Caddy refused the change ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Caddy's own message.
        message: String,
    },
    /// Caddy's configuration has no HTTPS server to add the route to.
    #[error("Caddy's configuration has no site to serve tracking domains from")]
    NoServer,
    /// A host is not a host name, or there are too many.
    #[error("{0}")]
    BadHosts(String),
    /// The sidecar's own settings do not describe a usable front.
    #[error("the web front's settings: {0}")]
    Settings(String),
}

impl FrontError {
    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        matches!(self, FrontError::Unreachable(_))
    }
}

/// Caddy's admin API, over its Unix socket.
#[derive(Debug)]
pub struct WebFront {
    http: reqwest::Client,
    /// Where n8n listens, as Caddy dials it (`n8n:5678`).
    n8n_dial: String,
    /// One change at a time: the route is read, then written.
    change: tokio::sync::Mutex<()>,
}

/// The base of every admin URL: the host must be the allowed origin, or Caddy refuses.
fn url(path: &str) -> String {
    format!("http://{CADDY_ADMIN_ORIGIN}{path}")
}

/// Checks and normalises a list of tracking hosts: lower case, no duplicates, sorted.
pub fn normalise_hosts(hosts: &[String]) -> Result<Vec<String>, FrontError> {
    let mut out: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    out.sort();
    out.dedup();
    if let Some(bad) = out.iter().find(|h| !is_host_name(h)) {
        return Err(FrontError::BadHosts(format!("{bad:?} is not a host name")));
    }
    if out.len() > MAX_TRACKING_DOMAINS {
        return Err(FrontError::BadHosts(format!(
            "{} tracking domains, at most {MAX_TRACKING_DOMAINS}",
            out.len()
        )));
    }
    Ok(out)
}

impl WebFront {
    /// A client of the admin API at `socket`; tracking domains are proxied to the n8n at
    /// `n8n_url` (`http://n8n:5678`).
    pub fn new(socket: &Path, n8n_url: &str) -> Result<Self, FrontError> {
        let parsed = reqwest::Url::parse(n8n_url)
            .map_err(|e| FrontError::Settings(format!("n8n's URL {n8n_url:?}: {e}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| FrontError::Settings(format!("n8n's URL {n8n_url:?} has no host")))?;
        let port = parsed.port_or_known_default().unwrap_or(5678);
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| FrontError::Settings(e.to_string()))?;
        Ok(Self {
            http,
            n8n_dial: format!("{host}:{port}"),
            change: tokio::sync::Mutex::new(()),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), FrontError> {
        let mut req = self.http.request(method, url(path)).header(
            reqwest::header::ORIGIN,
            format!("http://{CADDY_ADMIN_ORIGIN}"),
        );
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| FrontError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| FrontError::Unreachable(e.to_string()))?;
        Ok((status, text))
    }

    fn refused(status: u16, text: &str) -> FrontError {
        let message = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(300).collect());
        FrontError::Refused { status, message }
    }

    /// The route serving `hosts`: n8n's public paths, 404 for everything else.
    fn route(&self, hosts: &[String]) -> Value {
        json!({
            "@id": TRACKING_ROUTE_ID,
            "match": [{"host": hosts}],
            "handle": [{
                "handler": "subroute",
                "routes": [
                    {
                        "match": [{"path": N8N_PUBLIC_PATHS}],
                        "handle": [{
                            "handler": "reverse_proxy",
                            "upstreams": [{"dial": self.n8n_dial}],
                        }],
                    },
                    {"handle": [{"handler": "static_response", "status_code": 404}]},
                ],
            }],
            "terminal": true,
        })
    }

    /// The HTTPS server the site lives in: the first, by name, with a route that matches
    /// host names (the Caddyfile's site block).
    async fn site_server(&self) -> Result<String, FrontError> {
        let (status, text) = self
            .call(reqwest::Method::GET, "/config/apps/http/servers", None)
            .await?;
        if status != 200 {
            return Err(Self::refused(status, &text));
        }
        let servers: serde_json::Map<String, Value> =
            serde_json::from_str(&text).map_err(|_| FrontError::NoServer)?;
        let mut names: Vec<&String> = servers
            .iter()
            .filter(|(_, s)| {
                s["routes"].as_array().is_some_and(|routes| {
                    routes.iter().any(|r| {
                        r["match"]
                            .as_array()
                            .is_some_and(|m| m.iter().any(|m| m.get("host").is_some()))
                    })
                })
            })
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
            .first()
            .map(|n| (*n).clone())
            .ok_or(FrontError::NoServer)
    }

    /// Makes Caddy serve exactly `hosts` as tracking domains (none: the route goes).
    pub async fn serve_tracking(&self, hosts: &[String]) -> Result<Vec<String>, FrontError> {
        let hosts = normalise_hosts(hosts)?;
        let _one = self.change.lock().await;
        let id_path = format!("/id/{TRACKING_ROUTE_ID}");
        if hosts.is_empty() {
            let (status, text) = self.call(reqwest::Method::DELETE, &id_path, None).await?;
            return match status {
                200 => Ok(hosts),
                // Caddy answers 404 for an id it does not know: already gone.
                404 => Ok(hosts),
                _ => Err(Self::refused(status, &text)),
            };
        }
        let route = self.route(&hosts);
        // Replace the route where it is; if Caddy does not know it, put it first.
        let (status, text) = self
            .call(reqwest::Method::PATCH, &id_path, Some(&route))
            .await?;
        match status {
            200 => return Ok(hosts),
            404 => {}
            _ => return Err(Self::refused(status, &text)),
        }
        let server = self.site_server().await?;
        let (status, text) = self
            .call(
                reqwest::Method::PUT,
                &format!("/config/apps/http/servers/{server}/routes/0"),
                Some(&route),
            )
            .await?;
        if status == 200 {
            Ok(hosts)
        } else {
            Err(Self::refused(status, &text))
        }
    }
}

/// The tracking domains the control plane last asked for, kept in the state directory so a
/// restarted sidecar (or a restarted droplet, whose Caddy starts from its Caddyfile) serves
/// them again.
#[derive(Debug, Clone)]
pub struct TrackingDomains {
    path: PathBuf,
}

impl TrackingDomains {
    /// The list in `state_dir/tracking-domains.json`.
    pub fn in_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("tracking-domains.json"),
        }
    }

    /// The list saved (empty when none, or unreadable: the control plane sends it again).
    pub fn load(&self) -> Vec<String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<String>>(&b).ok())
            .and_then(|h| normalise_hosts(&h).ok())
            .unwrap_or_default()
    }

    /// Saves `hosts` (written to a temporary file, then renamed: never half a list).
    pub fn save(&self, hosts: &[String]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(hosts).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked_and_normalised() {
        let ok =
            normalise_hosts(&["Track.Acme.test".into(), "track.acme.test".into()]).expect("valid");
        assert_eq!(ok, vec!["track.acme.test".to_owned()]);
        for bad in [
            "localhost",
            "*.acme.test",
            "a..b",
            "acme.test:443",
            "-a.test",
        ] {
            assert!(
                matches!(normalise_hosts(&[bad.into()]), Err(FrontError::BadHosts(_))),
                "{bad}"
            );
        }
        let many: Vec<String> = (0..=MAX_TRACKING_DOMAINS)
            .map(|i| format!("t{i}.acme.test"))
            .collect();
        assert!(normalise_hosts(&many).is_err());
    }

    #[test]
    fn the_saved_list_survives_and_a_bad_file_is_no_list() {
        let dir = std::env::temp_dir().join(format!("front-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let saved = TrackingDomains::in_dir(&dir);
        assert!(saved.load().is_empty());
        saved.save(&["go.acme.test".into()]).expect("save");
        assert_eq!(saved.load(), vec!["go.acme.test".to_owned()]);
        std::fs::write(dir.join("tracking-domains.json"), "{").expect("write");
        assert!(saved.load().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
