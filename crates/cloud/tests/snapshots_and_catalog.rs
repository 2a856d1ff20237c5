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
