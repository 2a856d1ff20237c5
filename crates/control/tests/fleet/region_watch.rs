//! Detecting a region's outage (spec 66.1; DECISIONS 111) over the simulated cloud, whose
//! droplets run the real sidecar: Frankfurt fails, the watch sees its heartbeats stop and
//! the cloud answer 5xx about its droplets, confirms the failure, keeps the zombie detector
//! off it, and declares its failover only when the policy allows; the region comes back
//! and the incident closes. Sidecars that stop while the cloud still answers about their
//! droplets never make a region "failed".

use std::time::Duration;

use genesis_control::workers::failover::FailoverConductor;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::region_watch::{RegionWatch, RegionWatchSettings};
use genesis_control::workers::zombies::ZombieSettings;
use genesis_core::Region;
use genesis_core::dr::{FailoverPhase, RestoreState};
use genesis_store::RegionalStore;
use genesis_store::region_incidents::RegionIncident;

use crate::helpers::{World, world};

fn watch(
    w: &World,
    confirm_after: Duration,
    auto: Option<Duration>,
) -> RegionWatch<genesis_cloud::DigitalOcean> {
    RegionWatch::new(
        RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        RegionWatchSettings {
            // The world's sidecars beat every second.
            heartbeat_interval: Duration::from_secs(1),
            confirm_after,
            auto_failover_after: auto,
            ..Default::default()
        },
    )
}

async fn incident(w: &World) -> Option<RegionIncident> {
    w.t.db
        .region_incident_open(Region::EuWest)
        .await
        .expect("incident")
}

async fn audited(w: &World, event: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM genesis.audit_log WHERE event = $1")
        .bind(event)
        .fetch_one(w.t.db.owner_pool())
        .await
        .expect("audit")
}

/// Waits past three missed heartbeat windows.
async fn silence() {
    tokio::time::sleep(Duration::from_millis(3500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_region_is_confirmed_left_to_the_operator_or_the_policy_and_closed_when_back() {
    let w = world(crate::helpers::Options::default()).await;
    let tenants = w.ignite_many("rw", 6).await;
    let confirm = Duration::from_secs(2);
    let manual = watch(&w, confirm, None);

    let r = manual.reconcile().await.expect("pass");
    assert_eq!(
        (r.opened, r.probes),
        (0, 0),
        "a healthy region costs no cloud call: {r:?}"
    );
    assert!(incident(&w).await.is_none());

    assert!(w.sim.fail_region("fra1"));
    silence().await;
    let r = manual.reconcile().await.expect("pass");
    assert_eq!(r.opened, 1, "{r:?}");
    let i = incident(&w).await.expect("open");
    assert_eq!(i.level, "degraded", "not confirmed at once: {i:?}");
    assert_eq!((i.watched, i.silent), (6, 6), "{i:?}");
    assert_eq!((i.probes, i.probe_failures), (3, 3), "{i:?}");
    assert!(w.t.db.regions_failed().await.expect("failed").is_empty());

    tokio::time::sleep(confirm).await;
    let r = manual.reconcile().await.expect("pass");
    assert_eq!(r.confirmed, 1, "{r:?}");
    let i = incident(&w).await.expect("open");
    assert_eq!(i.level, "failed");
    assert_eq!(audited(&w, "REGION_FAILED").await, 1);
    // Without the policy, the operator decides: nothing is declared.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = manual.reconcile().await.expect("pass");
    assert_eq!((r.confirmed, r.declared, r.open), (0, 0, 1), "{r:?}");
    assert!(w.t.db.failovers(true).await.expect("failovers").is_empty());

    // The zombie detector leaves a failed region's droplets alone.
    let zombies = crate::zombie_detector(&w, ZombieSettings::default().reboot_deadline);
    let z = zombies.reconcile().await.expect("zombie pass");
    assert_eq!((z.in_failed_region, z.zombies), (6, 0), "{z:?}");

    // With the policy, the watch declares the failover, never across residency areas.
    let auto = watch(&w, confirm, Some(Duration::ZERO));
    let r = auto.reconcile().await.expect("pass");
    assert_eq!(r.declared, 1, "{r:?}");
    let f = w.t.db.failovers(true).await.expect("failovers").remove(0);
    assert_eq!(
        (f.from_datacenter.as_str(), f.to_datacenter.as_str()),
        ("fra1", "lon1")
    );
    assert_eq!(f.operator, "policy:auto-failover");
    assert!(!f.residency_override);
    assert_eq!(incident(&w).await.expect("open").failover_id, Some(f.id));
    let r = auto.reconcile().await.expect("pass");
    assert_eq!(r.declared, 0, "one failover per incident: {r:?}");

    let conductor =
        FailoverConductor::new(RegionalStore::single(w.t.db.clone()), w.igniter.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while w.t.db.failover_get(f.id).await.expect("failover").phase != FailoverPhase::Restored {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failover never restored"
        );
        conductor.reconcile().await.expect("failover pass");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = w.t.db.failover_counts(f.id).await.expect("counts");
    assert_eq!(
        c.state(RestoreState::Verified) as usize,
        tenants.len(),
        "{c:?}"
    );
    // The region is still down: its set-aside droplets are what the watch looks up.
    let r = auto.reconcile().await.expect("pass");
    assert_eq!((r.open, r.closed), (1, 0), "{r:?}");
    assert_eq!(incident(&w).await.expect("open").level, "failed");

    // Frankfurt answers again: clear verdicts, held, close the incident.
    w.sim.restore_region("fra1");
    let r = auto.reconcile().await.expect("pass");
    assert_eq!(r.closed, 0, "clear once is not enough: {r:?}");
    tokio::time::sleep(confirm).await;
    let r = auto.reconcile().await.expect("pass");
    assert_eq!(r.closed, 1, "{r:?}");
    assert!(incident(&w).await.is_none());
    assert_eq!(audited(&w, "REGION_RECOVERED").await, 1);
    assert!(w.t.db.regions_failed().await.expect("failed").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_sidecars_on_droplets_the_cloud_still_answers_for_never_fail_a_region() {
    let w = world(crate::helpers::Options::default()).await;
    let tenants = w.ignite_many("rw_dark", 4).await;
    for ws in &tenants {
        let d = w.t.db.droplet_live_for_workspace(*ws).await.expect("rows")[0].clone();
        assert!(w.sim.go_dark(d.provider_id.expect("cloud id"), None));
    }
    let confirm = Duration::from_millis(500);
    let manual = watch(&w, confirm, Some(Duration::ZERO));
    silence().await;
    for _ in 0..3 {
        let r = manual.reconcile().await.expect("pass");
        assert_eq!((r.confirmed, r.declared), (0, 0), "{r:?}");
        tokio::time::sleep(confirm).await;
    }
    let i = incident(&w)
        .await
        .expect("degraded: every sidecar is silent");
    assert_eq!(i.level, "degraded", "{i:?}");
    assert_eq!(
        (i.silent, i.probe_failures),
        (4, 0),
        "the cloud answers: {i:?}"
    );
    assert_eq!(audited(&w, "REGION_FAILED").await, 0);
    assert!(w.t.db.failovers(true).await.expect("failovers").is_empty());
    assert!(w.t.db.regions_failed().await.expect("failed").is_empty());
}
