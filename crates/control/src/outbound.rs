//! Fetching a web page a tenant named (their website, a products page): bounded in time
//! and size, with redirects followed one by one, and never to an address inside our own
//! network (server-side request forgery).
//!
//! Written here rather than with reqwest's redirect policy alone: a policy sees each hop's
//! URL but not the address its host resolves to, which is what decides whether the hop
//! reaches the internet or our metadata service, database or Redis. So each hop's host is
//! resolved here, every address it resolves to is checked, and the connection is pinned to
//! the checked addresses (`ClientBuilder::resolve_to_addrs`): a DNS answer that changes
//! between the check and the connection (rebinding) cannot reach an internal address.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::{Instant, timeout_at};
use url::Url;

/// How much a fetch may cost.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// The whole fetch, redirects included.
    pub timeout: Duration,
    /// The largest page read (bytes).
    pub max_bytes: usize,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Fetch private and loopback addresses too: tests and demos serving sites on this
    /// machine only, never production.
    pub allow_private: bool,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(8),
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 5,
            allow_private: false,
        }
    }
}

/// A page fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where it was found, after redirects.
    pub url: Url,
    /// The page (invalid UTF-8 replaced).
    pub html: String,
}

/// Why a page could not be fetched, in words for the person who typed the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not an http(s) URL.
    #[error("enter a web address such as https://example.com")]
    BadUrl,
    /// The host has no address.
    #[error("{0} could not be found")]
    UnknownHost(String),
    /// The host resolves to a private, loopback or otherwise internal address.
    #[error("{0} points to a private or internal network address, which is not fetched")]
    Private(String),
    /// The time ran out.
    #[error("the site did not answer within {0} seconds")]
    Timeout(u64),
    /// A redirect led back to an address already visited.
    #[error("the site redirects in a loop")]
    RedirectLoop,
    /// Too many redirects.
    #[error("the site redirects more than {0} times")]
    TooManyRedirects(usize),
    /// The page is over the size limit.
    #[error("the page is larger than {0} KB")]
    TooLarge(usize),
    /// Not HTML.
    #[error("the address is not a web page (it serves {0})")]
    NotHtml(String),
    /// An HTTP error status.
    #[error("the site answered with HTTP status {0}")]
    Status(u16),
    /// Anything else on the way (connection refused, TLS...).
    #[error("the site could not be reached")]
    Unreachable,
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), documentation, benchmarking, multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || first == 0x2001 && v6.segments()[1] == 0x0db8
                    || first == 0x0064 && v6.segments()[1] == 0xff9b)
            }
        },
    }
}

/// The URL a person typed: `acme.com` is taken as `https://acme.com`.
pub fn parse_url(raw: &str) -> Result<Url, FetchError> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| FetchError::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FetchError::BadUrl);
    }
    Ok(url)
}

/// Fetches the HTML page at `url` within `limits`.
pub async fn fetch_html(url: Url, limits: &FetchLimits) -> Result<Fetched, FetchError> {
    let deadline = Instant::now() + limits.timeout;
    let timeout = || FetchError::Timeout(limits.timeout.as_secs().max(1));
    let mut url = url;
    let mut seen = HashSet::new();
    for _ in 0..=limits.max_redirects {
        if !seen.insert(url.as_str().to_owned()) {
            return Err(FetchError::RedirectLoop);
        }
        let host = url.host_str().ok_or(FetchError::BadUrl)?.to_owned();
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addrs: Vec<SocketAddr> =
            timeout_at(deadline, tokio::net::lookup_host((lookup_host, port)))
                .await
                .map_err(|_| timeout())?
                .map_err(|_| FetchError::UnknownHost(host.clone()))?
                .collect();
        if addrs.is_empty() {
            return Err(FetchError::UnknownHost(host));
        }
        if !limits.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(FetchError::Private(host));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&host, &addrs)
            .user_agent(concat!(
                "GenesisEngine/",
                env!("CARGO_PKG_VERSION"),
                " (brand setup)"
            ))
            .build()
            .map_err(|_| FetchError::Unreachable)?;
        let mut resp = timeout_at(
            deadline,
            client
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml")
                .send(),
        )
        .await
        .map_err(|_| timeout())?
        .map_err(|_| FetchError::Unreachable)?;
        let status = resp.status();
        if status.is_redirection() {
            let next = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or(FetchError::Unreachable)?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "text/html" && essence != "application/xhtml+xml" {
            let shown = if essence.is_empty() {
                "no content type"
            } else {
                essence
            };
            return Err(FetchError::NotHtml(shown.to_owned()));
        }
        let too_large = || FetchError::TooLarge(limits.max_bytes / 1024);
        if resp
            .content_length()
            .is_some_and(|n| n > limits.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = timeout_at(deadline, resp.chunk())
            .await
            .map_err(|_| timeout())?
            .map_err(|_| FetchError::Unreachable)?
        {
            if body.len() + chunk.len() > limits.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Fetched {
            url,
            html: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Err(FetchError::TooManyRedirects(limits.max_redirects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn typed_addresses_get_a_scheme_and_others_are_refused() {
        assert_eq!(
            parse_url("acme.com").map(|u| u.to_string()),
            Ok("https://acme.com/".into())
        );
        assert_eq!(parse_url("ftp://acme.com"), Err(FetchError::BadUrl));
        assert_eq!(parse_url("javascript:alert(1)"), Err(FetchError::BadUrl));
        assert_eq!(parse_url(""), Err(FetchError::BadUrl));
    }
}
