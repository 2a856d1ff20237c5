//! `genesis bench export`: a tenant's GDPR export (spec 64.3) of N leads into ZIP parts,
//! against the same leads copied out of PostgreSQL to nowhere in the same run (the
//! baseline: what the database alone costs). Reports leads per second, the ratio to the
//! baseline, the archive's size and the process's peak RSS (`VmHWM`: the leads are seeded
//! inside the database, so the peak is the export's).
//!
//! Targets (issue 25): at least 100,000 leads/s, peak RSS under 100 MB.

use std::time::Instant;

use futures_util::TryStreamExt as _;
use genesis_control::app::exports::write_archive;
use genesis_core::{Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::export::ExportLimits;
use genesis_store::testing::TestDb;
use genesis_store::{NewWorkspace, PartitionManager};
use serde_json::json;

use super::CliError;
use super::bench_ignition::{round, verdict};

/// The process's peak resident memory so far, in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs the benchmark.
pub async fn run(leads: i64) -> Result<(), CliError> {
    if leads < 1 {
        return Err(CliError::Usage("--leads must be at least 1".into()));
    }
    let t = TestDb::create()
        .await
        .map_err(|e| CliError::Usage(format!("a scratch database is needed: {e}")))?;
    let result = run_on(&t, leads).await;
    if let Err(e) = t.cleanup().await {
        eprintln!("warning: scratch database not dropped: {e}");
    }
    result
}

async fn run_on(t: &TestDb, leads: i64) -> Result<(), CliError> {
    let ws = WorkspaceId::new();
    PartitionManager::new(t.db.clone())
        .workspace_provision(
            &NewWorkspace {
                id: ws,
                slug: Slug::parse("bench_export").map_err(|e| CliError::Runtime(e.into()))?,
                name: WorkspaceName::parse("Bench export")
                    .map_err(|e| CliError::Runtime(e.into()))?,
                region: Region::EuWest,
                tier: Tier::Standard,
                onboarding: Default::default(),
            },
            "bench",
        )
        .await?;
    eprintln!("seeding {leads} leads");
    let seeded = Instant::now();
    let mut tx =
        t.db.app_pool()
            .begin()
            .await
            .map_err(genesis_store::StoreError::from)?;
    sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
        .bind(ws.as_uuid().to_string())
        .execute(&mut *tx)
        .await
        .map_err(genesis_store::StoreError::from)?;
    // Leads as an import leaves them: names, a company, some enrichment data.
    sqlx::query(
        "INSERT INTO genesis.leads (workspace_id, id, email, first_name, last_name, company, status, data)
         SELECT $1, gen_random_uuid(), 'lead' || i || '@example.org', 'Ada' || (i % 977),
                'Lovelace-' || (i % 131), 'Company ' || (i % 5003), 'new',
                jsonb_build_object('source', 'bench', 'score', i % 100)
         FROM generate_series(1, $2) AS i",
    )
    .bind(ws.as_uuid())
    .bind(leads)
    .execute(&mut *tx)
    .await
    .map_err(genesis_store::StoreError::from)?;
    tx.commit().await.map_err(genesis_store::StoreError::from)?;
    eprintln!("seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    // The baseline: the same leads out of PostgreSQL, thrown away.
    let started = Instant::now();
    let mut conn =
        t.db.app_pool()
            .acquire()
            .await
            .map_err(genesis_store::StoreError::from)?;
    let mut txn = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(genesis_store::StoreError::from)?;
    sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
        .bind(ws.as_uuid().to_string())
        .execute(&mut *txn)
        .await
        .map_err(genesis_store::StoreError::from)?;
    let mut raw = 0u64;
    {
        let mut s = txn
            .copy_out_raw(&format!(
                "COPY (SELECT id, email, first_name, last_name, company, status, data, created_at, \
                 updated_at FROM genesis.leads WHERE workspace_id = '{}' ORDER BY id) \
                 TO STDOUT (FORMAT csv, HEADER)",
                ws.as_uuid()
            ))
            .await
            .map_err(genesis_store::StoreError::from)?;
        while let Some(chunk) = s
            .try_next()
            .await
            .map_err(genesis_store::StoreError::from)?
        {
            raw += chunk.len() as u64;
        }
    }
    txn.commit()
        .await
        .map_err(genesis_store::StoreError::from)?;
    drop(conn);
    let baseline = started.elapsed();

    let root = std::env::temp_dir().join(format!("genesis-bench-export-{}", uuid::Uuid::now_v7()));
    let (progress, _) = tokio::sync::watch::channel((None, 0));
    let started = Instant::now();
    let written = write_archive(&t.db, ws, &root, "bench", ExportLimits::default(), progress)
        .await
        .map_err(|e| CliError::Runtime(e.into()))?;
    let took = started.elapsed();
    let peak = peak_rss_mb();
    let zipped: u64 = written.parts.iter().map(|p| p.bytes).sum();
    let _ = std::fs::remove_dir_all(&root);

    let per_s = leads as f64 / took.as_secs_f64();
    let line = json!({
        "bench": "export",
        "leads": leads,
        "parts": written.parts.len(),
        "export_s": round(took.as_secs_f64()),
        "leads_per_s": per_s.round(),
        "baseline_copy_s": round(baseline.as_secs_f64()),
        "ratio_to_copy": round(took.as_secs_f64() / baseline.as_secs_f64()),
        "csv_mb": round(raw as f64 / 1e6),
        "zip_mb": round(zipped as f64 / 1e6),
        "peak_rss_mb": round(peak),
    });
    outln!("{line}");
    let mut failures = Vec::new();
    if written.counts.leads != leads {
        failures.push(format!(
            "{} of {leads} leads exported",
            written.counts.leads
        ));
    }
    if per_s < 100_000.0 {
        failures.push(format!("{per_s:.0} leads/s is under 100,000"));
    }
    if peak >= 100.0 {
        failures.push(format!("peak RSS {peak:.1} MB is not under 100 MB"));
    }
    verdict(failures)
}
