//! Who may hand-shake, and what a refused handshake may cost (DESIGN §3.2).
//!
//! A provisioning token sits in the droplet's user-data, which DigitalOcean keeps serving to
//! whoever asks from inside the droplet, and which leaks wherever user-data leaks. So the
//! token alone proves nothing: a handshake is accepted only
//! - from the address the cloud reports for the droplet the token was issued for (the
//!   address the ignition recorded when the cloud reported it, else the cloud API's answer,
//!   which must also carry the workspace's tag and sit in the workspace's region), and
//! - for the workspace's own region.
//!
//! Unauthenticated traffic must not cost more than it is worth: each source address has a
//! quota of handshake attempts, checked before the database is asked, and the audit log
//! gets at most one `HANDSHAKE_REFUSED` per source per [`AUDIT_EVERY`] (and at most
//! [`AUDIT_PER_SECOND`] in all), each carrying how many were skipped before it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::HeaderMap;

use crate::audit_budget::AuditBudget;
use crate::source_quota::SourceQuota;

/// Handshake attempts one source may make per minute (a droplet makes one, and retries a
/// few times while the control plane is unreachable).
pub const HANDSHAKES_PER_MINUTE: u32 = 10;
/// At most one refusal per source is audited in this long.
pub const AUDIT_EVERY: Duration = Duration::from_secs(10);
/// At most this many refusals are audited per second, from all sources together.
pub const AUDIT_PER_SECOND: u32 = 20;
/// The gate in front of `POST /api/v1/sidecar/handshake`.
pub struct HandshakeGate {
    attempts: SourceQuota,
    audit: AuditBudget<IpAddr>,
}

impl std::fmt::Debug for HandshakeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeGate")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Default for HandshakeGate {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl HandshakeGate {
    /// A gate that believes `X-Forwarded-For` only from `trusted_proxies` (the load
    /// balancer in front of the control plane).
    pub fn new(trusted_proxies: Vec<IpAddr>) -> Self {
        Self {
            attempts: SourceQuota::new(HANDSHAKES_PER_MINUTE, trusted_proxies),
            audit: AuditBudget::new(AUDIT_EVERY, AUDIT_PER_SECOND),
        }
    }

    /// The address a request came from: the peer, or, when the peer is a trusted proxy,
    /// the last address that proxy appended to `X-Forwarded-For`.
    pub fn source(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        self.attempts.source(peer, headers)
    }

    /// Whether `source` may attempt one more handshake now.
    pub fn admit(&self, source: IpAddr) -> bool {
        self.attempts.admit(source)
    }

    /// Whether a refusal from `source` is written to the audit log now: `Some(skipped)`
    /// (how many from it were not written since the last that was), or `None` (not
    /// written; it is counted towards the next).
    pub fn audit_slot(&self, source: Option<IpAddr>) -> Option<u64> {
        self.audit
            .slot(source.unwrap_or(IpAddr::from([0, 0, 0, 0])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_source_gets_a_handful_of_attempts_and_one_audit_row_per_interval() {
        let gate = HandshakeGate::default();
        let a = ip("203.0.113.9");
        let admitted = (0..100).filter(|_| gate.admit(a)).count();
        assert_eq!(admitted, HANDSHAKES_PER_MINUTE as usize);
        assert!(
            gate.admit(ip("198.51.100.1")),
            "another source has its own quota"
        );
        assert_eq!(
            gate.audit_slot(Some(a)),
            Some(0),
            "the first refusal is written"
        );
        for _ in 0..500 {
            assert_eq!(gate.audit_slot(Some(a)), None, "then skipped, and counted");
        }
        assert_eq!(gate.audit_slot(Some(ip("198.51.100.1"))), Some(0));
    }
}
