//! A per-source-address quota for unauthenticated doors (sidecar handshakes, God Mode
//! sign-ins): who a request came from, and whether that source may try once more.
//!
//! One quota, so the two doors agree on what a source is (the peer, or what a trusted
//! proxy appended to `X-Forwarded-For`) and on how much memory the per-source table may
//! hold (idle sources are forgotten past [`MAX_SOURCES`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sources tracked before idle ones are forgotten.
pub const MAX_SOURCES: usize = 10_000;

/// Attempts per source per minute, as a burst of that many refilled over the minute.
pub struct SourceQuota {
    trusted_proxies: Vec<IpAddr>,
    attempts: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for SourceQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceQuota")
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl SourceQuota {
    /// `per_minute` attempts per source (at least one), believing `X-Forwarded-For` only
    /// from `trusted_proxies`.
    pub fn new(per_minute: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            trusted_proxies,
            attempts: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(per_minute)),
        }
    }

    /// The address a request came from: the peer, or, when the peer is a trusted proxy,
    /// the last address that proxy appended to `X-Forwarded-For`. `None` without a peer
    /// (never over TCP).
    pub fn source(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Some(genesis_protocol::source::real_source(
            peer?.ip(),
            &self.trusted_proxies,
            forwarded,
        ))
    }

    /// Whether `source` may make one more attempt now.
    pub fn admit(&self, source: IpAddr) -> bool {
        let ok = self.attempts.check_key(&source).is_ok();
        if self.attempts.len() > MAX_SOURCES {
            self.attempts.retain_recent();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn each_source_has_its_own_burst() {
        let q = SourceQuota::new(5, Vec::new());
        assert_eq!((0..50).filter(|_| q.admit(ip("203.0.113.9"))).count(), 5);
        assert!(q.admit(ip("198.51.100.1")));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let q = SourceQuota::new(5, vec![proxy]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9".parse().expect("header"));
        assert_eq!(
            q.source(Some(SocketAddr::new(proxy, 1)), &h),
            Some(ip("203.0.113.9"))
        );
        let stranger = SocketAddr::new(ip("198.51.100.7"), 1);
        assert_eq!(q.source(Some(stranger), &h), Some(stranger.ip()));
        assert_eq!(q.source(None, &h), None);
    }
}
