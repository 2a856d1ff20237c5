//! Shared listeners for virtual droplets at fleet scale: one socket per port for every
//! droplet, each connection routed to the droplet whose address it was made to.
//!
//! A virtual droplet normally binds its sidecar and its n8n on its own loopback address: two
//! listening sockets each. 15,000 droplets would need 30,000 open files for listeners alone,
//! beyond this machine's limit of 20,000. Here one socket per port listens on every address
//! (`0.0.0.0`), and the address a connection was made to (its local address, as the kernel
//! reports it) picks the droplet's router. Clients are unchanged: they connect to the
//! droplet's own address as before. Connections from anything but loopback are refused, so
//! the wildcard bind exposes nothing.
//!
//! Hand-written because no crate routes by local address; axum's connect-info hook gives it
//! to us with the stream, and the rest is a map lookup.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use tower::ServiceExt;

/// Both ends of a connection, as the kernel reports them.
#[derive(Debug, Clone, Copy)]
struct Ends {
    local: Option<SocketAddr>,
    peer: SocketAddr,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, tokio::net::TcpListener>> for Ends {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Ends {
            local: stream.io().local_addr().ok(),
            peer: *stream.remote_addr(),
        }
    }
}

/// The routers attached per address, one map for every port.
#[derive(Debug, Default)]
pub struct VirtualHosts {
    routes: RwLock<HashMap<SocketAddr, Router>>,
}

impl VirtualHosts {
    /// An empty set; serve it on each port with [`VirtualHosts::listen`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Listens on `port` on every address, for as long as the process runs.
    pub async fn listen(self: &Arc<Self>, port: u16) -> std::io::Result<SocketAddr> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
                .await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(dispatch)
            .with_state(self.clone())
            .into_make_service_with_connect_info::<Ends>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "a shared listener stopped");
            }
        });
        Ok(addr)
    }

    /// How many addresses are served now.
    pub fn len(&self) -> usize {
        self.routes.read().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether no address is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn route(&self, addr: SocketAddr) -> Option<Router> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&addr)
            .cloned()
    }
}

impl genesis_sidecar::server::Attach for VirtualHosts {
    fn attach(&self, addr: SocketAddr, router: Router) {
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr, router);
    }

    fn detach(&self, addr: SocketAddr) {
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&addr);
    }
}

async fn dispatch(
    State(hosts): State<Arc<VirtualHosts>>,
    ConnectInfo(ends): ConnectInfo<Ends>,
    mut req: Request,
) -> Response {
    // The attached router sees the peer as it would on a listener of its own.
    req.extensions_mut().insert(ConnectInfo(ends.peer));
    if !ends.peer.ip().is_loopback() {
        return StatusCode::FORBIDDEN.into_response();
    }
    // Nothing attached at that address: what a client sees when nothing listens there.
    let Some(router) = ends.local.and_then(|a| hosts.route(a)) else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis_sidecar::server::Attach;

    fn saying(word: &'static str) -> Router {
        Router::new().route("/", axum::routing::get(move || async move { word }))
    }

    async fn get(ip: &str, port: u16) -> (u16, String) {
        let r = reqwest::get(format!("http://{ip}:{port}/"))
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    #[tokio::test]
    async fn each_connection_reaches_the_router_of_the_address_it_was_made_to() {
        let hosts = VirtualHosts::new();
        let port = hosts.listen(0).await.expect("listen").port();
        let at = |ip: &str| SocketAddr::new(ip.parse().expect("ip"), port);
        hosts.attach(at("127.0.0.2"), saying("two"));
        hosts.attach(at("127.0.0.3"), saying("three"));
        assert_eq!(hosts.len(), 2);
        assert_eq!(get("127.0.0.2", port).await, (200, "two".into()));
        assert_eq!(get("127.0.0.3", port).await, (200, "three".into()));
        assert_eq!(
            get("127.0.0.4", port).await.0,
            502,
            "nothing attached there"
        );
        hosts.detach(at("127.0.0.2"));
        assert_eq!(get("127.0.0.2", port).await.0, 502, "detached");
        assert_eq!(get("127.0.0.3", port).await, (200, "three".into()));
    }
}
