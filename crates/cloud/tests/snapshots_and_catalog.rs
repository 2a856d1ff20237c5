//! Snapshots, image transfer, restoring from a snapshot, regions and sizes: the client
//! against the simulator, contract-checked.

mod common;

use std::time::Duration;

use common::{Harness, create_active, create_req};
use genesis_cloud::{Cloud, CloudError, DropletStatus, ImageRef, PowerAction};
use genesis_sim::digitalocean::SimConfig;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn snapshot_transfer_restore_and_delete() {
    let h = Harness::start(SimConfig::default()).await;
    let c = h.client();
    let d = create_active(&c, &create_req("snap-src", "snap")).await;
    let off = c
        .droplet_action(d.id, PowerAction::PowerOff)
        .await
        .expect("power off");
    c.action_wait(off.id, WAIT).await.expect("off");

    let a = c
        .droplet_snapshot(d.id, "hibernate-snap")
        .await
        .expect("snapshot");
    assert_eq!(a.kind, "snapshot");
    c.action_wait(a.id, WAIT).await.expect("snapshot completes");

    let mine = c.droplet_snapshots(d.id).await.expect("droplet snapshots");
    assert_eq!(mine.len(), 1);
    let snap = &mine[0];
    assert_eq!(snap.name, "hibernate-snap");
    assert_eq!(snap.regions, vec!["fra1".to_string()]);
    assert_eq!(
        c.droplet_get(d.id).await.expect("get").snapshot_ids,
        vec![snap.id]
    );
    let all = c.snapshot_list().await.expect("list");
    assert!(all.iter().any(|s| s.id == snap.id), "listed account-wide");
    assert_eq!(c.snapshot_get(snap.id).await.expect("get"), *snap);

    // Copy it to London, then restore a droplet there from it.
    let t = c.image_transfer(snap.id, "lon1").await.expect("transfer");
    assert_eq!(t.resource_type, "image");
    c.action_wait(t.id, WAIT).await.expect("transfer completes");
    let image = c.image_get(snap.id).await.expect("image");
    assert_eq!(image.kind, "snapshot");
    assert!(image.regions.contains(&"lon1".to_string()), "{image:?}");
    match c.image_transfer(snap.id, "lon1").await {
        Err(CloudError::Refused { status: 422, .. }) => {}
        other => panic!("a second transfer to the same region is refused, got {other:?}"),
    }

    let mut restore = create_req("snap-restored", "snap2");
    restore.region = "lon1".into();
    restore.image = ImageRef::Id(snap.id);
    let r = create_active(&c, &restore).await;
    assert_eq!(
        c.droplet_get(r.id).await.expect("get").status,
        DropletStatus::Active
    );
    let mut elsewhere = create_req("snap-nyc", "snap3");
    elsewhere.region = "nyc3".into();
    elsewhere.image = ImageRef::Id(snap.id);
    match c.droplet_create(&elsewhere).await {
        Err(CloudError::Refused {
            status: 422,
            field: Some(f),
            ..
        }) => assert_eq!(f, "image"),
        other => panic!("a snapshot is usable only where it is, got {other:?}"),
    }

    c.snapshot_delete(snap.id).await.expect("delete");
    assert!(matches!(
        c.snapshot_get(snap.id).await,
        Err(CloudError::NotFound)
    ));
    c.snapshot_delete(snap.id)
        .await
        .expect("deleting twice is fine");
    assert!(c.droplet_snapshots(d.id).await.expect("list").is_empty());
    h.assert_contract_kept();
}

#[tokio::test]
async fn regions_and_sizes_are_listed() {
    let h = Harness::start(SimConfig::default()).await;
    let c = h.client();
    let regions = c.regions().await.expect("regions");
    let slugs: Vec<_> = regions.iter().map(|r| r.slug.as_str()).collect();
    for want in ["nyc3", "sfo3", "fra1", "lon1", "sgp1"] {
        assert!(slugs.contains(&want), "{want} in {slugs:?}");
    }
    assert!(regions.iter().all(|r| r.available));
    let sizes = c.sizes().await.expect("sizes");
    let small = sizes
        .iter()
        .find(|s| s.slug == "s-1vcpu-1gb")
        .expect("the fleet's size");
    assert_eq!((small.vcpus, small.memory), (1, 1024));
    assert!(small.price_hourly > 0.0 && small.price_hourly < small.price_monthly);
    h.assert_contract_kept();
}

/// The region-failure drill (issue 26): while fra1 is down, nothing there answers, its
/// droplets are dark, and its snapshots are usable only where they were copied to; other
/// regions go on; once it recovers, everything there answers again.
#[tokio::test]
async fn a_failed_region_answers_503_and_its_snapshots_live_on_only_where_copied() {
    let h = Harness::start(SimConfig::default()).await;
    let c = h.client();
    let d = create_active(&c, &create_req("drill-fra", "drill")).await;
    let mut ny = create_req("drill-nyc", "drill2");
    ny.region = "nyc3".into();
    let other = create_active(&c, &ny).await;
    let mut snaps = Vec::new();
    for name in ["copied", "not-copied"] {
        let a = c.droplet_snapshot(d.id, name).await.expect("snapshot");
        c.action_wait(a.id, WAIT).await.expect("snapshot completes");
        snaps.push(
            c.droplet_snapshots(d.id)
                .await
                .expect("list")
                .into_iter()
                .find(|s| s.name == name)
                .expect("taken"),
        );
    }
    let t = c
        .image_transfer(snaps[0].id, "lon1")
        .await
        .expect("transfer");
    c.action_wait(t.id, WAIT).await.expect("transfer completes");

    // Through the simulator's admin API, as an operator's drill would.
    let http = reqwest::Client::new();
    let admin = |path: &str| format!("{}/sim/v1/regions/{path}", h.base);
    let fail = http.post(admin("fra1/fail")).send().await.expect("fail");
    assert_eq!(fail.status(), 204);
    let unknown = http.post(admin("mars1/fail")).send().await.expect("fail");
    assert_eq!(unknown.status(), 404, "only a datacenter that exists");
    let failed: Vec<String> = http
        .get(admin("failed"))
        .send()
        .await
        .expect("failed")
        .json()
        .await
        .expect("json");
    assert_eq!(failed, ["fra1"]);
    // A client that gives up quickly on a 5xx.
    let mut o = genesis_cloud::ClientOptions::new(&h.base, "test-token");
    o.max_attempts = 2;
    o.min_backoff = Duration::from_millis(1);
    let quick = genesis_cloud::DigitalOcean::new(o).expect("client");
    let down =
        |r: Result<_, CloudError>| matches!(r, Err(CloudError::Unavailable { status: 503, .. }));
    assert!(down(quick.droplet_get(d.id).await.map(|_| ())));
    assert!(down(quick.droplet_snapshots(d.id).await.map(|_| ())));
    assert!(down(
        quick
            .droplet_create(&create_req("drill-new", "drill3"))
            .await
            .map(|_| ())
    ));
    assert!(down(quick.image_get(snaps[1].id).await.map(|_| ())));
    // The copied snapshot lives on in London alone, and a droplet is restored there.
    let copied = quick.image_get(snaps[0].id).await.expect("copied");
    assert_eq!(copied.regions, ["lon1"]);
    let mut restore = create_req("drill-restored", "drill");
    restore.region = "lon1".into();
    restore.image = ImageRef::Id(snaps[0].id);
    let r = create_active(&c, &restore).await;
    assert_eq!(
        quick.droplet_get(r.id).await.expect("restored").status,
        DropletStatus::Active
    );
    // Elsewhere, all is as before.
    assert_eq!(
        quick.droplet_get(other.id).await.expect("nyc3").status,
        DropletStatus::Active
    );
    // Its stats say the droplet went dark.
    assert!(h.sim.stats().went_dark >= 1);

    let restore = http
        .post(admin("fra1/restore"))
        .send()
        .await
        .expect("restore");
    assert_eq!(restore.status(), 204);
    assert!(h.sim.failed_regions().is_empty());
    assert_eq!(quick.droplet_get(d.id).await.expect("back").id, d.id);
    let both = quick.image_get(snaps[0].id).await.expect("image");
    assert_eq!(both.regions, ["fra1", "lon1"]);
}
