//! The droplet's cloud-init document (spec 50.3, 50.4; DESIGN §3.1), for DigitalOcean's
//! `ubuntu-24-04-x64` image:
//!
//! 1. `packages` installs Docker and its compose plugin from Ubuntu's own archive
//!    (`docker.io`, `docker-compose-v2`): the base image has no Docker, and Ubuntu's packages
//!    need no third-party repository or key.
//! 2. `write_files` writes `/opt/genesis/.env` (0600), the compose file and the Caddyfile.
//! 3. `runcmd` asks the metadata service for the droplet's public address, appends its
//!    hostname (`203-0-113-5.<host suffix>`) and public URL to the env file, and runs
//!    `docker compose up -d`.
//!
//! Compose starts Caddy, then n8n, then the sidecar once n8n is healthy, each with the
//! resource limits of spec 50.3. Only Caddy publishes ports (80 and 443); it serves HTTPS
//! with an automatic certificate for the droplet's hostname, sends `/sidecar/*` to the
//! sidecar and n8n's production webhook paths to n8n, and answers 404 to anything else. The
//! sidecar trusts `X-Forwarded-For` only from Caddy's fixed address on the compose network.
//! n8n's `WEBHOOK_URL` is the public URL, so the URLs it and the sidecar report are the ones
//! the world can call. The simulator boots virtual droplets from this same document.

use genesis_protocol::envfile::keys;
use serde_json::{Value, json};
use uuid::Uuid;

/// Where cloud-init writes the sidecar's settings.
pub const ENV_PATH: &str = "/opt/genesis/.env";
/// Where cloud-init writes the compose file.
pub const COMPOSE_PATH: &str = "/opt/genesis/docker-compose.yml";
/// Where cloud-init writes Caddy's configuration.
pub const CADDYFILE_PATH: &str = "/opt/genesis/Caddyfile";
/// The compose network's range, and Caddy's fixed address on it (the one proxy the sidecar
/// trusts to name a request's real source).
pub const COMPOSE_SUBNET: &str = "172.30.0.0/24";
/// Caddy's address on the compose network.
pub const CADDY_ADDRESS: &str = "172.30.0.2";
/// The env-file key cloud-init adds at boot: the droplet's public hostname.
pub const PUBLIC_HOST_KEY: &str = "GENESIS_PUBLIC_HOST";
/// The env-file key cloud-init adds at boot: `https://<hostname>`.
pub const PUBLIC_URL_KEY: &str = "GENESIS_PUBLIC_URL";
/// n8n's production paths (its `N8N_ENDPOINT_*` defaults) that Caddy lets through.
pub use genesis_protocol::front::N8N_PUBLIC_PATHS;
use genesis_protocol::front::{CADDY_ADMIN_DIR, CADDY_ADMIN_ORIGIN, CADDY_ADMIN_SOCKET};
/// DigitalOcean's metadata address of the droplet's public IPv4 address.
const METADATA_PUBLIC_IPV4: &str =
    "http://169.254.169.254/metadata/v1/interfaces/public/0/ipv4/address";
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
    /// The host suffix or ACME address would break the document.
    #[error("{name} is not usable: {reason}")]
    BadSetting {
        /// The setting.
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
    let public_url = format!("${{{PUBLIC_URL_KEY}:?the droplet's public URL}}");
    let public_host = format!("${{{PUBLIC_HOST_KEY}:?the droplet's public hostname}}");
    json!({
        "name": "genesis",
        "services": {
            "caddy": {
                "image": images.caddy,
                "restart": "unless-stopped",
                "ports": ["80:80", "443:443"],
                "environment": { PUBLIC_HOST_KEY: public_host },
                "volumes": [
                    "caddy-data:/data",
                    "caddy-config:/config",
                    format!("caddy-admin:{CADDY_ADMIN_DIR}"),
                    format!("{CADDYFILE_PATH}:/etc/caddy/Caddyfile:ro"),
                ],
                "networks": {"genesis": {"ipv4_address": CADDY_ADDRESS}},
                "mem_limit": "64m",
                "cpus": 0.1,
            },
            "n8n": {
                "image": images.n8n,
                "container_name": N8N_CONTAINER,
                "restart": "unless-stopped",
                "depends_on": {"caddy": {"condition": "service_started"}},
                "environment": {
                    "N8N_HOST": public_host,
                    "N8N_PROTOCOL": "https",
                    "N8N_PORT": "5678",
                    "WEBHOOK_URL": format!("{public_url}/"),
                    "N8N_PROXY_HOPS": "1",
                    "N8N_DIAGNOSTICS_ENABLED": "false",
                    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
                    "N8N_PERSONALIZATION_ENABLED": "false",
                },
                "volumes": ["n8n-data:/home/node/.n8n"],
                "networks": ["genesis"],
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
                "command": [
                    "--env-file", ENV_PATH,
                    "--n8n-url", "http://n8n:5678",
                    "--webhook-base-url", public_url,
                    "--listen", "0.0.0.0:8443",
                    "--trusted-proxy", CADDY_ADDRESS,
                    "--docker-container", N8N_CONTAINER,
                    "--state-dir", "/state",
                    "--caddy-admin", CADDY_ADMIN_SOCKET,
                    // Emergency support keys (spec 63.3) go to the host's root account, which
                    // the fleet firewall opens to the operators' ranges only.
                    "--authorized-keys", "/host-ssh/authorized_keys",
                ],
                "volumes": ["/var/run/docker.sock:/var/run/docker.sock", "sidecar-state:/state", format!("caddy-admin:{CADDY_ADMIN_DIR}"), format!("{ENV_PATH}:{ENV_PATH}:ro"), "/root/.ssh:/host-ssh"],
                "networks": ["genesis"],
                "mem_limit": "128m",
                "cpus": 0.1,
            },
        },
        "networks": {"genesis": {"ipam": {"config": [{"subnet": COMPOSE_SUBNET}]}}},
        "volumes": {"caddy-data": {}, "caddy-config": {}, "caddy-admin": {}, "n8n-data": {}, "sidecar-state": {}},
    })
}

/// Caddy's configuration: `upstreams` are the sidecar's and n8n's addresses (`sidecar:8443`
/// and `n8n:5678` on the droplet). Public so the simulator can run the same file in front of
/// a virtual droplet.
pub fn caddyfile(site: &str, sidecar: &str, n8n: &str, globals: &str) -> String {
    let paths = N8N_PUBLIC_PATHS.join(" ");
    format!(
        "{{\n{globals}}}\n\n{site} {{\n\thandle /sidecar/* {{\n\t\treverse_proxy {sidecar}\n\t}}\n\t@n8n path {paths}\n\thandle @n8n {{\n\t\treverse_proxy {n8n}\n\t}}\n\thandle {{\n\t\trespond 404\n\t}}\n}}\n"
    )
}

/// The global options of the droplet's Caddy: the admin API on a Unix socket that only the
/// sidecar shares (`genesis_protocol::front`), refusing requests whose `Origin` is not its
/// own, and the ACME contact.
fn droplet_globals(acme_email: Option<&str>) -> String {
    let mut g = format!(
        "\tadmin unix/{CADDY_ADMIN_SOCKET} {{\n\t\torigins {CADDY_ADMIN_ORIGIN}\n\t\tenforce_origin\n\t}}\n",
    );
    if let Some(email) = acme_email {
        g.push_str(&format!("\temail {email}\n"));
    }
    g
}

/// The boot script that names the droplet: its public address from the metadata service,
/// as `<a-b-c-d>.<suffix>`, appended to the env file for compose and the sidecar.
fn name_script(host_suffix: &str) -> String {
    format!(
        "set -eu\nip=$(curl -fsS --retry 30 --retry-delay 2 --retry-connrefused {METADATA_PUBLIC_IPV4})\nhost=\"$(printf %s \"$ip\" | tr . -).{host_suffix}\"\nprintf '{PUBLIC_HOST_KEY}=%s\\n{PUBLIC_URL_KEY}=https://%s\\n' \"$host\" \"$host\" >> {ENV_PATH}\n"
    )
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 200
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// The `user_data` for one tenant's droplet. `require_digests` is true in production; the
/// simulator and tests may use tags.
pub fn render(
    env: &IgnitionEnv,
    images: &Images,
    network: &crate::network::DropletNetwork,
    require_digests: bool,
) -> Result<String, CloudInitError> {
    images.check(require_digests)?;
    if !valid_domain(&network.host_suffix) {
        return Err(CloudInitError::BadSetting {
            name: "host_suffix",
            reason: "not a domain name",
        });
    }
    if let Some(e) = &network.acme_email
        && (!e.contains('@') || e.chars().any(|c| c.is_whitespace() || c == '{' || c == '}'))
    {
        return Err(CloudInitError::BadSetting {
            name: "acme_email",
            reason: "not an email address",
        });
    }
    let env_file = [
        env_value(keys::DASHBOARD_URL, &env.dashboard_url)?,
        env_value(keys::WORKSPACE_ID, &env.workspace_id.to_string())?,
        env_value(keys::PROVISIONING_TOKEN, &env.provisioning_token)?,
        env_value(keys::REGION, &env.region)?,
    ]
    .concat();
    let compose_yaml = serde_norway::to_string(&compose(images))
        .map_err(|e| CloudInitError::Yaml(e.to_string()))?;
    let caddy = caddyfile(
        &format!("{{${PUBLIC_HOST_KEY}}}"),
        "sidecar:8443",
        "n8n:5678",
        &droplet_globals(network.acme_email.as_deref()),
    );
    let doc = json!({
        "package_update": true,
        "packages": ["docker.io", "docker-compose-v2"],
        "write_files": [
            {"path": ENV_PATH, "permissions": "0600", "owner": "root:root", "content": env_file},
            {"path": COMPOSE_PATH, "permissions": "0644", "owner": "root:root", "content": compose_yaml},
            {"path": CADDYFILE_PATH, "permissions": "0644", "owner": "root:root", "content": caddy},
        ],
        "runcmd": [
            ["sh", "-c", name_script(&network.host_suffix)],
            ["systemctl", "enable", "--now", "docker"],
            ["docker", "compose", "--env-file", ENV_PATH, "-f", COMPOSE_PATH, "up", "-d"],
        ],
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
        let text = render(&env(), &pinned(), &Default::default(), true).expect("renders");
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
        assert_eq!(doc["runcmd"][2][1], "compose");
        // Only Caddy publishes ports, and only 80 and 443.
        assert_eq!(s["caddy"]["ports"], json!(["80:80", "443:443"]));
        assert!(s["n8n"].get("ports").is_none() && s["sidecar"].get("ports").is_none());
        // n8n and the sidecar both use the public URL cloud-init computes at boot.
        assert!(
            s["n8n"]["environment"]["WEBHOOK_URL"]
                .as_str()
                .is_some_and(|u| u.starts_with("${GENESIS_PUBLIC_URL"))
        );
        let args: Vec<&str> = s["sidecar"]["command"]
            .as_array()
            .expect("argv")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1]);
        assert_eq!(after("--trusted-proxy"), Some(CADDY_ADDRESS));
        assert!(after("--webhook-base-url").is_some_and(|u| u.starts_with("${GENESIS_PUBLIC_URL")));
        // Caddy's admin socket is shared with the sidecar, and with nobody else.
        assert_eq!(after("--caddy-admin"), Some(CADDY_ADMIN_SOCKET));
        // Support SSH keys reach the host's root account, and only the sidecar's mount.
        assert_eq!(
            after("--authorized-keys"),
            Some("/host-ssh/authorized_keys")
        );
        let ssh = |svc: &str| {
            s[svc]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|m| m == "/root/.ssh:/host-ssh"))
        };
        assert!(ssh("sidecar") && !ssh("n8n") && !ssh("caddy"));
        let mounts = |svc: &str| {
            s[svc]["volumes"]
                .as_array()
                .is_some_and(|v| v.iter().any(|m| m == "caddy-admin:/run/caddy-admin"))
        };
        assert!(mounts("caddy") && mounts("sidecar") && !mounts("n8n"));
        assert_eq!(
            s["caddy"]["networks"]["genesis"]["ipv4_address"],
            CADDY_ADDRESS
        );
        assert_eq!(doc["packages"], json!(["docker.io", "docker-compose-v2"]));
    }

    #[test]
    fn a_bad_host_suffix_or_acme_address_is_refused() {
        let mut net = crate::network::DropletNetwork {
            host_suffix: "evil.example\nruncmd".into(),
            ..Default::default()
        };
        assert!(matches!(
            render(&env(), &pinned(), &net, true),
            Err(CloudInitError::BadSetting {
                name: "host_suffix",
                ..
            })
        ));
        net.host_suffix = "droplets.example.com".into();
        net.acme_email = Some("ops@example.com }".into());
        assert!(matches!(
            render(&env(), &pinned(), &net, true),
            Err(CloudInitError::BadSetting {
                name: "acme_email",
                ..
            })
        ));
    }

    #[test]
    fn unpinned_images_and_unsafe_values_are_refused() {
        let mut tagged = pinned();
        tagged.n8n = "n8nio/n8n:2.8.4".into();
        assert_eq!(
            render(&env(), &tagged, &Default::default(), true),
            Err(CloudInitError::Unpinned {
                image: "n8nio/n8n:2.8.4".into()
            })
        );
        assert!(
            render(&env(), &tagged, &Default::default(), false).is_ok(),
            "tags are fine for the simulator"
        );
        let mut bad = env();
        bad.provisioning_token = "pt\nGENESIS_REGION=us-east".into();
        assert!(matches!(
            render(&bad, &pinned(), &Default::default(), true),
            Err(CloudInitError::BadValue {
                name: "GENESIS_PROVISIONING_TOKEN",
                ..
            })
        ));
    }
}
