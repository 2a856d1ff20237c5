//! Regional failover (spec 66.4) over the simulated cloud, whose droplets run the real
//! sidecar: Frankfurt fails, every tenant comes back in London from the snapshot copied
//! there (or afresh, when it has none), with its credentials and workflows, and nothing is
//! left in Frankfurt after the cleanup. A killed control plane resumes its restores without
//! a second droplet; an EU tenant leaves the EU only with an audited override.

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_control::app::failover::{FailoverRequest, assess, declare, failback};
use genesis_control::workers::failover::FailoverConductor;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::snapshots::{SnapshotSchedule, SnapshotSettings};
use genesis_core::dr::{FailoverPhase, RestorePlan, RestoreState};
use genesis_core::{DropletState, SagaPhase, WorkspaceId};
use genesis_store::RegionalStore;
use uuid::Uuid;

use crate::helpers::{Options, World, n8n_counts, world};

fn request(to: Option<&str>, residency_override: bool) -> FailoverRequest {
    FailoverRequest {
        from: "fra1".into(),
        to: to.map(Into::into),
        residency_override,
        operator: "ops@genesis.test".into(),
        reason: "drill".into(),
    }
}

/// A day of the snapshot schedule: each droplet's snapshot, settled, and copied to its
/// backup datacenter.
pub(crate) async fn snapshot_day(w: &World) {
    snapshot_day_at(w, chrono::Utc::now()).await;
}

/// The same, with the schedule's clock at `at` (its GC deletes what `at` lets go).
async fn snapshot_day_at(w: &World, at: chrono::DateTime<chrono::Utc>) {
    let schedule = SnapshotSchedule::new(
        RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        genesis_control::clock::Clock::manual(at),
        SnapshotSettings {
            look_after: Duration::ZERO,
            calls_per_pass: 100_000,
            ..Default::default()
        },
    );
    for _ in 0..3 {
        schedule.reconcile().await.expect("snapshot pass");
    }
}

/// Frankfurt fails and an operator declares its failover to London.
async fn frankfurt_down(w: &World) -> (RegionalStore, genesis_store::failovers::Failover) {
    assert!(w.sim.fail_region("fra1"));
    let stores = RegionalStore::single(w.t.db.clone());
    let (_, f) = declare(&stores, &request(None, false), "test")
        .await
        .expect("declared");
    (stores, f)
}

/// Runs the conductor until the failover reaches `phase`.
async fn run_until(
    w: &World,
    conductor: &FailoverConductor<genesis_cloud::DigitalOcean>,
    id: Uuid,
    phase: FailoverPhase,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        conductor.reconcile().await.expect("failover pass");
        let f = w.t.db.failover_get(id).await.expect("failover");
        if f.phase == phase {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let tenants = w.t.db.failover_tenants(id, None, 1000).await.expect("rows");
            panic!(
                "the failover is {:?} after {within:?}: {tenants:#?}",
                f.phase
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Phases 2 and 3 under a fresh conductor (a control plane of its own).
async fn restore_all(w: &World, id: Uuid, within: Duration) {
    let stores = RegionalStore::single(w.t.db.clone());
    let conductor = FailoverConductor::new(stores, w.igniter.clone());
    run_until(w, &conductor, id, FailoverPhase::Restored, within).await;
}

/// Phase 4, staying: the operator asks, and the conductor deletes what was left.
async fn clean_up(w: &World, conductor: &FailoverConductor<genesis_cloud::DigitalOcean>, id: Uuid) {
    w.t.db
        .failover_request_cleanup(id, "ops", "test")
        .await
        .expect("cleanup");
    run_until(
        w,
        conductor,
        id,
        FailoverPhase::Closed,
        Duration::from_secs(60),
    )
    .await;
}

/// The tenant's droplet now: its latest finished saga's, with the cloud's view of it.
pub(crate) async fn current(
    w: &World,
    ws: WorkspaceId,
) -> (genesis_store::Ignition, genesis_cloud::Droplet) {
    let ig =
        w.t.db
            .ignition_latest(ws)
            .await
            .expect("saga")
            .expect("one");
    assert_eq!(ig.phase, SagaPhase::Done, "{ig:?}");
    let d = w.t.db.droplet_get(ig.droplet_id).await.expect("droplet");
    assert_eq!(d.state, DropletState::ActiveHealthy, "{d:?}");
    let at_cloud = w
        .cloud
        .droplet_get(d.provider_id.expect("cloud id"))
        .await
        .expect("at the cloud");
    (ig, at_cloud)
}

async fn notifications(w: &World, kind: &str) -> BTreeMap<Uuid, serde_json::Value> {
    sqlx::query_as::<_, (Uuid, serde_json::Value)>(
        "SELECT workspace_id, body FROM genesis.notifications WHERE kind = $1",
    )
    .bind(kind)
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("notifications")
    .into_iter()
    .collect()
}

/// Droplets tagged `genesis` the cloud has in `datacenter` (asked once the region answers).
async fn droplets_in(w: &World, datacenter: &str) -> usize {
    w.cloud
        .droplet_list_by_tag("genesis")
        .await
        .expect("list")
        .into_iter()
        .filter(|d| d.region.slug == datacenter)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frankfurt_fails_and_every_tenant_comes_back_in_london_with_nothing_left_behind() {
    let w = world(Options::default()).await;
    let n = std::env::var("GENESIS_FAILOVER_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200usize);
    let backed_up = w.ignite_many("fo", n).await;
    snapshot_day(&w).await;
    // Ignited after the day's snapshots: no backup anywhere.
    let fresh = w.ignite_many("fo_new", 1).await[0];
    let snapshot_times: BTreeMap<Uuid, chrono::DateTime<chrono::Utc>> =
        sqlx::query_as::<_, (Uuid, chrono::DateTime<chrono::Utc>)>(
            "SELECT workspace_id, requested_at FROM genesis.snapshots WHERE state = 'available'",
        )
        .fetch_all(w.t.db.owner_pool())
        .await
        .expect("snapshots")
        .into_iter()
        .collect();
    let before: BTreeMap<WorkspaceId, i64> = {
        let mut m = BTreeMap::new();
        for ws in backed_up.iter().chain([&fresh]) {
            m.insert(*ws, current(&w, *ws).await.1.id);
        }
        m
    };

    assert!(w.sim.fail_region("fra1"));
    let stores = RegionalStore::single(w.t.db.clone());
    let plan = assess(&w.t.db, &request(None, false)).await.expect("plan");
    assert_eq!(plan.to, "lon1", "66.3: fra1 -> lon1");
    assert_eq!((plan.restore, plan.reignite, plan.held), (n, 1, 0));
    let (_, f) = declare(&stores, &request(None, false), "test")
        .await
        .expect("declared");
    let again = declare(&stores, &request(None, false), "test")
        .await
        .expect_err("one open failover per datacenter");
    assert!(again.to_string().contains("already open"), "{again}");
    let disrupted = notifications(&w, "SERVICE_DISRUPTION").await;
    assert_eq!(
        disrupted.len(),
        n + 1,
        "the mass notification reaches everyone moved"
    );

    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    run_until(
        &w,
        &conductor,
        f.id,
        FailoverPhase::Restored,
        Duration::from_secs(240),
    )
    .await;
    let c = w.t.db.failover_counts(f.id).await.expect("counts");
    assert_eq!(c.state(RestoreState::Verified) as usize, n + 1, "{c:?}");
    assert_eq!(c.plan(RestorePlan::Reignite), 1);

    let restored = notifications(&w, "SERVICE_RESTORED").await;
    for ws in backed_up.iter().chain([&fresh]) {
        let (ig, d) = current(&w, *ws).await;
        assert_eq!(d.region.slug, "lon1", "{ws}");
        assert_ne!(d.id, before[ws], "a new droplet");
        assert_eq!(
            n8n_counts(&w, d.id),
            (4, 3, 3),
            "credentials and workflows: {ws}"
        );
        let restore = &ig.params["restore"];
        let old =
            w.t.db
                .droplet_get(genesis_core::DropletId::from_uuid(
                    restore["replaces"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("replaces"),
                ))
                .await
                .expect("old");
        assert_eq!(old.state, DropletState::Maintenance, "set aside: {old:?}");
        // Until the cleanup both are live; the restored one is the tenant's engine (what
        // its dashboard, its tracking domains and a wake use).
        let live = w.t.db.droplet_live_for_workspace(*ws).await.expect("live");
        assert_eq!(live.len(), 2, "{live:?}");
        assert_eq!(live[0].id, ig.droplet_id, "{live:?}");
        // The data-loss window is reported: what came after the snapshot.
        let body = &restored[&ws.as_uuid()];
        if *ws == fresh {
            assert!(
                restore["image_id"].is_null(),
                "re-ignited from the base image"
            );
            assert_eq!(body["reignited"], true, "{body}");
        } else {
            assert!(restore["image_id"].is_i64(), "{restore}");
            let at = snapshot_times[&ws.as_uuid()];
            assert_eq!(
                body["lost_after"],
                at.format("%Y-%m-%d %H:%M UTC").to_string(),
                "{body}"
            );
        }
    }

    // Phase 4: the region comes back; staying in London, its droplets are deleted.
    w.sim.restore_region("fra1");
    clean_up(&w, &conductor, f.id).await;
    assert_eq!(
        droplets_in(&w, "fra1").await,
        0,
        "nothing left in Frankfurt"
    );
    assert_eq!(droplets_in(&w, "lon1").await, n + 1);
    for id in before.values() {
        assert!(matches!(
            w.cloud.droplet_get(*id).await,
            Err(genesis_cloud::CloudError::NotFound)
        ));
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_control_plane_killed_mid_restore_resumes_without_a_second_droplet() {
    let mut w = world(Options::default()).await;
    let tenants = w.ignite_many("fo_kill", 6).await;
    snapshot_day(&w).await;
    let (stores, f) = frankfurt_down(&w).await;
    // One pass starts every restore; the process dies while they run.
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    conductor.reconcile().await.expect("pass");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while droplets_in(&w, "lon1").await < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no restore began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.kill_worker().await;
    drop(conductor);

    // The restarted control plane: some restores were cut off mid-way.
    let cut_off = w.igniter.recover().await.expect("recover");
    assert!(
        cut_off > 0,
        "the kill came after every restore had finished"
    );
    w.start_worker();
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    run_until(
        &w,
        &conductor,
        f.id,
        FailoverPhase::Restored,
        Duration::from_secs(180),
    )
    .await;
    for ws in &tenants {
        let tagged: Vec<_> = w
            .cloud
            .droplet_list_by_tag(&format!("ws-{}", ws.as_uuid()))
            .await
            .expect("list")
            .into_iter()
            .filter(|d| d.region.slug == "lon1")
            .collect();
        assert_eq!(
            tagged.len(),
            1,
            "one droplet in London for {ws}: {tagged:?}"
        );
        let (_, d) = current(&w, *ws).await;
        assert_eq!(d.id, tagged[0].id);
        let sagas: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM genesis.ignitions WHERE workspace_id = $1 AND params ? 'restore'",
        )
        .bind(ws.as_uuid())
        .fetch_one(w.t.db.owner_pool())
        .await
        .expect("count");
        assert_eq!(sagas, 1, "one restore saga for {ws}");
    }
    w.kill_worker().await;
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_eu_tenant_leaves_the_eu_only_with_an_audited_override() {
    let w = world(Options::default()).await;
    let tenants = w.ignite_many("fo_eu", 2).await;
    snapshot_day(&w).await;
    assert!(w.sim.fail_region("fra1"));
    let stores = RegionalStore::single(w.t.db.clone());
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());

    // London is down too: the operator points at San Francisco, without the override.
    let (plan, f) = declare(&stores, &request(Some("sfo1"), false), "test")
        .await
        .expect("declared");
    assert_eq!((plan.restore, plan.reignite, plan.held), (0, 0, 2));
    run_until(
        &w,
        &conductor,
        f.id,
        FailoverPhase::Restored,
        Duration::from_secs(30),
    )
    .await;
    for ws in &tenants {
        let ig =
            w.t.db
                .ignition_latest(*ws)
                .await
                .expect("saga")
                .expect("one");
        assert!(ig.params.get("restore").is_none(), "not moved: {ig:?}");
    }
    assert_eq!(droplets_in(&w, "sfo1").await, 0);
    assert!(notifications(&w, "SERVICE_DISRUPTION").await.is_empty());
    clean_up(&w, &conductor, f.id).await;

    // With the override: moved, re-ignited (no copy in San Francisco), and audited.
    let (plan, f) = declare(&stores, &request(Some("sfo1"), true), "test")
        .await
        .expect("declared");
    assert_eq!((plan.restore, plan.reignite, plan.held), (0, 2, 0));
    let overridden: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details FROM genesis.audit_log WHERE event = 'RESIDENCY_OVERRIDDEN'",
    )
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(overridden.len(), 1, "{overridden:?}");
    assert_eq!(
        overridden[0]["workspaces"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(overridden[0]["reason"], "drill");
    run_until(
        &w,
        &conductor,
        f.id,
        FailoverPhase::Restored,
        Duration::from_secs(120),
    )
    .await;
    for ws in &tenants {
        let (_, d) = current(&w, *ws).await;
        assert_eq!(d.region.slug, "sfo1");
        assert_eq!(n8n_counts(&w, d.id), (4, 3, 3));
    }
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_that_fails_undoes_only_itself_and_the_tenant_keeps_its_vault() {
    let w = world(Options::default()).await;
    let ws = w.ignite_many("fo_fail", 1).await[0];
    snapshot_day(&w).await;
    let vault = w.t.db.vault_ids(ws).await.expect("vault").len();
    let hooks = w.t.db.webhook_list(ws).await.expect("webhooks").len();
    assert!(vault > 0 && hooks > 0);
    // London is down as well: no droplet can be made there.
    assert!(w.sim.fail_region("fra1"));
    assert!(w.sim.fail_region("lon1"));
    let stores = RegionalStore::single(w.t.db.clone());
    let (_, f) = declare(&stores, &request(None, false), "test")
        .await
        .expect("declared");
    restore_all(&w, f.id, Duration::from_secs(120)).await;
    let rows = w.t.db.failover_tenants(f.id, None, 10).await.expect("rows");
    assert_eq!(rows[0].state, RestoreState::Failed, "{rows:?}");
    assert!(rows[0].error.as_deref().is_some_and(|e| !e.is_empty()));
    let after = w.t.db.workspace_get(ws).await.expect("workspace");
    assert_eq!(after.status, genesis_core::WorkspaceStatus::Active);
    assert_eq!(w.t.db.vault_ids(ws).await.expect("vault").len(), vault);
    assert_eq!(
        w.t.db.webhook_list(ws).await.expect("webhooks").len(),
        hooks
    );
    assert!(
        genesis_store::PartitionManager::new(w.t.db.clone())
            .get(ws)
            .await
            .expect("partition")
            .is_some(),
        "the partition stays"
    );
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_deleted_during_the_failover_is_given_up_and_the_rest_carry_on() {
    let w = world(Options::default()).await;
    let tenants = w.ignite_many("fo_gone", 2).await;
    snapshot_day(&w).await;
    let (_, f) = frankfurt_down(&w).await;
    // The first tenant asks for its deletion before its restore starts.
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{}/deletion", tenants[0]),
            serde_json::json!({"trigger": "user", "reason": "leaving"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    restore_all(&w, f.id, Duration::from_secs(60)).await;
    let rows = w.t.db.failover_tenants(f.id, None, 10).await.expect("rows");
    let of = |ws: WorkspaceId| {
        rows.iter()
            .find(|r| r.workspace_id == ws.as_uuid())
            .expect("row")
    };
    assert_eq!(of(tenants[0]).state, RestoreState::Failed);
    assert!(
        of(tenants[0])
            .error
            .as_deref()
            .is_some_and(|e| e.contains("PENDING_DELETION")),
        "{rows:?}"
    );
    assert_eq!(of(tenants[1]).state, RestoreState::Verified);
    w.finish().await;
}

/// The snapshots of `droplets` still kept, each with its kind.
async fn kept(w: &World, droplets: &[Uuid]) -> Vec<(Uuid, String)> {
    sqlx::query_as(
        "SELECT droplet_id, kind FROM genesis.snapshots
         WHERE droplet_id = ANY($1) AND state = 'available' ORDER BY requested_at",
    )
    .bind(droplets)
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("snapshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_droplets_snapshots_go_from_day_7_at_their_retention_and_all_on_day_30() {
    let w = world(Options::default()).await;
    let tenants = w.ignite_many("fo_gc", 2).await;
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    // A weekly (kept 30 days) six days ago, then a daily (kept 7) four days ago: the daily
    // ends its retention three days after the failover.
    snapshot_day_at(&w, now - day * 6).await;
    snapshot_day_at(&w, now - day * 4).await;
    let mut old = Vec::new();
    for ws in &tenants {
        old.push(current(&w, *ws).await.0.droplet_id.as_uuid());
    }
    let before = kept(&w, &old).await;
    assert_eq!(
        before.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        ["weekly", "weekly", "daily", "daily"],
        "{before:?}"
    );

    let (stores, f) = frankfurt_down(&w).await;
    restore_all(&w, f.id, Duration::from_secs(120)).await;
    w.sim.restore_region("fra1");
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    clean_up(&w, &conductor, f.id).await;
    let mut new = Vec::new();
    for ws in &tenants {
        new.push(current(&w, *ws).await.0.droplet_id.as_uuid());
    }

    // Day 5: the dailies' retention is over, but a replaced droplet's snapshots are kept
    // whole for a week (and the new droplets get their own).
    snapshot_day_at(&w, now + day * 5).await;
    assert_eq!(kept(&w, &old).await, before, "nothing goes before day 7");
    assert_eq!(
        kept(&w, &new).await.len(),
        2,
        "the new droplets' own snapshots"
    );
    // Day 8: what is past its retention goes; the weeklies are not yet.
    snapshot_day_at(&w, now + day * 8).await;
    let left = kept(&w, &old).await;
    assert_eq!(
        left.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        ["weekly", "weekly"],
        "{left:?}"
    );
    // Day 31: the final cleanup takes the rest; the new droplets keep their newest.
    snapshot_day_at(&w, now + day * 31).await;
    assert!(kept(&w, &old).await.is_empty(), "day 30's final cleanup");
    assert!(
        kept(&w, &new).await.len() >= 2,
        "a tenant is never left without a backup"
    );
    let why: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT why_deleted FROM genesis.snapshots WHERE droplet_id = ANY($1)",
    )
    .bind(&old)
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("why");
    assert_eq!(why, ["post_failover"]);
    // Gone at the cloud too.
    let images: Vec<i64> =
        sqlx::query_scalar("SELECT image_id FROM genesis.snapshots WHERE droplet_id = ANY($1)")
            .bind(&old)
            .fetch_all(w.t.db.owner_pool())
            .await
            .expect("images");
    for image in images {
        assert!(
            matches!(
                w.cloud.image_get(image).await,
                Err(genesis_cloud::CloudError::NotFound)
            ),
            "image {image}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failback_takes_the_tenants_home_from_fresh_snapshots_and_leaves_nothing_behind() {
    let w = world(Options::default()).await;
    let tenants = w.ignite_many("fo_home", 3).await;
    snapshot_day(&w).await;
    let stores = RegionalStore::single(w.t.db.clone());
    assert!(w.sim.fail_region("fra1"));
    let (_, f) = declare(&stores, &request(None, false), "test")
        .await
        .expect("declared");
    let early = failback(&stores, "fra1", "ops", "home", "test")
        .await
        .expect_err("not restored yet");
    assert!(early.to_string().contains("still provisioning"), "{early}");
    restore_all(&w, f.id, Duration::from_secs(120)).await;
    let mut in_london = BTreeMap::new();
    for ws in &tenants {
        let (ig, d) = current(&w, *ws).await;
        assert_eq!(d.region.slug, "lon1");
        in_london.insert(*ws, (ig.droplet_id, d.id));
    }

    // Frankfurt is back: the tenants go home, each from a snapshot taken for the move.
    w.sim.restore_region("fra1");
    let back = failback(&stores, "fra1", "ops", "home", "test")
        .await
        .expect("failback");
    assert_eq!(
        (back.from_datacenter.as_str(), back.to_datacenter.as_str()),
        ("lon1", "fra1")
    );
    assert_eq!(back.failback_of, Some(f.id));
    let twice = failback(&stores, "fra1", "ops", "home", "test")
        .await
        .expect_err("once");
    assert!(twice.to_string().contains("failed back already"), "{twice}");
    assert_eq!(notifications(&w, "SERVICE_MIGRATION").await.len(), 3);
    restore_all(&w, back.id, Duration::from_secs(120)).await;
    let c = w.t.db.failover_counts(back.id).await.expect("counts");
    assert_eq!(c.state(RestoreState::Verified), 3, "{c:?}");
    for ws in &tenants {
        let (ig, d) = current(&w, *ws).await;
        assert_eq!(d.region.slug, "fra1", "home: {ws}");
        assert_ne!(ig.droplet_id, in_london[ws].0, "a new droplet");
        assert_eq!(n8n_counts(&w, d.id), (4, 3, 3), "credentials and workflows");
        let name =
            genesis_control::workers::pre_update::snapshot_name(in_london[ws].0.as_uuid(), back.id);
        let s =
            w.t.db
                .snapshot_named(&name)
                .await
                .expect("snapshot")
                .expect("a snapshot for the move");
        assert_eq!(ig.params["restore"]["image_id"], s.image_id.expect("image"));
    }
    let migrated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.notifications
         WHERE kind = 'SERVICE_RESTORED' AND body->>'migrated' = 'true'",
    )
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("count");
    assert_eq!(migrated, 3);

    // Both cleanups: the droplets the outage left in Frankfurt, and the London ones.
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    clean_up(&w, &conductor, f.id).await;
    clean_up(&w, &conductor, back.id).await;
    assert_eq!(droplets_in(&w, "lon1").await, 0, "nothing left in London");
    assert_eq!(droplets_in(&w, "fra1").await, 3, "one droplet a tenant");
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restored_engine_is_verified_only_once_its_workflows_run_again() {
    let w = world(Options::default()).await;
    let ws = w.ignite_many("fo_check", 1).await[0];
    snapshot_day(&w).await;
    let (stores, f) = frankfurt_down(&w).await;
    // One pass starts the restore; verification is then called by hand.
    let conductor = FailoverConductor::new(stores.clone(), w.igniter.clone());
    let r = conductor.reconcile().await.expect("pass");
    assert_eq!(r.started, 1, "{r:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while w
        .t
        .db
        .failover_tenants(f.id, Some(RestoreState::Restored), 1)
        .await
        .expect("rows")
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "never restored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, d) = current(&w, ws).await;
    let n8n = w.hook.n8n(d.id).expect("the new droplet's n8n");
    let (id, _, active) = n8n
        .workflow_summary()
        .into_iter()
        .find(|(_, _, a)| *a)
        .expect("an active workflow");
    assert!(active);
    assert!(n8n.chaos_set_active(&id, false));
    // Heartbeats keep coming, but one workflow is off: not verified.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        w.t.db.failover_verify(f.id, "test").await.expect("verify"),
        0
    );
    assert!(notifications(&w, "SERVICE_RESTORED").await.is_empty());
    assert!(n8n.chaos_set_active(&id, true));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        w.t.db.failover_verify(f.id, "test").await.expect("verify"),
        1
    );
    assert_eq!(notifications(&w, "SERVICE_RESTORED").await.len(), 1);
    w.finish().await;
}
