//! A tenant's data, exported (spec 64.3): asked for through the API or the CLI, written in
//! the background as ZIP archives, downloaded through signed links that expire.
//!
//! - Up to 100k leads: one `leads.csv`; up to 500k: several CSVs of 100k in the one ZIP;
//!   beyond: several ZIP parts of 500k leads each, downloaded one by one
//!   ([`genesis_store::export`] decides, as it streams).
//! - Nothing is held in memory: the database streams into a bounded channel, a blocking
//!   thread compresses into `<file>.part`, renamed into place once whole.
//! - A download link is `/exports/{id}/download?part=N&expires=T&sig=S`, where `S` is an
//!   HMAC over the export, the part and the expiry under a key derived from the server's
//!   inbound key: any replica can check it, nothing is stored, and a forged or expired link
//!   costs one HMAC before it is refused. Downloads honour `Range`, so an interrupted one
//!   resumes where it stopped. Each download from the start is audited (Data: EXPORT_DOWNLOADED).
//! - An export whose process died stays RUNNING until it stops reporting; the next request
//!   fails it (`interrupted`) and starts a new one.

use genesis_core::audit::AuditCategory;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_store::export::{ExportChunk, ExportCounts, ExportJob, ExportLimits};
use genesis_store::{Database, StoreError};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::{AppState, Problem};

/// How long an export on request is kept.
pub const KEPT: Duration = Duration::from_secs(7 * 86_400);
/// A running export that has not reported for this long was interrupted.
pub const STALE: Duration = Duration::from_secs(120);
/// How long a download link works (never past the export's own expiry).
pub const LINK_TTL: Duration = Duration::from_secs(24 * 3_600);

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the files.
    #[error("the archive could not be written: {0}")]
    Write(String),
}

/// One archive part written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartFile {
    /// 1, 2, ...
    pub part: u32,
    /// Its path under the export directory.
    pub file: String,
    /// Its size.
    pub bytes: u64,
}

/// What [`write_archive`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// What the database handed on.
    pub counts: ExportCounts,
    /// The parts, in order.
    pub parts: Vec<PartFile>,
}

/// The name of part `n` in directory `dir` (relative to the export root).
fn part_name(dir: &str, n: u32) -> String {
    if n <= 1 {
        format!("{dir}/export.zip")
    } else {
        format!("{dir}/export-part{n}.zip")
    }
}

/// Writes `ws`'s export as ZIP parts in `root/dir`, reporting (total, written) leads to
/// `progress` as it goes. A failure leaves no part under its final name.
pub async fn write_archive(
    db: &Database,
    ws: WorkspaceId,
    root: &Path,
    dir: &str,
    limits: ExportLimits,
    progress: tokio::sync::watch::Sender<(Option<i64>, i64)>,
) -> Result<Written, ArchiveError> {
    let w = |e: &dyn std::fmt::Display| ArchiveError::Write(e.to_string());
    tokio::fs::create_dir_all(root.join(dir))
        .await
        .map_err(|e| w(&e))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExportChunk>(16);
    let (root_owned, dir_owned) = (root.to_path_buf(), dir.to_owned());
    let writer = tokio::task::spawn_blocking(move || -> Result<Vec<PartFile>, String> {
        let mut parts = PartWriter::new(root_owned, dir_owned);
        let mut total = None;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                ExportChunk::Total(n) => {
                    total = Some(n);
                    let _ = progress.send((total, 0));
                }
                ExportChunk::Part(n) => parts.start_part(n)?,
                ExportChunk::File(name) => parts.start_file(&name)?,
                ExportChunk::Data(bytes) => parts.write(&bytes)?,
                ExportChunk::Progress(n) => {
                    let _ = progress.send((total, n));
                }
            }
        }
        parts.finish()
    });
    let read = db.export_into(ws, limits, tx).await;
    let written = writer.await.map_err(|e| w(&e))?;
    match (read, written) {
        (Ok(counts), Ok(parts)) => Ok(Written { counts, parts }),
        (Err(e), _) => Err(e.into()),
        (_, Err(e)) => Err(ArchiveError::Write(e)),
    }
}

/// The blocking side of [`write_archive`]: one ZIP per part, each written to `.part` and
/// renamed when whole.
struct PartWriter {
    root: PathBuf,
    dir: String,
    current: Option<(u32, zip::ZipWriter<std::io::BufWriter<std::fs::File>>)>,
    done: Vec<PartFile>,
}

impl PartWriter {
    fn new(root: PathBuf, dir: String) -> Self {
        Self {
            root,
            dir,
            current: None,
            done: Vec::new(),
        }
    }

    fn start_part(&mut self, n: u32) -> Result<(), String> {
        self.close()?;
        let path = self.root.join(format!("{}.part", part_name(&self.dir, n)));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.current = Some((n, zip::ZipWriter::new(std::io::BufWriter::new(file))));
        Ok(())
    }

    fn start_file(&mut self, name: &str) -> Result<(), String> {
        let (_, zip) = self.current.as_mut().ok_or("a file before any part")?;
        // Level 1: most of deflate's gain on CSV for a fraction of its time.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(true);
        zip.start_file(name, options).map_err(|e| e.to_string())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        let (_, zip) = self.current.as_mut().ok_or("data before any part")?;
        zip.write_all(bytes).map_err(|e| e.to_string())
    }

    fn close(&mut self) -> Result<(), String> {
        use std::io::Write;
        let Some((n, zip)) = self.current.take() else {
            return Ok(());
        };
        let mut out = zip.finish().map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let file = out.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        let bytes = file.metadata().map_err(|e| e.to_string())?.len();
        let name = part_name(&self.dir, n);
        let final_path = self.root.join(&name);
        std::fs::rename(self.root.join(format!("{name}.part")), &final_path)
            .map_err(|e| format!("{}: {e}", final_path.display()))?;
        self.done.push(PartFile {
            part: n,
            file: name,
            bytes,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<PartFile>, String> {
        self.close()?;
        Ok(std::mem::take(&mut self.done))
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // A part left open was not finished: its `.part` file goes.
        if let Some((n, _)) = self.current.take() {
            let _ =
                std::fs::remove_file(self.root.join(format!("{}.part", part_name(&self.dir, n))));
        }
    }
}

/// Where an export's files live, under the export root.
pub fn request_dir(ws: WorkspaceId, id: Uuid) -> String {
    format!("requests/{}/{id}", ws.as_uuid())
}

/// An export as the API shows it: where it stands, and once ready, a signed link per part.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    /// The export.
    #[serde(flatten)]
    pub job: ExportJob,
    /// Once READY: one link per part, each valid until `links_expire_at`.
    pub links: Vec<String>,
    /// When the links stop working.
    pub links_expire_at: Option<DateTime<Utc>>,
}

/// The HMAC key of download links, derived from the server's inbound key.
fn link_mac(state: &AppState) -> Hmac<Sha256> {
    let key = state.inbound.derive_key(b"genesis-export-links-v1");
    // An HMAC takes a key of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn link_message(mac: &mut Hmac<Sha256>, id: Uuid, part: u32, expires: i64) {
    mac.update(id.as_bytes());
    mac.update(&part.to_be_bytes());
    mac.update(&expires.to_be_bytes());
}

fn sign(state: &AppState, id: Uuid, part: u32, expires: i64) -> String {
    let mut mac = link_mac(state);
    link_message(&mut mac, id, part, expires);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `sig` is the link signature of (`id`, `part`, `expires`), in constant time.
fn signed(state: &AppState, id: Uuid, part: u32, expires: i64, sig: &str) -> bool {
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let mut mac = link_mac(state);
    link_message(&mut mac, id, part, expires);
    mac.verify_slice(&sig).is_ok()
}

fn view(state: &AppState, job: ExportJob) -> ExportView {
    if job.state != "READY" {
        return ExportView {
            job,
            links: Vec::new(),
            links_expire_at: None,
        };
    }
    let until = (Utc::now() + chrono::TimeDelta::from_std(LINK_TTL).unwrap_or_default())
        .min(job.expires_at.unwrap_or_else(Utc::now));
    let expires = until.timestamp();
    let parts = job.parts.as_array().map_or(0, Vec::len);
    let links = (1..=parts as u32)
        .map(|p| {
            format!(
                "/exports/{}/download?part={p}&expires={expires}&sig={}",
                job.id,
                sign(state, job.id, p, expires)
            )
        })
        .collect();
    ExportView {
        job,
        links,
        links_expire_at: chrono::DateTime::from_timestamp(expires, 0),
    }
}

/// Starts an export of `id` for `actor`; it is written in the background.
pub async fn start(state: &AppState, id: WorkspaceId, actor: &str) -> Result<ExportView, Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    let job = db.export_start(id, actor, STALE).await?;
    let (db, root, export) = (db.clone(), state.exports_dir.clone(), job.id);
    tokio::spawn(async move { build(db, id, export, root).await });
    Ok(view(state, job))
}

/// Writes export `export` of `ws`, recording progress, then READY or FAILED.
async fn build(db: Database, ws: WorkspaceId, export: Uuid, root: PathBuf) {
    let dir = request_dir(ws, export);
    let (tx, mut rx) = tokio::sync::watch::channel((None, 0));
    let reporter = {
        let db = db.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let (total, written) = *rx.borrow_and_update();
                if let Err(e) = db.export_progress(export, total, written).await {
                    tracing::warn!(%export, error = %e, "export progress not recorded");
                }
            }
        })
    };
    let result = write_archive(&db, ws, &root, &dir, ExportLimits::default(), tx).await;
    let _ = reporter.await;
    let outcome = match result {
        Ok(w) => {
            let expires = Utc::now() + chrono::TimeDelta::from_std(KEPT).unwrap_or_default();
            let parts = serde_json::to_value(&w.parts).unwrap_or_default();
            db.export_progress(export, Some(w.counts.leads), w.counts.leads)
                .await
                .and(
                    db.export_ready(export, parts, expires, "system:export")
                        .await,
                )
        }
        Err(e) => {
            tracing::warn!(%export, error = %e, "an export failed");
            let _ = tokio::fs::remove_dir_all(root.join(&dir)).await;
            db.export_failed(export, &e.to_string()).await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(%export, error = %e, "an export's outcome was not recorded");
    }
}

/// Export `export` of `id`, with links once it is ready.
pub async fn get(state: &AppState, id: WorkspaceId, export: Uuid) -> Result<ExportView, Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    Ok(view(state, db.export_get(id, export).await?))
}

/// `GET /exports/{id}/download` query.
#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    /// Which part (1 first).
    pub part: u32,
    /// When the link stops working (Unix seconds).
    pub expires: i64,
    /// The link's signature.
    pub sig: String,
}

/// Where a signed link's file is, once the link is checked: refused (403) when forged or
/// expired, 404 when the export is gone. `fresh` (a download from the first byte) is
/// audited.
pub async fn download_path(
    state: &AppState,
    export: Uuid,
    q: &DownloadQuery,
    fresh: bool,
) -> Result<PathBuf, Problem> {
    // The signature first: a forged link costs one HMAC, nothing else.
    if !signed(state, export, q.part, q.expires, &q.sig) {
        metrics::counter!("genesis_export_links_refused_total", "why" => "signature").increment(1);
        return Err(Problem::forbidden("this download link is not valid"));
    }
    if Utc::now().timestamp() > q.expires {
        metrics::counter!("genesis_export_links_refused_total", "why" => "expired").increment(1);
        return Err(Problem::forbidden(
            "this download link has expired: ask for the export again to get a new one",
        ));
    }
    let (db, job) = find(state, export).await?;
    if job.state != "READY" || job.expires_at.is_none_or(|t| t < Utc::now()) {
        return Err(Problem::not_found("export"));
    }
    let parts: Vec<PartFile> = serde_json::from_value(job.parts.clone()).unwrap_or_default();
    let part = parts
        .iter()
        .find(|p| p.part == q.part)
        .ok_or_else(|| Problem::not_found("export part"))?;
    if fresh {
        let ws = WorkspaceId::from_uuid(job.workspace_id).map_err(|_| Problem::internal())?;
        db.audit_record(
            &genesis_store::AuditEvent::new(
                "download-link",
                AuditCategory::Data,
                "EXPORT_DOWNLOADED",
            )
            .workspace(ws)
            .subject(export.to_string())
            .details(serde_json::json!({ "part": part.part, "bytes": part.bytes })),
        )
        .await?;
    }
    Ok(state.exports_dir.join(&part.file))
}

/// The export `id`, in whichever region holds it.
async fn find(state: &AppState, id: Uuid) -> Result<(Database, ExportJob), Problem> {
    for db in state.stores.distinct() {
        if let Some(job) = db.export_find(id).await? {
            return Ok((db.clone(), job));
        }
    }
    Err(Problem::not_found("export"))
}
