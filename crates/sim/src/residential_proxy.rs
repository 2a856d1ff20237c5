//! A fake residential proxy, as the residential networks sell them (Bright Data, Oxylabs,
//! Smartproxy): an HTTP CONNECT proxy with `Proxy-Authorization: Basic` credentials, whose
//! user name may carry session options after the account (`genesis-country-us`).
//!
//! As the real ones:
//! - no credentials, or wrong ones: 407 with `Proxy-Authenticate: Basic`;
//! - a target it cannot reach: 502; a malformed head: 400;
//! - otherwise `200 Connection established`, then bytes both ways until either side closes.
//!
//! Differences: it tunnels only (a real one also forwards plain `GET http://…` requests,
//! which it answers 405 here), the exit is this machine rather than a household's address,
//! and there is no bandwidth metering. Faults for tests: the next `n` tunnels fail with 502
//! (an exit node that dropped).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use genesis_protocol::connect::{self, ConnectError, MAX_HEAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The account the fake accepts (Genesis's wholesale credentials).
pub const PROXY_USER: &str = "genesis-wholesale";
/// Its password.
pub const PROXY_PASSWORD: &str = "fake-residential-password";

#[derive(Default)]
struct Inner {
    tunnels: u64,
    refuse_next: u32,
    refused_auth: u64,
}

/// The fake. Cheap to clone.
#[derive(Clone, Default)]
pub struct FakeResidentialProxy {
    inner: Arc<Mutex<Inner>>,
}

impl FakeResidentialProxy {
    /// A proxy with no faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tunnels opened so far.
    pub fn tunnels(&self) -> u64 {
        self.lock().tunnels
    }

    /// CONNECTs refused for their credentials.
    pub fn refused_auth(&self) -> u64 {
        self.lock().refused_auth
    }

    /// The next `n` tunnels fail with 502.
    pub fn fail_next(&self, n: u32) {
        self.lock().refuse_next = n;
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.handle(sock).await {
                    tracing::debug!(error = %e, "residential proxy connection ended");
                }
            });
        }
    }

    async fn handle(&self, mut sock: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        let req = loop {
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            match connect::parse(&buf) {
                Ok(Some(req)) => break req,
                Ok(None) if buf.len() < MAX_HEAD => {}
                Ok(None) | Err(ConnectError::TooLarge) => {
                    return refuse(&mut sock, 431, "Request Header Fields Too Large", "").await;
                }
                Err(ConnectError::NotConnect(_)) => {
                    return refuse(&mut sock, 405, "Method Not Allowed", "").await;
                }
                Err(_) => return refuse(&mut sock, 400, "Bad Request", "").await,
            }
        };
        let authorised = req
            .proxy_authorization
            .as_deref()
            .and_then(connect::basic)
            .is_some_and(|(user, password)| {
                let account = user
                    .split_once("-country-")
                    .map_or(user.as_str(), |(a, _)| a);
                account == PROXY_USER && password == PROXY_PASSWORD
            });
        if !authorised {
            self.lock().refused_auth += 1;
            return refuse(
                &mut sock,
                407,
                "Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"residential\"\r\n",
            )
            .await;
        }
        let fail = {
            let mut inner = self.lock();
            let fail = inner.refuse_next > 0;
            inner.refuse_next = inner.refuse_next.saturating_sub(1);
            fail
        };
        let target = if fail {
            None
        } else {
            tokio::time::timeout(
                Duration::from_secs(10),
                TcpStream::connect((req.host.as_str(), req.port)),
            )
            .await
            .ok()
            .and_then(Result::ok)
        };
        let Some(mut target) = target else {
            return refuse(&mut sock, 502, "Bad Gateway", "").await;
        };
        self.lock().tunnels += 1;
        sock.write_all(connect::answer(200, "Connection established", "", "").as_bytes())
            .await?;
        target.write_all(&buf[req.head_len..]).await?;
        tokio::io::copy_bidirectional(&mut sock, &mut target).await?;
        Ok(())
    }
}

async fn refuse(
    sock: &mut TcpStream,
    status: u16,
    reason: &str,
    extra: &str,
) -> std::io::Result<()> {
    sock.write_all(connect::answer(status, reason, extra, "").as_bytes())
        .await?;
    sock.shutdown().await
}
