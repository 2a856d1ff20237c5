//! Fleet health end to end (spec 54): virtual droplets heartbeat every second to the real
//! control plane; sidecars killed in the simulator are detected as zombies within three
//! windows, power-cycled through the cloud API and back to ACTIVE_HEALTHY; one that never
//! comes back ends ORPHAN with a manual-review alert. Two detector replicas run at once and
//! every zombie still gets exactly one reboot.

mod cloud_budget;
mod deletion;
mod failover;
#[path = "../ignition/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the ignition tests; not every helper is used here"
)]
mod helpers;
mod lost_droplet;
mod n8n_crash;
mod reconcilers;
mod region_watch;
mod snapshots;
mod standby;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use genesis_control::workers::driver::drive;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::zombies::{ZombieDetector, ZombieSettings};
use genesis_core::{DropletState, WorkspaceId};
use genesis_sidecar::sysstats::HostSample;
use genesis_sim::fleet::CALM;
use helpers::{Options, credentials, world};
use tokio::sync::watch;

/// A zombie detector of its own over the world, at the world's heartbeat pace (a second), with
/// `reboot_deadline` for a reboot to bring a droplet back.
pub(crate) fn zombie_detector(
    w: &helpers::World,
    reboot_deadline: Duration,
) -> ZombieDetector<genesis_cloud::DigitalOcean> {
    ZombieDetector::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        w.bus.clone(),
        ZombieSettings {
            heartbeat_interval: Duration::from_secs(1),
            reboot_deadline,
            ..ZombieSettings::default()
        },
    )
}

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
        loops.push(tokio::spawn(drive(
            detector,
            Duration::from_millis(200),
            w.t.db.clone(),
            Default::default(),
            stopped.clone(),
        )));
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
                    .audit_droplet_transitions(None, 5_000)
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
            .audit_droplet_transitions(None, 10_000)
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

/// Polls until `n` heals have been audited (they run as queue jobs after the pass).
async fn wait_heals(w: &helpers::World, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done =
            w.t.db
                .audit_list(None, Some("DRIFT_HEALED"), 100)
                .await
                .expect("audit")
                .len();
        if done >= n {
            assert_eq!(done, n, "no heal ran twice");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {n} heals ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_drift_type_is_detected_audited_and_healed_through_the_queue() {
    use genesis_control::workers::watchdog::Watchdog;
    let w = world(Options::default()).await;
    // c's Gmail token has already expired when it is injected.
    let expired_ms = (Utc::now().timestamp() - 60) * 1000;
    let mut oauth_creds = credentials();
    oauth_creds["credentials"]["gmail"]["oauthTokenData"] = serde_json::json!({
        "access_token": "ya29.old", "refresh_token": "1//tenant-c", "expiry_date": expired_ms
    });
    let mut tenants = Vec::new();
    for (slug, creds) in [
        ("drift_a", credentials()),
        ("drift_b", credentials()),
        ("drift_c", oauth_creds),
    ] {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), creds)
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        tenants.push(ws);
    }
    let stores = genesis_store::RegionalStore::single(w.t.db.clone());
    let watchdog = Watchdog::new(stores, w.bus.clone());
    let droplet = |ws: WorkspaceId| {
        let db = w.t.db.clone();
        async move { db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone() }
    };
    let a = droplet(tenants[0]).await;
    let b = droplet(tenants[1]).await;
    let c = droplet(tenants[2]).await;

    // credential_expired: c's first inventory shows the expired token; the heal refreshes
    // it with Google, vaults it and rotates it into n8n.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let first = watchdog.reconcile().await.expect("pass");
    assert_eq!(first.checked, 3, "{first:?}");
    assert_eq!(
        first.drifts,
        BTreeMap::from([("credential_expired".to_owned(), 1)]),
        "{first:?}"
    );
    assert_eq!(first.queued, 1);
    assert_eq!(
        watchdog.reconcile().await.expect("pass").queued,
        0,
        "a drift seen in one heartbeat is queued once"
    );
    wait_heals(&w, 1).await;
    assert_eq!(w.google.refreshes(), 1);
    let ig =
        w.t.db
            .ignition_latest(tenants[2])
            .await
            .expect("db")
            .expect("ignition");
    let slot = ig.params["credentials"]
        .as_array()
        .expect("slots")
        .iter()
        .find(|s| s["kind"] == "gmailOAuth2")
        .and_then(|s| s["id"].as_str())
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .expect("gmail slot");
    let keys = genesis_store::MasterKeys::new(1, BTreeMap::from([(1, [7u8; 32])])).expect("keys");
    let vaulted =
        w.t.db
            .vault_get(&keys, tenants[2], slot)
            .await
            .expect("vault");
    let vaulted: serde_json::Value = serde_json::from_slice(&vaulted.secret).expect("json");
    assert_ne!(vaulted["oauthTokenData"]["access_token"], "ya29.old");
    assert_eq!(vaulted["oauthTokenData"]["refresh_token"], "1//tenant-c");
    assert_eq!(
        vaulted["clientSecret"], "gsecret",
        "the rest of the data is kept"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let fresh = watchdog.reconcile().await.expect("pass");
    assert!(fresh.drifts.is_empty(), "{fresh:?}");
    assert_eq!(fresh.recovered, 1, "{fresh:?}");
    assert_eq!(
        w.t.db.droplet_get(c.id).await.expect("c").state,
        DropletState::ActiveHealthy
    );

    // Four drifts on a, made in its n8n behind our back; a missing partition on b.
    let n8n = w.hook.n8n(a.provider_id.expect("provider")).expect("n8n");
    let desired = w.t.db.droplet_workflows(a.id).await.expect("desired");
    assert_eq!(desired.len(), 3);
    let (switched, deleted, retagged) = (
        desired[0].workflow_id.clone(),
        desired[1].workflow_id.clone(),
        desired[2].workflow_id.clone(),
    );
    let current = format!(
        "tpl:{}",
        genesis_ignition::TemplateSet::golden()
            .expect("golden")
            .version
    );
    assert_eq!(
        n8n.workflow_tag_names(&retagged),
        std::slice::from_ref(&current)
    );
    assert!(n8n.chaos_set_active(&switched, false));
    assert!(n8n.chaos_delete_workflow(&deleted));
    assert!(n8n.chaos_retag(&retagged, "tpl:2026.10.0"));
    let stray = n8n.chaos_add_workflow("Made by hand", true);
    genesis_store::PartitionManager::new(w.t.db.clone())
        .drop(tenants[1], "chaos")
        .await
        .expect("drop");

    // Within one heartbeat and one pass: all five detected, the four healable ones queued.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let found = watchdog.reconcile().await.expect("pass");
    for kind in [
        "state_mismatch",
        "orphan_workflow",
        "orphan_db_record",
        "version_mismatch",
        "missing_partition",
    ] {
        assert_eq!(found.drifts.get(kind), Some(&1), "{kind}: {found:?}");
    }
    assert_eq!(found.queued, 4, "{found:?}");
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
    for want in [
        ("missing_partition", "CRITICAL"),
        ("state_mismatch", "HIGH"),
        ("orphan_db_record", "HIGH"),
        ("orphan_workflow", "MEDIUM"),
        ("version_mismatch", "MEDIUM"),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    wait_heals(&w, 5).await;

    // The heals, as spec 43.3 describes them.
    let flows = n8n.workflow_summary();
    assert!(flows.iter().all(|f| f.0 != stray), "the stray is deleted");
    assert!(
        flows.iter().any(|f| f.0 == switched && f.2),
        "the switched-off workflow is active again: {flows:?}"
    );
    assert_eq!(
        n8n.workflow_tag_names(&retagged),
        [current],
        "the old version is redeployed at the current one"
    );
    let rows = w.t.db.droplet_workflows(a.id).await.expect("desired");
    let gone = rows
        .iter()
        .find(|r| r.workflow_id == deleted)
        .expect("row kept");
    assert!(
        gone.error.as_deref().is_some_and(|e| e.contains("missing")),
        "{gone:?}"
    );
    let notes = w.t.db.notification_list(tenants[0]).await.expect("outbox");
    assert!(
        notes.iter().any(|n| n.kind == "CAMPAIGN_ERROR"),
        "{notes:?}"
    );
    let healed: Vec<String> =
        w.t.db
            .audit_list(None, Some("DRIFT_HEALED"), 10)
            .await
            .expect("audit")
            .into_iter()
            .filter_map(|e| e.details["kind"].as_str().map(str::to_owned))
            .collect();
    for kind in [
        "credential_expired",
        "state_mismatch",
        "orphan_workflow",
        "orphan_db_record",
        "version_mismatch",
    ] {
        assert!(
            healed.iter().any(|k| k == kind),
            "{kind} healed: {healed:?}"
        );
    }

    // The next heartbeat shows the heals: a recovers, b (no auto-heal) stays flagged.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = watchdog.reconcile().await.expect("pass");
    assert_eq!(after.recovered, 1, "{after:?}");
    assert_eq!(after.queued, 0, "{after:?}");
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
    assert_eq!(
        open,
        ["missing_partition"],
        "the healed drifts' alerts are resolved"
    );
    w.finish().await;
}

/// How many credential rotations the audit holds.
async fn rotations(w: &helpers::World) -> usize {
    w.t.db
        .audit_list(None, Some("CREDENTIAL_ROTATED"), 100)
        .await
        .expect("audit")
        .len()
}

/// Polls until Google has answered `n` refreshes in all.
async fn wait_refreshes(w: &helpers::World, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.google.refreshes() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} refreshes",
            w.google.refreshes()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oauth_tokens_are_refreshed_fourteen_days_ahead_once_a_day() {
    use genesis_control::clock::Clock;
    use genesis_control::workers::oauth_ahead::OAuthAhead;
    let w = world(Options::default()).await;
    let day = 86_400;
    let mut tenants = Vec::new();
    // soon's token expires in 10 days, later's in 20.
    for (slug, in_days) in [("ahead_soon", 10), ("ahead_later", 20)] {
        let mut creds = credentials();
        creds["credentials"]["gmail"]["oauthTokenData"] = serde_json::json!({
            "access_token": format!("ya29.{slug}"), "refresh_token": format!("1//{slug}"),
            "expiry_date": (Utc::now().timestamp() + in_days * day) * 1000
        });
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), creds)
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        tenants.push(ws);
    }
    let clock = Clock::manual(Utc::now());
    let ahead = OAuthAhead::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        clock.clone(),
    );
    // Both inventories are in (a heartbeat a second).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = rotations(&w).await;

    // Day one: only the token within 14 days is refreshed, through the security queue.
    let first = ahead.reconcile().await.expect("pass");
    assert_eq!(first.droplets, 2, "{first:?}");
    assert_eq!((first.expiring, first.queued), (1, 1), "{first:?}");
    wait_refreshes(&w, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rotations(&w).await < before + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rotation audited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rotated =
        w.t.db
            .audit_list(None, Some("CREDENTIAL_ROTATED"), 1)
            .await
            .expect("audit");
    assert_eq!(
        rotated[0].workspace_id,
        Some(tenants[0].as_uuid()),
        "{rotated:?}"
    );
    assert!(
        w.t.db
            .audit_list(None, Some("DRIFT_HEALED"), 10)
            .await
            .expect("audit")
            .is_empty(),
        "a scheduled refresh is not a drift's heal"
    );

    // The same day again (a restart, another replica): nothing more is queued.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = ahead.reconcile().await.expect("pass");
    assert_eq!(again.queued, 0, "{again:?}");

    // A week later: the other token is 13 days from its expiry and is refreshed; the first
    // one's new token (an hour's, as Google's) has expired on this clock and is left to the
    // watchdog's heal, not refreshed twice.
    clock.advance(Duration::from_secs(7 * day as u64));
    let week = ahead.reconcile().await.expect("pass");
    assert_eq!((week.expiring, week.queued), (1, 1), "{week:?}");
    wait_refreshes(&w, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.google.refreshes(), 2, "each token refreshed once");
    w.finish().await;
}

/// Makes a tenant look idle for a month: its droplet was created 30 days ago (activity
/// counts from there) and nothing happened since.
async fn backdate(w: &helpers::World, droplet: genesis_core::DropletId) {
    sqlx::query(
        "UPDATE genesis.droplets SET created_at = now() - interval '30 days' WHERE id = $1",
    )
    .bind(droplet.as_uuid())
    .execute(w.t.db.owner_pool())
    .await
    .expect("backdate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_tenant_is_noticed_hibernated_and_woken_with_its_workflows() {
    use genesis_cloud::{Cloud, DropletStatus};
    use genesis_control::workers::hibernation::{HibernationSettings, Hibernator};
    let w = world(Options::default()).await;
    let mut tenants = Vec::new();
    for slug in ["sleepy", "held", "busy"] {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        tenants.push(ws);
    }
    let droplets: Vec<genesis_store::Droplet> = {
        let mut v = Vec::new();
        for ws in &tenants {
            v.push(w.t.db.droplet_live_for_workspace(*ws).await.expect("rows")[0].clone());
        }
        v
    };
    for d in &droplets {
        backdate(&w, d.id).await;
    }
    // "held" asks never to hibernate; "busy" signed in an hour ago.
    let (status, _) = w
        .put(
            &format!("/api/v1/workspaces/{}/hibernation", tenants[1]),
            serde_json::json!({"hold": true}),
        )
        .await;
    assert_eq!(status, 204);
    w.t.db
        .activity_touch(
            tenants[2],
            genesis_store::ActivityKind::Login,
            Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .expect("login");

    let hibernator = Hibernator::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.cloud.clone(),
        HibernationSettings {
            notice: Duration::from_secs(1),
            ..HibernationSettings::default()
        },
    );
    // First pass: only the idle tenant is eligible; it gets the notice, nothing powers off.
    let first = hibernator.reconcile().await.expect("pass");
    assert_eq!(
        (first.eligible, first.noticed, first.queued),
        (1, 1, 0),
        "{first:?}"
    );
    let notes = w.t.db.notification_list(tenants[0]).await.expect("outbox");
    assert!(
        notes.iter().any(|n| n.kind == "HIBERNATION_NOTICE"),
        "{notes:?}"
    );
    assert!(
        w.t.db
            .notification_list(tenants[1])
            .await
            .expect("outbox")
            .is_empty()
    );
    // After the notice has run out: the hibernate job powers it down.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = hibernator.reconcile().await.expect("pass");
    assert_eq!((second.noticed, second.queued), (0, 1), "{second:?}");
    wait_state(&w, droplets[0].id, DropletState::Hibernating).await;
    let provider = droplets[0].provider_id.expect("provider");
    assert_eq!(
        w.cloud.droplet_get(provider).await.expect("cloud").status,
        DropletStatus::Off,
        "powered off at the cloud"
    );
    for d in &droplets[1..] {
        assert_eq!(
            w.t.db.droplet_get(d.id).await.expect("droplet").state,
            DropletState::ActiveHealthy,
            "held and busy tenants stay up"
        );
    }
    let (_, saved) = w.get("/api/v1/fleet/hibernation").await;
    assert_eq!(saved["hibernating_now"], 1, "{saved}");
    assert_eq!(saved["monthly_rate_cents"], 350, "{saved}");

    // Wake (spec 55.3): WAKING at once, ACTIVE_HEALTHY with the first heartbeat, and the
    // tenant's workflows are active again.
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{}/wake", tenants[0]),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (202, Some("waking")),
        "{body}"
    );
    wait_state(&w, droplets[0].id, DropletState::ActiveHealthy).await;
    let flows = w.hook.n8n(provider).expect("n8n").workflow_summary();
    assert_eq!(flows.len(), 3);
    assert!(flows.iter().all(|f| f.2), "{flows:?}");
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{}/wake", tenants[0]),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("awake")),
        "{body}"
    );
    let trip: Vec<String> =
        w.t.db
            .droplet_history(droplets[0].id, 50)
            .await
            .expect("history")
            .into_iter()
            .filter_map(|h| h.to)
            .collect();
    assert!(
        trip.ends_with(&[
            "HIBERNATING".to_owned(),
            "WAKING".into(),
            "ACTIVE_HEALTHY".into()
        ]),
        "{trip:?}"
    );
    // Waking counted as activity: no notice is pending, so the next pass leaves it alone.
    let after = hibernator.reconcile().await.expect("pass");
    assert_eq!(after.queued, 0, "{after:?}");
    w.finish().await;
}

/// Powers a droplet off through the cloud and records HIBERNATING, as a hibernate job does.
async fn hibernate_now(w: &helpers::World, ws: WorkspaceId) -> genesis_store::Droplet {
    w.hibernate_now(ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_campaigns_wake_tenants_ahead_and_prewarmed_ones_sleep_again() {
    use genesis_control::workers::hibernation::{HibernationSettings, Hibernator};
    let w = world(Options::default()).await;
    let mut tenants = Vec::new();
    for slug in ["vip", "standard"] {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        tenants.push(ws);
    }
    sqlx::query("UPDATE genesis.workspaces SET tier = 'high-priority' WHERE id = $1")
        .bind(tenants[0].as_uuid())
        .execute(w.t.db.owner_pool())
        .await
        .expect("tier");
    let vip = hibernate_now(&w, tenants[0]).await;
    let standard = hibernate_now(&w, tenants[1]).await;
    let hibernator = Hibernator::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.cloud.clone(),
        HibernationSettings::default(),
    );
    let schedule = |ws: WorkspaceId, secs: i64| {
        let at = Utc::now() + chrono::Duration::seconds(secs);
        let w = &w;
        async move {
            let (status, body) = w
                .put(
                    &format!("/api/v1/workspaces/{ws}/schedule"),
                    serde_json::json!({ "next_campaign_at": at }),
                )
                .await;
            assert_eq!(status, 204, "{body}");
        }
    };

    // A campaign in 4 minutes: the High-Priority tenant is pre-warmed now (5-minute lead),
    // the Standard one waits for its 60-second wake lead.
    schedule(tenants[0], 240).await;
    schedule(tenants[1], 240).await;
    let r = hibernator.reconcile().await.expect("pass");
    assert_eq!(r.woken, 1, "{r:?}");
    wait_state(&w, vip.id, DropletState::ActiveHealthy).await;
    assert_eq!(
        w.t.db
            .droplet_get(standard.id)
            .await
            .expect("droplet")
            .state,
        DropletState::Hibernating
    );
    schedule(tenants[1], 30).await;
    let r = hibernator.reconcile().await.expect("pass");
    assert_eq!(r.woken, 1, "{r:?}");
    wait_state(&w, standard.id, DropletState::ActiveHealthy).await;
    assert_eq!(
        hibernator.reconcile().await.expect("pass").woken,
        0,
        "a schedule wakes a tenant once"
    );

    // Two idle hours after its pre-warm, the High-Priority tenant sleeps again, without a
    // new 24-hour notice; the Standard one started its campaign, so it stays up.
    sqlx::query(
        "UPDATE genesis.workspace_activity SET prewarmed_at = now() - interval '121 minutes' WHERE workspace_id = $1",
    )
    .bind(tenants[0].as_uuid())
    .execute(w.t.db.owner_pool())
    .await
    .expect("backdate");
    let r = hibernator.reconcile().await.expect("pass");
    assert_eq!((r.queued, r.noticed), (1, 0), "{r:?}");
    wait_state(&w, vip.id, DropletState::Hibernating).await;
    assert_eq!(
        w.t.db
            .droplet_get(standard.id)
            .await
            .expect("droplet")
            .state,
        DropletState::ActiveHealthy
    );
    w.finish().await;
}

/// A managed-service call (a lead import) for a hibernating tenant is recorded before it is
/// answered, and wakes the tenant through the hibernation reconciler, rung through the
/// database from the replica that took the call (spec 55.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_import_for_a_hibernating_tenant_wakes_it_through_the_reconciler() {
    use genesis_control::workers::driver::Wakers;
    use genesis_control::workers::hibernation::{HibernationSettings, Hibernator};
    let w = world(Options::default()).await;
    let ws = w.create_workspace("sleeper").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let asleep = hibernate_now(&w, ws).await;

    // The reconciler leads on "another replica": its period is far longer than the test,
    // so only the ring can make it pass again after its first pass.
    let hibernator = std::sync::Arc::new(Hibernator::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.cloud.clone(),
        HibernationSettings::default(),
    ));
    let (stop, stopped) = watch::channel(false);
    let wakers = Wakers::default();
    let bell = wakers.bell("hibernation");
    let listening = tokio::spawn({
        let (wakers, db, stopped) = (wakers.clone(), w.t.db.clone(), stopped.clone());
        async move { wakers.listen(db, stopped).await }
    });
    let driving = tokio::spawn(drive(
        hibernator.clone(),
        Duration::from_secs(3600),
        w.t.db.clone(),
        bell,
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        w.t.db.droplet_get(asleep.id).await.expect("droplet").state,
        DropletState::Hibernating,
        "nothing wakes it before the call"
    );

    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/leads"),
            serde_json::json!({ "leads": [{ "email": "a@example.com" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_state(&w, asleep.id, DropletState::ActiveHealthy).await;
    let woken: Option<String> =
        sqlx::query_scalar("SELECT wake_trigger FROM genesis.hibernations WHERE droplet_id = $1")
            .bind(asleep.id.as_uuid())
            .fetch_one(w.t.db.owner_pool())
            .await
            .expect("episode");
    assert_eq!(woken.as_deref(), Some("service_call"));
    assert_eq!(
        hibernator.reconcile().await.expect("pass").woken,
        0,
        "a call wakes a tenant once"
    );
    let _ = stop.send(true);
    let _ = tokio::join!(driving, listening);
    w.finish().await;
}

/// A member signing in to the dashboard is login activity for their sleeping workspace:
/// the next hibernation pass wakes it, named as a login (spec 55.3), without the tenant
/// asking for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dashboard_sign_in_wakes_a_hibernating_tenant() {
    use genesis_control::workers::hibernation::{HibernationSettings, Hibernator};
    let w = world(Options::default()).await;
    let ws = w.create_workspace("dozer").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let asleep = hibernate_now(&w, ws).await;
    let hibernator = Hibernator::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.cloud.clone(),
        HibernationSettings::default(),
    );
    assert_eq!(hibernator.reconcile().await.expect("pass").woken, 0);

    // A tenant account, verified, made a member of the sleeping workspace.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let password = "staple orbit velvet canyon";
    let form = |pairs: &[(&str, &str)]| {
        let mut f = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            f.append_pair(k, v);
        }
        f.finish()
    };
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", w.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let signed_up = post(
        "/app/sign-up",
        form(&[
            ("email", "dee@dozer.test"),
            ("password", password),
            ("region", "us-east"),
        ]),
    )
    .await
    .expect("sign-up");
    assert_eq!(signed_up.status(), 200);
    sqlx::query("UPDATE genesis.accounts SET verified_at = now() WHERE email = 'dee@dozer.test'")
        .execute(w.t.db.owner_pool())
        .await
        .expect("verified");
    sqlx::query(
        "INSERT INTO genesis.workspace_members (workspace_id, account_id, account_region, email, role)
         SELECT $1, id, region, email, 'member' FROM genesis.accounts WHERE email = 'dee@dozer.test'",
    )
    .bind(ws.as_uuid())
    .execute(w.t.db.owner_pool())
    .await
    .expect("member");
    let r = post(
        "/app/sign-in",
        form(&[("email", "dee@dozer.test"), ("password", password)]),
    )
    .await
    .expect("sign-in");
    assert_eq!(r.status(), 303);

    assert_eq!(hibernator.reconcile().await.expect("pass").woken, 1);
    wait_state(&w, asleep.id, DropletState::ActiveHealthy).await;
    let woken: Option<String> =
        sqlx::query_scalar("SELECT wake_trigger FROM genesis.hibernations WHERE droplet_id = $1")
            .bind(asleep.id.as_uuid())
            .fetch_one(w.t.db.owner_pool())
            .await
            .expect("episode");
    assert_eq!(woken.as_deref(), Some("login"));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wake_that_never_reports_becomes_a_zombie_and_then_an_orphan() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("insomniac").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let d = hibernate_now(&w, ws).await;
    // The machine powers on but its software never comes up.
    w.sim.never_boot_again(d.provider_id.expect("provider"));
    let (status, _) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/wake"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let detector = ZombieDetector::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        w.bus.clone(),
        ZombieSettings {
            heartbeat_interval: Duration::from_secs(1),
            wake_deadline: Duration::from_secs(1),
            reboot_deadline: Duration::from_secs(1),
            ..ZombieSettings::default()
        },
    );
    assert_eq!(
        detector.reconcile().await.expect("pass").stuck_wakes,
        0,
        "within its deadline a wake is left alone"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = detector.reconcile().await.expect("pass");
    assert_eq!(r.stuck_wakes, 1, "{r:?}");
    wait_state(&w, d.id, DropletState::Rebooting).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(detector.reconcile().await.expect("pass").orphaned, 1);
    assert_eq!(
        w.t.db.droplet_get(d.id).await.expect("droplet").state,
        DropletState::Orphan
    );
    w.finish().await;
}
