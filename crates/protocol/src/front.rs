//! What the droplet's web front (Caddy) and the sidecar agree on: which of n8n's paths are
//! public, where Caddy's admin API listens, and the id of the route that serves a tenant's
//! tracking domains (spec 61.4). Cloud-init writes Caddy's side; the sidecar drives the
//! admin API from the other.

/// n8n's paths Caddy serves publicly (webhooks and forms, with their waiting variants); every
/// other path answers 404, so n8n's editor and REST API are never exposed.
pub const N8N_PUBLIC_PATHS: [&str; 4] = [
    "/webhook/*",
    "/webhook-waiting/*",
    "/form/*",
    "/form-waiting/*",
];

/// Caddy's admin API on the droplet: a Unix socket in a volume that only Caddy's and the
/// sidecar's containers mount. No TCP port, not even on the compose network, so nothing
/// else on the droplet (n8n's code nodes included) can reconfigure the front.
pub const CADDY_ADMIN_SOCKET: &str = "/run/caddy-admin/admin.sock";

/// The directory holding [`CADDY_ADMIN_SOCKET`] (the shared volume's mount point).
pub const CADDY_ADMIN_DIR: &str = "/run/caddy-admin";

/// The origin the admin API accepts (`origins` with `enforce_origin` in the Caddyfile): a
/// request without it, or with another, is refused by Caddy itself.
pub const CADDY_ADMIN_ORIGIN: &str = "localhost:2019";

/// The `@id` of the route, first in Caddy's HTTPS server, that serves the tenant's tracking
/// domains: n8n's public paths, and 404 for the rest.
pub const TRACKING_ROUTE_ID: &str = "genesis-tracking";

/// Most tracking domains one workspace may have (each costs Caddy a certificate).
pub const MAX_TRACKING_DOMAINS: usize = 10;

/// Whether `h` is a host name a tracking domain may have: lower-case letters, digits and
/// hyphens, labels of 1 to 63 characters not starting or ending with a hyphen, at least two
/// labels, at most 253 characters, and not all digits (no IP addresses). No wildcards.
pub fn is_host_name(h: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    h.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_plain_lower_case_names() {
        for ok in ["track.acme.test", "go.x-y.example.com", "a1.b2"] {
            assert!(is_host_name(ok), "{ok}");
        }
        for bad in [
            "acme",
            "Track.acme.test",
            "*.acme.test",
            "a..test",
            "-a.test",
            "a-.test",
            "10.0.0.1",
            "a.test.",
            "a_b.test",
            "",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert!(!is_host_name(&format!("{}.test", "a".repeat(64))));
    }
}
