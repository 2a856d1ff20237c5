//! The Ohio exception: one router, one adapter, and no other code naming the legacy table.

use std::path::{Path, PathBuf};

use genesis_core::{LeadStatus, LegacyTenant, TenantRouter, WorkspaceId};
use genesis_store::{Caller, LeadStore, testing::TestDb};

use crate::helpers::{lead, provision};

#[tokio::test]
async fn the_router_sends_only_the_legacy_id_to_the_legacy_table() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let ohio = WorkspaceId::new();
    let router = TenantRouter::new(Some(LegacyTenant {
        workspace_id: ohio,
        n8n_url: "http://legacy-n8n.invalid".into(),
    }));
    let sovereign = provision(db, "sov").await;

    // Before the legacy tenant is registered, nobody sees the legacy table, Ohio included.
    let mut unregistered = db
        .leads_open(&router, &Caller::System("test"), &ohio.to_string())
        .await
        .expect("open legacy");
    assert!(
        unregistered
            .insert(&lead("early@ohio.example", LeadStatus::New))
            .await
            .is_err(),
        "fail-closed until `genesis migrate` registers the legacy tenant"
    );
    drop(unregistered);
    db.legacy_ohio_register(ohio).await.expect("register");

    let mut legacy = db
        .leads_open(&router, &Caller::System("test"), &ohio.to_string())
        .await
        .expect("open legacy");
    assert!(matches!(legacy, LeadStore::Legacy(_)));
    legacy
        .insert(&lead("old@ohio.example", LeadStatus::New))
        .await
        .expect("insert");
    assert_eq!(legacy.count(None).await.expect("count"), 1);
    legacy.commit().await.expect("commit");

    let mut sov = db
        .leads_open(&router, &Caller::System("test"), &sovereign.id.to_string())
        .await
        .expect("open sovereign");
    assert!(matches!(sov, LeadStore::Sovereign(_)));
    assert_eq!(
        sov.count(None).await.expect("count"),
        0,
        "legacy rows never reach a sovereign tenant"
    );
    sov.insert(&lead("new@sov.example", LeadStatus::New))
        .await
        .expect("insert");
    sov.commit().await.expect("commit");

    let mut legacy = db
        .leads_open(&router, &Caller::System("test"), &ohio.to_string())
        .await
        .expect("open legacy");
    let page = legacy.page(LeadStatus::New, None, 10).await.expect("page");
    assert_eq!(
        page.items
            .iter()
            .map(|l| l.email.as_str())
            .collect::<Vec<_>>(),
        ["old@ohio.example"]
    );

    // Another tenant's context sees no legacy row and cannot write one, and neither can a
    // session with no context (the table used to be open to every tenant session).
    let table = ["genesis.leads", "_ohio"].concat();
    for context in [Some(sovereign.id.to_string()), None] {
        let mut tx = db.app_pool().begin().await.expect("tx");
        if let Some(c) = &context {
            sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
                .bind(c)
                .execute(&mut *tx)
                .await
                .expect("context");
        }
        let seen: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .expect("count");
        assert_eq!(seen, 0, "{context:?} sees no legacy row");
        let wrote = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (id, email) VALUES (gen_random_uuid(), 'evil@x.example')"
        )))
        .execute(&mut *tx)
        .await;
        assert!(wrote.is_err(), "{context:?} cannot write a legacy row");
    }

    // The gate still applies on the legacy path.
    assert!(
        db.leads_open(&router, &Caller::Tenant(sovereign.id), &ohio.to_string())
            .await
            .is_err()
    );
    t.cleanup().await.expect("cleanup");
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_but_the_legacy_adapter_names_the_legacy_table() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut files);
        }
    }
    assert!(files.len() > 10, "scanned the workspace's sources");
    let needle = ["leads", "_ohio"].concat();
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| !f.ends_with("store/src/legacy/ohio.rs"))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|s| s.contains(&needle)))
        .collect();
    assert!(
        offenders.is_empty(),
        "legacy table named outside the adapter: {offenders:?}"
    );
}
