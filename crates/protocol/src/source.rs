//! Which address a request really came from, when a proxy may stand in front: the sidecar
//! behind the droplet's Caddy, the control plane behind a load balancer. Both refuse or
//! count unauthenticated traffic per source, so both must agree on what a source is.

use std::net::IpAddr;

/// The peer, or, when the peer is one of `trusted_proxies`, the last address that proxy
/// appended to `X-Forwarded-For` (`forwarded`): anyone else's header is ignored, since
/// anyone can write one.
pub fn real_source(peer: IpAddr, trusted_proxies: &[IpAddr], forwarded: Option<&str>) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    forwarded
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let xff = Some("198.51.100.7, 203.0.113.9");
        let trusted = [ip("10.0.0.2")];
        assert_eq!(
            real_source(ip("10.0.0.2"), &trusted, xff),
            ip("203.0.113.9")
        );
        assert_eq!(real_source(ip("192.0.2.1"), &trusted, xff), ip("192.0.2.1"));
        assert_eq!(
            real_source(ip("10.0.0.2"), &trusted, Some("garbage")),
            ip("10.0.0.2")
        );
        assert_eq!(real_source(ip("10.0.0.2"), &trusted, None), ip("10.0.0.2"));
    }
}
