//! The fake n8n as the sidecar's [`ContainerRuntime`]: "containers" are servers of the same
//! fake instance (its data survives restarts and swaps, as n8n's database does), started and
//! stopped on the droplet's address. An image whose name contains `broken` never starts, so
//! a swap to it fails its health check and rolls back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use genesis_sidecar::runtime::{ContainerRuntime, LogRing, RuntimeError, RuntimeStatus};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{FakeN8n, serve};
use crate::vhost::VirtualHosts;
use genesis_sidecar::server::Attach;

/// How a started n8n is served.
enum Serving {
    /// On its own listener, with the signal that stops it.
    Own(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>),
    /// Attached to a shared listener ([`crate::vhost`]).
    Shared,
}

struct Inner {
    server: Option<Serving>,
    image: String,
    previous: Option<String>,
    started: Instant,
}

/// A fake n8n served on one address, restartable and swappable.
pub struct InProcessN8n {
    addr: SocketAddr,
    n8n: FakeN8n,
    shared: Option<Arc<VirtualHosts>>,
    inner: tokio::sync::Mutex<Inner>,
    logs: LogRing,
}

impl std::fmt::Debug for InProcessN8n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessN8n")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl InProcessN8n {
    /// Serves `n8n` on `addr` as `image`.
    pub async fn start(addr: SocketAddr, n8n: FakeN8n, image: &str) -> Result<Self, RuntimeError> {
        Self::start_on(addr, n8n, image, None).await
    }

    /// Serves `n8n` at `addr` as `image`, through `shared` listeners when given (fleet-scale
    /// simulations) or on a listener of its own.
    pub async fn start_on(
        addr: SocketAddr,
        n8n: FakeN8n,
        image: &str,
        shared: Option<Arc<VirtualHosts>>,
    ) -> Result<Self, RuntimeError> {
        let rt = Self {
            addr,
            n8n,
            shared,
            inner: tokio::sync::Mutex::new(Inner {
                server: None,
                image: image.to_owned(),
                previous: None,
                started: Instant::now(),
            }),
            logs: LogRing::new(500),
        };
        {
            let mut inner = rt.inner.lock().await;
            rt.launch(&mut inner).await?;
        }
        Ok(rt)
    }

    fn log(&self, line: String) {
        self.logs.push(line);
    }

    async fn launch(&self, inner: &mut Inner) -> Result<(), RuntimeError> {
        inner.started = Instant::now();
        if inner.image.contains("broken") {
            self.log(format!("n8n {} exited during start-up", inner.image));
            return Ok(());
        }
        if let Some(hosts) = &self.shared {
            hosts.attach(self.addr, self.n8n.router());
            inner.server = Some(Serving::Shared);
            self.log(format!("n8n {} ready on {}", inner.image, self.addr));
            return Ok(());
        }
        // A previous server on this address may still be closing its last connection.
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(RuntimeError::Failed(format!("binding {}: {e}", self.addr)));
                }
            }
        };
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(serve(listener, self.n8n.clone(), async {
            let _ = rx.await;
        }));
        inner.server = Some(Serving::Own(tx, handle));
        self.log(format!("n8n {} ready on {}", inner.image, self.addr));
        Ok(())
    }

    async fn halt(&self, inner: &mut Inner) {
        match inner.server.take() {
            Some(Serving::Own(tx, handle)) => {
                let _ = tx.send(());
                let _ = handle.await;
            }
            Some(Serving::Shared) => {
                if let Some(hosts) = &self.shared {
                    hosts.detach(self.addr);
                }
            }
            None => return,
        }
        self.log(format!("n8n {} stopped", inner.image));
    }

    /// Stops serving (the droplet halted).
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        self.halt(&mut inner).await;
    }
}

impl ContainerRuntime for InProcessN8n {
    async fn status(&self) -> RuntimeStatus {
        let inner = self.inner.lock().await;
        RuntimeStatus {
            running: inner.server.is_some(),
            pid: None,
            image: inner.image.clone(),
            uptime_s: inner.started.elapsed().as_secs(),
        }
    }

    async fn restart(&self) -> Result<Option<u32>, RuntimeError> {
        let mut inner = self.inner.lock().await;
        self.halt(&mut inner).await;
        self.launch(&mut inner).await?;
        Ok(None)
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(RuntimeError::Failed(format!(
                "{image:?} is not an image reference"
            )));
        }
        self.log(format!("pulled {image}"));
        Ok(())
    }

    async fn swap(&self, image: &str) -> Result<Option<u32>, RuntimeError> {
        let mut inner = self.inner.lock().await;
        self.halt(&mut inner).await;
        inner.previous = Some(std::mem::replace(&mut inner.image, image.to_owned()));
        self.launch(&mut inner).await?;
        Ok(None)
    }

    async fn rollback(&self) -> Result<Option<u32>, RuntimeError> {
        let mut inner = self.inner.lock().await;
        let previous = inner
            .previous
            .take()
            .ok_or_else(|| RuntimeError::Failed("nothing to roll back to".into()))?;
        self.halt(&mut inner).await;
        inner.image = previous;
        self.launch(&mut inner).await?;
        Ok(None)
    }

    async fn logs(&self, lines: usize) -> Vec<String> {
        self.logs.tail(lines)
    }
}
