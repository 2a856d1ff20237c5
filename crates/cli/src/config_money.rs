//! `[wallet]` and `[managed]`: the Genesis Wallet's rules and the wholesale vendors behind
//! the managed-service gateway (issue 23).

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
}

impl std::fmt::Debug for ManagedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedConfig")
            .field("google_url", &self.google_url)
            .field("zerobounce_url", &self.zerobounce_url)
            .finish_non_exhaustive()
    }
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
