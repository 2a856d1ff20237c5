//! Configuration: one TOML file plus `GENESIS_*` environment overrides
//! (`GENESIS_DATABASE__URL` sets `database.url`; `__` separates levels).
//!
//! Loading never half-succeeds: [`Config::load`] returns every problem it finds, each naming
//! the field, and `genesis config check` prints them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use genesis_core::{LegacyTenant, Region, WorkspaceId};
use genesis_store::{Database, DbOptions, Pooler, RegionalStore};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

/// Top-level sections, the only prefixes environment overrides may use.
/// The configuration's sections, as `GENESIS_<SECTION>__<KEY>` names them: read from the
/// configuration's own shape, so a new section is settable from the environment the day it
/// is added (a hand-kept list once forgot `ai` and `dns`, and the demo's wizard talked to
/// the real vendors).
fn sections() -> Vec<String> {
    serde_json::to_value(Config::default())
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default()
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// PostgreSQL.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Redis.
    #[serde(default)]
    pub redis: RedisConfig,
    /// The Ohio legacy tenant (spec 3); absent when there is none.
    #[serde(default)]
    pub ohio: Option<OhioConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The cloud API.
    #[serde(default)]
    pub cloud: crate::config_ignition::CloudConfig,
    /// Ignition.
    #[serde(default)]
    pub ignition: crate::config_ignition::IgnitionConfig,
    /// The credential vault's master keys.
    #[serde(default)]
    pub vault: crate::config_ignition::VaultConfig,
    /// What sidecars are told at handshake.
    #[serde(default)]
    pub sidecar: crate::config_ignition::SidecarSection,
    /// OAuth providers' token endpoints (the watchdog refreshes expired tokens).
    #[serde(default)]
    pub oauth: crate::config_ignition::OAuthConfig,
    /// The AI vendors the wizard checks keys with.
    #[serde(default)]
    pub ai: crate::config_ignition::AiConfig,
    /// The wizard's DNS checks and provider.
    #[serde(default)]
    pub dns: crate::config_ignition::DnsConfig,
    /// The hot-standby pool (spec 55.4 strategy 3).
    #[serde(default)]
    pub standby: crate::config_ignition::StandbyConfig,
    /// Disaster recovery (spec 66).
    #[serde(default)]
    pub dr: crate::config_ignition::DrConfig,
    /// God Mode's operator sign-in (spec 44).
    #[serde(default)]
    pub god_mode: GodModeConfig,
    /// The Genesis Wallet (spec 58).
    #[serde(default)]
    pub wallet: crate::config_money::WalletConfig,
    /// The wholesale vendors of the managed-service gateway (spec 57.2).
    #[serde(default)]
    pub managed: crate::config_money::ManagedConfig,
    /// The payment provider behind wallet top-ups (spec 58.1).
    #[serde(default)]
    pub payments: crate::config_money::PaymentsConfig,
    /// Where notifications are sent by e-mail.
    #[serde(default)]
    pub mail: crate::config_mail::MailConfig,
    /// Tenants' outbound webhooks.
    #[serde(default)]
    pub webhooks: crate::config_mail::WebhooksConfig,
}

/// `[god_mode]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GodModeConfig {
    /// How long an operator stays signed in, seconds.
    #[serde(default = "default_session_ttl_s")]
    pub session_ttl_s: u64,
    /// Mark the session cookie `Secure`: browsers then send it over HTTPS only (and to
    /// localhost). Turn off only to serve God Mode over plain HTTP to another host.
    #[serde(default = "default_true")]
    pub secure_cookies: bool,
    /// Refused sign-ins of one address within `failure_window_s` before it is locked out
    /// for the rest of the window.
    #[serde(default = "default_max_failures")]
    pub max_failures: i64,
    /// See `max_failures`, seconds.
    #[serde(default = "default_failure_window_s")]
    pub failure_window_s: u64,
    /// Sign-in attempts one source address may make per minute.
    #[serde(default = "default_sign_ins_per_minute")]
    pub sign_ins_per_minute: u32,
    /// Password checks (argon2id, 19 MiB and tens of ms each) that may run at once;
    /// 0 means half the cores.
    #[serde(default)]
    pub password_checks: usize,
    /// Sign-ins that may wait for a password check; the rest are told to come back (503).
    #[serde(default = "default_sign_in_queue")]
    pub sign_in_queue: usize,
    /// How long a throttled or busy sign-in refusal is held before it is sent, ms (a
    /// client that waits for its answer then cannot flood the HTTP server with retries).
    #[serde(default = "default_refusal_delay_ms")]
    pub refusal_delay_ms: u64,
    /// Where God Mode is reached, e.g. `https://ops.example.com`: a state-changing request
    /// must carry exactly this `Origin`. Unset: the request's own host, over HTTPS when
    /// `secure_cookies` is on and the host is not a loopback address, else over HTTP.
    #[serde(default)]
    pub public_origin: Option<String>,
    /// Refuse operators who have not enrolled a second factor (`genesis admin
    /// operator-totp`). Operators who have one are always asked for its code.
    #[serde(default)]
    pub require_totp: bool,
}

fn default_sign_ins_per_minute() -> u32 {
    10
}
fn default_sign_in_queue() -> usize {
    32
}
fn default_refusal_delay_ms() -> u64 {
    1000
}

fn default_session_ttl_s() -> u64 {
    12 * 3600
}
fn default_true() -> bool {
    true
}
fn default_max_failures() -> i64 {
    5
}
fn default_failure_window_s() -> u64 {
    15 * 60
}

impl Default for GodModeConfig {
    fn default() -> Self {
        Self {
            session_ttl_s: default_session_ttl_s(),
            secure_cookies: true,
            max_failures: default_max_failures(),
            failure_window_s: default_failure_window_s(),
            sign_ins_per_minute: default_sign_ins_per_minute(),
            password_checks: 0,
            sign_in_queue: default_sign_in_queue(),
            refusal_delay_ms: default_refusal_delay_ms(),
            public_origin: None,
            require_totp: false,
        }
    }
}

impl GodModeConfig {
    /// The control plane's settings.
    pub fn settings(&self) -> genesis_control::god::GodSettings {
        genesis_control::god::GodSettings {
            session_ttl: std::time::Duration::from_secs(self.session_ttl_s),
            secure_cookies: self.secure_cookies,
            max_failures: self.max_failures,
            failure_window: std::time::Duration::from_secs(self.failure_window_s),
            public_origin: self.public_origin.clone(),
            require_second_factor: self.require_totp,
        }
    }

    /// The sign-in guard's limits (the control plane's builder adds `server.trusted_proxies`).
    pub fn sign_in_limits(&self) -> genesis_control::sign_in_guard::SignInLimits {
        use genesis_control::sign_in_guard::{SignInLimits, default_hashers};
        SignInLimits {
            per_source_per_minute: self.sign_ins_per_minute,
            hashers: match self.password_checks {
                0 => default_hashers(),
                n => n,
            },
            max_waiting: self.sign_in_queue,
            refusal_delay: std::time::Duration::from_millis(self.refusal_delay_ms),
            ..SignInLimits::default()
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token for `/api/v1` (operator access until operator sign-in exists). When unset
    /// the API refuses every request: fail closed.
    #[serde(default)]
    pub api_token: Option<String>,
    /// Seed (32 bytes, base64) of the Ed25519 key that signs sidecar commands. When unset,
    /// `genesis serve` makes a throwaway key and warns: sidecars that hand-shook with it
    /// cannot be commanded after a restart.
    #[serde(default)]
    pub command_key: Option<String>,
    /// Key (32 bytes, base64) each droplet's inbound-signing secret derives from (spec
    /// 65.3). When unset, `genesis serve` makes a throwaway key and warns: droplets that
    /// hand-shook with it cannot call the control plane after a restart.
    #[serde(default)]
    pub inbound_key: Option<String>,
    /// Key (32 bytes, base64) the audit log's hash chain is computed with (spec 63.1). Keep
    /// it outside the database: whoever holds it can re-chain forged rows. When unset, audit
    /// rows are written but not sealed, and `genesis audit verify` cannot run.
    #[serde(default)]
    pub audit_key: Option<String>,
    /// Where exports are written: a deletion's final export (kept 30 days) under `final/`.
    /// Every replica must see the same directory (a shared volume).
    #[serde(default = "default_exports_dir")]
    pub exports_dir: std::path::PathBuf,
    /// Load balancers in front of the control plane, whose `X-Forwarded-For` names a
    /// request's real source (sidecar handshakes are accepted only from their droplet's
    /// address). Empty: the peer is the source.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_token: None,
            command_key: None,
            inbound_key: None,
            audit_key: None,
            exports_dir: default_exports_dir(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// One database login pair.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DsnConfig {
    /// Administrator login (migrations, partition DDL as `genesis_owner`).
    #[serde(default)]
    pub url: Option<String>,
    /// Runtime login as `genesis_app`; derived from `url` when absent.
    #[serde(default)]
    pub app_url: Option<String>,
    /// Password of `genesis_app` when `app_url` is derived.
    #[serde(default)]
    pub app_password: Option<String>,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The default DSN, serving every region without its own entry.
    #[serde(flatten)]
    pub default: DsnConfig,
    /// Per-region DSNs (data residency, spec 62): `[database.regions.eu-west]`.
    #[serde(default)]
    pub regions: BTreeMap<String, DsnConfig>,
    /// `direct` or `pgbouncer-transaction` (what `app_url` points at).
    #[serde(default = "default_pooler")]
    pub pooler: String,
    /// Runtime pool size per region.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// `lock_timeout` for partition DDL, in milliseconds.
    #[serde(default = "default_ddl_lock_timeout_ms")]
    pub ddl_lock_timeout_ms: u64,
}

fn default_pooler() -> String {
    "direct".into()
}
fn default_pool_size() -> u32 {
    10
}
fn default_ddl_lock_timeout_ms() -> u64 {
    3_000
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            default: DsnConfig::default(),
            regions: BTreeMap::new(),
            pooler: default_pooler(),
            pool_size: default_pool_size(),
            ddl_lock_timeout_ms: default_ddl_lock_timeout_ms(),
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One node, `redis://host:port[/db]`, or a Redis Cluster by its seed nodes,
    /// `redis+cluster://host:port,host:port` (a comma-separated list of `redis://` URLs
    /// works too).
    #[serde(default)]
    pub url: Option<String>,
}

/// `[ohio]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OhioConfig {
    /// The legacy workspace's UUID.
    pub workspace_id: String,
    /// The legacy n8n base URL.
    pub n8n_url: String,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
}

fn default_log_format() -> String {
    "pretty".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: default_log_format(),
        }
    }
}

/// One configuration problem, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Dotted path, e.g. `database.regions.eu-west.url`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<Problem>);

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

impl Config {
    /// The file to read: `--config`, else `GENESIS_CONFIG`, else `./genesis.toml` if present.
    pub fn path(explicit: Option<&Path>) -> Option<PathBuf> {
        explicit.map(Path::to_path_buf).or_else(|| {
            let p = PathBuf::from("genesis.toml");
            p.exists().then_some(p)
        })
    }

    /// Loads file + environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(ConfigError(vec![problem(
                    "--config",
                    format!("{} does not exist", p.display()),
                )]));
            }
            fig = fig.merge(Toml::file(p));
        }
        // Only `GENESIS_<SECTION>__<KEY>` variables are configuration; other `GENESIS_*`
        // variables (GENESIS_LOG, GENESIS_CONFIG, script switches) are not, and must not be
        // refused as unknown keys.
        let sections = sections();
        fig = fig.merge(
            Env::prefixed("GENESIS_")
                .filter(move |k| {
                    let k = k.as_str().to_ascii_lowercase();
                    sections.iter().any(|s| k.starts_with(&format!("{s}__")))
                })
                .split("__"),
        );
        let cfg: Config = fig.extract().map_err(|e| {
            ConfigError(
                e.into_iter()
                    .map(|e| {
                        let field = if e.path.is_empty() {
                            "(root)".to_string()
                        } else {
                            e.path.join(".")
                        };
                        problem(field, e.kind.to_string())
                    })
                    .collect(),
            )
        })?;
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Every semantic problem (the parts serde cannot check).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(p) = self.server.listen.parse::<std::net::SocketAddr>() {
            out.push(problem(
                "server.listen",
                format!("not a socket address: {p}"),
            ));
        }
        if let Some(t) = &self.server.api_token
            && t.len() < 16
        {
            out.push(problem(
                "server.api_token",
                "must be at least 16 characters",
            ));
        }
        if !["direct", "pgbouncer-transaction"].contains(&self.database.pooler.as_str()) {
            out.push(problem(
                "database.pooler",
                "must be \"direct\" or \"pgbouncer-transaction\"",
            ));
        }
        if self.database.pool_size == 0 {
            out.push(problem("database.pool_size", "must be at least 1"));
        }
        let check_dsn = |prefix: &str, d: &DsnConfig, out: &mut Vec<Problem>| {
            if let Some(u) = &d.url
                && let Err(e) = PgConnectOptions::from_str(u)
            {
                out.push(problem(
                    format!("{prefix}url"),
                    format!("not a PostgreSQL URL: {e}"),
                ));
            }
            if let Some(u) = &d.app_url
                && let Err(e) = PgConnectOptions::from_str(u)
            {
                out.push(problem(
                    format!("{prefix}app_url"),
                    format!("not a PostgreSQL URL: {e}"),
                ));
            }
        };
        check_dsn("database.", &self.database.default, &mut out);
        for (name, dsn) in &self.database.regions {
            if let Err(e) = Region::parse(name) {
                out.push(problem(format!("database.regions.{name}"), e.to_string()));
            }
            check_dsn(&format!("database.regions.{name}."), dsn, &mut out);
            if dsn.url.is_none() {
                out.push(problem(
                    format!("database.regions.{name}.url"),
                    "is required",
                ));
            }
        }
        let uncovered: Vec<_> = Region::ALL
            .iter()
            .filter(|r| !self.database.regions.contains_key(r.code()))
            .collect();
        if !uncovered.is_empty() && self.database.default.url.is_none() {
            out.push(problem(
                "database.url",
                format!(
                    "is required (set it, DATABASE_URL via GENESIS_DATABASE__URL, or a [database.regions.*] entry for {})",
                    uncovered.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if let Some(u) = &self.redis.url
            && let Err(e) = genesis_queue::RedisTarget::parse(u)
        {
            out.push(problem("redis.url", e.to_string()));
        }
        out.extend(crate::config_ignition::problems(
            &self.cloud,
            &self.ignition,
            &self.vault,
            &self.sidecar,
        ));
        for (field, url) in [
            ("oauth.google_token_url", &self.oauth.google_token_url),
            ("oauth.google_auth_url", &self.oauth.google_auth_url),
            ("oauth.google_userinfo_url", &self.oauth.google_userinfo_url),
            ("ai.openai_url", &self.ai.openai_url),
            ("ai.anthropic_url", &self.ai.anthropic_url),
        ] {
            if reqwest::Url::parse(url).is_err() {
                out.push(problem(field, "not a URL"));
            }
        }
        if reqwest::Url::parse(&self.ai.relevance_url.replace("{region}", "bcbe5a")).is_err() {
            out.push(problem(
                "ai.relevance_url",
                "not a URL (with {region} in it)",
            ));
        }
        if let Some(server) = &self.dns.server
            && server.parse::<std::net::SocketAddr>().is_err()
        {
            out.push(problem("dns.server", "not IP:PORT (e.g. 127.0.0.1:53)"));
        }
        if let Some(url) = &self.dns.provider_url
            && reqwest::Url::parse(url).is_err()
        {
            out.push(problem("dns.provider_url", "not a URL"));
        }
        if self.oauth.google_client_id.is_some() != self.oauth.google_client_secret.is_some() {
            out.push(problem(
                "oauth.google_client_secret",
                "set both google_client_id and google_client_secret, or neither",
            ));
        }
        for r in self.standby.regions.keys() {
            if Region::parse(r).is_err() {
                out.push(problem(
                    format!("standby.regions.{r}"),
                    "not a region (us-east, us-west, eu-west, eu-north, apac)",
                ));
            }
        }
        if let Some(o) = &self.ohio {
            if let Err(e) = WorkspaceId::parse(&o.workspace_id) {
                out.push(problem("ohio.workspace_id", e.to_string()));
            }
            if !(o.n8n_url.starts_with("http://") || o.n8n_url.starts_with("https://")) {
                out.push(problem("ohio.n8n_url", "must be an http(s) URL"));
            }
        }
        if !["pretty", "json"].contains(&self.log.format.as_str()) {
            out.push(problem("log.format", "must be \"pretty\" or \"json\""));
        }
        out
    }

    fn db_options(&self, dsn: &DsnConfig) -> Result<DbOptions, ConfigError> {
        let url = dsn
            .url
            .as_deref()
            .ok_or_else(|| ConfigError(vec![problem("database.url", "is required")]))?;
        let admin = PgConnectOptions::from_str(url)
            .map_err(|e| ConfigError(vec![problem("database.url", e.to_string())]))?
            .application_name("genesis-owner");
        let pooler = match self.database.pooler.as_str() {
            "pgbouncer-transaction" => Pooler::PgBouncerTransaction,
            _ => Pooler::Direct,
        };
        let mut opts = match &dsn.app_url {
            Some(app) => DbOptions::new(
                admin,
                PgConnectOptions::from_str(app)
                    .map_err(|e| ConfigError(vec![problem("database.app_url", e.to_string())]))?
                    .application_name("genesis"),
                pooler,
            ),
            None => {
                let mut o = DbOptions::derive_app(admin, dsn.app_password.as_deref());
                o.pooler = pooler;
                o
            }
        };
        opts.app_pool_size = self.database.pool_size;
        opts.ddl_lock_timeout = Duration::from_millis(self.database.ddl_lock_timeout_ms);
        Ok(opts)
    }

    /// Connects (lazily) to every region's database; regions sharing a DSN share the pools.
    pub fn regional_store(&self) -> Result<RegionalStore, ConfigError> {
        let mut groups: Vec<(String, Vec<Region>, DsnConfig)> = Vec::new();
        for region in Region::ALL {
            let dsn = self
                .database
                .regions
                .get(region.code())
                .cloned()
                .unwrap_or_else(|| self.database.default.clone());
            let key = format!("{:?}|{:?}", dsn.url, dsn.app_url);
            match groups.iter_mut().find(|(k, ..)| *k == key) {
                Some((_, regions, _)) => regions.push(region),
                None => groups.push((key, vec![region], dsn)),
            }
        }
        let mut built = Vec::new();
        for (_, regions, dsn) in groups {
            built.push((regions, Database::connect_lazy(self.db_options(&dsn)?)));
        }
        RegionalStore::new(built)
            .map_err(|e| ConfigError(vec![problem("database.regions", e.to_string())]))
    }

    /// The Ohio router input.
    pub fn legacy_tenant(&self) -> Option<LegacyTenant> {
        self.ohio.as_ref().and_then(|o| {
            WorkspaceId::parse(&o.workspace_id)
                .ok()
                .map(|workspace_id| LegacyTenant {
                    workspace_id,
                    n8n_url: o.n8n_url.clone(),
                })
        })
    }
}

fn default_exports_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("data/exports")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(s: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("genesis.toml");
        std::fs::write(&p, s).expect("write");
        // Figment reads the environment too; these tests only set keys the environment of
        // `make test` does not.
        Config::load(Some(&p))
    }

    #[test]
    fn every_problem_names_its_field() {
        let err = from_toml(
            r#"
            [server]
            listen = "nope"
            [database]
            url = "postgres://u@h/db"
            pooler = "magic"
            [database.regions.mars-1]
            url = "postgres://u@h/db"
            [ohio]
            workspace_id = "not-a-uuid"
            n8n_url = "ftp://x"
            "#,
        )
        .expect_err("invalid");
        let fields: Vec<_> = err.0.iter().map(|p| p.field.as_str()).collect();
        for f in [
            "server.listen",
            "database.pooler",
            "database.regions.mars-1",
            "ohio.workspace_id",
            "ohio.n8n_url",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    // figment's Jail API fixes the closure's error type; nothing to shrink on our side.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_only_take_nested_section_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GENESIS_LOG", "debug");
            jail.set_env("GENESIS_PG_DURABLE", "1");
            jail.set_env("GENESIS_DATABASE__URL", "postgres://u@127.0.0.1/from_env");
            jail.set_env("GENESIS_SERVER__LISTEN", "127.0.0.1:9999");
            // Every section, the wizard's third parties included.
            jail.set_env("GENESIS_DNS__PROVIDER_URL", "http://127.0.0.1:8090");
            jail.set_env("GENESIS_AI__OPENAI_URL", "http://127.0.0.1:8090/openai");
            jail.set_env("GENESIS_GOD_MODE__REQUIRE_TOTP", "false");
            let cfg = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                cfg.dns.provider_url.as_deref(),
                Some("http://127.0.0.1:8090")
            );
            assert_eq!(cfg.ai.openai_url, "http://127.0.0.1:8090/openai");
            assert!(!cfg.god_mode.require_totp);
            assert_eq!(
                cfg.database.default.url.as_deref(),
                Some("postgres://u@127.0.0.1/from_env")
            );
            assert_eq!(cfg.server.listen, "127.0.0.1:9999");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let err = from_toml("[server]\nlisten = 5\n").expect_err("wrong type");
        assert_eq!(err.0[0].field, "server.listen");
        let err = from_toml("[databse]\nurl = \"x\"\n").expect_err("typo");
        assert!(err.0[0].message.contains("databse"), "{:?}", err.0);
    }

    #[tokio::test]
    async fn a_single_dsn_serves_every_region_and_regions_can_override() {
        let cfg = from_toml(
            r#"
            [database]
            url = "postgres://postgres@127.0.0.1:5432/genesis"
            [database.regions.eu-west]
            url = "postgres://postgres@127.0.0.2:5432/genesis_eu"
            "#,
        )
        .expect("valid");
        let stores = cfg.regional_store().expect("stores");
        assert_eq!(stores.distinct().len(), 2);
        assert_eq!(
            stores
                .for_region(Region::EuWest)
                .options()
                .admin
                .get_database(),
            Some("genesis_eu")
        );
        assert_eq!(
            stores.for_region(Region::Apac).options().app.get_username(),
            "genesis_app"
        );
    }

    #[test]
    fn a_region_may_have_its_own_vault_ring_with_versions_of_its_own() {
        use base64::Engine as _;
        let k = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let cfg = from_toml(&format!(
            r#"
            [database]
            url = "postgres://u@h/db"
            [vault]
            current = 1
            keys = {{ "1" = "{}" }}
            [vault.regions.eu-west]
            current = 20
            keys = {{ "20" = "{}" }}
            "#,
            k(1),
            k(20)
        ))
        .expect("valid");
        let keys = cfg.vault.master_keys().expect("keys").expect("some");
        assert_eq!(keys.current(), 1);
        assert_eq!(keys.for_region(Region::EuWest).current(), 20);
        assert_eq!(keys.for_region(Region::Apac).current(), 1);

        // A version another ring uses, and a region that does not exist, are named.
        for (regions, field) in [
            (
                format!(
                    r#"[vault.regions.eu-west]
            current = 1
            keys = {{ "1" = "{}" }}"#,
                    k(2)
                ),
                "vault.regions.eu-west",
            ),
            (
                format!(
                    r#"[vault.regions.mars-1]
            current = 30
            keys = {{ "30" = "{}" }}"#,
                    k(3)
                ),
                "vault.regions.mars-1",
            ),
        ] {
            let err = from_toml(&format!(
                "[database]\nurl = \"postgres://u@h/db\"\n[vault]\ncurrent = 1\nkeys = {{ \"1\" = \"{}\" }}\n{regions}\n",
                k(1)
            ))
            .expect_err("invalid");
            assert!(
                err.0.iter().any(|p| p.field == field),
                "{field} missing from {:?}",
                err.0
            );
        }
    }
}
