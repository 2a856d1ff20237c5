//! The droplet metadata service (`/metadata/v1/...`, DigitalOcean's 169.254.169.254). Every
//! virtual droplet has its own loopback address, so, as on DigitalOcean, the service knows who
//! asks from the connection's source address: a droplet binds its sockets to its address.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use super::Simulator;
use super::state::DropletRecord;

/// `/metadata/v1/{id,hostname,region,user-data,tags}`.
pub fn router() -> Router<Simulator> {
    Router::new()
        .route(
            "/metadata/v1/id",
            get(|s, p| field(s, p, |d| d.id.to_string())),
        )
        .route(
            "/metadata/v1/hostname",
            get(|s, p| field(s, p, |d| d.name.clone())),
        )
        .route(
            "/metadata/v1/region",
            get(|s, p| field(s, p, |d| d.region.clone())),
        )
        .route(
            "/metadata/v1/user-data",
            get(|s, p| field(s, p, |d| d.user_data.clone().unwrap_or_default())),
        )
        .route(
            "/metadata/v1/tags",
            get(|s, p| field(s, p, |d| d.tags.join("\n"))),
        )
}

async fn field(
    State(sim): State<Simulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    pick: impl Fn(&DropletRecord) -> String,
) -> Response {
    let IpAddr::V4(ip) = peer.ip() else {
        return (StatusCode::NOT_FOUND, "not a droplet address\n").into_response();
    };
    let s = sim.lock();
    match s
        .world
        .by_ip
        .get(&ip)
        .and_then(|id| s.world.droplets.get(id))
    {
        Some(d) => pick(d).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("{ip} is not a droplet address\n"),
        )
            .into_response(),
    }
}

/// Serves only the metadata service on `listener` (the API router serves it too), for a
/// dedicated address such as `127.169.254.254:80`.
pub async fn serve_metadata(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    sim.set_metadata_url(format!("http://{}", listener.local_addr()?));
    let app = router().with_state(sim);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
