//! The configuration sections ignition needs: `[cloud]` (where droplets come from),
//! `[ignition]` (what they run and how long each step may take), `[vault]` (the master keys
//! credentials are encrypted under), `[sidecar]` (what sidecars are told at handshake) and
//! `[oauth]` (where tenants' OAuth tokens are refreshed).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use genesis_core::IgnitionStep;
use genesis_store::MasterKeys;
use serde::{Deserialize, Serialize};

use crate::config::Problem;

/// `[cloud]`: the DigitalOcean API, or `genesis sim-cloud` (same API, another URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// API base URL.
    #[serde(default = "default_cloud_url")]
    pub url: String,
    /// API token; ignition is off without one.
    #[serde(default)]
    pub token: Option<String>,
    /// Requests per minute this process may spend (DigitalOcean: 250).
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Requests per hour (DigitalOcean: 5,000).
    #[serde(default = "default_per_hour")]
    pub per_hour: u32,
}

fn default_cloud_url() -> String {
    "https://api.digitalocean.com".into()
}
fn default_per_minute() -> u32 {
    250
}
fn default_per_hour() -> u32 {
    5_000
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            url: default_cloud_url(),
            token: None,
            per_minute: default_per_minute(),
            per_hour: default_per_hour(),
        }
    }
}

/// `[ignition]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnitionConfig {
    /// The URL sidecars reach this control plane at; defaults to `http://<server.listen>`.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// The sidecar command endpoint, `{ip}` standing for the droplet's address.
    #[serde(default = "default_sidecar_url")]
    pub sidecar_url: String,
    /// Droplet size slug (spec 50.1).
    #[serde(default = "default_size")]
    pub droplet_size: String,
    /// Base image slug.
    #[serde(default = "default_image")]
    pub droplet_image: String,
    /// Refuse images not pinned by `@sha256:` digest.
    #[serde(default = "default_true")]
    pub require_digests: bool,
    /// Caddy image.
    #[serde(default = "default_caddy")]
    pub caddy_image: String,
    /// n8n image.
    #[serde(default = "default_n8n")]
    pub n8n_image: String,
    /// Sidecar image.
    #[serde(default = "default_sidecar_image")]
    pub sidecar_image: String,
    /// A template set directory instead of the built-in Golden Template.
    #[serde(default)]
    pub templates_dir: Option<String>,
    /// Step timeouts in seconds that differ from spec 41.1, by step code
    /// (`HANDSHAKE_PENDING = 600`).
    #[serde(default)]
    pub timeouts_s: BTreeMap<String, u64>,
    /// Ignition jobs this process runs at once.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Seconds an executor's claim on a saga lasts without renewal; after a crash, the next
    /// executor waits at most this long.
    #[serde(default = "default_lease_s")]
    pub lease_s: u64,
    /// Milliseconds after a droplet's create before it is first looked at, then between
    /// looks (each look is a request against DigitalOcean's 5,000 an hour). The defaults
    /// suit the simulator; against DigitalOcean, 40000 and 5000.
    #[serde(default = "default_poll_ms")]
    pub droplet_first_look_ms: u64,
    /// See `droplet_first_look_ms`.
    #[serde(default = "default_poll_ms")]
    pub droplet_poll_ms: u64,
    /// The queue set (Redis key prefix `genesis:{gov:<set>}`) shared by this fleet's workers.
    #[serde(default = "default_queue_set")]
    pub queue_set: String,
    /// Addresses or CIDRs allowed to SSH into droplets (the fleet firewall's port 22);
    /// empty: nobody.
    #[serde(default)]
    pub operator_ssh_cidrs: Vec<String>,
    /// The fleet's Cloud Firewall (created by name when missing, applied by the `genesis` tag).
    #[serde(default = "default_firewall_name")]
    pub firewall_name: String,
    /// Put droplets in their region's default VPC.
    #[serde(default = "default_true")]
    pub use_vpc: bool,
    /// Wildcard DNS domain naming droplets by address (`203-0-113-5.<suffix>`): Caddy's
    /// certificate and n8n's webhook URLs use that name.
    #[serde(default = "default_host_suffix")]
    pub host_suffix: String,
    /// ACME contact address for the droplets' certificates.
    #[serde(default)]
    pub acme_email: Option<String>,
    /// PEM file of a CA to trust for sidecar commands, besides the public roots (the
    /// simulator's Caddy uses its own internal CA).
    #[serde(default)]
    pub sidecar_ca_file: Option<String>,
    /// Where to send a command when `sidecar_url` refuses the connection (a simulated fleet
    /// where only some droplets have Caddy in front); unset in production.
    #[serde(default)]
    pub sidecar_url_fallback: Option<String>,
}

fn default_firewall_name() -> String {
    "genesis-droplets".into()
}
fn default_host_suffix() -> String {
    "sslip.io".into()
}

fn default_lease_s() -> u64 {
    60
}
fn default_poll_ms() -> u64 {
    250
}
fn default_queue_set() -> String {
    "fleet".into()
}

fn default_sidecar_url() -> String {
    "https://{host}/sidecar/v1/commands".into()
}
fn default_size() -> String {
    "s-1vcpu-1gb".into()
}
fn default_image() -> String {
    "ubuntu-24-04-x64".into()
}
fn default_true() -> bool {
    true
}
fn default_caddy() -> String {
    "caddy:2.8".into()
}
fn default_n8n() -> String {
    "n8nio/n8n:2.8.4".into()
}
fn default_sidecar_image() -> String {
    "ghcr.io/genesis/sidecar:0.1.0".into()
}
fn default_workers() -> u32 {
    32
}

/// Whether `raw` is an IPv4/IPv6 address or CIDR, as the firewall takes it.
pub fn is_cidr(raw: &str) -> bool {
    let (addr, prefix) = raw.split_once('/').unwrap_or((raw, ""));
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

impl IgnitionConfig {
    /// The droplets' network settings, checked.
    pub fn network(&self) -> Result<genesis_ignition::network::DropletNetwork, Problem> {
        if let Some(bad) = self.operator_ssh_cidrs.iter().find(|c| !is_cidr(c)) {
            return Err(problem(
                "ignition.operator_ssh_cidrs",
                format!("{bad:?} is not an address or CIDR (198.51.100.0/24)"),
            ));
        }
        if self.host_suffix.is_empty()
            || !self
                .host_suffix
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        {
            return Err(problem(
                "ignition.host_suffix",
                format!("{:?} is not a domain name", self.host_suffix),
            ));
        }
        Ok(genesis_ignition::network::DropletNetwork {
            firewall_name: self.firewall_name.clone(),
            operator_ssh_cidrs: self.operator_ssh_cidrs.clone(),
            use_vpc: self.use_vpc,
            host_suffix: self.host_suffix.clone(),
            acme_email: self.acme_email.clone(),
        })
    }
}

impl Default for IgnitionConfig {
    fn default() -> Self {
        Self {
            dashboard_url: None,
            sidecar_url: default_sidecar_url(),
            droplet_size: default_size(),
            droplet_image: default_image(),
            require_digests: true,
            caddy_image: default_caddy(),
            n8n_image: default_n8n(),
            sidecar_image: default_sidecar_image(),
            templates_dir: None,
            timeouts_s: BTreeMap::new(),
            workers: default_workers(),
            lease_s: default_lease_s(),
            droplet_first_look_ms: default_poll_ms(),
            droplet_poll_ms: default_poll_ms(),
            queue_set: default_queue_set(),
            operator_ssh_cidrs: Vec::new(),
            firewall_name: default_firewall_name(),
            use_vpc: true,
            host_suffix: default_host_suffix(),
            acme_email: None,
            sidecar_ca_file: None,
            sidecar_url_fallback: None,
        }
    }
}

impl IgnitionConfig {
    /// Step timeouts as the saga takes them.
    pub fn timeouts(&self) -> BTreeMap<IgnitionStep, Duration> {
        self.timeouts_s
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    IgnitionStep::from_code(&k.to_ascii_uppercase())?,
                    Duration::from_secs(*v),
                ))
            })
            .collect()
    }
}

/// `[vault]`: master keys by version (base64 of 32 bytes); `current` encrypts, every listed
/// version decrypts (so keys can rotate). `[vault.regions.<code>]` gives a region a ring of
/// its own for its tenants' secrets (spec 62.2); versions are unique across all rings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The version new secrets are encrypted under.
    #[serde(default)]
    pub current: Option<u32>,
    /// Version → key.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Region code → that region's own ring.
    #[serde(default)]
    pub regions: BTreeMap<String, RegionVaultConfig>,
}

/// `[vault.regions.<code>]`: one region's ring.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegionVaultConfig {
    /// The version the region's tenants' new secrets are encrypted under.
    pub current: u32,
    /// Version → key.
    pub keys: BTreeMap<String, String>,
}

/// A ring's keys, parsed: `field` names the table in errors (`vault`, `vault.regions.fra1`).
fn parse_ring(
    field: &str,
    keys: &BTreeMap<String, String>,
) -> Result<BTreeMap<u32, [u8; 32]>, Problem> {
    let mut out = BTreeMap::new();
    for (version, b64) in keys {
        let v: u32 = version.parse().map_err(|_| {
            problem(
                format!("{field}.keys.{version}"),
                "the version must be a number",
            )
        })?;
        let key: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                problem(
                    format!("{field}.keys.{version}"),
                    "must be 32 bytes in base64",
                )
            })?;
        out.insert(v, key);
    }
    Ok(out)
}

impl VaultConfig {
    /// The master keys, or a usage error saying `why` they are needed.
    pub fn required(&self, why: &str) -> Result<MasterKeys, crate::cmd::CliError> {
        self.master_keys()
            .map_err(|p| crate::cmd::CliError::Usage(p.to_string()))?
            .ok_or_else(|| {
                crate::cmd::CliError::Usage(format!(
                    "the vault has no master key (set [vault] current and keys): {why}"
                ))
            })
    }

    /// The master keys, or `None` when no key is configured.
    pub fn master_keys(&self) -> Result<Option<MasterKeys>, Problem> {
        let Some(current) = self.current else {
            return if self.keys.is_empty() && self.regions.is_empty() {
                Ok(None)
            } else {
                Err(problem(
                    "vault.current",
                    "is required when vault.keys or vault.regions is set",
                ))
            };
        };
        let mut keys = MasterKeys::new(current, parse_ring("vault", &self.keys)?)
            .map_err(|e| problem("vault.current", e.to_string()))?;
        for (code, ring) in &self.regions {
            let field = format!("vault.regions.{code}");
            let region = genesis_core::Region::parse(code).map_err(|_| {
                problem(
                    field.clone(),
                    format!(
                        "is not a region; the regions are {}",
                        genesis_core::Region::ALL.map(|r| r.code()).join(", ")
                    ),
                )
            })?;
            keys = keys
                .with_region(region, ring.current, parse_ring(&field, &ring.keys)?)
                .map_err(|e| problem(field, e.to_string()))?;
        }
        Ok(Some(keys))
    }
}

/// `[oauth]`: the platform's Google OAuth client, which the wizard's "Connect Gmail" uses
/// (spec 60.2), and Google's endpoints, where tokens are also refreshed (spec 43.3's
/// `credential_expired` heal). `genesis sim-cloud` serves fakes of all three endpoints.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Google's token endpoint.
    #[serde(default = "default_google_token_url")]
    pub google_token_url: String,
    /// Google's authorization endpoint.
    #[serde(default = "default_google_auth_url")]
    pub google_auth_url: String,
    /// OpenID's userinfo endpoint at Google.
    #[serde(default = "default_google_userinfo_url")]
    pub google_userinfo_url: String,
    /// The platform's OAuth client id; unset, "Connect Gmail" says it is not configured.
    #[serde(default)]
    pub google_client_id: Option<String>,
    /// Its secret (set it from the environment: `GENESIS_OAUTH__GOOGLE_CLIENT_SECRET`).
    #[serde(default)]
    pub google_client_secret: Option<String>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("google_token_url", &self.google_token_url)
            .field("google_auth_url", &self.google_auth_url)
            .field("google_userinfo_url", &self.google_userinfo_url)
            .field("google_client_id", &self.google_client_id)
            .finish_non_exhaustive()
    }
}

fn default_google_auth_url() -> String {
    "https://accounts.google.com/o/oauth2/v2/auth".into()
}

fn default_google_userinfo_url() -> String {
    "https://openidconnect.googleapis.com/v1/userinfo".into()
}

impl OAuthConfig {
    /// The platform's Google client, when both halves are set.
    pub fn google_app(&self) -> Option<genesis_control::providers::GoogleApp> {
        match (&self.google_client_id, &self.google_client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                Some(genesis_control::providers::GoogleApp {
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    auth_url: self.google_auth_url.clone(),
                    token_url: self.google_token_url.clone(),
                    userinfo_url: self.google_userinfo_url.clone(),
                })
            }
            _ => None,
        }
    }
}

/// `[dns]`: how the wizard's DNS stage checks and applies a tenant's records (spec 61.2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The name server checks ask, `IP:PORT`; unset, the system's resolvers.
    #[serde(default)]
    pub server: Option<String>,
    /// The Entri-like provider's API base URL; unset, tenants add records by hand.
    #[serde(default)]
    pub provider_url: Option<String>,
    /// Our application id at the provider.
    #[serde(default)]
    pub provider_application_id: Option<String>,
}

impl DnsConfig {
    /// The name server to ask, if one is set and valid.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_deref().and_then(|s| s.parse().ok())
    }

    /// The provider, if one is set.
    pub fn provider(
        &self,
        http: &reqwest::Client,
    ) -> Option<genesis_control::app::dns::SharedProvider> {
        self.provider_url.as_ref().map(|url| {
            std::sync::Arc::new(genesis_control::app::dns::EntriApi {
                url: url.clone(),
                application_id: self
                    .provider_application_id
                    .clone()
                    .unwrap_or_else(|| "genesis".into()),
                http: http.clone(),
            }) as genesis_control::app::dns::SharedProvider
        })
    }
}

/// `[ai]`: where the AI vendors' APIs are, for the wizard's key checks (spec 60.1 stage 4).
/// `genesis sim-cloud` serves fakes under `/openai`, `/anthropic` and `/relevance/{region}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    /// OpenAI's API base.
    #[serde(default = "default_openai_url")]
    pub openai_url: String,
    /// Anthropic's API base.
    #[serde(default = "default_anthropic_url")]
    pub anthropic_url: String,
    /// Relevance AI's API base, `{region}` standing for the project's region.
    #[serde(default = "default_relevance_url")]
    pub relevance_url: String,
}

fn default_openai_url() -> String {
    genesis_control::providers::Providers::default().openai_url
}

fn default_anthropic_url() -> String {
    genesis_control::providers::Providers::default().anthropic_url
}

fn default_relevance_url() -> String {
    genesis_control::providers::Providers::default().relevance_url
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            openai_url: default_openai_url(),
            anthropic_url: default_anthropic_url(),
            relevance_url: default_relevance_url(),
        }
    }
}

fn default_google_token_url() -> String {
    genesis_ignition::oauth::GOOGLE_TOKEN_URL.into()
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            google_token_url: default_google_token_url(),
            google_auth_url: default_google_auth_url(),
            google_userinfo_url: default_google_userinfo_url(),
            google_client_id: None,
            google_client_secret: None,
        }
    }
}

/// `[standby]`: the hot-standby pool of warm blank droplets (spec 55.4 strategy 3) that
/// serves a waking High-Priority tenant while its own droplet boots.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandbyConfig {
    /// Standbys in all, spread evenly over the regions (spec 55.4: 30). 0 turns the pool off.
    #[serde(default = "default_standby_total")]
    pub total: usize,
    /// Per-region sizes that replace the even spread for the regions they name.
    #[serde(default)]
    pub regions: std::collections::BTreeMap<String, usize>,
}

fn default_standby_total() -> usize {
    30
}

impl Default for StandbyConfig {
    fn default() -> Self {
        Self {
            total: default_standby_total(),
            regions: Default::default(),
        }
    }
}

impl StandbyConfig {
    /// Warm standbys wanted per region (unknown region names are refused by validation).
    pub fn sizes(&self) -> std::collections::BTreeMap<genesis_core::Region, usize> {
        let mut sizes = genesis_control::workers::standby::StandbySettings::spread(self.total);
        for (name, n) in &self.regions {
            if let Ok(r) = genesis_core::Region::parse(name) {
                sizes.insert(r, *n);
            }
        }
        sizes
    }
}

/// `[dr]`: disaster recovery (spec 66). How a region's outage is confirmed, and whether the
/// platform declares a failed region's failover on its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrConfig {
    /// Seconds a region's failed verdicts must hold before it is confirmed failed (and
    /// clear ones before its incident closes). Default 180.
    #[serde(default)]
    pub outage_confirm_s: Option<u64>,
    /// Declare the failover of a region confirmed failed this many seconds ago, without an
    /// operator. Unset (the default): an operator confirms with `genesis dr failover`.
    /// Never moves a tenant out of its residency area.
    #[serde(default)]
    pub auto_failover_after_s: Option<u64>,
}

impl DrConfig {
    /// The region watch's settings.
    pub fn region_watch(&self) -> genesis_control::workers::region_watch::RegionWatchSettings {
        let defaults = genesis_control::workers::region_watch::RegionWatchSettings::default();
        genesis_control::workers::region_watch::RegionWatchSettings {
            confirm_after: self
                .outage_confirm_s
                .map_or(defaults.confirm_after, std::time::Duration::from_secs),
            auto_failover_after: self
                .auto_failover_after_s
                .map(std::time::Duration::from_secs),
            ..defaults
        }
    }
}

/// `[sidecar]`: what every sidecar is told at its handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarSection {
    /// Seconds between heartbeats (spec 54.1: 60).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_s: u64,
    /// Seconds between metrics reports (spec 44.2: 900).
    #[serde(default = "default_metrics")]
    pub metrics_interval_s: u64,
}

fn default_heartbeat() -> u64 {
    60
}
fn default_metrics() -> u64 {
    900
}

impl Default for SidecarSection {
    fn default() -> Self {
        Self {
            heartbeat_interval_s: default_heartbeat(),
            metrics_interval_s: default_metrics(),
        }
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

/// Every problem of these sections.
pub fn problems(
    cloud: &CloudConfig,
    ignition: &IgnitionConfig,
    vault: &VaultConfig,
    sidecar: &SidecarSection,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if reqwest::Url::parse(&cloud.url).is_err() {
        out.push(problem("cloud.url", "not a URL"));
    }
    if cloud.per_minute == 0 || cloud.per_hour == 0 {
        out.push(problem(
            "cloud.per_minute",
            "the request budget must be positive",
        ));
    }
    if !(ignition.sidecar_url.contains("{ip}") || ignition.sidecar_url.contains("{host}")) {
        out.push(problem(
            "ignition.sidecar_url",
            "must contain {host} (the droplet's name) or {ip} (its address)",
        ));
    }
    if let Err(p) = ignition.network() {
        out.push(p);
    }
    for k in ignition.timeouts_s.keys() {
        // Any case: environment overrides arrive lower-cased.
        if IgnitionStep::from_code(&k.to_ascii_uppercase()).is_none() {
            out.push(problem(
                format!("ignition.timeouts_s.{k}"),
                format!(
                    "not a step (one of {})",
                    IgnitionStep::ALL.map(IgnitionStep::code).join(", ")
                ),
            ));
        }
    }
    if ignition.lease_s == 0 {
        out.push(problem("ignition.lease_s", "must be at least 1"));
    }
    if ignition.droplet_poll_ms == 0 {
        out.push(problem("ignition.droplet_poll_ms", "must be at least 1"));
    }
    if ignition.workers == 0 {
        out.push(problem("ignition.workers", "must be at least 1"));
    }
    if let Err(p) = vault.master_keys() {
        out.push(p);
    }
    if sidecar.heartbeat_interval_s == 0 || sidecar.metrics_interval_s == 0 {
        out.push(problem(
            "sidecar.heartbeat_interval_s",
            "intervals must be positive",
        ));
    }
    out
}
