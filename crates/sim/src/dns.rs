//! A real authoritative DNS server (Debian's Knot DNS) for the zones of tenants' domains,
//! and an Entri-like DNS provider in front of it (spec 61.2): "log in to your DNS provider
//! and let it add the records".
//!
//! - [`Knot`] runs `knotd` on a loopback port with a configuration and zone files in a
//!   directory of its own, and rewrites a zone (SOA serial bumped) then asks the running
//!   server to reload, waiting until the new serial is served. What it serves is real DNS:
//!   the control plane checks it with an ordinary resolver over UDP/TCP.
//! - [`FakeEntri`] is the provider's API: `POST /entri/v1/apply` with Entri's record shape
//!   (`{type, host, value, ttl}`, `host` relative to the domain, `@` for the apex). A
//!   record replaces the zone's records of the same host and type, as Entri's "apply"
//!   does; others are kept. Real Entri is a browser widget in which the person picks their
//!   provider and signs in; here the person is always signed in.
//!
//! Why a process and not an in-memory server: the point is that our resolver code meets a
//! real server's answers (TXT strings split at 255 bytes, NXDOMAIN against NODATA, TTLs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    extract::State,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// The name server every simulated zone names.
pub const NS: &str = "ns1.sim-dns.test.";

/// Why the DNS simulator could not do something.
#[derive(Debug, thiserror::Error)]
pub enum DnsSimError {
    /// `knotd`/`knotc` missing or failing.
    #[error("knot: {0}")]
    Knot(String),
    /// A record that cannot be written into a zone.
    #[error("{0}")]
    Invalid(String),
    /// Files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One record, as Entri takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// `TXT`, `CNAME`, `A` or `MX`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Relative to the domain; `@` for the apex.
    pub host: String,
    /// The record's value (a TXT's text, unsplit; a CNAME's target).
    pub value: String,
    /// Seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    300
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a domain name (ASCII, at least two labels).
pub fn valid_domain(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    d.len() <= 253 && d.split('.').count() >= 2 && d.split('.').all(valid_label)
}

impl DnsRecord {
    fn check(&self) -> Result<(), DnsSimError> {
        if !matches!(self.kind.as_str(), "TXT" | "CNAME" | "A" | "MX") {
            return Err(DnsSimError::Invalid(format!(
                "unsupported record type {}",
                self.kind
            )));
        }
        if self.host != "@" && !self.host.split('.').all(valid_label) {
            return Err(DnsSimError::Invalid(format!(
                "invalid host {:?}",
                self.host
            )));
        }
        if self.value.is_empty() || self.value.len() > 4000 || self.value.contains(['\n', '\r']) {
            return Err(DnsSimError::Invalid("invalid value".into()));
        }
        if !(30..=86_400).contains(&self.ttl) {
            return Err(DnsSimError::Invalid(
                "ttl must be 30 to 86400 seconds".into(),
            ));
        }
        if self.kind == "CNAME" && !valid_domain(&self.value) {
            return Err(DnsSimError::Invalid(
                "a CNAME points at a domain name".into(),
            ));
        }
        if self.kind == "A" && self.value.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(DnsSimError::Invalid(
                "an A record holds an IPv4 address".into(),
            ));
        }
        Ok(())
    }

    /// The record as a zone file line.
    fn zone_line(&self) -> String {
        let owner = if self.host == "@" {
            "@".to_owned()
        } else {
            self.host.clone()
        };
        let data = match self.kind.as_str() {
            // A TXT's text is character-strings of at most 255 bytes each (RFC 1035 §3.3.14);
            // readers join them.
            "TXT" => self
                .value
                .as_bytes()
                .chunks(255)
                .map(|c| {
                    let s = String::from_utf8_lossy(c);
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                })
                .collect::<Vec<_>>()
                .join(" "),
            "CNAME" => format!("{}.", self.value.trim_end_matches('.')),
            _ => self.value.clone(),
        };
        format!("{owner} {} {} {data}", self.ttl, self.kind)
    }
}

#[derive(Debug, Default)]
struct Zone {
    serial: u32,
    records: Vec<DnsRecord>,
}

/// A running `knotd` serving the simulated zones. Killed when dropped.
pub struct Knot {
    dir: PathBuf,
    addr: SocketAddr,
    zones: Mutex<BTreeMap<String, Zone>>,
    child: std::sync::Mutex<Option<Child>>,
}

impl std::fmt::Debug for Knot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knot")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16, DnsSimError> {
    // A port free for both UDP and TCP at this moment (knotd binds both).
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(DnsSimError::Knot("no free port".into()))
}

fn knot_binary(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl Knot {
    /// Starts `knotd` with its files under `dir` (created), on a free loopback port.
    pub async fn start(dir: &Path) -> Result<Arc<Self>, DnsSimError> {
        std::fs::create_dir_all(dir.join("zones"))?;
        std::fs::create_dir_all(dir.join("db"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let knot = Knot {
            dir: dir.to_owned(),
            addr,
            zones: Mutex::new(BTreeMap::new()),
            child: std::sync::Mutex::new(None),
        };
        knot.write_config(&BTreeMap::new())?;
        let child = Command::new(knot_binary("knotd"))
            .arg("-c")
            .arg(knot.conf())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("knotd.log"))?)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                DnsSimError::Knot(format!(
                    "cannot run knotd ({e}): install Debian's `knot` package"
                ))
            })?;
        *knot.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if knot.knotc(&["status"]).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("knotd.log")).unwrap_or_default();
                return Err(DnsSimError::Knot(format!("knotd did not start: {log}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Arc::new(knot))
    }

    /// Where it answers queries (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("knot.conf")
    }

    fn write_config(&self, zones: &BTreeMap<String, Zone>) -> Result<(), DnsSimError> {
        let d = self.dir.display();
        let mut conf = format!(
            "server:\n    listen: {ip}@{port}\n    rundir: {d}\n    pidfile: {d}/knot.pid\n\
             control:\n    listen: {d}/knot.sock\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: {d}/db\n\
             template:\n  - id: default\n    storage: {d}/zones\n    file: \"%s.zone\"\n    \
             zonefile-sync: -1\n    journal-content: none\n",
            ip = self.addr.ip(),
            port = self.addr.port(),
        );
        if !zones.is_empty() {
            conf.push_str("zone:\n");
            for name in zones.keys() {
                conf.push_str(&format!("  - domain: {name}\n"));
            }
        }
        let tmp = self.dir.join("knot.conf.tmp");
        std::fs::write(&tmp, conf)?;
        std::fs::rename(tmp, self.conf())?;
        Ok(())
    }

    async fn knotc(&self, args: &[&str]) -> Result<String, DnsSimError> {
        let out = Command::new(knot_binary("knotc"))
            .arg("-c")
            .arg(self.conf())
            .arg("-t")
            .arg("5")
            .args(args)
            .output()
            .await
            .map_err(|e| DnsSimError::Knot(format!("cannot run knotc: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(DnsSimError::Knot(format!(
                "knotc {}: {}{}",
                args.join(" "),
                text,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// Adds `records` to `domain`'s zone (created on first use), each replacing the zone's
    /// records of its host and type; answers once the server serves the new zone.
    pub async fn apply(&self, domain: &str, records: &[DnsRecord]) -> Result<(), DnsSimError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(DnsSimError::Invalid(format!("invalid domain {domain:?}")));
        }
        for r in records {
            r.check()?;
        }
        let mut zones = self.zones.lock().await;
        let zone = zones.entry(domain.clone()).or_default();
        for r in records {
            zone.records
                .retain(|old| !(old.host.eq_ignore_ascii_case(&r.host) && old.kind == r.kind));
        }
        zone.records.extend(records.iter().cloned());
        self.publish(&mut zones, &domain).await
    }

    /// Deletes `domain`'s records of `host` and `kind`.
    pub async fn remove(&self, domain: &str, host: &str, kind: &str) -> Result<(), DnsSimError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut zones = self.zones.lock().await;
        let Some(zone) = zones.get_mut(&domain) else {
            return Ok(());
        };
        zone.records
            .retain(|r| !(r.host.eq_ignore_ascii_case(host) && r.kind == kind));
        self.publish(&mut zones, &domain).await
    }

    async fn publish(
        &self,
        zones: &mut BTreeMap<String, Zone>,
        domain: &str,
    ) -> Result<(), DnsSimError> {
        let zone = zones
            .get_mut(domain)
            .ok_or_else(|| DnsSimError::Invalid("no such zone".into()))?;
        zone.serial += 1;
        let serial = zone.serial;
        let mut text = format!(
            "$ORIGIN {domain}.\n$TTL 60\n@ 60 SOA {NS} hostmaster.{domain}. {serial} 3600 600 86400 60\n@ 60 NS {NS}\n"
        );
        for r in &zone.records {
            text.push_str(&r.zone_line());
            text.push('\n');
        }
        let path = self.dir.join("zones").join(format!("{domain}.zone"));
        let tmp = path.with_extension("zone.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        self.write_config(zones)?;
        self.knotc(&["reload"]).await?;
        // The reload is asynchronous: wait until the server has the new serial.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.knotc(&["zone-status", domain, "+serial"]).await;
            if status
                .as_ref()
                .is_ok_and(|s| s.contains(&format!("serial: {serial}")))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DnsSimError::Knot(format!(
                    "zone {domain} not served at serial {serial}: {status:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.start_kill();
        }
    }
}

/// The Entri-like provider's API over a [`Knot`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FakeEntri {
    knot: Arc<Knot>,
}

/// `POST /entri/v1/apply`'s body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Apply {
    application_id: String,
    domain: String,
    dns_records: Vec<DnsRecord>,
}

impl FakeEntri {
    /// The provider over `knot`.
    pub fn new(knot: Arc<Knot>) -> Self {
        Self { knot }
    }

    /// The server it writes to.
    pub fn knot(&self) -> &Arc<Knot> {
        &self.knot
    }

    /// `POST /entri/v1/apply`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/entri/v1/apply", post(apply))
            .with_state(self.clone())
    }
}

async fn apply(State(e): State<FakeEntri>, body: Result<Json<Apply>, JsonRejection>) -> Response {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "message": m})),
        )
            .into_response()
    };
    let Ok(Json(body)) = body else {
        return bad("the body must be JSON: {applicationId, domain, dnsRecords}".into());
    };
    if body.application_id.is_empty() {
        return bad("applicationId is required".into());
    }
    if body.dns_records.is_empty() || body.dns_records.len() > 20 {
        return bad("dnsRecords must hold 1 to 20 records".into());
    }
    match e.knot.apply(&body.domain, &body.dns_records).await {
        Ok(()) => {
            Json(json!({"domain": body.domain, "applied": body.dns_records.len()})).into_response()
        }
        Err(DnsSimError::Invalid(m)) => bad(m),
        Err(other) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": "provider_error", "message": other.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_values_are_split_into_strings_of_255_bytes() {
        let r = DnsRecord {
            kind: "TXT".into(),
            host: "s1._domainkey".into(),
            value: format!("v=DKIM1; p={}", "A".repeat(400)),
            ttl: 300,
        };
        let line = r.zone_line();
        // The quoted strings: every other piece between quotes.
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2, "{line}");
        assert_eq!(strings[0].len(), 255);
    }

    #[test]
    fn records_that_cannot_be_written_are_refused() {
        let ok = DnsRecord {
            kind: "TXT".into(),
            host: "@".into(),
            value: "v=spf1 -all".into(),
            ttl: 300,
        };
        assert!(ok.check().is_ok());
        for bad in [
            DnsRecord {
                kind: "SOA".into(),
                ..ok.clone()
            },
            DnsRecord {
                host: "a b".into(),
                ..ok.clone()
            },
            DnsRecord {
                value: "a\nb".into(),
                ..ok.clone()
            },
            DnsRecord {
                kind: "CNAME".into(),
                value: "not a name".into(),
                ..ok.clone()
            },
            DnsRecord {
                ttl: 1,
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
