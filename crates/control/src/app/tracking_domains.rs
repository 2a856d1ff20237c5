//! A tenant's tracking domains (spec 61.4): `track.theirdomain.com`, pointed at their engine
//! with a CNAME, served by the engine's Caddy with a certificate of its own, so that the
//! tracking links of their campaigns carry their name.
//!
//! 1. The tenant adds the host ([`add`]); it is `pending`.
//! 2. DNS is asked (with the DNS stage's resolver: no cache) whether the host points at the
//!    engine ([`look`]): a CNAME to the engine's hostname, or, for a provider that flattens
//!    CNAMEs, A records that are exactly the engine's address. Anything else is
//!    `wrong_target`, with what was found; a host pointing at the engine is `verified`.
//! 3. The engine is sent the whole list of its verified and active hosts
//!    (`SET_TRACKING_DOMAINS`, signed like every command); the sidecar writes it into Caddy
//!    through the admin API, and Caddy obtains the certificates. Once the sidecar confirms,
//!    the hosts are `active` ([`sync_front`]).
//!
//! The reconciler ([`crate::workers::tracking_domains`]) does 2 and 3 in the background:
//! waiting hosts every minute for their first hour, then every 15 minutes; served hosts
//! hourly (a CNAME removed later takes the host out of the list). "Check now" in the
//! dashboard does both at once for one host.

use genesis_core::WorkspaceId;
use genesis_core::tracking::TrackingState;
use genesis_protocol::command::Command;
use genesis_protocol::front::{MAX_TRACKING_DOMAINS, is_host_name};
use genesis_store::tracking_domains::{TrackingCheck, TrackingDomain, TrackingFront};
use genesis_store::{Database, Droplet};
use hickory_resolver::proto::rr::{RData, RecordType};

use super::tenant_access::Access;
use crate::{AppState, Problem};

/// The actor of the reconciler's changes.
pub const ACTOR: &str = "system:tracking-domains";
/// A waiting host is looked at this often during its first hour...
pub const RECHECK_SOON_S: i64 = 60;
/// ...and this often after.
pub const RECHECK_LATER_S: i64 = 900;
/// A served host's DNS is looked at again, and the engine told its list again, hourly.
pub const RECHECK_SERVED_S: i64 = 3_600;

/// Reads a host name as a person types it (`https://Track.Acme.com/`, `track.acme.com.`),
/// or says what is wrong with it. `engine_suffix` is the domain of engines' own names,
/// which are not the tenant's to claim.
pub fn parse_host(raw: &str, engine_suffix: &str) -> Result<String, Problem> {
    let field = |msg: &str| Problem::invalid_field("host", msg);
    let mut h = raw.trim();
    for scheme in ["https://", "http://"] {
        if h.len() >= scheme.len() && h[..scheme.len()].eq_ignore_ascii_case(scheme) {
            h = &h[scheme.len()..];
        }
    }
    let h = h
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    if h.is_empty() {
        return Err(field("enter a host name, such as track.yourcompany.com"));
    }
    if !h.is_ascii() {
        return Err(field(
            "write an international name in its xn-- form, as your DNS provider shows it",
        ));
    }
    let h = h.to_ascii_lowercase();
    if h.contains(':') {
        return Err(field("enter the host name alone, without a port"));
    }
    if h.starts_with("*.") {
        return Err(field("a tracking domain is one host name, not a wildcard"));
    }
    if !is_host_name(&h) {
        return Err(field(
            "that is not a host name: use letters, digits, hyphens and dots, such as \
             track.yourcompany.com",
        ));
    }
    let suffix = engine_suffix.trim_matches('.').to_ascii_lowercase();
    if h == suffix || h.ends_with(&format!(".{suffix}")) {
        return Err(field(
            "that is an engine's own address; use a host under your own domain",
        ));
    }
    Ok(h)
}

/// Where a host points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pointing {
    /// No CNAME and no A record.
    Nowhere,
    /// At the engine.
    AtEngine,
    /// Somewhere else: what was found.
    Elsewhere(String),
}

impl Pointing {
    fn at_engine(&self) -> Option<bool> {
        match self {
            Pointing::Nowhere => None,
            Pointing::AtEngine => Some(true),
            Pointing::Elsewhere(_) => Some(false),
        }
    }
}

/// The engine a host must point at: its hostname and public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    /// `203-0-113-5.sslip.io`.
    pub hostname: String,
    /// `203.0.113.5`.
    pub ip: String,
}

/// Judges DNS's answers: a CNAME decides alone; without one, the A records must be the
/// engine's address exactly.
pub fn judge(cname: Option<&str>, a: &[String], engine: &EngineAddress) -> Pointing {
    if let Some(target) = cname {
        let target = target.trim_end_matches('.').to_ascii_lowercase();
        return if target == engine.hostname.to_ascii_lowercase() {
            Pointing::AtEngine
        } else {
            Pointing::Elsewhere(format!("CNAME {target}"))
        };
    }
    match a {
        [] => Pointing::Nowhere,
        [ip] if *ip == engine.ip => Pointing::AtEngine,
        many => Pointing::Elsewhere(format!("A {}", many.join(", "))),
    }
}

/// Asks DNS where `host` points.
pub async fn pointing(
    state: &AppState,
    host: &str,
    engine: &EngineAddress,
) -> Result<Pointing, Problem> {
    let resolver = super::dns::resolver(state.providers.dns_server)?;
    let fqdn = format!("{host}.");
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(host, error = %e, "a tracking domain lookup failed");
        Problem::unavailable(format!(
            "DNS did not answer for {host}; check again in a minute"
        ))
    };
    let cname = match resolver.lookup(fqdn.as_str(), RecordType::CNAME).await {
        Ok(l) => l.answers().iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_ascii()),
            _ => None,
        }),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => None,
        Err(e) => return Err(failed(&e)),
    };
    let a: Vec<String> = if cname.is_some() {
        Vec::new()
    } else {
        match resolver.lookup(fqdn.as_str(), RecordType::A).await {
            Ok(l) => {
                let mut ips: Vec<String> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(ip) => Some(ip.0.to_string()),
                        _ => None,
                    })
                    .collect();
                ips.sort();
                ips.dedup();
                ips
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Vec::new(),
            Err(e) => return Err(failed(&e)),
        }
    };
    Ok(judge(cname.as_deref(), &a, engine))
}

/// The workspace's engine: its live droplet, if it has one.
async fn engine_of(db: &Database, workspace: WorkspaceId) -> Result<Option<Droplet>, Problem> {
    Ok(db
        .droplet_live_for_workspace(workspace)
        .await?
        .into_iter()
        .next())
}

/// The engine's hostname and address, asked of the cloud (a sleeping engine keeps both).
async fn engine_address(state: &AppState, droplet: &Droplet) -> Result<EngineAddress, Problem> {
    let (ip, _) = super::droplet_ops::public_address(state, droplet).await?;
    let suffix = state
        .igniter
        .as_ref()
        .map(|ig| ig.settings().network.host_suffix.clone())
        .unwrap_or_default();
    Ok(EngineAddress {
        hostname: genesis_ignition::network::hostname(&ip, &suffix),
        ip,
    })
}

/// The workspace's tracking domains, with the name they must point at (none before the
/// engine exists).
pub async fn list(
    state: &AppState,
    db: &Database,
    access: &Access,
) -> Result<(Vec<TrackingDomain>, Option<String>), Problem> {
    let domains = db.tracking_domains(access.workspace.id).await?;
    let target = match engine_of(db, access.workspace.id).await? {
        Some(d) => engine_address(state, &d).await.ok().map(|a| a.hostname),
        None => None,
    };
    Ok((domains, target))
}

/// Adds a tracking domain (owners), and looks at it at once.
pub async fn add(
    state: &AppState,
    db: &Database,
    access: &Access,
    raw: &str,
) -> Result<TrackingDomain, Problem> {
    access.owner("add tracking domains")?;
    let suffix = state
        .igniter
        .as_ref()
        .map(|ig| ig.settings().network.host_suffix.clone())
        .unwrap_or_default();
    let host = parse_host(raw, &suffix)?;
    let added = db
        .tracking_domain_add(
            access.workspace.id,
            &host,
            MAX_TRACKING_DOMAINS,
            &access.actor,
        )
        .await?;
    // The first look is a courtesy: the reconciler looks again within a minute.
    match look(state, db, &added).await {
        Ok(_) => current(db, access.workspace.id, &host).await,
        Err(p) => {
            tracing::info!(host, detail = %p.detail, "a new tracking domain could not be looked at yet");
            Ok(added)
        }
    }
}

/// Removes a tracking domain (owners); the engine stops serving it at the reconciler's
/// next pass, or now when it answers.
pub async fn remove(
    state: &AppState,
    db: &Database,
    access: &Access,
    host: &str,
) -> Result<(), Problem> {
    access.owner("remove tracking domains")?;
    let host = host.trim().to_ascii_lowercase();
    if !db
        .tracking_domain_remove(access.workspace.id, &host, &access.actor)
        .await?
    {
        return Err(Problem::not_found("tracking domain"));
    }
    let front = db.tracking_front(access.workspace.id).await?;
    if let Err(p) = sync_front(state, db, &front).await {
        tracing::info!(host, detail = %p.detail, "the engine will stop serving a removed tracking domain later");
    }
    Ok(())
}

/// Looks at one host now (owners): DNS, then the engine when DNS points at it.
pub async fn check_now(
    state: &AppState,
    db: &Database,
    access: &Access,
    host: &str,
) -> Result<TrackingDomain, Problem> {
    access.owner("check tracking domains")?;
    let host = host.trim().to_ascii_lowercase();
    let domain = current(db, access.workspace.id, &host).await?;
    let now = look(state, db, &domain).await?;
    if now.served() {
        let front = db.tracking_front(access.workspace.id).await?;
        // What the engine answered is kept on the host (its detail).
        let _ = sync_front(state, db, &front).await;
    }
    current(db, access.workspace.id, &host).await
}

async fn current(
    db: &Database,
    workspace: WorkspaceId,
    host: &str,
) -> Result<TrackingDomain, Problem> {
    db.tracking_domains(workspace)
        .await?
        .into_iter()
        .find(|d| d.host == host)
        .ok_or_else(|| Problem::not_found("tracking domain"))
}

/// When to look at a host in `state` again, `age_s` seconds after it was added.
fn next_look(state: TrackingState, age_s: i64) -> i64 {
    if state.served() {
        RECHECK_SERVED_S
    } else if age_s < 3_600 {
        RECHECK_SOON_S
    } else {
        RECHECK_LATER_S
    }
}

/// Looks at where `domain` points and records its new state (audited when it changes).
pub async fn look(
    state: &AppState,
    db: &Database,
    domain: &TrackingDomain,
) -> Result<TrackingState, Problem> {
    let age_s = (chrono::Utc::now() - domain.created_at).num_seconds();
    let Some(droplet) = engine_of(db, domain.workspace_id).await? else {
        db.tracking_domain_record(
            domain.workspace_id,
            &domain.host,
            &TrackingCheck {
                state: TrackingState::Pending,
                found: None,
                detail: Some("your engine has not started yet"),
                next_check_s: next_look(TrackingState::Pending, age_s),
            },
            ACTOR,
        )
        .await?;
        return Ok(TrackingState::Pending);
    };
    let engine = engine_address(state, &droplet).await?;
    let pointing = pointing(state, &domain.host, &engine).await?;
    let next = domain.state.after_dns(pointing.at_engine());
    let found = match &pointing {
        Pointing::Elsewhere(f) => Some(f.as_str()),
        _ => None,
    };
    let detail = match next {
        TrackingState::Pending => Some(format!(
            "no CNAME record yet: point {} at {}",
            domain.host, engine.hostname
        )),
        TrackingState::WrongTarget => Some(format!(
            "it points elsewhere; change the CNAME to {}",
            engine.hostname
        )),
        TrackingState::Verified => domain
            .detail
            .clone()
            .filter(|_| domain.state == TrackingState::Verified),
        TrackingState::Active => None,
    };
    db.tracking_domain_record(
        domain.workspace_id,
        &domain.host,
        &TrackingCheck {
            state: next,
            found,
            detail: detail.as_deref(),
            next_check_s: next_look(next, age_s),
        },
        ACTOR,
    )
    .await?;
    Ok(next)
}

/// Tells the workspace's engine the whole list it should serve, and records the answer:
/// verified hosts become active, or carry why they are not yet.
pub async fn sync_front(
    state: &AppState,
    db: &Database,
    front: &TrackingFront,
) -> Result<(), Problem> {
    let ws = front.workspace_id;
    let retry =
        |failures: i32| (RECHECK_SOON_S << failures.clamp(0, 6) as u32).min(RECHECK_SERVED_S);
    let Some(droplet) = engine_of(db, ws).await? else {
        db.tracking_front_failed(ws, "your engine has not started yet", RECHECK_SERVED_S)
            .await?;
        return Ok(());
    };
    if front.wanted.is_empty() && front.served.is_empty() {
        db.tracking_front_served(ws, &[], RECHECK_SERVED_S * 24, ACTOR)
            .await?;
        return Ok(());
    }
    if !super::droplet_ops::reachable(droplet.state) {
        // A sleeping engine's sidecar serves its saved list when it wakes; what was added
        // since is sent once it answers again.
        db.tracking_front_failed(
            ws,
            "your engine is asleep; it will serve this domain when it wakes",
            retry(front.failures),
        )
        .await?;
        return Ok(());
    }
    let command = Command::SetTrackingDomains {
        hosts: front.wanted.clone(),
    };
    let sent = async {
        let (ip, provider) = super::droplet_ops::address(state, &droplet).await?;
        super::droplet_ops::send(state, &droplet, &ip, provider, &command).await
    }
    .await;
    match sent {
        Ok(genesis_protocol::CommandReply::SetTrackingDomains { hosts }) => {
            db.tracking_front_served(ws, &hosts, RECHECK_SERVED_S, ACTOR)
                .await?;
            Ok(())
        }
        Ok(other) => {
            tracing::warn!(workspace = %ws, reply = ?other, "the sidecar answered another command");
            db.tracking_front_failed(
                ws,
                "your engine gave an unexpected answer",
                retry(front.failures),
            )
            .await?;
            Err(Problem::internal())
        }
        Err(p) => {
            tracing::info!(workspace = %ws, detail = %p.detail, "the engine could not be told its tracking domains");
            db.tracking_front_failed(
                ws,
                "your engine has not confirmed it serves this domain yet; it is asked again \
                 shortly",
                retry(front.failures),
            )
            .await?;
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_read_as_people_type_it_or_refused_in_words() {
        let ok = |raw: &str| parse_host(raw, "sslip.io").expect(raw);
        assert_eq!(ok("track.acme.com"), "track.acme.com");
        assert_eq!(ok("  https://Track.Acme.com/x?y "), "track.acme.com");
        assert_eq!(ok("track.acme.com."), "track.acme.com");
        for (raw, words) in [
            ("", "enter a host name"),
            ("https://", "enter a host name"),
            ("träck.acme.com", "xn--"),
            ("track.acme.com:8443", "without a port"),
            ("*.acme.com", "not a wildcard"),
            ("acme", "not a host name"),
            ("10.0.0.1", "not a host name"),
            ("track_1.acme.com", "not a host name"),
            ("203-0-113-5.sslip.io", "engine's own address"),
        ] {
            let p = parse_host(raw, "sslip.io").expect_err(raw);
            assert!(p.detail.contains(words), "{raw}: {}", p.detail);
        }
    }

    #[test]
    fn a_cname_decides_alone_and_a_records_must_be_the_engine_exactly() {
        let engine = EngineAddress {
            hostname: "203-0-113-5.sslip.io".into(),
            ip: "203.0.113.5".into(),
        };
        assert_eq!(judge(None, &[], &engine), Pointing::Nowhere);
        assert_eq!(
            judge(Some("203-0-113-5.SSLIP.io."), &[], &engine),
            Pointing::AtEngine
        );
        assert_eq!(
            judge(
                Some("198-51-100-7.sslip.io."),
                &["203.0.113.5".into()],
                &engine
            ),
            Pointing::Elsewhere("CNAME 198-51-100-7.sslip.io".into())
        );
        assert_eq!(
            judge(None, &["203.0.113.5".into()], &engine),
            Pointing::AtEngine
        );
        assert_eq!(
            judge(
                None,
                &["203.0.113.5".into(), "198.51.100.7".into()],
                &engine
            ),
            Pointing::Elsewhere("A 203.0.113.5, 198.51.100.7".into())
        );
    }

    #[test]
    fn waiting_hosts_are_looked_at_often_at_first_and_served_ones_hourly() {
        assert_eq!(next_look(TrackingState::Pending, 10), RECHECK_SOON_S);
        assert_eq!(
            next_look(TrackingState::WrongTarget, 7_200),
            RECHECK_LATER_S
        );
        assert_eq!(next_look(TrackingState::Verified, 10), RECHECK_SERVED_S);
        assert_eq!(next_look(TrackingState::Active, 10), RECHECK_SERVED_S);
    }
}
