//! The wizard's DNS stage (spec 60.1 stage 5, 61.2): the records that let the tenant's mail
//! be trusted, put in place by a DNS provider, and checked with real DNS queries.
//!
//! - **The records.** SPF (`v=spf1 include:_spf.google.com ~all`: the engine sends through
//!   Gmail), DKIM (a 2048-bit RSA key made for the tenant, the public half at
//!   `<selector>._domainkey`, the private half sealed in the vault) and DMARC (`p=none` to
//!   start: reports without rejecting, while the tenant's other senders are found).
//! - **Applying them.** A [`DnsProvider`] adds them to the domain's zone, as Entri's widget
//!   does with the tenant's own provider. The one in use here speaks an Entri-like HTTP API
//!   ([`EntriApi`]); the simulator writes what it receives into a real authoritative
//!   server.
//! - **Checking them.** `hickory-resolver` asks the configured name server (or the system's)
//!   with no cache, so "check again" sees a change at once. Each record is found, missing
//!   or wrong, with what was found instead. A domain may hold one SPF record only (RFC 7208
//!   §3.2), so a second is wrong, not fine. The stage completes when all three are found.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use genesis_store::onboarding::{Confirmation, NewSecret, SavedStage, SecretKind};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use serde_json::json;

use super::tenant_access::Access;
use crate::{AppState, Problem};

/// The SPF record's value: mail from the domain leaves through Google's servers.
pub const SPF: &str = "v=spf1 include:_spf.google.com ~all";
/// The DMARC record's value to start with.
pub const DMARC: &str = "v=DMARC1; p=none; adkim=r; aspf=r";
/// Mail domains nobody but their operator can add records to.
const PUBLIC_MAIL: [&str; 6] = [
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
];

/// One record the domain needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedRecord {
    /// `SPF`, `DKIM` or `DMARC`.
    pub purpose: &'static str,
    /// The record type (always `TXT` here).
    pub kind: &'static str,
    /// The owner, relative to the domain (`@` for the apex).
    pub host: String,
    /// The value.
    pub value: String,
}

/// What DNS answered for one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "found", rename_all = "lowercase")]
pub enum RecordState {
    /// As planned.
    Found,
    /// No such record.
    Missing,
    /// Something else is there (what).
    Wrong(String),
}

/// The domain chosen, and its key's selector and public half.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsPlan {
    /// The sending domain.
    pub domain: String,
    /// The DKIM selector.
    pub selector: String,
    /// The DKIM public key (base64 of its SubjectPublicKeyInfo).
    pub public_key: String,
}

impl DnsPlan {
    /// The three records.
    pub fn records(&self) -> Vec<PlannedRecord> {
        vec![
            PlannedRecord {
                purpose: "SPF",
                kind: "TXT",
                host: "@".into(),
                value: SPF.into(),
            },
            PlannedRecord {
                purpose: "DKIM",
                kind: "TXT",
                host: format!("{}._domainkey", self.selector),
                value: format!("v=DKIM1; k=rsa; p={}", self.public_key),
            },
            PlannedRecord {
                purpose: "DMARC",
                kind: "TXT",
                host: "_dmarc".into(),
                value: DMARC.into(),
            },
        ]
    }
}

/// Why a provider did not apply the records.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// It refused them (its words).
    #[error("{0}")]
    Refused(String),
    /// It could not be reached.
    #[error("{0}")]
    Unavailable(String),
}

/// A DNS provider that adds records to a tenant's zone on their behalf (Entri's role in
/// spec 61.2).
pub trait DnsProvider: Send + Sync + std::fmt::Debug {
    /// Adds `records` to `domain`, each replacing the records of its host and type.
    fn apply<'a>(
        &'a self,
        domain: &'a str,
        records: &'a [PlannedRecord],
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// An Entri-like provider over HTTP: `POST {url}/entri/v1/apply` with
/// `{applicationId, domain, dnsRecords: [{type, host, value, ttl}]}`.
#[derive(Debug, Clone)]
pub struct EntriApi {
    /// Its base URL.
    pub url: String,
    /// Our application's id there.
    pub application_id: String,
    /// The client.
    pub http: reqwest::Client,
}

impl DnsProvider for EntriApi {
    fn apply<'a>(
        &'a self,
        domain: &'a str,
        records: &'a [PlannedRecord],
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let body = json!({
                "applicationId": self.application_id,
                "domain": domain,
                "dnsRecords": records.iter().map(|r| json!({
                    "type": r.kind, "host": r.host, "value": r.value, "ttl": 300
                })).collect::<Vec<_>>(),
            });
            let res = self
                .http
                .post(format!("{}/entri/v1/apply", self.url.trim_end_matches('/')))
                .json(&body)
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
            if res.status().is_success() {
                return Ok(());
            }
            let status = res.status();
            let said: serde_json::Value = res.json().await.unwrap_or_default();
            let message = said["message"].as_str().unwrap_or("refused").to_owned();
            if status.is_client_error() {
                Err(ProviderError::Refused(message))
            } else {
                Err(ProviderError::Unavailable(format!("{status}: {message}")))
            }
        })
    }
}

/// Checks a domain the tenant typed: answers it lower-cased, without a trailing dot.
pub fn parse_domain(raw: &str) -> Result<String, Problem> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d)
        .trim_end_matches('/')
        .to_owned();
    if d.is_empty() {
        return Err(Problem::invalid_field(
            "domain",
            "enter the domain your emails come from, like acme.com",
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() > 253
        || labels.len() < 2
        || !labels.iter().all(|l| label_ok(l))
        || labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Problem::invalid_field(
            "domain",
            "this is not a domain name; enter one like acme.com",
        ));
    }
    if PUBLIC_MAIL.contains(&d.as_str()) {
        return Err(Problem::invalid_field(
            "domain",
            format!("only Google can add records to {d}; use your company's own domain"),
        ));
    }
    Ok(d)
}

/// The domain to suggest: the sender's, unless it is a public mail service, else the
/// website's.
pub fn suggested_domain(sender: Option<&str>, website: Option<&str>) -> Option<String> {
    sender
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .filter(|d| !PUBLIC_MAIL.contains(&d.as_str()))
        .or_else(|| {
            website.and_then(|w| url::Url::parse(w).ok()).and_then(|u| {
                u.host_str()
                    .map(|h| h.trim_start_matches("www.").to_owned())
            })
        })
}

/// A fresh 2048-bit RSA key: (PKCS#8 private key, base64 SubjectPublicKeyInfo).
fn dkim_key() -> Result<(Vec<u8>, String), Problem> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine;
    let failed = |what: &str| {
        tracing::error!(what, "DKIM key generation failed");
        Problem::internal()
    };
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| failed("generate"))?;
    let private: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed("private"))?;
    let public: PublicKeyX509Der<'static> =
        pair.public_key().as_der().map_err(|_| failed("public"))?;
    Ok((
        private.as_ref().to_vec(),
        base64::engine::general_purpose::STANDARD.encode(public.as_ref()),
    ))
}

/// DKIM keys made ahead of need. Generating a 2048-bit RSA key searches for random primes:
/// 20 to 150 ms here, with a long tail, which would be most of the DNS stage's answer time.
/// A few keys wait ready; a request takes one and a background task makes the next. The
/// first request of a process (or one that empties the pool) makes its own, off the request
/// threads. Waiting keys live only in memory.
#[derive(Debug, Default)]
pub struct DkimKeys {
    ready: tokio::sync::Mutex<Vec<(Vec<u8>, String)>>,
    filling: std::sync::atomic::AtomicBool,
}

impl DkimKeys {
    /// Keys kept ready.
    pub const READY: usize = 4;

    /// A key: (PKCS#8 private key, base64 SubjectPublicKeyInfo).
    pub async fn take(self: &Arc<Self>) -> Result<(Vec<u8>, String), Problem> {
        let ready = self.ready.lock().await.pop();
        self.refill();
        match ready {
            Some(k) => Ok(k),
            None => tokio::task::spawn_blocking(dkim_key)
                .await
                .map_err(|_| Problem::internal())?,
        }
    }

    fn refill(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            while pool.ready.lock().await.len() < Self::READY {
                match tokio::task::spawn_blocking(dkim_key).await {
                    Ok(Ok(k)) => pool.ready.lock().await.push(k),
                    _ => break,
                }
            }
            pool.filling.store(false, Ordering::Release);
        });
    }
}

/// Chooses the sending domain (owners): makes the domain's DKIM key and keeps the plan,
/// not yet confirmed. Choosing again replaces key and plan.
pub async fn choose_domain(
    state: &AppState,
    db: &genesis_store::Database,
    access: &Access,
    raw: &str,
) -> Result<DnsPlan, Problem> {
    access.owner("set the workspace up")?;
    let domain = parse_domain(raw)?;
    let keys = super::wizard::vault(state)?;
    let (private, public_key) = state.dkim_keys.take().await?;
    let plan = DnsPlan {
        domain,
        selector: format!("genesis{}", chrono::Utc::now().format("%Y%m")),
        public_key,
    };
    let value = serde_json::to_value(&plan).map_err(|_| Problem::internal())?;
    db.onboarding_dns_plan(
        keys,
        access.workspace.id,
        &value,
        &NewSecret {
            kind: SecretKind::Dkim,
            hint: &plan.selector,
            secret: &private,
        },
        &access.actor,
    )
    .await?;
    Ok(plan)
}

/// Has the provider add the plan's records (owners).
pub async fn apply(state: &AppState, access: &Access, plan: &DnsPlan) -> Result<(), Problem> {
    access.owner("set the workspace up")?;
    let provider = state.providers.dns_provider.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "automatic DNS set-up is not configured on this platform; add the records at \
             your DNS provider by hand",
        )
    })?;
    provider
        .apply(&plan.domain, &plan.records())
        .await
        .map_err(|e| match e {
            ProviderError::Refused(m) => Problem::invalid_field(
                "domain",
                format!("your DNS provider refused the records: {m}"),
            ),
            ProviderError::Unavailable(m) => {
                tracing::warn!(error = %m, "the DNS provider failed");
                Problem::unavailable(
                    "your DNS provider could not be reached; nothing was changed, try again",
                )
            }
        })
}

pub(crate) fn resolver(
    server: Option<SocketAddr>,
) -> Result<hickory_resolver::TokioResolver, Problem> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "no DNS resolver");
        Problem::unavailable("DNS cannot be checked from this server right now")
    };
    let mut builder = match server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            hickory_resolver::Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![udp, tcp],
                )]),
                TokioRuntimeProvider::default(),
            )
        }
        None => hickory_resolver::Resolver::builder_tokio().map_err(|e| unavailable(&e))?,
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    // "Check again" must see a change at once.
    opts.cache_size = 0;
    opts.timeout = Duration::from_secs(3);
    opts.attempts = 2;
    builder.build().map_err(|e| unavailable(&e))
}

/// The TXT records at `name`, each joined from its strings; empty when none.
async fn txt(
    resolver: &hickory_resolver::TokioResolver,
    name: &str,
) -> Result<Vec<String>, Problem> {
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => {
            tracing::warn!(name, error = %e, "a DNS lookup failed");
            Err(Problem::unavailable(format!(
                "DNS did not answer for {name}: check that the domain is registered, or check \
                 again in a minute"
            )))
        }
    }
}

fn tag<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn judge(r: &PlannedRecord, answers: &[String]) -> RecordState {
    match r.purpose {
        "SPF" => {
            let spf: Vec<&String> = answers
                .iter()
                .filter(|a| a.to_ascii_lowercase().starts_with("v=spf1"))
                .collect();
            match spf.as_slice() {
                [] => RecordState::Missing,
                [one]
                    if one
                        .split_whitespace()
                        .any(|t| t == "include:_spf.google.com") =>
                {
                    RecordState::Found
                }
                [one] => RecordState::Wrong((*one).clone()),
                many => RecordState::Wrong(format!(
                    "{} SPF records (a domain may have one): {}",
                    many.len(),
                    many.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                )),
            }
        }
        "DKIM" => {
            let want = tag(&r.value, "p");
            match answers.first() {
                None => RecordState::Missing,
                Some(_) if answers.iter().any(|a| tag(a, "p") == want) => RecordState::Found,
                Some(a) => RecordState::Wrong(a.chars().take(80).collect()),
            }
        }
        _ => {
            let dmarc: Vec<&String> = answers
                .iter()
                .filter(|a| a.to_ascii_lowercase().starts_with("v=dmarc1"))
                .collect();
            match dmarc.as_slice() {
                [] => RecordState::Missing,
                [one]
                    if matches!(
                        tag(one, "p").map(str::to_ascii_lowercase).as_deref(),
                        Some("none" | "quarantine" | "reject")
                    ) =>
                {
                    RecordState::Found
                }
                [one, ..] => RecordState::Wrong((*one).clone()),
            }
        }
    }
}

/// Asks DNS for each planned record.
pub async fn check(
    state: &AppState,
    plan: &DnsPlan,
) -> Result<Vec<(PlannedRecord, RecordState)>, Problem> {
    let resolver = resolver(state.providers.dns_server)?;
    let mut out = Vec::new();
    for r in plan.records() {
        let name = if r.host == "@" {
            plan.domain.clone()
        } else {
            format!("{}.{}", r.host, plan.domain)
        };
        let answers = txt(&resolver, &name).await?;
        let state = judge(&r, &answers);
        out.push((r, state));
    }
    Ok(out)
}

/// Checks the records and, when all are found, completes the stage (owners).
pub async fn check_and_confirm(
    state: &AppState,
    db: &genesis_store::Database,
    access: &Access,
    plan: &DnsPlan,
) -> Result<Vec<(PlannedRecord, RecordState)>, Problem> {
    access.owner("set the workspace up")?;
    let checked = check(state, plan).await?;
    if checked.iter().all(|(_, s)| *s == RecordState::Found) {
        let value = serde_json::to_value(plan).map_err(|_| Problem::internal())?;
        db.onboarding_confirm(
            access.workspace.id,
            &Confirmation {
                stage: SavedStage::Dns,
                value: &value,
                template: &[],
                secrets: &[],
                keys: None,
            },
            &access.actor,
        )
        .await?;
    }
    Ok(checked)
}

/// A provider shared by every request.
pub type SharedProvider = Arc<dyn DnsProvider>;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> DnsPlan {
        DnsPlan {
            domain: "acme.test".into(),
            selector: "genesis202612".into(),
            public_key: "MIIBIjAN".into(),
        }
    }

    #[test]
    fn each_record_is_found_missing_or_wrong() {
        let records = plan().records();
        let (spf, dkim, dmarc) = (&records[0], &records[1], &records[2]);
        assert_eq!(judge(spf, &[]), RecordState::Missing);
        assert_eq!(
            judge(spf, &[SPF.into(), "google-site-verification=x".into()]),
            RecordState::Found
        );
        assert!(matches!(
            judge(spf, &["v=spf1 -all".into()]),
            RecordState::Wrong(_)
        ));
        assert!(matches!(
            judge(spf, &[SPF.into(), "v=spf1 include:other ~all".into()]),
            RecordState::Wrong(w) if w.starts_with("2 SPF records")
        ));
        assert_eq!(
            judge(dkim, &["v=DKIM1; k=rsa; p=MIIBIjAN".into()]),
            RecordState::Found
        );
        assert!(matches!(
            judge(dkim, &["v=DKIM1; k=rsa; p=OTHER".into()]),
            RecordState::Wrong(_)
        ));
        assert_eq!(
            judge(dmarc, &["v=DMARC1; p=reject".into()]),
            RecordState::Found
        );
        assert!(matches!(
            judge(dmarc, &["v=DMARC1; p=maybe".into()]),
            RecordState::Wrong(_)
        ));
        assert_eq!(judge(dmarc, &["hello".into()]), RecordState::Missing);
    }

    #[test]
    fn a_domain_is_named_when_it_cannot_be_one() {
        assert_eq!(
            parse_domain(" Acme.COM. ").ok().as_deref(),
            Some("acme.com")
        );
        assert_eq!(
            parse_domain("https://acme.com/").ok().as_deref(),
            Some("acme.com")
        );
        for bad in [
            "",
            "acme",
            "acme..com",
            "-a.com",
            "1.2.3.4",
            "gmail.com",
            "a b.com",
        ] {
            assert_eq!(
                parse_domain(bad).err().and_then(|p| p.field).as_deref(),
                Some("domain"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_suggestion_skips_public_mail_services() {
        assert_eq!(
            suggested_domain(Some("ada@gmail.com"), Some("https://www.acme.com/")).as_deref(),
            Some("acme.com")
        );
        assert_eq!(
            suggested_domain(Some("ada@acme.io"), None).as_deref(),
            Some("acme.io")
        );
    }

    #[test]
    fn a_dkim_key_is_2048_bits() {
        use base64::Engine;
        let (private, public) = dkim_key().expect("key");
        let der = base64::engine::general_purpose::STANDARD
            .decode(public)
            .expect("base64");
        // SubjectPublicKeyInfo of a 2048-bit RSA key: 294 bytes.
        assert_eq!(der.len(), 294);
        assert!(private.len() > 1000);
    }
}
