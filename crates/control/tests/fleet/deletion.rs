//! A tenant's deletion, day 0, end to end (spec 64.1–64.2): through the operator API, the
//! workspace goes to PENDING_DELETION, its campaigns pause, and its engine hibernates at the
//! next pass without the usual notice, even when held awake; it cannot be woken; calling
//! the deletion off restores the status and the campaigns.

use std::time::Duration;

use genesis_cloud::{Cloud, DropletStatus};
use genesis_control::workers::hibernation::{HibernationSettings, Hibernator};
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_core::DropletState;
use serde_json::json;

use crate::helpers::{Options, credentials, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn day_zero_pauses_sleeps_and_refuses_a_wake_and_calling_it_off_restores() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("leaving").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let droplet = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    // Held awake: a hold keeps a tenant from the usual hibernation, not from a deletion's.
    let (status, _) = w
        .put(
            &format!("/api/v1/workspaces/{ws}/hibernation"),
            json!({"hold": true}),
        )
        .await;
    assert_eq!(status, 204);
    let active_before =
        w.t.db
            .droplet_workflows(droplet.id)
            .await
            .expect("flows")
            .iter()
            .filter(|f| f.active)
            .count();
    assert!(active_before > 0);

    // Bad input, refused in words and changing nothing.
    let path = format!("/api/v1/workspaces/{ws}/deletion");
    let (status, body) = w.post(&path, json!({"trigger": "fraud"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );
    let (status, body) = w.post(&path, json!({"trigger": "boredom"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = w.get(&path).await;
    assert_eq!(status, 404, "not being deleted");
    let (status, body) = w.delete(&path).await;
    assert_eq!(status, 409, "{body}");

    let (status, d) = w.post(&path, json!({"trigger": "user"})).await;
    assert_eq!(status, 202, "{d}");
    assert_eq!(d["trigger"], "user");
    assert_eq!(d["previous_status"], "ACTIVE");
    let (_, again) = w.post(&path, json!({"trigger": "user"})).await;
    assert!(
        again["detail"]
            .as_str()
            .is_some_and(|s| s.contains("already being deleted")),
        "{again}"
    );
    let (status, got) = w.get(&path).await;
    assert_eq!((status, &got["purge_after"]), (200, &d["purge_after"]));
    let (_, wsj) = w.get(&format!("/api/v1/workspaces/{ws}")).await;
    assert_eq!(wsj["status"], "PENDING_DELETION", "{wsj}");
    let flows = w.t.db.droplet_workflows(droplet.id).await.expect("flows");
    assert!(flows.iter().all(|f| !f.active), "{flows:?}");

    // The next hibernation pass puts it to sleep at once: no notice, despite the hold.
    let hibernator = Hibernator::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.cloud.clone(),
        HibernationSettings::default(),
    );
    let pass = hibernator.reconcile().await.expect("pass");
    assert_eq!((pass.noticed, pass.queued), (0, 1), "{pass:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.t.db.droplet_get(droplet.id).await.expect("d").state != DropletState::Hibernating {
        assert!(tokio::time::Instant::now() < deadline, "never hibernated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let provider = droplet.provider_id.expect("provider");
    assert_eq!(
        w.cloud.droplet_get(provider).await.expect("cloud").status,
        DropletStatus::Off
    );
    // It cannot be woken while it is being deleted.
    let (status, body) = w
        .post(&format!("/api/v1/workspaces/{ws}/wake"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|s| s.contains("being deleted")),
        "{body}"
    );

    // Called off: ACTIVE again, every paused campaign desired active again, and now it
    // can be woken.
    let (status, back) = w.delete(&path).await;
    assert_eq!(
        (status, back["status"].as_str()),
        (200, Some("ACTIVE")),
        "{back}"
    );
    let flows = w.t.db.droplet_workflows(droplet.id).await.expect("flows");
    assert_eq!(flows.iter().filter(|f| f.active).count(), active_before);
    let (status, _) = w.get(&path).await;
    assert_eq!(status, 404);
    let (status, body) = w
        .post(&format!("/api/v1/workspaces/{ws}/wake"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    w.finish().await;
}
