//! The managed proxy's door: a TCP listener that speaks HTTP CONNECT to tenants' n8n, hands
//! each request to [`crate::app::proxy_tunnel::open`], and relays the paid tunnel's bytes
//! both ways until either side closes or [`TUNNEL_MAX`] passes.
//!
//! Written on tokio rather than hyper's server: a CONNECT door reads one head and then only
//! copies bytes, and owning the socket keeps the tunnel's end (and so the slot's release) in
//! one place. Unauthenticated traffic costs little: at most [`MAX_CONNECTIONS`] connections
//! at once, a head of at most 8 KiB that must arrive within [`HEAD_TIMEOUT`], and
//! [`PER_SOURCE_PER_MINUTE`] requests per source address before any token is looked up.
//! Refusals are answered with a problem+json body (and `Proxy-Authenticate` for 407,
//! `Retry-After` for 429), then the connection closes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use genesis_protocol::connect::{self, ConnectError, MAX_HEAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::app::proxy_tunnel::{self, TUNNEL_MAX};
use crate::source_quota::SourceQuota;
use crate::{AppState, Problem};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1_000;
/// How long a client has to send its CONNECT head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// CONNECT requests per source address per minute (a tenant's n8n holds at most five
/// tunnels at once; this is far above what it opens).
pub const PER_SOURCE_PER_MINUTE: u32 = 1_200;

/// Serves the door on `listener` until `shutdown` resolves; tunnels already open run on.
pub async fn serve(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let quota = Arc::new(SourceQuota::new(PER_SOURCE_PER_MINUTE, Vec::new()));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (sock, peer) = tokio::select! {
            () = &mut shutdown => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy door: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let quota = quota.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if !quota.admit(peer.ip()) {
                let mut sock = sock;
                let p =
                    Problem::too_many("too many proxy requests from this address").retry_after(1);
                let _ = refuse(&mut sock, &p).await;
                return;
            }
            if let Err(e) = handle(&state, sock).await {
                tracing::debug!(error = %e, "proxy door: connection ended");
            }
        });
    }
}

async fn handle(state: &AppState, mut sock: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            match connect::parse(&buf) {
                Ok(None) if buf.len() < MAX_HEAD => {}
                Ok(None) => return Ok(Some(Err(ConnectError::TooLarge))),
                other => return Ok(other.transpose()),
            }
        }
    })
    .await;
    let req = match head {
        Err(_) | Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Some(Ok(req)))) => req,
        Ok(Ok(Some(Err(e)))) => {
            let p = match e {
                ConnectError::TooLarge => Problem::with_status(
                    axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    e.to_string(),
                ),
                ConnectError::NotConnect(m) => Problem::method_not_allowed(&m, "CONNECT"),
                ConnectError::Malformed | ConnectError::BadTarget(_) => {
                    Problem::bad_body(e.to_string())
                }
            };
            return refuse(&mut sock, &p).await;
        }
    };
    let mut tunnel = match proxy_tunnel::open(
        state,
        req.proxy_authorization.as_deref(),
        &req.host,
        req.port,
    )
    .await
    {
        Ok(t) => t,
        Err(p) => return refuse(&mut sock, &p).await,
    };
    let relayed = relay(&mut sock, &buf[req.head_len..], &mut tunnel).await;
    tunnel.release(state).await;
    relayed
}

/// Answers 200, passes on the bytes each side sent early, then copies both ways.
async fn relay(
    sock: &mut TcpStream,
    client_early: &[u8],
    tunnel: &mut proxy_tunnel::Tunnel,
) -> std::io::Result<()> {
    let charged = tunnel.charged.get();
    sock.write_all(
        connect::answer(
            200,
            "Connection established",
            &format!("{}: {charged}\r\n", crate::api::managed::CHARGED_HEADER),
            "",
        )
        .as_bytes(),
    )
    .await?;
    sock.write_all(&tunnel.early).await?;
    tunnel.upstream.write_all(client_early).await?;
    match tokio::time::timeout(
        TUNNEL_MAX,
        tokio::io::copy_bidirectional(sock, &mut tunnel.upstream),
    )
    .await
    {
        Ok(r) => r.map(|_| ()),
        Err(_) => {
            tracing::debug!("proxy door: a tunnel reached its time limit");
            Ok(())
        }
    }
}

/// Answers a refusal as a proxy does, with a problem+json body, and closes.
async fn refuse(sock: &mut TcpStream, p: &Problem) -> std::io::Result<()> {
    let body = serde_json::to_string(p).unwrap_or_default();
    let mut extra = String::from("Content-Type: application/problem+json\r\n");
    if p.status == 407 {
        extra.push_str("Proxy-Authenticate: Basic realm=\"genesis\"\r\n");
    }
    if let Some(s) = p.retry_after_s {
        extra.push_str(&format!("Retry-After: {s}\r\n"));
    }
    sock.write_all(connect::answer(p.status, p.title, &extra, &body).as_bytes())
        .await?;
    sock.shutdown().await
}
