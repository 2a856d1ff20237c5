//! `genesis bench webhooks` (issue 24): outbound deliveries per second to a local receiver
//! at 50 in flight, through the whole sender (claim from PostgreSQL, open the secret from
//! the vault, sign, POST, record), against bare POSTs of the same bodies by a plain HTTP
//! client at the same concurrency to the same receiver, in the same run.
//!
//! The receiver answers 204 at once, so what is measured is our side of a delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use genesis_control::app::outbound_webhooks::{WebhookSender, WebhookSettings};
use genesis_control::workers::reconciler::Reconciler;
use genesis_control::workers::webhooks::{AT_ONCE, WebhookDeliveries};
use genesis_core::{Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::testing::TestDb;
use genesis_store::{MasterKeys, NewEndpoint, NewWorkspace, RegionalStore};
use serde_json::json;

use super::CliError;
use super::bench_ignition::round;

pub(crate) fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(anyhow::anyhow!("{e}"))
}

/// One line of the benchmark's output.
pub(crate) fn emit(metric: &str, value: f64, unit: &str, baseline: Option<f64>) {
    outln!(
        "{}",
        json!({"bench": "webhooks", "metric": metric, "value": round(value), "unit": unit,
            "baseline": baseline.map(round)})
    );
}

/// Runs the benchmark: `deliveries` events spread over `endpoints` endpoints.
pub async fn run(deliveries: usize, endpoints: usize) -> Result<(), CliError> {
    if deliveries == 0 || endpoints == 0 {
        return Err(CliError::Usage(
            "--deliveries and --endpoints must be positive".into(),
        ));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, deliveries, endpoints).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

/// A receiver that answers 204 to everything and counts.
async fn receiver() -> Result<(String, Arc<AtomicU64>), CliError> {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(runtime)?;
    let url = format!("http://{}/hooks", listener.local_addr().map_err(runtime)?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, count))
}

async fn run_on(t: &TestDb, deliveries: usize, endpoints: usize) -> Result<(), CliError> {
    let (url, received) = receiver().await?;
    let vault = Arc::new(
        MasterKeys::new(1, std::collections::BTreeMap::from([(1, [7u8; 32])])).map_err(runtime)?,
    );
    let db = &t.db;
    let events = vec!["lead.created".to_owned()];
    for i in 0..endpoints {
        let ws = db
            .workspace_create(
                &NewWorkspace {
                    id: WorkspaceId::new(),
                    slug: Slug::parse(&format!("hooks_{i}")).map_err(runtime)?,
                    name: WorkspaceName::parse(&format!("Hooks {i}")).map_err(runtime)?,
                    region: Region::EuWest,
                    tier: Tier::Standard,
                    onboarding: Default::default(),
                },
                "bench",
            )
            .await
            .map_err(runtime)?;
        let id = uuid::Uuid::now_v7();
        let secret = genesis_protocol::webhook::new_secret();
        let sealed = vault
            .seal(
                secret.as_bytes(),
                &genesis_store::outbound_webhooks::secret_aad(id),
            )
            .map_err(runtime)?;
        db.webhook_endpoint_create(
            &NewEndpoint {
                id,
                workspace: ws.id,
                url: &url,
                events: &events,
                description: "",
                secret: &sealed,
            },
            "bench",
        )
        .await
        .map_err(runtime)?;
    }
    // Events as emission writes them, spread evenly over the endpoints.
    let body = json!({"workspace_id": "x", "lead_id": "y", "email": "ada@lead.example", "status": "new", "source": "import"});
    sqlx::query(
        "INSERT INTO genesis.webhook_deliveries (id, endpoint_id, workspace_id, event, payload)
         SELECT gen_random_uuid(), e.id, e.workspace_id, 'lead.created',
                jsonb_build_object('type', 'lead.created', 'timestamp', now(), 'data', $2::jsonb)
         FROM generate_series(1, $1) g
         JOIN (SELECT id, workspace_id, row_number() OVER () - 1 AS n FROM genesis.webhook_endpoints) e
           ON e.n = g % (SELECT count(*) FROM genesis.webhook_endpoints)",
    )
    .bind(i32::try_from(deliveries).map_err(runtime)?)
    .bind(&body)
    .execute(db.owner_pool())
    .await
    .map_err(runtime)?;
    eprintln!(
        "[bench webhooks] {deliveries} deliveries to {endpoints} endpoints, {AT_ONCE} in flight"
    );

    // Baseline: the same bodies POSTed by a plain client at the same concurrency.
    let plain = reqwest::Client::new();
    let payload =
        json!({"type": "lead.created", "timestamp": "2026-12-07T00:00:00Z", "data": body})
            .to_string();
    let started = Instant::now();
    let posted = futures_util::stream::iter(0..deliveries)
        .map(|_| {
            let (plain, url, payload) = (plain.clone(), url.clone(), payload.clone());
            async move {
                plain
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(payload)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(AT_ONCE)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let bare = posted as f64 / started.elapsed().as_secs_f64();
    let before = received.load(Ordering::Relaxed);

    // Ours: the sender's passes until nothing is pending.
    let sender = WebhookSender::new(
        vault,
        WebhookSettings {
            allow_private: true,
            ..Default::default()
        },
    )
    .map_err(runtime)?;
    let deliveries_worker =
        WebhookDeliveries::new(RegionalStore::single(db.clone()), Arc::new(sender));
    let started = Instant::now();
    let mut delivered = 0u64;
    let deadline = started + Duration::from_secs(600);
    while delivered < deliveries as u64 && Instant::now() < deadline {
        let report = deliveries_worker.reconcile().await.map_err(runtime)?;
        delivered += report.delivered;
        if report.delivered + report.retrying + report.dead == 0 {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    let ours = delivered as f64 / took;
    let arrived = received.load(Ordering::Relaxed) - before;
    emit("deliveries_per_s", ours, "per_s", Some(bare));
    emit("ratio_to_bare_posts", ours / bare, "ratio", None);
    emit(
        "delivered",
        delivered as f64,
        "count",
        Some(deliveries as f64),
    );
    if arrived != deliveries as u64 || delivered != deliveries as u64 {
        return Err(CliError::CheckFailed(format!(
            "{delivered} recorded delivered and {arrived} received, of {deliveries}"
        )));
    }
    Ok(())
}
