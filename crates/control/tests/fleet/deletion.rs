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

/// The tables whose rows about a deleted tenant are kept on purpose: its anonymised
/// history (audit, online and archived, with its monthly partitions; ledger), the deletion
/// and its certificate, and the tombstone.
const KEPT: [&str; 7] = [
    "audit_log",
    "audit_archive",
    "audit_history",
    "ledger_transfers",
    "ledger_accounts",
    "deletions",
    "workspaces",
];

/// Everything of `ws` still in the database, the cloud and Redis, apart from what is kept
/// on purpose: one line per place that still holds something.
async fn leftovers(
    w: &crate::helpers::World,
    admin: &sqlx::PgPool,
    ws: genesis_core::WorkspaceId,
    droplets: &[uuid::Uuid],
    provider_ids: &[i64],
    secrets: &[String],
) -> Vec<String> {
    use genesis_cloud::Cloud as _;
    let mut found = Vec::new();
    // Every table of the schema with a workspace or droplet column.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'genesis' AND column_name IN ('workspace_id', 'droplet_id', 'claimed_by')
           AND table_name NOT LIKE 'leads\\_h%'",
    )
    .fetch_all(admin)
    .await
    .expect("columns");
    for (table, column) in &columns {
        if KEPT.contains(&table.as_str()) || table.starts_with("audit_log_p") {
            continue;
        }
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM genesis.{table} WHERE {column}::text = ANY($1)"
        )))
        .bind(
            std::iter::once(ws.as_uuid().to_string())
                .chain(droplets.iter().map(ToString::to_string))
                .collect::<Vec<_>>(),
        )
        .fetch_one(admin)
        .await
        .expect("count");
        if n > 0 {
            found.push(format!("{n} row(s) in genesis.{table}"));
        }
    }
    // The kept rows hold nothing personal: no address, name, short name or reference.
    for (table, text) in [
        (
            "audit_history",
            "actor || coalesce(subject, '') || details::text",
        ),
        ("ledger_transfers", "coalesce(reference, '')"),
        ("workspaces", "slug || name"),
        ("deletions", "certificate::text || requested_by"),
    ] {
        let key = if table == "workspaces" {
            "id"
        } else {
            "workspace_id"
        };
        let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM genesis.{table} t, unnest($2::text[]) s
             WHERE t.{key} = $1 AND strpos({text}, s) > 0"
        )))
        .bind(ws.as_uuid())
        .bind(secrets)
        .fetch_one(admin)
        .await
        .expect("search");
        if hits > 0 {
            found.push(format!("{hits} personal value(s) in genesis.{table}"));
        }
    }
    // The cloud: by tag, by id, and the snapshots of those droplets.
    let tag = genesis_ignition::igniter::workspace_tag(ws);
    let tagged = w.cloud.droplet_list_by_tag(&tag).await.expect("list");
    if !tagged.is_empty() {
        found.push(format!("{} droplet(s) tagged {tag}", tagged.len()));
    }
    for id in provider_ids {
        if w.cloud.droplet_get(*id).await.is_ok() {
            found.push(format!("droplet {id} at the cloud"));
        }
    }
    let snaps = w.cloud.snapshot_list().await.expect("snapshots");
    for s in snaps {
        let of = s.resource_id.as_deref().and_then(|r| r.parse::<i64>().ok());
        if of.is_some_and(|r| provider_ids.contains(&r)) {
            found.push(format!("snapshot {} at the cloud", s.id));
        }
    }
    // Redis: any key naming the workspace.
    let redis = redis::Client::open(
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
    .expect("redis url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", ws.as_uuid()))
        .query_async(&mut conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        found.push(format!("Redis keys {keys:?}"));
    }
    found
}

/// A tenant with something everywhere: an engine, leads in its partition, a snapshot at
/// the cloud, a webhook endpoint, money in its wallet and a reservation open in the cache.
/// Returns (droplet ids, cloud ids, the personal values to look for afterwards).
async fn a_full_tenant(
    w: &crate::helpers::World,
    ws: genesis_core::WorkspaceId,
    slug: &str,
) -> (Vec<uuid::Uuid>, Vec<i64>, Vec<String>) {
    use genesis_cloud::Cloud as _;
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/leads"),
            json!({"leads": [
                {"email": format!("ada.{slug}@example.org"), "first_name": "Ada", "last_name": "Lovelace"},
                {"email": format!("grace.{slug}@example.org"), "company": "Hopper & Co"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks"),
            json!({"url": format!("http://127.0.0.1:9/{slug}-hook"), "events": ["lead.created"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let droplet = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let provider = droplet.provider_id.expect("provider");
    let action = w
        .cloud
        .droplet_snapshot(provider, &format!("{slug}-daily"))
        .await
        .expect("snapshot");
    w.cloud
        .action_wait(action.id, Duration::from_secs(30))
        .await
        .expect("snapshot taken");
    w.wallets
        .credit(
            ws,
            uuid::Uuid::now_v7(),
            genesis_core::money::TransferKind::Deposit,
            genesis_core::money::Millicents(5_000_000),
            Some(format!("pi_{slug}_card")),
            "test",
        )
        .await
        .expect("deposit");
    w.wallets
        .reserve(
            ws,
            genesis_core::money::TransferKind::ApifyScrape,
            genesis_core::money::Millicents(120_000),
            &format!("managed:{slug}"),
        )
        .await
        .expect("hold");
    // Support looked at it under a grant (spec 63.3); the grant goes with the tenant.
    let support =
        w.t.db
            .operator_create_with_role(
                &format!("support.{slug}@genesis.test"),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                genesis_core::support::OperatorRole::Support,
                "test",
            )
            .await
            .expect("operator");
    let reason = format!("{slug} asked why a run failed");
    w.t.db
        .support_grant_request(
            &support,
            &genesis_store::GrantRequest {
                workspace: ws,
                tier: genesis_core::support::SupportTier::ReadOnly,
                reason: &reason,
                incident: None,
            },
        )
        .await
        .expect("grant");
    (
        vec![droplet.id.as_uuid()],
        vec![provider],
        vec![
            format!("ada.{slug}@example.org"),
            format!("grace.{slug}@example.org"),
            "Lovelace".into(),
            "Hopper & Co".into(),
            format!("pi_{slug}_card"),
            format!("{slug}-hook"),
            slug.into(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_saga_leaves_only_anonymised_history_even_when_killed_at_any_step() {
    use genesis_core::deletion::DeletionStep;
    use std::io::Read as _;
    let w = world(Options::default()).await;
    let key = genesis_store::AuditChainKey::new([7; 32]);
    let exports = w.root.join("exports");
    let stores = genesis_store::RegionalStore::single(w.t.db.clone());
    let purger = |k: &genesis_store::AuditChainKey| {
        genesis_control::app::deletion_saga::Purger::new(
            stores.clone(),
            w.cloud.clone(),
            Some(w.wallets.clone()),
            exports.clone(),
            Some(k.clone()),
        )
    };
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin = sqlx::PgPool::connect(&format!(
        "{}/{}",
        base.rsplit_once('/').expect("a database in the URL").0,
        w.t.name
    ))
    .await
    .expect("admin");

    // One tenant killed after each step's effect and before its record (0 to 6), and one
    // that is never killed (7).
    let slugs: Vec<String> = (0..=7).map(|i| format!("gone_{i}")).collect();
    let mut tenants = Vec::new();
    for slug in &slugs {
        let ws = w.create_workspace(slug).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        tenants.push((ws, slug.clone()));
    }
    let mut kept = Vec::new();
    for (ws, slug) in &tenants {
        let got = w.wait_finished(*ws, Duration::from_secs(90)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        kept.push(a_full_tenant(&w, *ws, slug).await);
    }
    // Fraud: no grace period, so the saga is due at once.
    for (ws, _) in &tenants {
        let (status, body) = w
            .post(
                &format!("/api/v1/workspaces/{ws}/deletion"),
                json!({"trigger": "fraud", "reason": "stolen cards"}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Part of the audit trail is sealed before the deletion: those rows are anonymised
    // after they joined the chain, the rest before.
    w.t.db
        .audit_seal_backlog(&key, 10_000, None)
        .await
        .expect("seal");

    let crashed = purger(&key);
    for (i, (ws, _)) in tenants.iter().enumerate() {
        w.t.db
            .deletion_begin(*ws, "test", chrono::Utc::now())
            .await
            .expect("begin");
        for step in DeletionStep::ALL {
            if i < 7 && step == DeletionStep::ALL[i] {
                // The effect happened; the process died before recording it.
                crashed
                    .step_effect(&w.t.db, *ws, step)
                    .await
                    .unwrap_or_else(|e| panic!("effect of {step:?}: {e}"));
                break;
            }
            if i == 7 {
                break;
            }
            crashed
                .run_step(&w.t.db, *ws, step)
                .await
                .unwrap_or_else(|e| panic!("step {step:?}: {e}"));
        }
        // The tenant cannot take its deletion back once the saga has begun.
        let (status, _) = w.delete(&format!("/api/v1/workspaces/{ws}/deletion")).await;
        assert_eq!(status, 409);
    }

    // The restarted control plane: its reconciler finishes every saga.
    let restarted = std::sync::Arc::new(purger(&key));
    let reconciler = genesis_control::workers::deletions::Deletions::new(
        stores.clone(),
        exports.clone(),
        Some(restarted.clone()),
    );
    let report = reconciler.reconcile().await.expect("pass");
    assert_eq!((report.terminated, report.failed), (8, 0), "{report:?}");
    // A second pass finds nothing to do.
    let again = reconciler.reconcile().await.expect("pass");
    assert_eq!((again.terminated, again.failed), (0, 0), "{again:?}");

    for ((ws, slug), (droplets, providers, secrets)) in tenants.iter().zip(&kept) {
        let left = leftovers(&w, &admin, *ws, droplets, providers, secrets).await;
        assert!(left.is_empty(), "{slug}: {left:#?}");
        // The tombstone, and deleting it again is refused in words.
        let (_, wsj) = w.get(&format!("/api/v1/workspaces/{ws}")).await;
        assert_eq!(wsj["status"], "TERMINATED", "{wsj}");
        let (status, body) = w
            .post(
                &format!("/api/v1/workspaces/{ws}/deletion"),
                json!({"trigger": "user"}),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        // The certificate: seven steps, in order, with what each removed.
        let p =
            w.t.db
                .deletion_progress(*ws)
                .await
                .expect("db")
                .expect("deletion");
        assert_eq!(p.step, 7);
        let steps: Vec<i64> = p
            .certificate
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["step"].as_i64())
            .collect();
        assert_eq!(steps, [1, 2, 3, 4, 5, 6, 7], "{slug}: {:#}", p.certificate);
        // What a step removed before its crash, its re-run finds gone.
        if slug != "gone_1" {
            assert_eq!(
                p.certificate[1]["removed"]["snapshots"]
                    .as_array()
                    .map(Vec::len),
                Some(1),
                "{slug}"
            );
        }
        if slug != "gone_2" {
            assert_eq!(
                p.certificate[2]["removed"]["partition"], "dropped",
                "{slug}"
            );
        }
        // The wallet: the balance closed out, nothing reserved, the ledger balanced.
        let balance =
            w.t.db
                .wallet_balance(*ws)
                .await
                .expect("db")
                .expect("ledger kept");
        assert_eq!((balance.balance.0, balance.reserved.0), (0, 0), "{slug}");
        // The final export holds the leads and the audit trail as they were.
        let file = exports
            .join(p.export_file.as_deref().expect("export kept"))
            .join("export.zip");
        let mut zip =
            zip::ZipArchive::new(std::fs::File::open(&file).expect("export")).expect("a ZIP");
        let mut leads = String::new();
        zip.by_name("leads.csv")
            .expect("leads.csv")
            .read_to_string(&mut leads)
            .expect("read");
        assert!(leads.starts_with("id,email,"), "{leads}");
        assert!(
            leads.contains(&secrets[0]) && leads.contains(&secrets[1]),
            "{leads}"
        );
        let mut audit = String::new();
        zip.by_name("audit_log.jsonl")
            .expect("audit")
            .read_to_string(&mut audit)
            .expect("read");
        for line in audit.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{slug}: {e}: {line}"));
        }
        assert!(audit.lines().count() > 5, "{audit}");
    }
    assert!(
        w.t.db.ledger_mismatches().await.expect("ledger").is_empty(),
        "every account equals its transfers"
    );
    // The chain still verifies, anonymised rows included.
    w.t.db
        .audit_seal_backlog(&key, 10_000, None)
        .await
        .expect("seal");
    let report = w.t.db.audit_verify(&key).await.expect("verify");
    assert!(report.first_break.is_none(), "{report:?}");
    admin.close().await;
    w.finish().await;
}
