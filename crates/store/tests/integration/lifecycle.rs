//! State changes go through the state machines, with optimistic concurrency and audit.

use genesis_core::{
    DropletEvent, DropletId, DropletState, Region, WorkspaceEvent, WorkspaceStatus,
};
use genesis_store::{StoreError, testing::TestDb};

use crate::helpers::provision;

#[tokio::test]
async fn droplet_transitions_are_checked_versioned_and_audited() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = provision(db, "drop_sm").await;
    let id = DropletId::new();
    let d = db
        .droplet_register(id, ws.id, Region::EuWest, "test")
        .await
        .expect("register");
    assert_eq!((d.state, d.version), (DropletState::Pending, 0));

    let d = db
        .droplet_transition(id, 0, DropletEvent::Booted, "test")
        .await
        .expect("boot");
    assert_eq!((d.state, d.version), (DropletState::Initializing, 1));
    // A stale version loses.
    assert!(matches!(
        db.droplet_transition(id, 0, DropletEvent::CloudInitFinished, "test")
            .await,
        Err(StoreError::VersionConflict { .. })
    ));
    // An illegal event is refused without touching the row.
    assert!(matches!(
        db.droplet_transition(id, 1, DropletEvent::WakeRequested, "test")
            .await,
        Err(StoreError::IllegalDropletTransition(_))
    ));
    assert_eq!(db.droplet_get(id).await.expect("get").version, 1);

    // Two racing workers on the same version: exactly one wins.
    let (a, b) = tokio::join!(
        db.droplet_transition(id, 1, DropletEvent::CloudInitFinished, "w1"),
        db.droplet_transition(id, 1, DropletEvent::ProvisioningFailed, "w2"),
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");

    let changes = db
        .audit_list(Some(ws.id), Some("DROPLET_STATE_CHANGED"), 10)
        .await
        .expect("audit");
    assert_eq!(changes.len(), 2, "one audit row per committed change");
    assert_eq!(changes[1].details["from"], "PENDING");
    assert_eq!(changes[1].details["to"], "INITIALIZING");

    assert!(matches!(
        db.droplet_register(
            DropletId::new(),
            genesis_core::WorkspaceId::new(),
            Region::EuWest,
            "test"
        )
        .await,
        Err(StoreError::NotFound { what: "workspace" })
    ));
    t.cleanup().await.expect("cleanup");
}

/// Heartbeats are buffered and flushed in batches, so one can reach the database after the
/// droplet was restarted or powered off. Found in CI: a beat sent just before a hibernation
/// ended the wake that followed it, so a droplet whose software never came back read healthy.
#[tokio::test]
async fn a_beat_received_before_a_reboot_does_not_end_it() {
    use genesis_core::ResourceSample;
    use genesis_store::BeatRow;
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = provision(db, "stale_beat").await;
    let id = DropletId::new();
    db.droplet_register(id, ws.id, Region::EuWest, "test")
        .await
        .expect("register");
    let mut version = 0;
    for event in [
        DropletEvent::Booted,
        DropletEvent::CloudInitFinished,
        DropletEvent::HandshakeCompleted,
    ] {
        version = db
            .droplet_transition(id, version, event, "test")
            .await
            .expect("up")
            .version;
    }
    let beat = |at| BeatRow {
        droplet: id,
        at,
        payload: serde_json::json!({}),
        sample: ResourceSample {
            cpu: 10.0,
            memory: 10.0,
            disk: 10.0,
        },
    };
    let before_the_reboot = beat(chrono::Utc::now());
    for event in [DropletEvent::HeartbeatsMissed, DropletEvent::RebootIssued] {
        version = db
            .droplet_transition(id, version, event, "test")
            .await
            .expect("reboot")
            .version;
    }
    let applied = db
        .heartbeats_record(&[before_the_reboot], "hb")
        .await
        .expect("record");
    assert!(applied.is_empty(), "{applied:?}");
    assert_eq!(
        db.droplet_get(id).await.expect("get").state,
        DropletState::Rebooting
    );
    let applied = db
        .heartbeats_record(&[beat(chrono::Utc::now())], "hb")
        .await
        .expect("record");
    assert_eq!(applied.len(), 1);
    assert_eq!(
        db.droplet_get(id).await.expect("get").state,
        DropletState::ActiveHealthy
    );
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn workspace_status_follows_the_tenant_lifecycle() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ws = provision(db, "ws_sm").await;
    assert_eq!(ws.status, WorkspaceStatus::Pending);
    // Skipping the ignition is refused by the state machine.
    assert!(matches!(
        db.workspace_transition(ws.id, ws.version, WorkspaceEvent::IgnitionSucceeded, "test")
            .await,
        Err(StoreError::IllegalWorkspaceTransition(_))
    ));
    let ws = db
        .workspace_transition(ws.id, ws.version, WorkspaceEvent::IgnitionStarted, "test")
        .await
        .expect("ignite");
    let ws = db
        .workspace_transition(ws.id, ws.version, WorkspaceEvent::IgnitionSucceeded, "test")
        .await
        .expect("activate");
    assert_eq!(ws.status, WorkspaceStatus::Active);
    assert!(matches!(
        db.workspace_transition(ws.id, ws.version, WorkspaceEvent::DeletionCompleted, "test")
            .await,
        Err(StoreError::IllegalWorkspaceTransition(_))
    ));
    let audit = db
        .audit_list(Some(ws.id), Some("WORKSPACE_STATUS_CHANGED"), 10)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().any(|a| a.details["to"] == "ACTIVE"));
    t.cleanup().await.expect("cleanup");
}
