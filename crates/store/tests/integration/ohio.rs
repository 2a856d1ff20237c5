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
