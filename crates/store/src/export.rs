//! A workspace's data as files (spec 64.3): what a GDPR export and a deletion's final export
//! hold, read in one consistent snapshot and handed on in chunks as PostgreSQL streams them.
//!
//! Every section is one `COPY ... TO STDOUT`, so nothing is held in memory: the leads are
//! CSV as the database writes it (the fastest path out of PostgreSQL), the small sections
//! are one JSON document, and the audit log is JSON lines. A JSON line is copied in CSV
//! format with a delimiter and a quote that `jsonb`'s text never holds (`\x01`, `\x02`: it
//! escapes every control character), so it arrives byte for byte, unquoted, one per row.
//!
//! No secrets: credentials, webhook secrets and payment method references are left out.

use bytes::Bytes;
use futures_util::TryStreamExt;
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use serde::Serialize;
use sqlx::Connection;

use crate::{Database, StoreError};

/// Leads per CSV file: an export of more is split into `leads-0001.csv`, `leads-0002.csv`...
pub const LEADS_PER_FILE: i64 = 100_000;
/// Leads per archive part: an export of more is several ZIP files, downloaded one by one
/// (spec 64.3: over 500k leads, a multi-part download).
pub const LEADS_PER_PART: i64 = 500_000;

/// Where an export splits its leads into files and its archive into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Leads per CSV file.
    pub leads_per_file: i64,
    /// Leads per archive part (a multiple of `leads_per_file`).
    pub leads_per_part: i64,
}

impl Default for ExportLimits {
    fn default() -> Self {
        Self {
            leads_per_file: LEADS_PER_FILE,
            leads_per_part: LEADS_PER_PART,
        }
    }
}

/// One section of an export but the leads: a file in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportSection {
    /// The workspace's settings (without secrets) and onboarding, JSON.
    Settings,
    /// Campaigns: the workflows each engine runs, JSON.
    Campaigns,
    /// Webhook endpoints (without their secrets), JSON.
    Webhooks,
    /// Members, JSON.
    Members,
    /// The wallet's transfers, CSV.
    Ledger,
    /// The tenant's audit log, JSON lines.
    Audit,
}

impl ExportSection {
    /// Every section, in archive order; the leads (split by size, see
    /// [`Database::export_into`]) come after them.
    pub const ALL: [ExportSection; 6] = [
        ExportSection::Settings,
        ExportSection::Campaigns,
        ExportSection::Webhooks,
        ExportSection::Members,
        ExportSection::Ledger,
        ExportSection::Audit,
    ];

    /// Its file name in the archive.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportSection::Settings => "settings.json",
            ExportSection::Campaigns => "campaigns.json",
            ExportSection::Webhooks => "webhooks.json",
            ExportSection::Members => "members.json",
            ExportSection::Ledger => "wallet_transfers.csv",
            ExportSection::Audit => "audit_log.jsonl",
        }
    }

    /// The `COPY` that writes it; `$WS` stands for the workspace id (a UUID, checked by its
    /// type before it is written into the statement).
    fn copy(self) -> String {
        const JSON: &str = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')";
        match self {
            ExportSection::Ledger => {
                "COPY (SELECT id, seq, kind, phase, amount AS amount_millicents, \
                 debit_account, credit_account, pending_id, created_at \
                 FROM genesis.ledger_transfers WHERE workspace_id = '$WS' ORDER BY seq) \
                 TO STDOUT (FORMAT csv, HEADER)"
                    .into()
            }
            ExportSection::Settings => format!(
                "COPY ({}) TO STDOUT {JSON}",
                "SELECT jsonb_build_object('workspace', (SELECT jsonb_build_object(\
                 'id', id, 'slug', slug, 'name', name, 'region', region, 'tier', tier, \
                 'status', status, 'created_at', created_at, 'onboarding', onboarding) \
                 FROM genesis.workspaces WHERE id = '$WS'), \
                 'onboarding', (SELECT to_jsonb(o) - 'workspace_id' \
                 FROM genesis.onboarding_progress o WHERE workspace_id = '$WS'), \
                 'wallet', (SELECT jsonb_build_object('auto_topup_enabled', auto_topup_enabled, \
                 'auto_topup_threshold_millicents', auto_topup_threshold, \
                 'auto_topup_amount_millicents', auto_topup_amount) \
                 FROM genesis.wallets WHERE workspace_id = '$WS'))::text",
            ),
            ExportSection::Campaigns => format!(
                "COPY ({}) TO STDOUT {JSON}",
                "SELECT coalesce(jsonb_agg(jsonb_build_object('key', w.key, \
                 'workflow_id', w.workflow_id, 'active', w.active, \
                 'template_version', w.template_version, 'updated_at', w.updated_at) \
                 ORDER BY w.key), '[]'::jsonb)::text FROM genesis.droplet_workflows w \
                 JOIN genesis.droplets d ON d.id = w.droplet_id WHERE d.workspace_id = '$WS'",
            ),
            ExportSection::Webhooks => format!(
                "COPY ({}) TO STDOUT {JSON}",
                "SELECT coalesce(jsonb_agg(jsonb_build_object('url', url, 'events', events, \
                 'description', description, 'created_at', created_at, \
                 'disabled_at', disabled_at) ORDER BY created_at), '[]'::jsonb)::text \
                 FROM genesis.webhook_endpoints WHERE workspace_id = '$WS'",
            ),
            ExportSection::Members => format!(
                "COPY ({}) TO STDOUT {JSON}",
                "SELECT coalesce(jsonb_agg(jsonb_build_object('email', email, 'role', role, \
                 'added_at', added_at) ORDER BY added_at), '[]'::jsonb)::text \
                 FROM genesis.workspace_members WHERE workspace_id = '$WS'",
            ),
            ExportSection::Audit => format!(
                "COPY ({}) TO STDOUT {JSON}",
                "SELECT jsonb_build_object('id', id, 'occurred_at', occurred_at, \
                 'actor', actor, 'category', category, 'event', event, 'subject', subject, \
                 'details', details)::text FROM genesis.audit_history \
                 WHERE workspace_id = '$WS' ORDER BY id",
            ),
        }
    }
}

/// Where a leads file ends: its last lead's id. Leads are exported in id order (UUIDv7:
/// the order they were made in), which the primary key `(workspace_id, id)` serves, so
/// every file is one index range scan and the file boundaries one index-only scan.
type LeadKey = uuid::Uuid;

/// The `COPY` of the leads after `from` up to `to` (both optional), in id order.
fn leads_copy(from: Option<&LeadKey>, to: Option<&LeadKey>) -> String {
    let mut range = String::new();
    if let Some(k) = from {
        range.push_str(&format!(" AND id > '{k}'::uuid"));
    }
    if let Some(k) = to {
        range.push_str(&format!(" AND id <= '{k}'::uuid"));
    }
    format!(
        "COPY (SELECT id, email, first_name, last_name, company, status, data, created_at, \
         updated_at FROM genesis.leads WHERE workspace_id = '$WS'{range} \
         ORDER BY id) TO STDOUT (FORMAT csv, HEADER)"
    )
}

/// What an export handed on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportCounts {
    /// Leads written.
    pub leads: i64,
    /// Audit rows written.
    pub audit_rows: i64,
    /// Wallet transfers written.
    pub transfers: i64,
    /// Bytes written, before compression.
    pub bytes: u64,
}

/// What an export sends its writer.
#[derive(Debug)]
pub enum ExportChunk {
    /// First: how many leads the export holds.
    Total(i64),
    /// A new archive part begins (1 first).
    Part(u32),
    /// A new file begins in the current part.
    File(String),
    /// The next bytes of the current file.
    Data(Bytes),
    /// This many leads are written so far.
    Progress(i64),
}

impl Database {
    /// Reads `ws`'s data, section by section in one repeatable-read snapshot, and sends it to
    /// `out` as it streams from the database. Stops with an error if the receiver is gone.
    pub async fn export_into(
        &self,
        ws: WorkspaceId,
        limits: ExportLimits,
        out: tokio::sync::mpsc::Sender<ExportChunk>,
    ) -> Result<ExportCounts, StoreError> {
        let per_file = limits.leads_per_file.max(1);
        let per_part = (limits.leads_per_part / per_file).max(1);
        let mut conn = self.app.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
            .bind(ws.as_uuid().to_string())
            .execute(&mut *tx)
            .await?;
        let counts = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM genesis.leads WHERE workspace_id = $1) AS "leads!",
                      (SELECT count(*) FROM genesis.audit_history WHERE workspace_id = $1)
                          AS "audit!",
                      (SELECT count(*) FROM genesis.ledger_transfers WHERE workspace_id = $1)
                          AS "transfers!""#,
            ws.as_uuid()
        )
        .fetch_one(&mut *tx)
        .await?;
        let ws_text = ws.as_uuid().to_string();
        let mut bytes = 0u64;
        send(&out, ExportChunk::Total(counts.leads)).await?;
        send(&out, ExportChunk::Part(1)).await?;
        for section in ExportSection::ALL {
            send(&out, ExportChunk::File(section.file_name().into())).await?;
            bytes += copy(&mut tx, &section.copy().replace("$WS", &ws_text), &out).await?;
        }
        if counts.leads <= per_file {
            send(&out, ExportChunk::File("leads.csv".into())).await?;
            bytes += copy(
                &mut tx,
                &leads_copy(None, None).replace("$WS", &ws_text),
                &out,
            )
            .await?;
        } else {
            // Every LEADS_PER_FILE-th key ends a file; the last file ends with the last lead.
            let ends: Vec<LeadKey> = sqlx::query_scalar(
                "SELECT id FROM (
                     SELECT id, row_number() OVER (ORDER BY id) AS n
                     FROM genesis.leads WHERE workspace_id = $1) k
                 WHERE n % $2 = 0 ORDER BY n",
            )
            .bind(ws.as_uuid())
            .bind(per_file)
            .fetch_all(&mut *tx)
            .await?;
            let files = (counts.leads + per_file - 1) / per_file;
            let mut from: Option<LeadKey> = None;
            for i in 0..files {
                if i > 0 && i % per_part == 0 {
                    send(
                        &out,
                        ExportChunk::Part(u32::try_from(i / per_part + 1).unwrap_or(u32::MAX)),
                    )
                    .await?;
                }
                let to = ends.get(usize::try_from(i).unwrap_or(usize::MAX)).copied();
                send(&out, ExportChunk::File(format!("leads-{:04}.csv", i + 1))).await?;
                let sql = leads_copy(from.as_ref(), to.as_ref()).replace("$WS", &ws_text);
                bytes += copy(&mut tx, &sql, &out).await?;
                send(
                    &out,
                    ExportChunk::Progress(((i + 1) * per_file).min(counts.leads)),
                )
                .await?;
                from = to;
            }
        }
        send(&out, ExportChunk::Progress(counts.leads)).await?;
        tx.commit().await?;
        Ok(ExportCounts {
            leads: counts.leads,
            audit_rows: counts.audit,
            transfers: counts.transfers,
            bytes,
        })
    }
}

async fn send(
    out: &tokio::sync::mpsc::Sender<ExportChunk>,
    chunk: ExportChunk,
) -> Result<(), StoreError> {
    out.send(chunk).await.map_err(|_| StoreError::Refused {
        what: "export",
        message: "the export's writer stopped".into(),
    })
}

/// How much a chunk handed on holds. PostgreSQL sends one message per row (a few hundred
/// bytes); handing each on alone cost a channel hand-off and a compressor call per row, and
/// held the export to the speed of those (92k leads/s against 200k/s for the `COPY` alone).
const CHUNK: usize = 256 * 1024;

/// Runs one `COPY ... TO STDOUT` and hands its bytes on in chunks of about [`CHUNK`]; how
/// many bytes.
async fn copy(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    out: &tokio::sync::mpsc::Sender<ExportChunk>,
) -> Result<u64, StoreError> {
    let mut bytes = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut stream = conn.copy_out_raw(sql).await?;
    while let Some(message) = stream.try_next().await? {
        bytes += message.len() as u64;
        buf.extend_from_slice(&message);
        if buf.len() >= CHUNK {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
            send(out, ExportChunk::Data(Bytes::from(full))).await?;
        }
    }
    if !buf.is_empty() {
        send(out, ExportChunk::Data(Bytes::from(buf))).await?;
    }
    Ok(bytes)
}

/// An export asked for through the API or the CLI.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportJob {
    /// Its id.
    pub id: uuid::Uuid,
    /// The workspace.
    pub workspace_id: uuid::Uuid,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: chrono::DateTime<chrono::Utc>,
    /// `RUNNING`, `READY`, `FAILED` (see `error`), or `EXPIRED` (its files are gone).
    pub state: String,
    /// Leads in it (known once it has started).
    pub leads_total: Option<i64>,
    /// Leads written so far.
    pub leads_written: i64,
    /// The archive parts: `[{"part": 1, "file": ..., "bytes": n}]`.
    #[schema(value_type = Vec<Object>)]
    pub parts: serde_json::Value,
    /// When it was ready.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Until when it can be downloaded.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Database {
    /// Starts an export of `ws` for `actor` at `now`. A running export that has not
    /// reported since `stale` is failed first (its process died); another one still running
    /// is refused. A TERMINATED workspace has nothing to export.
    pub async fn export_start(
        &self,
        ws: WorkspaceId,
        actor: &str,
        stale: std::time::Duration,
    ) -> Result<ExportJob, StoreError> {
        let mut tx = self.app.begin().await?;
        let status = crate::workspaces::lock_in(&mut tx, ws).await?;
        if status == genesis_core::WorkspaceStatus::Terminated {
            return Err(StoreError::Refused {
                what: "export",
                message: "this workspace has been deleted: its data is gone (the final export, \
                          if still kept, is an operator's to hand over)"
                    .into(),
            });
        }
        let stale_ms = i64::try_from(stale.as_millis()).unwrap_or(i64::MAX);
        sqlx::query!(
            r#"UPDATE genesis.exports SET state = 'FAILED', error = 'interrupted: the process writing it stopped'
               WHERE workspace_id = $1 AND state = 'RUNNING'
                 AND progress_at < now() - make_interval(secs => $2::bigint / 1000.0)"#,
            ws.as_uuid(),
            stale_ms
        )
        .execute(&mut *tx)
        .await?;
        let job = sqlx::query_as!(
            ExportJob,
            r#"INSERT INTO genesis.exports (id, workspace_id, requested_by, state)
               VALUES ($1, $2, $3, 'RUNNING')
               RETURNING id, workspace_id, requested_by, requested_at, state, leads_total,
                         leads_written, parts, finished_at, expires_at, error"#,
            uuid::Uuid::now_v7(),
            ws.as_uuid(),
            actor
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match crate::error::sqlstate(&e).as_deref() {
            Some("23505") => StoreError::Refused {
                what: "export",
                message: "an export of this workspace is already being written".into(),
            },
            _ => e.into(),
        })?;
        crate::audit::record(
            &mut tx,
            &crate::AuditEvent::new(actor, AuditCategory::Data, "EXPORT_REQUESTED")
                .workspace(ws)
                .subject(job.id.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Records how far export `id` has come.
    pub async fn export_progress(
        &self,
        id: uuid::Uuid,
        total: Option<i64>,
        written: i64,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.exports
               SET leads_total = coalesce($2, leads_total), leads_written = $3, progress_at = now()
               WHERE id = $1 AND state = 'RUNNING'"#,
            id,
            total,
            written
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Export `id` is written: its parts, kept until `expires_at`; audited (Data: EXPORTED).
    pub async fn export_ready(
        &self,
        id: uuid::Uuid,
        parts: serde_json::Value,
        expires_at: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.exports
               SET state = 'READY', parts = $2, finished_at = now(), expires_at = $3,
                   progress_at = now()
               WHERE id = $1 AND state = 'RUNNING'
               RETURNING workspace_id, leads_total"#,
            id,
            parts,
            expires_at
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::Refused {
            what: "export",
            message: "this export is no longer running".into(),
        })?;
        crate::audit::record(
            &mut tx,
            &crate::AuditEvent::new(actor, AuditCategory::Data, "EXPORTED")
                .workspace(crate::accounts::workspace_id(row.workspace_id)?)
                .subject(id.to_string())
                .details(serde_json::json!({
                    "leads": row.leads_total,
                    "parts": parts.as_array().map_or(0, Vec::len),
                    "expires_at": expires_at,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Export `id` failed with `error`.
    pub async fn export_failed(&self, id: uuid::Uuid, error: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE genesis.exports SET state = 'FAILED', error = $2 WHERE id = $1 AND state = 'RUNNING'",
            id,
            error
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Export `id` of `ws`.
    pub async fn export_get(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
    ) -> Result<ExportJob, StoreError> {
        sqlx::query_as!(
            ExportJob,
            r#"SELECT id, workspace_id, requested_by, requested_at, state, leads_total,
                      leads_written, parts, finished_at, expires_at, error
               FROM genesis.exports WHERE id = $1 AND workspace_id = $2"#,
            id,
            ws.as_uuid()
        )
        .fetch_optional(&self.app)
        .await?
        .ok_or(StoreError::NotFound { what: "export" })
    }

    /// Export `id`, whatever its workspace (a download link names only the export).
    pub async fn export_find(&self, id: uuid::Uuid) -> Result<Option<ExportJob>, StoreError> {
        Ok(sqlx::query_as!(
            ExportJob,
            r#"SELECT id, workspace_id, requested_by, requested_at, state, leads_total,
                      leads_written, parts, finished_at, expires_at, error
               FROM genesis.exports WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.app)
        .await?)
    }

    /// Exports whose time is over at `now`: they become EXPIRED; their parts are returned
    /// for the caller to remove.
    pub async fn exports_expire(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<ExportJob>, StoreError> {
        Ok(sqlx::query_as!(
            ExportJob,
            r#"WITH due AS (
                   SELECT id FROM genesis.exports WHERE state = 'READY' AND expires_at <= $1
                   ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               UPDATE genesis.exports e SET state = 'EXPIRED'
               FROM due WHERE e.id = due.id
               RETURNING e.id, e.workspace_id, e.requested_by, e.requested_at, e.state,
                         e.leads_total, e.leads_written, e.parts, e.finished_at, e.expires_at,
                         e.error"#,
            now,
            limit
        )
        .fetch_all(&self.app)
        .await?)
    }
}
