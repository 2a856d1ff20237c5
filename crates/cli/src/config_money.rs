//! `[wallet]`, `[managed]` and `[payments]`: the Genesis Wallet's rules, the wholesale
//! vendors behind the managed-service gateway, and the payment provider behind top-ups
//! (issue 23).

use std::path::PathBuf;
use std::sync::Arc;

use genesis_core::services::ServiceMatrix;
use serde::{Deserialize, Serialize};

use crate::cmd::CliError;

/// `[wallet]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Refuse managed calls the balance does not cover (spec 58.2). Off: calls go ahead
    /// and are still metered.
    #[serde(default = "default_true")]
    pub kill_switch_enabled: bool,
    /// How long a managed call's reservation may wait for its post or void, seconds.
    #[serde(default = "default_hold_timeout_s")]
    pub hold_timeout_s: i32,
    /// A service matrix to use instead of the built-in `config/service-matrix.toml`.
    #[serde(default)]
    pub service_matrix: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}

fn default_hold_timeout_s() -> i32 {
    120
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self {
            kill_switch_enabled: true,
            hold_timeout_s: default_hold_timeout_s(),
            service_matrix: None,
        }
    }
}

impl WalletConfig {
    /// The wallet's settings, with the service matrix read and checked.
    pub fn settings(&self) -> Result<genesis_control::app::wallet::WalletSettings, CliError> {
        let matrix = match &self.service_matrix {
            None => ServiceMatrix::builtin().clone(),
            Some(path) => read_matrix(path)?,
        };
        // Longer than any vendor call may take, so no post comes after its hold expired.
        let min = genesis_control::app::managed::UPSTREAM_TIMEOUT.as_secs() as i32 + 30;
        if !(min..=86_400).contains(&self.hold_timeout_s) {
            return Err(CliError::Usage(format!(
                "wallet.hold_timeout_s must be between {min} and 86400"
            )));
        }
        Ok(genesis_control::app::wallet::WalletSettings {
            kill_switch_enabled: self.kill_switch_enabled,
            hold_timeout_s: self.hold_timeout_s,
            matrix: Arc::new(matrix),
        })
    }
}

/// Reads and checks a service matrix file.
pub fn read_matrix(path: &std::path::Path) -> Result<ServiceMatrix, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    ServiceMatrix::parse(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// `[managed]`: where the wholesale vendors are and Genesis's keys with them. A vendor
/// without its key is not offered (its managed calls answer 503).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedConfig {
    /// Google's API host.
    #[serde(default = "default_google_url")]
    pub google_url: String,
    /// The Custom Search JSON API key.
    #[serde(default)]
    pub cse_key: Option<String>,
    /// The programmable search engine's id.
    #[serde(default)]
    pub cse_cx: Option<String>,
    /// ZeroBounce's API host.
    #[serde(default = "default_zerobounce_url")]
    pub zerobounce_url: String,
    /// ZeroBounce's key.
    #[serde(default)]
    pub zerobounce_key: Option<String>,
    /// Apify's API host.
    #[serde(default = "default_apify_url")]
    pub apify_url: String,
    /// Apify's token.
    #[serde(default)]
    pub apify_token: Option<String>,
    /// The Actors tenants may run; each is priced at the matrix's Apify price.
    #[serde(default = "default_apify_actors")]
    pub apify_actors: Vec<String>,
    /// Where the proxy door listens for tenants' CONNECT requests (`0.0.0.0:3128`); no door
    /// without it.
    #[serde(default)]
    pub proxy_listen: Option<std::net::SocketAddr>,
    /// The residential network's proxy endpoint (`host:port`).
    #[serde(default)]
    pub proxy_addr: Option<String>,
    /// Genesis's account with the network.
    #[serde(default)]
    pub proxy_username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub proxy_password: Option<String>,
    /// The ports tenants may tunnel to.
    #[serde(default = "default_proxy_ports")]
    pub proxy_ports: Vec<u16>,
    /// Let tenants name loopback and private addresses (a demo on one machine only).
    #[serde(default)]
    pub proxy_allow_private_targets: bool,
}

fn default_proxy_ports() -> Vec<u16> {
    vec![443, 80]
}

impl std::fmt::Debug for ManagedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedConfig")
            .field("google_url", &self.google_url)
            .field("zerobounce_url", &self.zerobounce_url)
            .field("apify_url", &self.apify_url)
            .field("apify_actors", &self.apify_actors)
            .field("proxy_listen", &self.proxy_listen)
            .field("proxy_addr", &self.proxy_addr)
            .finish_non_exhaustive()
    }
}

fn default_apify_url() -> String {
    genesis_control::app::managed::Upstreams::real().apify_url
}

fn default_apify_actors() -> Vec<String> {
    genesis_control::app::managed::Upstreams::real().apify_actors
}

fn default_google_url() -> String {
    genesis_control::app::managed::Upstreams::real().google_url
}

fn default_zerobounce_url() -> String {
    genesis_control::app::managed::Upstreams::real().zerobounce_url
}

impl Default for ManagedConfig {
    fn default() -> Self {
        Self {
            google_url: default_google_url(),
            cse_key: None,
            cse_cx: None,
            zerobounce_url: default_zerobounce_url(),
            zerobounce_key: None,
            apify_url: default_apify_url(),
            apify_token: None,
            apify_actors: default_apify_actors(),
            proxy_listen: None,
            proxy_addr: None,
            proxy_username: None,
            proxy_password: None,
            proxy_ports: default_proxy_ports(),
            proxy_allow_private_targets: false,
        }
    }
}

impl ManagedConfig {
    /// The gateway's upstreams.
    pub fn upstreams(&self) -> genesis_control::app::managed::Upstreams {
        genesis_control::app::managed::Upstreams {
            google_url: self.google_url.trim_end_matches('/').to_owned(),
            cse_key: self.cse_key.clone().filter(|k| !k.is_empty()),
            cse_cx: self.cse_cx.clone().filter(|k| !k.is_empty()),
            zerobounce_url: self.zerobounce_url.trim_end_matches('/').to_owned(),
            zerobounce_key: self.zerobounce_key.clone().filter(|k| !k.is_empty()),
            apify_url: self.apify_url.trim_end_matches('/').to_owned(),
            apify_token: self.apify_token.clone().filter(|k| !k.is_empty()),
            apify_actors: self.apify_actors.clone(),
            proxy: match (&self.proxy_addr, &self.proxy_username, &self.proxy_password) {
                (Some(addr), Some(user), Some(password)) if !addr.is_empty() => {
                    Some(genesis_control::app::proxy_tunnel::ResidentialProxy {
                        addr: addr.clone(),
                        username: user.clone(),
                        password: password.clone(),
                        ports: self.proxy_ports.clone(),
                        allow_private_targets: self.proxy_allow_private_targets,
                    })
                }
                _ => None,
            },
        }
    }
}

/// `[payments]`: the payment provider (Stripe's API) that top-ups charge. Without a secret
/// key and a webhook secret, top-ups are not offered.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The API's base.
    #[serde(default = "default_payments_url")]
    pub api_url: String,
    /// The secret key (`sk_…`).
    #[serde(default)]
    pub secret_key: Option<String>,
    /// The webhook endpoint's signing secret (`whsec_…`), shown when the endpoint
    /// (`https://<control plane>/api/v1/payments/webhook`) was registered.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// How far a webhook's timestamp may be from our clock, seconds.
    #[serde(default = "default_tolerance_s")]
    pub tolerance_s: i64,
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsConfig")
            .field("api_url", &self.api_url)
            .field("tolerance_s", &self.tolerance_s)
            .finish_non_exhaustive()
    }
}

fn default_payments_url() -> String {
    "https://api.stripe.com".into()
}

fn default_tolerance_s() -> i64 {
    genesis_control::app::payments::DEFAULT_TOLERANCE_S
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            api_url: default_payments_url(),
            secret_key: None,
            webhook_secret: None,
            tolerance_s: default_tolerance_s(),
        }
    }
}

impl PaymentsConfig {
    /// The provider, when both secrets are set; a half-configured provider stops the start.
    pub fn provider(
        &self,
    ) -> Result<Option<genesis_control::app::payments::PaymentProvider>, CliError> {
        let key = self.secret_key.clone().filter(|k| !k.is_empty());
        let hook = self.webhook_secret.clone().filter(|k| !k.is_empty());
        if !(1..=3600).contains(&self.tolerance_s) {
            return Err(CliError::Usage(
                "payments.tolerance_s must be between 1 and 3600".into(),
            ));
        }
        match (key, hook) {
            (None, None) => Ok(None),
            (Some(secret_key), Some(webhook_secret)) => {
                Ok(Some(genesis_control::app::payments::PaymentProvider {
                    api_url: self.api_url.trim_end_matches('/').to_owned(),
                    secret_key,
                    webhook_secret,
                    tolerance_s: self.tolerance_s,
                }))
            }
            _ => Err(CliError::Usage(
                "payments needs both secret_key and webhook_secret (or neither)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_matrix_stops_the_start_with_its_reason() {
        let dir = std::env::temp_dir().join(format!("matrix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("m.toml");
        std::fs::write(
            &path,
            genesis_core::services::BUILTIN
                .replace("wholesale = \"0.004\"", "wholesale = \"0.006\""),
        )
        .expect("write");
        let cfg = WalletConfig {
            service_matrix: Some(path.clone()),
            ..Default::default()
        };
        let err = cfg.settings().expect_err("refused").to_string();
        assert!(
            err.contains("google_cse") && err.contains("below its wholesale cost"),
            "{err}"
        );
        let short = WalletConfig {
            hold_timeout_s: 5,
            ..Default::default()
        };
        assert!(short.settings().is_err());
        assert!(WalletConfig::default().settings().is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
