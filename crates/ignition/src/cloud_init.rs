//! The droplet's cloud-init document (spec 50.3, 50.4; DESIGN §3.1): a `#cloud-config` that
//! writes `/opt/genesis/.env` (0600) and `/opt/genesis/docker-compose.yml`, then runs
//! `docker compose up -d`. Compose starts Caddy, then n8n, then the sidecar once n8n is
//! healthy, each with the resource limits of spec 50.3 and its image pinned by digest. The
//! simulator boots virtual droplets from this same document, so it is what the tests run.

use genesis_protocol::envfile::keys;
use serde_json::{Value, json};
use uuid::Uuid;

/// Where cloud-init writes the sidecar's settings.
pub const ENV_PATH: &str = "/opt/genesis/.env";
/// Where cloud-init writes the compose file.
pub const COMPOSE_PATH: &str = "/opt/genesis/docker-compose.yml";
/// DigitalOcean's cap on `user_data`.
pub const MAX_USER_DATA: usize = 64 * 1024;
/// The n8n container's name, which the sidecar manages through the Docker socket.
pub const N8N_CONTAINER: &str = "genesis-n8n";

/// Why a document cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudInitError {
    /// An image is not pinned by digest.
    #[error("image {image} is not pinned by digest (name@sha256:...)")]
    Unpinned {
        /// The image reference.
        image: String,
    },
    /// A value would break the env file (newline, or empty).
    #[error("{name} cannot go in the env file: {reason}")]
    BadValue {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The document is over DigitalOcean's 64 KiB.
    #[error("the cloud-init document is {0} bytes; DigitalOcean takes at most 64 KiB")]
    TooLarge(usize),
    /// Serialization failed.
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// What the sidecar needs to find its way home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnitionEnv {
    /// Control plane base URL.
    pub dashboard_url: String,
    /// The tenant.
    pub workspace_id: Uuid,
    /// The one-time handshake token (raw; only its hash is stored).
    pub provisioning_token: String,
    /// The tenant's region (spec 62).
    pub region: String,
}

/// The three images, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Reverse proxy.
    pub caddy: String,
    /// n8n 2.8.4.
    pub n8n: String,
    /// The sidecar.
    pub sidecar: String,
}

impl Images {
    fn check(&self, require_digests: bool) -> Result<(), CloudInitError> {
        if !require_digests {
            return Ok(());
        }
        for image in [&self.caddy, &self.n8n, &self.sidecar] {
            if !image.contains("@sha256:") {
                return Err(CloudInitError::Unpinned {
                    image: image.clone(),
                });
            }
        }
        Ok(())
    }
}

fn env_value(name: &'static str, v: &str) -> Result<String, CloudInitError> {
    if v.is_empty() {
        return Err(CloudInitError::BadValue {
            name,
            reason: "empty",
        });
    }
    if v.contains(['\n', '\r', '"']) {
        return Err(CloudInitError::BadValue {
            name,
            reason: "contains a newline or a quote",
        });
    }
    Ok(format!("{name}={v}\n"))
}

fn compose(images: &Images) -> Value {
    json!({
        "name": "genesis",
        "services": {
            "caddy": {
                "image": images.caddy,
                "restart": "unless-stopped",
                "ports": ["80:80", "443:443"],
                "volumes": ["caddy-data:/data"],
                "mem_limit": "64m",
                "cpus": 0.1,
            },
            "n8n": {
                "image": images.n8n,
                "container_name": N8N_CONTAINER,
                "restart": "unless-stopped",
                "depends_on": {"caddy": {"condition": "service_started"}},
                "environment": {
                    "N8N_DIAGNOSTICS_ENABLED": "false",
                    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
                    "N8N_PERSONALIZATION_ENABLED": "false",
                },
                "volumes": ["n8n-data:/home/node/.n8n"],
                "healthcheck": {
                    "test": ["CMD", "wget", "-qO-", "http://127.0.0.1:5678/healthz/readiness"],
                    "interval": "5s",
                    "retries": 30,
                },
                "mem_limit": "512m",
                "cpus": 0.5,
            },
            "sidecar": {
                "image": images.sidecar,
                "restart": "unless-stopped",
                "depends_on": {"n8n": {"condition": "service_healthy"}},
                "env_file": [ENV_PATH],
                "command": [
                    "--env-file", ENV_PATH,
                    "--n8n-url", "http://n8n:5678",
                    "--docker-container", N8N_CONTAINER,
                    "--state-dir", "/state",
                ],
                "volumes": ["/var/run/docker.sock:/var/run/docker.sock", "sidecar-state:/state", format!("{ENV_PATH}:{ENV_PATH}:ro")],
                "ports": ["8443:8443"],
                "mem_limit": "128m",
                "cpus": 0.1,
            },
        },
        "volumes": {"caddy-data": {}, "n8n-data": {}, "sidecar-state": {}},
    })
}

/// The `user_data` for one tenant's droplet. `require_digests` is true in production; the
/// simulator and tests may use tags.
pub fn render(
    env: &IgnitionEnv,
    images: &Images,
    require_digests: bool,
) -> Result<String, CloudInitError> {
    images.check(require_digests)?;
    let env_file = [
        env_value(keys::DASHBOARD_URL, &env.dashboard_url)?,
        env_value(keys::WORKSPACE_ID, &env.workspace_id.to_string())?,
        env_value(keys::PROVISIONING_TOKEN, &env.provisioning_token)?,
        env_value(keys::REGION, &env.region)?,
    ]
    .concat();
    let compose_yaml = serde_norway::to_string(&compose(images))
        .map_err(|e| CloudInitError::Yaml(e.to_string()))?;
    let doc = json!({
        "write_files": [
            {"path": ENV_PATH, "permissions": "0600", "owner": "root:root", "content": env_file},
            {"path": COMPOSE_PATH, "permissions": "0644", "owner": "root:root", "content": compose_yaml},
        ],
        "runcmd": [["docker", "compose", "-f", COMPOSE_PATH, "up", "-d"]],
    });
    let body = serde_norway::to_string(&doc).map_err(|e| CloudInitError::Yaml(e.to_string()))?;
    let text = format!("#cloud-config\n{body}");
    if text.len() > MAX_USER_DATA {
        return Err(CloudInitError::TooLarge(text.len()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> IgnitionEnv {
        IgnitionEnv {
            dashboard_url: "https://cp.example".into(),
            workspace_id: Uuid::nil(),
            provisioning_token: "pt-123".into(),
            region: "eu-west".into(),
        }
    }

    fn pinned() -> Images {
        let d = "@sha256:0000000000000000000000000000000000000000000000000000000000000000";
        Images {
            caddy: format!("caddy:2{d}"),
            n8n: format!("n8nio/n8n:2.8.4{d}"),
            sidecar: format!("ghcr.io/genesis/sidecar:0.1.0{d}"),
        }
    }

    #[test]
    fn the_document_carries_the_env_the_compose_file_and_the_order() {
        let text = render(&env(), &pinned(), true).expect("renders");
        assert!(text.starts_with("#cloud-config\n"));
        let doc: Value = serde_norway::from_str(&text[14..]).expect("yaml");
        let files = doc["write_files"].as_array().expect("files");
        let env_file = files[0]["content"].as_str().expect("env");
        let vars = genesis_protocol::envfile::parse(env_file);
        assert_eq!(
            vars.get("GENESIS_PROVISIONING_TOKEN").map(String::as_str),
            Some("pt-123")
        );
        assert_eq!(files[0]["permissions"], "0600");
        let compose: Value =
            serde_norway::from_str(files[1]["content"].as_str().expect("compose")).expect("yaml");
        let s = &compose["services"];
        assert_eq!(
            (s["n8n"]["mem_limit"].as_str(), s["n8n"]["cpus"].as_f64()),
            (Some("512m"), Some(0.5))
        );
        assert_eq!(
            (
                s["sidecar"]["mem_limit"].as_str(),
                s["sidecar"]["cpus"].as_f64()
            ),
            (Some("128m"), Some(0.1))
        );
        assert_eq!(
            (
                s["caddy"]["mem_limit"].as_str(),
                s["caddy"]["cpus"].as_f64()
            ),
            (Some("64m"), Some(0.1))
        );
        // Caddy, then n8n, then the sidecar once n8n is healthy.
        assert_eq!(
            s["n8n"]["depends_on"]["caddy"]["condition"],
            "service_started"
        );
        assert_eq!(
            s["sidecar"]["depends_on"]["n8n"]["condition"],
            "service_healthy"
        );
        assert_eq!(doc["runcmd"][0][1], "compose");
    }

    #[test]
    fn unpinned_images_and_unsafe_values_are_refused() {
        let mut tagged = pinned();
        tagged.n8n = "n8nio/n8n:2.8.4".into();
        assert_eq!(
            render(&env(), &tagged, true),
            Err(CloudInitError::Unpinned {
                image: "n8nio/n8n:2.8.4".into()
            })
        );
        assert!(
            render(&env(), &tagged, false).is_ok(),
            "tags are fine for the simulator"
        );
        let mut bad = env();
        bad.provisioning_token = "pt\nGENESIS_REGION=us-east".into();
        assert!(matches!(
            render(&bad, &pinned(), true),
            Err(CloudInitError::BadValue {
                name: "GENESIS_PROVISIONING_TOKEN",
                ..
            })
        ));
    }
}
