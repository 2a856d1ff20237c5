//! The command journal's sink against a real database: batches, order, and the bound on
//! what it buffers.

use genesis_control::command_journal::{JournalSink, MAX_BUFFERED};
use genesis_ignition::sidecar_client::{CommandJournal, CommandRecord};
use genesis_protocol::command::CommandName;

fn record(ws: uuid::Uuid, provider_id: i64, n: i64) -> CommandRecord {
    CommandRecord {
        workspace: ws,
        provider_id,
        action: CommandName::DeployWorkflow,
        sent_at: chrono::Utc::now(),
        elapsed_ms: n,
        outcome: if n % 2 == 0 { "ok" } else { "failed" },
        detail: (n % 2 == 1).then(|| format!("attempt {n}")),
    }
}

#[tokio::test]
async fn the_journal_keeps_the_newest_commands_and_bounds_its_buffer() {
    let app = super::spawn_app().await;
    let sink = JournalSink::new(genesis_store::RegionalStore::single(app.t.db.clone()));
    let ws = uuid::Uuid::now_v7();
    assert_eq!(sink.flush().await.expect("empty flush"), 0);
    // More than the buffer holds while the database is not written: the oldest go.
    let extra = 5;
    for n in 0..(MAX_BUFFERED as i64 + extra) {
        sink.record(record(ws, 42, n));
    }
    assert_eq!(sink.flush().await.expect("flush"), MAX_BUFFERED);
    let recent = app
        .t
        .db
        .command_journal_recent(ws, 42, 3)
        .await
        .expect("recent");
    let last = MAX_BUFFERED as i64 + extra - 1;
    assert_eq!(
        recent.iter().map(|c| c.elapsed_ms).collect::<Vec<_>>(),
        vec![last, last - 1, last - 2],
        "newest first"
    );
    assert_eq!(recent[0].action, "DEPLOY_WORKFLOW");
    assert_eq!(
        (recent[0].outcome.as_str(), recent[0].detail.as_deref()),
        ("ok", None)
    );
    assert_eq!(recent[1].outcome, "failed");
    assert_eq!(
        recent[1].detail.as_deref(),
        Some(format!("attempt {}", last - 1).as_str())
    );
    let oldest = app
        .t
        .db
        .command_journal_recent(ws, 42, MAX_BUFFERED as i64 + 10)
        .await
        .expect("all");
    assert_eq!(oldest.len(), MAX_BUFFERED);
    assert_eq!(
        oldest.last().map(|c| c.elapsed_ms),
        Some(extra),
        "the {extra} oldest were dropped"
    );
    // Another droplet's commands are its own.
    assert!(
        app.t
            .db
            .command_journal_recent(ws, 43, 10)
            .await
            .expect("other")
            .is_empty()
    );
}

#[tokio::test]
async fn each_commands_journal_stays_in_its_workspaces_region() {
    // eu-west on one database, everything else (the coordinator too) on the other.
    let (home, eu, stores) = genesis_store::testing::two_regions()
        .await
        .expect("databases");
    let (eu_ws, _) =
        super::workspace_with_ingest_token(&eu.db, "journal_eu", genesis_core::Region::EuWest)
            .await;
    let (us_ws, _) =
        super::workspace_with_ingest_token(&home.db, "journal_us", genesis_core::Region::UsWest)
            .await;
    let gone = uuid::Uuid::now_v7();
    let sink = JournalSink::new(stores);
    for (ws, n) in [(eu_ws.as_uuid(), 1), (us_ws.as_uuid(), 3), (gone, 5)] {
        sink.record(record(ws, 7, n));
        sink.record(record(ws, 7, n + 2));
    }
    assert_eq!(sink.flush().await.expect("flush"), 6);
    let in_db = |db: &genesis_store::Database, ws: uuid::Uuid| {
        let db = db.clone();
        async move {
            db.command_journal_recent(ws, 7, 10)
                .await
                .expect("recent")
                .len()
        }
    };
    // A failed command's detail can name the tenant's data: it stays in its region.
    assert_eq!(in_db(&eu.db, eu_ws.as_uuid()).await, 2);
    assert_eq!(
        in_db(&home.db, eu_ws.as_uuid()).await,
        0,
        "nothing of the EU tenant at home"
    );
    assert_eq!(in_db(&home.db, us_ws.as_uuid()).await, 2);
    assert_eq!(in_db(&eu.db, us_ws.as_uuid()).await, 0);
    // A workspace no region holds: the coordinator keeps it, nothing is lost.
    assert_eq!(in_db(&home.db, gone).await, 2);
}
