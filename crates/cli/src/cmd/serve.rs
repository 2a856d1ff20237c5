//! `genesis serve`: the control plane's HTTP server.

use std::sync::Arc;

use anyhow::Context;
use genesis_control::{AppState, auth::token_digest, serve};
use genesis_core::TenantRouter;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::CliError;
use crate::config::Config;

/// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
pub async fn run(cfg: Config) -> Result<(), CliError> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let stores = cfg.regional_store()?;
    let redis = cfg
        .redis
        .url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .map_err(|e| CliError::Usage(format!("redis.url: {e}")))?;
    if cfg.server.api_token.is_none() {
        tracing::warn!("server.api_token is not set: /api/v1 refuses every request");
    }
    let signer = match cfg.server.command_key.as_deref() {
        Some(b64) => {
            use base64::Engine as _;
            let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    CliError::Usage("server.command_key must be 32 bytes in base64".into())
                })?;
            genesis_protocol::CommandSigner::from_seed(&seed)
        }
        None => {
            tracing::warn!(
                "server.command_key is not set: using a throwaway command key (sidecars that hand-shake now cannot be commanded after a restart)"
            );
            genesis_protocol::CommandSigner::generate()
        }
    }
    .map_err(|e| CliError::Runtime(e.into()))?;
    let state = AppState {
        stores,
        redis,
        router: Arc::new(TenantRouter::new(cfg.legacy_tenant())),
        metrics: Some(metrics),
        api_token_sha256: cfg.server.api_token.as_deref().map(token_digest),
        command_signer: Some(Arc::new(signer)),
    };
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    tracing::info!(address = %cfg.server.listen, "control plane listening");
    serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("control plane stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
