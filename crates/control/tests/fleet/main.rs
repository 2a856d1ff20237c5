//! Fleet health end to end (spec 54): virtual droplets heartbeat every second to the real
//! control plane; sidecars killed in the simulator are detected as zombies within three
//! windows, power-cycled through the cloud API and back to ACTIVE_HEALTHY; one that never
//! comes back ends ORPHAN with a manual-review alert. Two detector replicas run at once and
//! every zombie still gets exactly one reboot.

#[path = "../ignition/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the ignition tests; not every helper is used here"
)]
mod helpers;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use genesis_control::workers::leader::run_as_leader;
use genesis_control::workers::zombies::{ZombieDetector, ZombieSettings};
use genesis_core::{DropletState, WorkspaceId};
use genesis_sidecar::sysstats::HostSample;
use genesis_sim::fleet::CALM;
use helpers::{Options, credentials, world};
use tokio::sync::watch;

async fn wait_state(w: &helpers::World, id: genesis_core::DropletId, want: DropletState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.t.db.droplet_get(id).await.expect("droplet").state != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zombies_are_rebooted_once_and_recover_and_one_that_never_returns_is_orphaned() {
    let w = world(Options::default()).await;
    const TENANTS: usize = 200;
    let mut tenants: Vec<WorkspaceId> = Vec::new();
    for i in 0..TENANTS {
        let ws = w.create_workspace(&format!("fleet_{i}")).await;
        let (status, _) = w
            .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        assert_eq!(status, 202);
        tenants.push(ws);
    }
    for ws in &tenants {
        let got = w.wait_finished(*ws, Duration::from_secs(120)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    }

    // A droplet under load degrades after 5 heartbeats and recovers after 3 calm ones.
    let busy =
        w.t.db
            .droplet_live_for_workspace(tenants[10])
            .await
            .expect("rows")[0]
            .clone();
    let busy_provider = busy.provider_id.expect("provider");
    assert!(w.hook.set_load(
        busy_provider,
        HostSample {
            cpu_percent: 95.0,
            ..CALM
        }
    ));
    wait_state(&w, busy.id, DropletState::ActiveDegraded).await;
    assert!(w.hook.set_load(busy_provider, CALM));
    wait_state(&w, busy.id, DropletState::ActiveHealthy).await;

    // Two replicas of the detector (one leads at a time) and a reboot worker.
    let settings = ZombieSettings {
        heartbeat_interval: Duration::from_secs(1),
        reboot_deadline: Duration::from_secs(4),
        ..ZombieSettings::default()
    };
    let stores = genesis_store::RegionalStore::single(w.t.db.clone());
    let (stop, stopped) = watch::channel(false);
    let mut loops = Vec::new();
    for _ in 0..2 {
        let detector = std::sync::Arc::new(ZombieDetector::new(
            stores.clone(),
            w.cloud.clone(),
            w.bus.clone(),
            settings.clone(),
        ));
        let db = w.t.db.clone();
        let stopped = stopped.clone();
        loops.push(tokio::spawn(async move {
            run_as_leader(
                db,
                "zombie-detector",
                Duration::from_millis(200),
                stopped,
                || {
                    let d = detector.clone();
                    async move {
                        if let Err(e) = d.reconcile().await {
                            tracing::warn!(error = %e, "zombie pass failed");
                        }
                    }
                },
            )
            .await;
        }));
    }
    // The world's worker runs reboot jobs too (every queue of the set).
    drop(stores);

    // Kill six sidecars; the last never boots again.
    let mut killed = BTreeMap::new();
    for (n, ws) in tenants.iter().take(6).enumerate() {
        let d = w.t.db.droplet_live_for_workspace(*ws).await.expect("rows")[0].clone();
        let provider = d.provider_id.expect("provider");
        assert!(
            w.sim.go_dark(provider, None),
            "droplet {provider} was running"
        );
        if n == 5 {
            w.sim.never_boot_again(provider);
        }
        killed.insert(d.id, Utc::now());
    }
    let forever = *killed.keys().last().expect("six");

    // Wait for the five to come back and the sixth to be orphaned.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut settled = 0;
        for id in killed.keys() {
            let state = w.t.db.droplet_get(*id).await.expect("droplet").state;
            let want = if *id == forever {
                DropletState::Orphan
            } else {
                DropletState::ActiveHealthy
            };
            let passed_zombie =
                !w.t.db
                    .audit_list(None, Some("DROPLET_STATE_CHANGED"), 5_000)
                    .await
                    .expect("audit")
                    .iter()
                    .filter(|a| {
                        a.subject.as_deref() == Some(&id.to_string()) && a.details["to"] == "ZOMBIE"
                    })
                    .collect::<Vec<_>>()
                    .is_empty();
            if state == want && passed_zombie {
                settled += 1;
            }
        }
        if settled == killed.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {settled} of {} settled",
            killed.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = stop.send(true);
    for l in loops {
        let _ = l.await;
    }

    let audit =
        w.t.db
            .audit_list(None, Some("DROPLET_STATE_CHANGED"), 10_000)
            .await
            .expect("audit");
    for (id, killed_at) in &killed {
        let mine: Vec<_> = audit
            .iter()
            .filter(|a| a.subject.as_deref() == Some(&id.to_string()))
            .collect();
        let zombie_at = mine
            .iter()
            .filter(|a| a.details["to"] == "ZOMBIE")
            .map(|a| a.occurred_at)
            .min()
            .expect("became a zombie");
        // Three 1 s windows, plus the flush interval, the pass interval and slack.
        let detect = (zombie_at - *killed_at).to_std().expect("after the kill");
        assert!(
            detect <= Duration::from_secs(3) + Duration::from_millis(2_500),
            "{id} detected after {detect:?}"
        );
        let reboots = mine
            .iter()
            .filter(|a| a.details["to"] == "REBOOTING")
            .count();
        assert_eq!(reboots, 1, "{id}: exactly one reboot");
    }
    // Nobody else was touched.
    let zombies = audit.iter().filter(|a| a.details["to"] == "ZOMBIE").count();
    assert_eq!(zombies, killed.len());
    // The orphan has a manual-review alert.
    let alerts = w.t.db.alert_list(true, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, "manual_review");
    assert_eq!(alerts[0].droplet_id, Some(forever.as_uuid()));

    // What operators see through the API.
    let (status, health) = w.get("/api/v1/fleet/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["total"], TENANTS);
    assert_eq!(
        health["by_state"]["ACTIVE_HEALTHY"],
        TENANTS - 1,
        "{health}"
    );
    assert_eq!(health["by_state"]["ORPHAN"], 1, "{health}");
    assert_eq!(health["by_region"]["eu-west"]["ORPHAN"], 1, "{health}");
    let (status, d) = w.get(&format!("/api/v1/droplets/{forever}")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["state"], "ORPHAN");
    assert!(d["last_heartbeat"]["active_workflows"].is_number(), "{d}");
    let path: Vec<&str> = d["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert!(
        path.ends_with(&["ACTIVE_HEALTHY", "ZOMBIE", "REBOOTING", "ORPHAN"]),
        "{path:?}"
    );
    // The degraded droplet's round trip is in its history too.
    let (_, b) = w.get(&format!("/api/v1/droplets/{}", busy.id)).await;
    let trip: Vec<&str> = b["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert!(
        trip.ends_with(&["ACTIVE_DEGRADED", "ACTIVE_HEALTHY"]),
        "{trip:?}"
    );
    let (status, a) = w.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["open_by_kind"]["manual_review"], 1, "{a}");
    let (status, _) = w.get("/api/v1/droplets/not-a-uuid").await;
    assert_eq!(status, 422);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_is_detected_audited_and_healed_and_a_missing_partition_is_an_alert() {
    use genesis_control::workers::watchdog::Watchdog;
    let w = world(Options::default()).await;
    let mut tenants = Vec::new();
    for slug in ["drift_a", "drift_b"] {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        tenants.push(ws);
    }
    let stores = genesis_store::RegionalStore::single(w.t.db.clone());
    let watchdog = Watchdog::new(stores, w.cloud.clone(), w.sidecar.clone());
    let droplet = |ws: WorkspaceId| {
        let db = w.t.db.clone();
        async move { db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone() }
    };
    let a = droplet(tenants[0]).await;
    let b = droplet(tenants[1]).await;
    // A heartbeat with the inventory has arrived: nothing drifts.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let clean = watchdog.reconcile().await.expect("pass");
    assert_eq!(clean.checked, 2, "{clean:?}");
    assert!(clean.drifts.is_empty(), "{clean:?}");

    // Drift on a: one workflow switched off behind our back, one made by hand.
    let n8n = w.hook.n8n(a.provider_id.expect("provider")).expect("n8n");
    let desired = w.t.db.droplet_workflows(a.id).await.expect("desired");
    assert_eq!(desired.len(), 3);
    assert!(n8n.chaos_set_active(&desired[0].workflow_id, false));
    let stray = n8n.chaos_add_workflow("Made by hand", true);
    // Missing partition on b.
    genesis_store::PartitionManager::new(w.t.db.clone())
        .drop(tenants[1], "chaos")
        .await
        .expect("drop");

    // Within one heartbeat and one pass: detected, audited, healed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let found = watchdog.reconcile().await.expect("pass");
    assert_eq!(found.drifts.get("state_mismatch"), Some(&1), "{found:?}");
    assert_eq!(found.drifts.get("orphan_workflow"), Some(&1), "{found:?}");
    assert_eq!(found.drifts.get("missing_partition"), Some(&1), "{found:?}");
    assert_eq!(found.healed, 2, "{found:?}");
    let flows = n8n.workflow_summary();
    assert!(
        flows.iter().all(|f| f.0 != stray),
        "the stray workflow is gone"
    );
    assert!(
        flows.iter().all(|f| f.2),
        "every template workflow is active again: {flows:?}"
    );
    for (d, want) in [
        (a.id, DropletState::DriftDetected),
        (b.id, DropletState::DriftDetected),
    ] {
        assert_eq!(w.t.db.droplet_get(d).await.expect("droplet").state, want);
    }
    let alerts = w.t.db.alert_list(true, 50).await.expect("alerts");
    let kinds: Vec<(&str, &str)> = alerts
        .iter()
        .map(|x| (x.kind.as_str(), x.severity.as_str()))
        .collect();
    assert!(
        kinds.contains(&("missing_partition", "CRITICAL")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("state_mismatch", "HIGH")), "{kinds:?}");
    let audited =
        w.t.db
            .audit_list(None, Some("DRIFT_HEALED"), 10)
            .await
            .expect("audit");
    assert_eq!(audited.len(), 2);

    // The next heartbeat shows the heal: a recovers, b (no auto-heal) stays flagged.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = watchdog.reconcile().await.expect("pass");
    assert_eq!(after.recovered, 1, "{after:?}");
    assert_eq!(
        w.t.db.droplet_get(a.id).await.expect("a").state,
        DropletState::ActiveHealthy
    );
    assert_eq!(
        w.t.db.droplet_get(b.id).await.expect("b").state,
        DropletState::DriftDetected
    );
    let open: Vec<String> =
        w.t.db
            .alert_list(true, 50)
            .await
            .expect("alerts")
            .into_iter()
            .map(|x| x.kind)
            .collect();
    assert_eq!(open, ["missing_partition"], "a's alerts are resolved");
    w.finish().await;
}
