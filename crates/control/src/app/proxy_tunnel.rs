//! The managed residential proxy (spec 57.2's "Residential Proxies", $0.001 a request). A
//! tenant's n8n uses the control plane's proxy door as its HTTP proxy, with its workspace
//! token as the password, and every tunnel it opens is one `PROXY_REQUEST`. The gateway's
//! order holds as for every managed call (spec 58.2): the kill-switch and the hold first,
//! then the registry's concurrency slots (100 in all, 5 per tenant, spec 59.2) for as long as
//! the tunnel lives, then the residential network with Genesis's credentials. The charge is
//! posted once the network opened the tunnel and given back when it did not; what flows
//! through the tunnel afterwards is the tenant's (TLS, usually) and not metered.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::StatusCode;
use genesis_core::WorkspaceId;
use genesis_core::money::Millicents;
use genesis_protocol::connect;
use genesis_queue::limits::Admitted;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::managed::{hold_and_admit, settle};
use crate::auth::workspace_of_ingest_token;
use crate::{AppState, Problem};

/// The matrix's id of the service.
pub const SERVICE: &str = "proxies";

/// How long the residential network may take to open a tunnel.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest a tunnel lives: under the registry's slot lease (5 minutes), so a slot is
/// never counted free while its tunnel still runs.
pub const TUNNEL_MAX: Duration = Duration::from_secs(4 * 60);

/// The residential network Genesis buys from, and what tenants may reach through it.
#[derive(Clone)]
pub struct ResidentialProxy {
    /// The network's proxy endpoint, `host:port`.
    pub addr: String,
    /// Genesis's account with it.
    pub username: String,
    /// Its password.
    pub password: String,
    /// The ports tenants may tunnel to (web traffic: 443 and 80).
    pub ports: Vec<u16>,
    /// Whether loopback, private and link-local addresses may be named (tests on one
    /// machine); never in production, where the network would reach its own insides.
    pub allow_private_targets: bool,
}

impl std::fmt::Debug for ResidentialProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentialProxy")
            .field("addr", &self.addr)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// An open tunnel to the target through the network, paid for.
#[derive(Debug)]
pub struct Tunnel {
    /// The connection to the network, past its `200`.
    pub upstream: TcpStream,
    /// Bytes the network sent after its answer's head (the target's, for the client).
    pub early: Vec<u8>,
    /// What the tenant was charged.
    pub charged: Millicents,
    admitted: Option<Admitted>,
}

impl Tunnel {
    /// Gives the tunnel's concurrency slot back (when it closed).
    pub async fn release(self, state: &AppState) {
        if let Some(w) = &state.wallets {
            give_back(w, self.admitted.as_ref(), false).await;
        }
    }
}

/// Returns a concurrency slot (and, when the tunnel never opened, its place in the counts).
async fn give_back(wallets: &super::wallet::Wallets, admitted: Option<&Admitted>, unused: bool) {
    if let Some(a) = admitted
        && let Err(e) = wallets.limits().release(a, unused).await
    {
        tracing::warn!(error = %e, "a proxy slot was not released; its lease will lapse");
    }
}

/// 407, as a proxy asks for credentials.
fn unauthenticated(detail: &str) -> Problem {
    metrics::counter!("genesis_api_auth_failures_total").increment(1);
    Problem::with_status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, detail)
}

/// The workspace whose token is the password of `proxy_authorization` (the user name is
/// free: n8n's proxy settings want one).
async fn caller(
    state: &AppState,
    proxy_authorization: Option<&str>,
) -> Result<WorkspaceId, Problem> {
    let Some((_, token)) = proxy_authorization.and_then(connect::basic) else {
        return Err(unauthenticated(
            "use the workspace's API token as the proxy password",
        ));
    };
    if let Some(ws) = workspace_of_ingest_token(state, &token).await? {
        return Ok(ws);
    }
    Err(unauthenticated("wrong proxy credentials"))
}

/// Whether `host` may be reached: a name, or a public address.
fn target_allowed(proxy: &ResidentialProxy, host: &str, port: u16) -> Result<(), Problem> {
    if !proxy.ports.contains(&port) {
        return Err(Problem::forbidden(format!(
            "the managed proxy reaches ports {:?} only, not {port}",
            proxy.ports
        )));
    }
    if proxy.allow_private_targets {
        return Ok(());
    }
    let private = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64
        }
        Ok(IpAddr::V6(a)) => {
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some()
        }
        Err(_) => {
            host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal")
        }
    };
    if private {
        return Err(Problem::forbidden(format!(
            "the managed proxy does not reach private addresses ({host})"
        )));
    }
    Ok(())
}

/// Opens a paid tunnel to `host:port` for the caller of `proxy_authorization`.
pub async fn open(
    state: &AppState,
    proxy_authorization: Option<&str>,
    host: &str,
    port: u16,
) -> Result<Tunnel, Problem> {
    let workspace = caller(state, proxy_authorization).await?;
    let wallets = state.wallets.as_ref().ok_or_else(|| {
        Problem::unavailable("managed services need the wallet, which needs Redis")
    })?;
    let proxy =
        state.providers.managed.proxy.as_ref().ok_or_else(|| {
            Problem::unavailable("the managed proxy is not set up on this platform")
        })?;
    target_allowed(proxy, host, port)?;
    let service = wallets
        .settings()
        .matrix
        .get(SERVICE)
        .filter(|s| s.per_call().is_some())
        .ok_or_else(|| Problem::unavailable("the service matrix does not price the proxy"))?
        .clone();
    let (price, hold, admitted) = hold_and_admit(wallets, &service, workspace).await?;
    match through_network(proxy, host, port).await {
        Ok((upstream, early)) => {
            if let Err(p) = settle(wallets, &hold, Some(price)).await {
                // Unpaid, so no tunnel; the hold lapses at its timeout, uncharged.
                give_back(wallets, admitted.as_ref(), false).await;
                return Err(p);
            }
            metrics::counter!("genesis_managed_calls_total", "service" => SERVICE, "outcome" => "charged").increment(1);
            Ok(Tunnel {
                upstream,
                early,
                charged: if hold.unbilled {
                    Millicents::ZERO
                } else {
                    price
                },
                admitted,
            })
        }
        Err(p) => {
            give_back(wallets, admitted.as_ref(), true).await;
            settle(wallets, &hold, None).await?;
            metrics::counter!("genesis_managed_calls_total", "service" => SERVICE, "outcome" => "not_delivered").increment(1);
            Err(p)
        }
    }
}

/// Asks the network for a tunnel to `host:port`: the connection past the network's `200`,
/// and any bytes that came after it.
async fn through_network(
    proxy: &ResidentialProxy,
    host: &str,
    port: u16,
) -> Result<(TcpStream, Vec<u8>), Problem> {
    let failed = |why: &str| {
        tracing::warn!(proxy = %proxy.addr, why, "residential proxy failed");
        Problem::bad_gateway(format!(
            "the proxy network could not open a tunnel to {host}:{port} ({why}); nothing was charged"
        ))
    };
    let attempt = async {
        let mut up = TcpStream::connect(proxy.addr.as_str())
            .await
            .map_err(|_| failed("unreachable"))?;
        let auth = connect::basic_value(&proxy.username, &proxy.password);
        up.write_all(connect::request(host, port, Some(&auth)).as_bytes())
            .await
            .map_err(|_| failed("connection lost"))?;
        let mut buf = Vec::with_capacity(256);
        loop {
            let mut chunk = [0u8; 512];
            let n = up
                .read(&mut chunk)
                .await
                .map_err(|_| failed("connection lost"))?;
            if n == 0 {
                return Err(failed("closed without an answer"));
            }
            buf.extend_from_slice(&chunk[..n]);
            match connect::answer_status(&buf) {
                Ok(None) => continue,
                Ok(Some((200, head))) => return Ok((up, buf[head..].to_vec())),
                Ok(Some((407, _))) => {
                    tracing::error!("the residential network refused Genesis's credentials");
                    return Err(failed("it refused the platform's account"));
                }
                Ok(Some((status, _))) => return Err(failed(&format!("it answered {status}"))),
                Err(_) => return Err(failed("an answer that is not HTTP")),
            }
        }
    };
    tokio::time::timeout(OPEN_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(failed("no answer in time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(allow_private_targets: bool) -> ResidentialProxy {
        ResidentialProxy {
            addr: "proxy:8000".into(),
            username: "u".into(),
            password: "p".into(),
            ports: vec![80, 443],
            allow_private_targets,
        }
    }

    #[test]
    fn tenants_reach_public_web_ports_only() {
        let p = proxy(false);
        assert!(target_allowed(&p, "example.com", 443).is_ok());
        assert!(target_allowed(&p, "93.184.215.14", 80).is_ok());
        assert!(target_allowed(&p, "2606:2800:21f:cb07::1", 443).is_ok());
        for (host, port) in [
            ("example.com", 22),
            ("example.com", 6379),
            ("127.0.0.1", 443),
            ("10.1.2.3", 443),
            ("192.168.0.1", 80),
            ("169.254.169.254", 80),
            ("100.64.0.1", 443),
            ("0.0.0.0", 443),
            ("::1", 443),
            ("fd00::1", 443),
            ("fe80::1", 443),
            ("::ffff:127.0.0.1", 443),
            ("localhost", 443),
            ("metadata.google.internal", 80),
        ] {
            assert_eq!(
                target_allowed(&p, host, port).err().map(|e| e.status),
                Some(403),
                "{host}:{port}"
            );
        }
        assert!(target_allowed(&proxy(true), "127.0.0.1", 443).is_ok());
        assert!(
            target_allowed(&proxy(true), "127.0.0.1", 22).is_err(),
            "ports still hold"
        );
    }
}
