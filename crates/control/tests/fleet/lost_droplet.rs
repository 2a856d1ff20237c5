//! Spec 66.1's single droplet past the zombie path (DECISIONS 113), over the simulated cloud
//! with real sidecars: a droplet that a hard reboot does not bring back is restored from its
//! newest snapshot in its own datacenter (or re-ignited when it has none), the lost one is
//! deleted and its alert resolved; a restore that fails is tried again.

use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_control::workers::droplet_restore::DropletRestorer;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_core::{DropletState, SagaPhase, WorkspaceId};
use genesis_store::RegionalStore;

use crate::failover::{current, snapshot_day};
use crate::helpers::{Options, World, n8n_counts, world};

/// Runs the zombie detector until `ws`'s droplet is ORPHAN: silent, rebooted, still silent.
async fn lose(w: &World, ws: WorkspaceId) -> genesis_store::Droplet {
    let d = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let provider = d.provider_id.expect("cloud id");
    assert!(w.sim.go_dark(provider, None));
    w.sim.never_boot_again(provider);
    let zombies = crate::zombie_detector(w, Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        zombies.reconcile().await.expect("zombie pass");
        let now = w.t.db.droplet_get(d.id).await.expect("droplet");
        if now.state == DropletState::Orphan {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never orphaned: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `ws`'s latest saga is final, and answers its phase.
async fn settled(w: &World, ws: WorkspaceId) -> SagaPhase {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ig =
            w.t.db
                .ignition_latest(ws)
                .await
                .expect("saga")
                .expect("one");
        if ig.phase.is_final() {
            return ig.phase;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {ig:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_droplet_a_reboot_does_not_bring_back_is_restored_in_place_and_retired() {
    let w = world(Options::default()).await;
    let backed_up = w.ignite_many("lost", 1).await[0];
    snapshot_day(&w).await;
    let fresh = w.ignite_many("lost_new", 1).await[0];
    let snapshot: i64 = sqlx::query_scalar(
        "SELECT image_id FROM genesis.snapshots WHERE workspace_id = $1 AND state = 'available'",
    )
    .bind(backed_up.as_uuid())
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("snapshot");
    let lost = [lose(&w, backed_up).await, lose(&w, fresh).await];
    assert_eq!(w.t.db.alert_open_count().await.expect("alerts"), 2);

    // Its datacenter is down at first: the restores roll back, and are tried again later.
    assert!(w.sim.fail_region("fra1"));
    let restorer = DropletRestorer::new(RegionalStore::single(w.t.db.clone()), w.igniter.clone())
        .retry_after(Duration::ZERO);
    let r = restorer.reconcile().await.expect("pass");
    assert_eq!((r.restored, r.reignited), (1, 1), "{r:?}");
    for ws in [backed_up, fresh] {
        assert_eq!(settled(&w, ws).await, SagaPhase::RolledBack);
    }
    for d in &lost {
        let still = w.t.db.droplet_get(d.id).await.expect("droplet");
        assert_eq!(
            still.state,
            DropletState::Orphan,
            "a failed restore leaves it: {still:?}"
        );
    }
    w.sim.restore_region("fra1");
    let r = restorer.reconcile().await.expect("pass");
    assert_eq!((r.restored, r.reignited), (1, 1), "tried again: {r:?}");
    for ws in [backed_up, fresh] {
        assert_eq!(settled(&w, ws).await, SagaPhase::Done);
        let (ig, at_cloud) = current(&w, ws).await;
        assert_eq!(at_cloud.region.slug, "fra1", "in place: {at_cloud:?}");
        assert_eq!(
            n8n_counts(&w, at_cloud.id),
            (4, 3, 3),
            "credentials and workflows"
        );
        let restore = &ig.params["restore"];
        assert!(restore["failover_id"].is_null(), "{restore}");
        if ws == backed_up {
            assert_eq!(restore["image_id"], snapshot, "from its newest snapshot");
        } else {
            assert!(restore["image_id"].is_null(), "re-ignited: {restore}");
        }
    }

    // The lost droplets are deleted and retired, their alerts resolved; nothing more runs.
    let r = restorer.reconcile().await.expect("pass");
    assert_eq!((r.retired, r.restored, r.reignited), (2, 0, 0), "{r:?}");
    for d in &lost {
        let gone = w.t.db.droplet_get(d.id).await.expect("droplet");
        assert_eq!(gone.state, DropletState::Terminated);
        assert!(matches!(
            w.cloud.droplet_get(d.provider_id.expect("id")).await,
            Err(genesis_cloud::CloudError::NotFound)
        ));
    }
    assert_eq!(w.t.db.alert_open_count().await.expect("alerts"), 0);
    let r = restorer.reconcile().await.expect("pass");
    assert_eq!(
        (r.retired, r.restored, r.reignited, r.skipped),
        (0, 0, 0, 0)
    );
    w.finish().await;
}
