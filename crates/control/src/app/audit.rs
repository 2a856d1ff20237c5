//! The audit log as operators read it (spec 63.1): filtered by actor, tenant, category and
//! time, newest first, a page at a time over every regional database.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_store::{AuditEntry, AuditFilter};

use crate::{AppState, Problem};

/// Events per page.
pub const PAGE: i64 = 100;

/// One page of events and the key of the next one.
#[derive(Debug)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Where the next page starts, when there may be one.
    pub next: Option<(DateTime<Utc>, i64)>,
}

/// The newest [`PAGE`] events `filter` lets through, merged over the regional databases by
/// `(occurred_at, id)`, the key each database orders by too.
pub async fn search(state: &AppState, filter: &AuditFilter) -> Result<AuditPage, Problem> {
    let mut items = Vec::new();
    for db in state.stores.distinct() {
        items.extend(db.audit_search(filter, PAGE).await?);
    }
    items.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
    items.truncate(PAGE as usize);
    let next = (items.len() as i64 == PAGE)
        .then(|| items.last().map(|e| (e.occurred_at, e.id)))
        .flatten();
    Ok(AuditPage { items, next })
}

/// The page cursor a list's "next" link carries: `<RFC 3339 time>_<id>`.
pub fn cursor_text(at: DateTime<Utc>, id: i64) -> String {
    format!("{}_{id}", at.to_rfc3339())
}

/// Reads [`cursor_text`]'s output back; empty is the first page.
pub fn parse_cursor(raw: &str) -> Result<Option<(DateTime<Utc>, i64)>, Problem> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Problem::invalid_field(
            "after",
            "is not a page of this list; start again from the first page",
        )
    };
    let (t, id) = raw.rsplit_once('_').ok_or_else(bad)?;
    let t = DateTime::parse_from_rfc3339(t)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok(Some((t, id.parse().map_err(|_| bad())?)))
}

/// One tenant's own audit trail (spec 63.1: "readable by tenants, for their own events"),
/// from its region's database only, newest first, a [`PAGE`] at a time, optionally one
/// category.
pub async fn of_tenant(
    db: &genesis_store::Database,
    ws: genesis_core::WorkspaceId,
    category: Option<AuditCategory>,
    after: Option<(DateTime<Utc>, i64)>,
) -> Result<AuditPage, Problem> {
    let filter = AuditFilter {
        workspace: Some(ws),
        category: category.map(|c| c.code().to_owned()),
        after,
        ..Default::default()
    };
    let items = db.audit_search(&filter, PAGE).await?;
    let next = (items.len() as i64 == PAGE)
        .then(|| items.last().map(|e| (e.occurred_at, e.id)))
        .flatten();
    Ok(AuditPage { items, next })
}

/// The categories present in any regional log, sorted.
pub async fn categories(state: &AppState) -> Result<Vec<String>, Problem> {
    let mut all = std::collections::BTreeSet::new();
    for db in state.stores.distinct() {
        all.extend(db.audit_categories().await?);
    }
    Ok(all.into_iter().collect())
}

/// One regional database's chain, as `genesis audit verify` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionChain {
    /// The regions it serves (`us-east+us-west`).
    pub regions: String,
    /// What checking it found.
    #[serde(flatten)]
    pub report: genesis_store::ChainReport,
}

/// Checks the hash chain of every regional database, or of the one serving `region`.
pub async fn verify(
    stores: &genesis_store::RegionalStore,
    key: &genesis_store::AuditChainKey,
    region: Option<genesis_core::Region>,
) -> Result<Vec<RegionChain>, genesis_store::StoreError> {
    let mut out = Vec::new();
    for shard in stores.shards() {
        if region.is_some_and(|r| !shard.regions.contains(&r)) {
            continue;
        }
        out.push(RegionChain {
            regions: shard.label(),
            report: shard.db.audit_verify(key).await?,
        });
    }
    Ok(out)
}
