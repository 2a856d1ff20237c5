//! Spec 66.1's n8n crash (DECISIONS 115), over the simulated cloud with real sidecars: a
//! droplet's n8n stops while its sidecar goes on; the sidecar's heartbeat says so, the
//! zombie detector's pass queues one RESTART_N8N, the worker sends it, and n8n runs again.

use std::time::Duration;

use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::zombies::ZombieSettings;

use crate::helpers::{Options, World, world};

async fn n8n_status(w: &World, d: genesis_core::DropletId) -> Option<String> {
    w.t.db.droplet_n8n_status(d).await.expect("status")
}

async fn wait_status(w: &World, d: genesis_core::DropletId, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while n8n_status(w, d).await.as_deref() != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "n8n never reported {want}: {:?}",
            n8n_status(w, d).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_n8n_is_restarted_once_and_runs_again() {
    let w = world(Options::default()).await;
    let ws = w.ignite_many("crash", 1).await[0];
    let d = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let provider = d.provider_id.expect("cloud id");
    wait_status(&w, d.id, "running").await;
    let zombies = crate::zombie_detector(&w, ZombieSettings::default().reboot_deadline);
    let r = zombies.reconcile().await.expect("pass");
    assert_eq!(r.n8n_restarts, 0, "a running n8n is left alone: {r:?}");

    // Restarts are counted per 5-minute period: keep the crash and both passes in one.
    let period = genesis_control::workers::n8n_restart::RESTART_EVERY.as_secs() as i64;
    let into = chrono::Utc::now().timestamp().rem_euclid(period);
    if into > period - 15 {
        tokio::time::sleep(Duration::from_secs((period - into + 1) as u64)).await;
    }
    assert!(w.hook.crash_n8n(provider).await, "an in-process n8n");
    wait_status(&w, d.id, "stopped").await;
    let r = zombies.reconcile().await.expect("pass");
    assert_eq!(r.n8n_restarts, 1, "{r:?}");
    let r = zombies.reconcile().await.expect("pass");
    assert_eq!(r.n8n_restarts, 0, "one restart a period: {r:?}");
    // The world's worker runs it: n8n comes back, with its workflows.
    wait_status(&w, d.id, "running").await;
    let restarted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE event = 'N8N_RESTARTED' AND subject = $1",
    )
    .bind(d.id.to_string())
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(restarted, 1);
    let n8n = w.hook.n8n(provider).expect("n8n");
    assert_eq!(
        n8n.workflow_summary().iter().filter(|(_, _, a)| *a).count(),
        3
    );
    w.finish().await;
}
