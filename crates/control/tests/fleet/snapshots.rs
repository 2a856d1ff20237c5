//! The snapshot schedule and its GC (spec 66.2, 66.3, 66.5) over the simulated cloud, on a
//! compressed clock: every live droplet gets one snapshot a day (weekly every 7 days), each
//! copied to its backup datacenter; a failed one is retried and then deleted; expired ones
//! are deleted, never before their time and never a droplet's last.

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_cloud::Cloud;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::snapshots::{SnapshotSchedule, SnapshotSettings};
use genesis_core::dr::backup_datacenter;

use crate::helpers::{Options, credentials, world};

#[derive(Debug, sqlx::FromRow)]
struct Row {
    droplet_id: uuid::Uuid,
    kind: String,
    state: String,
    image_id: Option<i64>,
    datacenter: Option<String>,
    backup_datacenter: Option<String>,
    transfer_state: Option<String>,
    requested_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    why_deleted: Option<String>,
}

async fn rows(db: &genesis_store::Database) -> Vec<Row> {
    sqlx::query_as(
        "SELECT droplet_id, kind, state, image_id, datacenter, backup_datacenter, transfer_state,
                requested_at, expires_at, deleted_at, why_deleted
         FROM genesis.snapshots ORDER BY requested_at",
    )
    .fetch_all(db.owner_pool())
    .await
    .expect("rows")
}

#[tokio::test]
async fn every_droplet_is_snapshotted_daily_copied_across_regions_and_collected() {
    let w = world(Options::default()).await;
    let mut droplets = Vec::new();
    for slug in ["snap_a", "snap_b"] {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        let got = w.wait_finished(ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        droplets.push(w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone());
    }
    let clock = genesis_control::clock::Clock::manual(chrono::Utc::now());
    let schedule = SnapshotSchedule::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        clock.clone(),
        SnapshotSettings {
            look_after: Duration::ZERO,
            ..Default::default()
        },
    );
    // A day's passes: take, settle and start the copy, check the copy.
    let schedule = &schedule;
    let day = || async move {
        for _ in 0..3 {
            schedule.reconcile().await.expect("pass");
        }
    };

    // Day 0: the first snapshot of each is a weekly one, and is copied to the backup
    // datacenter of where it was taken.
    day().await;
    let r = rows(&w.t.db).await;
    assert_eq!(r.len(), 2, "{r:#?}");
    for s in &r {
        assert_eq!((s.kind.as_str(), s.state.as_str()), ("weekly", "available"));
        assert_eq!(s.transfer_state.as_deref(), Some("done"), "{s:?}");
        let dc = s.datacenter.as_deref().expect("datacenter");
        assert_eq!(s.backup_datacenter.as_deref(), backup_datacenter(dc));
        let image = w
            .cloud
            .image_get(s.image_id.expect("image"))
            .await
            .expect("image");
        assert!(
            image
                .regions
                .iter()
                .any(|r| Some(r.as_str()) == backup_datacenter(dc)),
            "{image:?}"
        );
    }
    // A second pass the same day takes nothing more.
    schedule.reconcile().await.expect("pass");
    assert_eq!(rows(&w.t.db).await.len(), 2);

    // Day 1, the cloud fails every snapshot: the failure is found an hour later, a retry
    // is asked for, and the failed one is deleted once it is.
    clock.advance(Duration::from_secs(24 * 3600));
    w.sim.set_faults(genesis_sim::digitalocean::Faults {
        action_error_rate: 1.0,
        ..Default::default()
    });
    schedule.reconcile().await.expect("pass");
    clock.advance(Duration::from_secs(3601));
    schedule.reconcile().await.expect("pass");
    // The failures were found, a retry asked for, and each failed one deleted at once.
    let r = rows(&w.t.db).await;
    let count = |f: &dyn Fn(&Row) -> bool| r.iter().filter(|s| f(s)).count();
    assert_eq!(
        count(&|s| s.why_deleted.as_deref() == Some("failed")),
        2,
        "one per droplet: {r:#?}"
    );
    assert_eq!(count(&|s| s.state == "taking"), 2, "{r:#?}");
    w.sim.set_faults(Default::default());
    clock.advance(Duration::from_secs(3601));
    day().await;
    let r = rows(&w.t.db).await;
    assert!(
        r.iter()
            .filter(|s| s.why_deleted.as_deref() == Some("failed"))
            .count()
            >= 2,
        "{r:#?}"
    );
    assert!(
        r.iter().all(|s| s.state != "failed"),
        "every failure is collected once retried: {r:#?}"
    );

    // Days 2 to 9: a daily each day, a weekly on day 7; dailies go after their 7 days.
    for _ in 2..=9 {
        clock.advance(Duration::from_secs(24 * 3600));
        day().await;
    }
    let r = rows(&w.t.db).await;
    let kept: Vec<&Row> = r.iter().filter(|s| s.state == "available").collect();
    let weeklies = kept.iter().filter(|s| s.kind == "weekly").count();
    assert_eq!(weeklies, 4, "day 0 and day 7, for two droplets: {r:#?}");
    for s in &r {
        if let Some(at) = s.deleted_at
            && s.why_deleted.as_deref() == Some("expired")
        {
            assert!(at >= s.expires_at, "deleted before its time: {s:?}");
        }
    }
    let expired = r
        .iter()
        .filter(|s| s.why_deleted.as_deref() == Some("expired"))
        .count();
    assert!(expired >= 2, "the oldest dailies are gone: {r:#?}");
    // What the database keeps is what the cloud holds, image for image.
    let mut at_cloud: Vec<i64> = w
        .cloud
        .snapshot_list()
        .await
        .expect("list")
        .into_iter()
        .filter(|s| s.name.starts_with("genesis-"))
        .map(|s| s.id)
        .collect();
    at_cloud.sort_unstable();
    let mut recorded: Vec<i64> = kept.iter().filter_map(|s| s.image_id).collect();
    recorded.sort_unstable();
    assert_eq!(at_cloud, recorded);

    // Coverage: both droplets have a fresh snapshot and a fresh cross-region copy.
    let c =
        w.t.db
            .snapshot_coverage(clock.now())
            .await
            .expect("coverage");
    assert_eq!(
        (c.droplets, c.fresh, c.fresh_cross_region),
        (2, 2, 2),
        "{c:?}"
    );
    let by_kind: BTreeMap<&str, usize> = kept.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.kind.as_str()).or_default() += 1;
        m
    });
    assert_eq!(c.copies as usize, 2 * kept.len(), "{by_kind:?}");

    // The backup datacenter down (the simulator's drill): the copies wait, and the day's
    // snapshots are taken all the same.
    let backup = kept[0]
        .backup_datacenter
        .clone()
        .expect("backup datacenter");
    assert!(w.sim.fail_region(&backup));
    clock.advance(Duration::from_secs(24 * 3600));
    // (The database keeps microseconds.)
    let today = clock.now() - chrono::Duration::seconds(1);
    day().await;
    let fresh = |r: &[Row]| -> Vec<Option<String>> {
        r.iter()
            .filter(|s| s.requested_at >= today && s.state == "available")
            .map(|s| s.transfer_state.clone())
            .collect()
    };
    assert_eq!(
        fresh(&rows(&w.t.db).await),
        [None, None],
        "taken, not copied"
    );
    w.sim.restore_region(&backup);
    day().await;
    assert_eq!(
        fresh(&rows(&w.t.db).await),
        [Some("done".to_owned()), Some("done".to_owned())],
        "copied once it is back"
    );

    // A schedule that stalls (every snapshot fails for 40 days): everything past its
    // retention goes, but each droplet keeps its newest snapshot.
    w.sim.set_faults(genesis_sim::digitalocean::Faults {
        action_error_rate: 1.0,
        ..Default::default()
    });
    for _ in 0..40 {
        clock.advance(Duration::from_secs(24 * 3600));
        day().await;
    }
    let r = rows(&w.t.db).await;
    for d in &droplets {
        let kept: Vec<&Row> = r
            .iter()
            .filter(|s| s.droplet_id == d.id.as_uuid() && s.state == "available")
            .collect();
        assert_eq!(kept.len(), 1, "{r:#?}");
        assert!(
            kept[0].expires_at < clock.now(),
            "past its retention, and kept"
        );
    }
    let c =
        w.t.db
            .snapshot_coverage(clock.now())
            .await
            .expect("coverage");
    assert_eq!((c.droplets, c.fresh, c.copies), (2, 0, 4), "{c:?}");
}

#[tokio::test]
async fn a_pre_update_snapshot_is_not_the_days_backup_and_is_never_copied() {
    use genesis_control::workers::pre_update::{PreUpdate, pre_update_snapshot};
    let w = world(Options::default()).await;
    let ws = w.create_workspace("snap_pre").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let droplet = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let now = chrono::Utc::now();
    let update = uuid::Uuid::now_v7();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match pre_update_snapshot(&w.t.db, w.cloud.as_ref(), &droplet, update, now)
            .await
            .expect("pre-update")
        {
            PreUpdate::Ready(_) => break,
            PreUpdate::Wait => {}
            PreUpdate::Failed(why) => panic!("{why}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same update finds the same snapshot: no second one is taken.
    let again = pre_update_snapshot(&w.t.db, w.cloud.as_ref(), &droplet, update, now)
        .await
        .expect("again");
    assert!(matches!(again, PreUpdate::Ready(_)), "{again:?}");

    let schedule = SnapshotSchedule::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.cloud.clone(),
        genesis_control::clock::Clock::manual(now),
        SnapshotSettings {
            look_after: Duration::ZERO,
            ..Default::default()
        },
    );
    for _ in 0..3 {
        schedule.reconcile().await.expect("pass");
    }
    let r = rows(&w.t.db).await;
    let kinds: Vec<(&str, &str, Option<&str>)> = r
        .iter()
        .map(|s| {
            (
                s.kind.as_str(),
                s.state.as_str(),
                s.transfer_state.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("pre_update", "available", None),
            ("weekly", "available", Some("done"))
        ],
        "the day's snapshot is still taken and copied: {r:#?}"
    );
    assert!(r.iter().all(|s| s.droplet_id == droplet.id.as_uuid()));
}
