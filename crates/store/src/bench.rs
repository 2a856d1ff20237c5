//! Measurement primitives for `genesis bench partitions` (here because only the store writes
//! SQL). Nothing in the product calls these.

use std::time::{Duration, Instant};

use genesis_core::{LeadStatus, WorkspaceId};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{Database, StoreError};

/// Latencies of the same tenant query with and without row-level security.
#[derive(Debug, Clone, Default)]
pub struct QueryTimings {
    /// Through a tenant session as the runtime role (RLS applies).
    pub rls: Vec<Duration>,
    /// As a superuser (RLS bypassed), or empty when the admin login is not a superuser.
    pub bypass: Vec<Duration>,
}

const LEADS_QUERY: &str = "SELECT id, email, status, created_at FROM genesis.leads \
     WHERE workspace_id = $1 AND status = $2 ORDER BY created_at DESC, id DESC LIMIT 50";

impl Database {
    /// Runs the newest-50-by-status query `samples` times each way, interleaved so that
    /// machine noise hits both sides alike. Only the query itself is timed; both sides plan
    /// it afresh each time (`force_custom_plan`), as the runtime does.
    pub async fn bench_lead_query(
        &self,
        ws: WorkspaceId,
        status: LeadStatus,
        samples: usize,
    ) -> Result<QueryTimings, StoreError> {
        let mut app = self.app.acquire().await?;
        let mut admin = PgConnection::connect_with(&self.options.admin).await?;
        let superuser: bool =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&mut admin)
                .await?;
        sqlx::raw_sql(AssertSqlSafe("SET plan_cache_mode = force_custom_plan"))
            .execute(&mut admin)
            .await?;
        let mut t = QueryTimings::default();
        for i in 0..samples {
            // Alternate which side goes first so that order effects (cache warmth, scheduler)
            // fall on both sides equally.
            let rls_first = i % 2 == 0;
            if rls_first || !superuser {
                t.rls.push(bench_rls_once(&mut app, ws, status).await?);
            }
            if superuser {
                // Same client work as the RLS side (BEGIN, set_config, query, COMMIT), so the
                // only difference is row-level security.
                let mut tx = admin.begin().await?;
                set_context(&mut tx, ws).await?;
                t.bypass.push(timed_leads_query(&mut tx, ws, status).await?);
                tx.commit().await?;
                if !rls_first {
                    t.rls.push(bench_rls_once(&mut app, ws, status).await?);
                }
            }
        }
        let _ = admin.close().await;
        Ok(t)
    }
}

/// One timed query through a tenant transaction (RLS applies).
async fn bench_rls_once(
    app: &mut PgConnection,
    ws: WorkspaceId,
    status: LeadStatus,
) -> Result<Duration, StoreError> {
    let mut tx = app.begin().await?;
    set_context(&mut tx, ws).await?;
    let took = timed_leads_query(&mut tx, ws, status).await?;
    tx.commit().await?;
    Ok(took)
}

async fn set_context(conn: &mut PgConnection, ws: WorkspaceId) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
        .bind(ws.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// One execution of the benchmark query, timed.
async fn timed_leads_query(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    status: LeadStatus,
) -> Result<Duration, StoreError> {
    let started = Instant::now();
    sqlx::query(LEADS_QUERY)
        .bind(ws.as_uuid())
        .bind(status.code())
        .fetch_all(conn)
        .await?;
    Ok(started.elapsed())
}

/// One seeded sidecar: what a heartbeat load generator needs.
#[derive(Debug, Clone)]
pub struct SeededSidecar {
    /// Its workspace.
    pub workspace_id: uuid::Uuid,
    /// Our droplet id.
    pub droplet_id: uuid::Uuid,
    /// The cloud's droplet id.
    pub provider_id: i64,
    /// Its raw sidecar token.
    pub token: String,
}

impl Database {
    /// Seeds `n` ACTIVE_HEALTHY droplets, one per workspace, each with a sidecar token, in
    /// three statements (`genesis bench heartbeats`; a real fleet gets there by ignition).
    pub async fn bench_sidecars_seed(&self, n: usize) -> Result<Vec<SeededSidecar>, StoreError> {
        let providers: Vec<i64> = (0..n as i64).map(|i| 900_000_000 + i).collect();
        self.bench_sidecars_seed_for(&providers).await
    }

    /// The same, for droplets that exist in a (simulated) cloud under these ids.
    pub async fn bench_sidecars_seed_for(
        &self,
        provider_ids: &[i64],
    ) -> Result<Vec<SeededSidecar>, StoreError> {
        let n = provider_ids.len();
        let run = uuid::Uuid::now_v7().simple().to_string();
        let mut ws = Vec::with_capacity(n);
        let mut slugs = Vec::with_capacity(n);
        let mut droplets = Vec::with_capacity(n);
        let mut providers = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        for (i, &provider) in provider_ids.iter().enumerate() {
            let w = uuid::Uuid::now_v7();
            let (token, hash) = crate::handshake::new_token();
            ws.push(w);
            slugs.push(format!("hb_{}_{i}", &run[run.len() - 8..]));
            let d = uuid::Uuid::now_v7();
            droplets.push(d);
            providers.push(provider);
            hashes.push(hash);
            out.push(SeededSidecar {
                workspace_id: w,
                droplet_id: d,
                provider_id: provider,
                token,
            });
        }
        let mut tx = self.app.begin().await?;
        sqlx::query(
            "INSERT INTO genesis.workspaces (id, slug, name, region, tier, status)
             SELECT id, slug, slug, 'eu-west', 'standard', 'ACTIVE' FROM unnest($1::uuid[], $2::text[]) AS t(id, slug)",
        )
        .bind(&ws)
        .bind(&slugs)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO genesis.droplets (id, workspace_id, provider_id, region, state)
             SELECT id, ws, p, 'eu-west', 'ACTIVE_HEALTHY' FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS t(id, ws, p)",
        )
        .bind(&droplets)
        .bind(&ws)
        .bind(&providers)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO genesis.sidecar_tokens (token_hash, workspace_id, droplet_id, expires_at)
             SELECT h, ws, d, now() + interval '1 day' FROM unnest($1::bytea[], $2::uuid[], $3::uuid[]) AS t(h, ws, d)",
        )
        .bind(&hashes)
        .bind(&ws)
        .bind(&droplets)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Seeds a fleet for God Mode's benchmark: `n` workspaces over every region and tier,
    /// one droplet each, in a production-like mix of states (70 % healthy, 15 % asleep, and
    /// a few degraded, drifting, lost and booting), each with a heartbeat. Two statements.
    pub async fn bench_fleet_seed(&self, n: usize) -> Result<(), StoreError> {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let mut tx = self.app.begin().await?;
        sqlx::query(
            "INSERT INTO genesis.workspaces (id, slug, name, region, tier, status)
             SELECT gen_random_uuid(), 'gm_' || $2 || '_' || i, 'gm_' || $2 || '_' || i,
                    (ARRAY['us-east','us-west','eu-west','eu-north','apac'])[1 + i % 5],
                    (ARRAY['standard','standard','standard','high-priority','enterprise'])[1 + (i / 5) % 5],
                    'ACTIVE'
             FROM generate_series(0, $1 - 1) AS i",
        )
        .bind(n as i64)
        .bind(&run[run.len() - 8..])
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO genesis.droplets (id, workspace_id, provider_id, region, state,
                                           last_heartbeat_at, last_heartbeat)
             SELECT gen_random_uuid(), w.id, 800000000 + row_number() OVER (ORDER BY w.id), w.region,
                    CASE WHEN r < 70 THEN 'ACTIVE_HEALTHY' WHEN r < 85 THEN 'HIBERNATING'
                         WHEN r < 90 THEN 'ACTIVE_DEGRADED' WHEN r < 93 THEN 'DRIFT_DETECTED'
                         WHEN r < 95 THEN 'ZOMBIE' WHEN r < 96 THEN 'REBOOTING'
                         WHEN r < 97 THEN 'ORPHAN' ELSE 'INITIALIZING' END,
                    now(), '{\"cpu\": 12.5, \"memory\": 41.0, \"disk\": 33.0}'::jsonb
             FROM (SELECT id, region, abs(hashtext(id::text)) % 100 AS r
                   FROM genesis.workspaces WHERE slug LIKE 'gm\\_' || $1 || '\\_%') AS w",
        )
        .bind(&run[run.len() - 8..])
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Seeds the fleet sampler's history as a full retention would hold it: every minute of
    /// the last [`crate::fleet::FLEET_SAMPLES_KEPT_DAYS`] days, one row per (region, state)
    /// of today's fleet (the worst case: every state present in every region all along),
    /// the counts wandering a little. Returns the rows written.
    pub async fn bench_fleet_history_seed(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "INSERT INTO genesis.fleet_samples (sampled_at, region, state, droplets)
             SELECT m, c.region, c.state, greatest(0, c.n + (hashtext(m::text || c.state) % 5))
             FROM generate_series(date_trunc('minute', now()) - make_interval(days => $1),
                                  date_trunc('minute', now()) - interval '1 minute',
                                  interval '1 minute') AS m
             CROSS JOIN (SELECT region, state, count(*)::int AS n FROM genesis.droplets
                         GROUP BY region, state) AS c
             ON CONFLICT DO NOTHING",
        )
        .bind(crate::fleet::FLEET_SAMPLES_KEPT_DAYS)
        .execute(&self.app)
        .await?
        .rows_affected();
        // The hourly sums the sampler keeps alongside.
        sqlx::query(
            "INSERT INTO genesis.fleet_samples_hourly (hour, region, state, droplet_minutes)
             SELECT date_trunc('hour', sampled_at), region, state, sum(droplets)
             FROM genesis.fleet_samples GROUP BY 1, 2, 3
             ON CONFLICT (hour, region, state) DO UPDATE SET droplet_minutes = EXCLUDED.droplet_minutes",
        )
        .execute(&self.app)
        .await?;
        sqlx::query(
            "INSERT INTO genesis.fleet_sample_hours (hour, minutes)
             SELECT date_trunc('hour', sampled_at), count(DISTINCT sampled_at)
             FROM genesis.fleet_samples GROUP BY 1
             ON CONFLICT (hour) DO UPDATE SET minutes = EXCLUDED.minutes",
        )
        .execute(&self.app)
        .await?;
        Ok(rows)
    }

    /// When each of `droplets` first became ZOMBIE at or after `since` (from the audit log).
    pub async fn bench_zombie_times(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT subject, min(occurred_at) FROM genesis.audit_log
             WHERE event = 'DROPLET_STATE_CHANGED' AND details->>'to' = 'ZOMBIE' AND occurred_at >= $1
             GROUP BY subject",
        )
        .bind(since)
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Droplets whose last heartbeat arrived at or after `since` (durability check).
    pub async fn bench_heartbeats_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM genesis.droplets WHERE last_heartbeat_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *self.read().await?)
        .await?)
    }
}
