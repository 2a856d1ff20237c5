//! HTTP CONNECT between a proxy client and a proxy (RFC 9110 §9.3.6), without I/O: the
//! request head a client sends, the answer's status line, and the `Proxy-Authorization:
//! Basic` credentials (RFC 7617). The managed-service gateway's proxy door, its client to the
//! residential proxy, and the simulated residential proxy all read and write it here, so they
//! agree on what a well-formed exchange is. The head itself is parsed by `httparse`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The largest request or answer head read before the tunnel (real clients send well under
/// 1 KiB).
pub const MAX_HEAD: usize = 8 * 1024;

/// A CONNECT request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The host to tunnel to (a name, or an address without brackets).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The `Proxy-Authorization` header's value, if sent.
    pub proxy_authorization: Option<String>,
    /// How many bytes of the buffer the head took (what follows belongs to the tunnel).
    pub head_len: usize,
}

impl Connect {
    /// `host:port`, bracketing an IPv6 address.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The head did not end within [`MAX_HEAD`] bytes.
    #[error("the request head is longer than {MAX_HEAD} bytes")]
    TooLarge,
    /// Not HTTP/1.x.
    #[error("this is not an HTTP/1.1 request")]
    Malformed,
    /// Another method.
    #[error("this door only tunnels (CONNECT), it does not forward {0} requests")]
    NotConnect(String),
    /// A target that is not `host:port`.
    #[error("CONNECT names its target as host:port, not {0:?}")]
    BadTarget(String),
}

/// The CONNECT request at the start of `buf`; `Ok(None)` while its head is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Connect>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ConnectError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ConnectError::TooLarge),
        Err(_) => return Err(ConnectError::Malformed),
    };
    if head_len > MAX_HEAD {
        return Err(ConnectError::TooLarge);
    }
    let method = req.method.unwrap_or_default();
    if method != "CONNECT" {
        return Err(ConnectError::NotConnect(method.chars().take(16).collect()));
    }
    let target = req.path.unwrap_or_default();
    let (host, port) = split_target(target)
        .ok_or_else(|| ConnectError::BadTarget(target.chars().take(100).collect()))?;
    let proxy_authorization = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned);
    Ok(Some(Connect {
        host,
        port,
        proxy_authorization,
        head_len,
    }))
}

/// `host:port` or `[v6]:port`, with a port above zero and a host of name characters.
fn split_target(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// The status of a proxy's answer to CONNECT at the start of `buf`, and the head's length;
/// `Ok(None)` while incomplete.
pub fn answer_status(buf: &[u8]) -> Result<Option<(u16, usize)>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some((resp.code.unwrap_or(0), n))),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(ConnectError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ConnectError::TooLarge),
        Err(_) => Err(ConnectError::Malformed),
    }
}

/// The user and password of a `Basic` credential, if the value is one.
pub fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A `Basic` credential's header value.
pub fn basic_value(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// The head of a CONNECT request to `host:port`, with credentials if given.
pub fn request(host: &str, port: u16, proxy_authorization: Option<&str>) -> String {
    let target = authority(host, port);
    let auth = proxy_authorization
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n")
}

/// An answer with `status`, `reason`, extra header lines (each ending in CRLF) and `body`
/// (none for 200: the tunnel follows). The connection closes after any answer but 200.
pub fn answer(status: u16, reason: &str, extra: &str, body: &str) -> String {
    if status == 200 {
        format!("HTTP/1.1 200 {reason}\r\n{extra}\r\n")
    } else {
        format!(
            "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_head_is_read_with_its_credentials() {
        let auth = basic_value("ws", "gws_secret");
        let head = request("Example.com", 443, Some(&auth));
        let mut buf = head.clone().into_bytes();
        buf.extend_from_slice(b"\x16\x03\x01tls bytes");
        let c = parse(&buf).expect("valid").expect("complete");
        assert_eq!(c.authority(), "example.com:443");
        assert_eq!(c.head_len, head.len(), "what follows belongs to the tunnel");
        let (user, password) =
            basic(c.proxy_authorization.as_deref().expect("sent")).expect("basic");
        assert_eq!((user.as_str(), password.as_str()), ("ws", "gws_secret"));
        let v6 = parse(b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 8443));
        assert_eq!(v6.authority(), "[2001:db8::1]:8443");
    }

    #[test]
    fn anything_else_is_refused_before_a_tunnel() {
        assert_eq!(parse(b"CONNECT example.com:443 HTTP/1.1\r\n"), Ok(None));
        assert_eq!(
            parse(b"GET http://example.com/ HTTP/1.1\r\n\r\n"),
            Err(ConnectError::NotConnect("GET".into()))
        );
        for target in [
            "example.com",
            "example.com:0",
            "example.com:99999",
            ":443",
            "a b:1",
        ] {
            let head = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
            assert!(
                matches!(
                    parse(head.as_bytes()),
                    Err(ConnectError::BadTarget(_)) | Err(ConnectError::Malformed)
                ),
                "{target}"
            );
        }
        let long = format!("CONNECT a:1 HTTP/1.1\r\nX: {}\r\n", "x".repeat(MAX_HEAD));
        assert_eq!(parse(long.as_bytes()), Err(ConnectError::TooLarge));
        assert_eq!(parse(b"\x16\x03\x01\x02\x00"), Err(ConnectError::Malformed));
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic("Basic !!!"), None);
    }

    #[test]
    fn a_proxys_answer_gives_its_status() {
        let a = answer(
            407,
            "Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"x\"\r\n",
            "",
        );
        assert_eq!(answer_status(a.as_bytes()), Ok(Some((407, a.len()))));
        let ok = answer(200, "Connection established", "", "");
        assert_eq!(answer_status(ok.as_bytes()), Ok(Some((200, ok.len()))));
        assert_eq!(answer_status(b"HTTP/1.1 200 OK\r\n"), Ok(None));
    }
}
