//! A tenant's leads, imported from a CSV file on the dashboard: every row checked, the good
//! ones stored in batches while a page shows the progress, the others listed by line with
//! the field at fault.
//!
//! - **Reading.** The `csv` crate (RFC 4180 quoting, any line ending), headers matched by
//!   name, case and spacing ignored (`E-mail`, `First name`...); an `email` column is
//!   required; columns we do not know go into the lead's data as text. A row that is not
//!   UTF-8, has a bad address or an over-long name is refused by line and field; an address
//!   already among the workspace's leads (or earlier in the file) is a duplicate, skipped
//!   and counted.
//! - **Storing.** Batches of [`BATCH`] rows, each its own transaction through the tenant's
//!   lead store (RLS, the tenant's partition), each followed by a progress update. A stop
//!   in the middle (a restart) keeps every committed batch; the page then says the import
//!   was interrupted, and importing the same file again skips what is there.
//! - **Bounds.** [`MAX_BYTES`] per file and [`MAX_ROWS`] rows; the file is parsed off the
//!   request threads; at most [`MAX_ERRORS_SHOWN`] refusals are kept (all are counted); at
//!   most [`MAX_AT_ONCE`] imports run in a process.

use std::time::Duration;

use genesis_store::{Caller, Database, NewLead};
use serde_json::json;
use uuid::Uuid;

use super::tenant_access::Access;
use crate::{AppState, Problem};

/// The largest file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// The most data rows in one file.
pub const MAX_ROWS: usize = 200_000;
/// Rows per transaction.
pub const BATCH: usize = 1_000;
/// Refusals kept for the page.
pub const MAX_ERRORS_SHOWN: usize = 500;
/// Imports this process reads and stores at once: a file's rows are held in memory until
/// stored (up to ~100 MB for the largest), so more wait for their turn, refused with a 503.
pub const MAX_AT_ONCE: usize = 2;

/// A row refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowError {
    /// The line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault (`row` when the row itself is unreadable).
    pub field: String,
    /// Why, for people.
    pub message: String,
}

/// A file read: its good rows and its refusals.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows to store.
    pub leads: Vec<NewLead>,
    /// Rows refused.
    pub errors: Vec<RowError>,
    /// Data rows in the file.
    pub total: usize,
}

/// What a header names, once case, spaces and dashes are set aside.
fn column(header: &str) -> String {
    let h: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    match h.as_str() {
        "email" | "e_mail" | "email_address" | "mail" => "email",
        "first_name" | "firstname" | "first" | "given_name" => "first_name",
        "last_name" | "lastname" | "last" | "surname" | "family_name" => "last_name",
        "company" | "company_name" | "organization" | "organisation" => "company",
        "status" => "status",
        _ => return h,
    }
    .to_owned()
}

/// Reads a CSV file of leads.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|_| Problem::invalid_field("file", "the first line (the headers) cannot be read"))?
        .iter()
        .map(|h| column(&String::from_utf8_lossy(h)))
        .collect();
    let Some(email_at) = headers.iter().position(|h| h == "email") else {
        return Err(Problem::invalid_field(
            "file",
            format!(
                "the file needs an \"email\" column (its columns: {})",
                if headers.is_empty() {
                    "none".to_owned()
                } else {
                    headers.join(", ")
                }
            ),
        ));
    };
    // Lines as a person's editor counts them (the reader's own count skips blank lines):
    // from a record's byte offset, by the offsets where lines start.
    let starts: Vec<u64> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i as u64 + 1),
        )
        .collect();
    // A record's offset may point at blank lines the reader skipped before it.
    let line_at = |byte: u64| {
        let mut at = usize::try_from(byte).unwrap_or(usize::MAX);
        while bytes.get(at).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            at += 1;
        }
        starts.partition_point(|s| *s <= at as u64) as u64
    };
    let mut out = Parsed::default();
    for record in reader.byte_records() {
        let line = |r: &csv::ByteRecord| r.position().map_or(0, |p| line_at(p.byte()));
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.total += 1;
                out.errors.push(RowError {
                    line: e.position().map_or(0, |p| line_at(p.byte())),
                    field: "row".into(),
                    message: "this line cannot be read as CSV".into(),
                });
                continue;
            }
        };
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        out.total += 1;
        if out.total > MAX_ROWS {
            return Err(Problem::invalid_field(
                "file",
                format!("the file has more than {MAX_ROWS} rows; split it"),
            ));
        }
        let mut fields = Vec::with_capacity(record.len());
        let mut unreadable = None;
        for (i, f) in record.iter().enumerate() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s),
                Err(_) => {
                    unreadable = Some(headers.get(i).cloned().unwrap_or_else(|| "row".into()));
                    break;
                }
            }
        }
        if let Some(field) = unreadable {
            out.errors.push(RowError {
                line: line(&record),
                field,
                message: "is not UTF-8 text (save the file as CSV UTF-8)".into(),
            });
            continue;
        }
        let get = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| fields.get(i))
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
        };
        let mut data = serde_json::Map::new();
        for (i, h) in headers.iter().enumerate() {
            if matches!(
                h.as_str(),
                "email" | "first_name" | "last_name" | "company" | "status"
            ) || h.is_empty()
            {
                continue;
            }
            if let Some(v) = fields.get(i).filter(|v| !v.is_empty()) {
                data.insert(h.clone(), json!(v));
            }
        }
        let status = get("status");
        match super::leads::lead_from_fields(
            fields.get(email_at).copied().unwrap_or_default(),
            get("first_name"),
            get("last_name"),
            get("company"),
            status.as_deref(),
            data,
        ) {
            Ok(lead) => out.leads.push(lead),
            Err(p) => out.errors.push(RowError {
                line: line(&record),
                field: p.field.clone().unwrap_or_else(|| "row".into()),
                message: p
                    .detail
                    .strip_prefix(&format!("{}: ", p.field.as_deref().unwrap_or_default()))
                    .unwrap_or(&p.detail)
                    .to_owned(),
            }),
        }
    }
    Ok(out)
}

/// Starts importing `bytes` (named `filename`) into `access`'s workspace (any member):
/// answers the import's id at once; the rows are stored behind it.
pub async fn start(
    state: &AppState,
    db: &Database,
    access: &Access,
    filename: &str,
    bytes: Vec<u8>,
) -> Result<Uuid, Problem> {
    if bytes.is_empty() {
        return Err(Problem::invalid_field("file", "choose a CSV file"));
    }
    if bytes.len() > MAX_BYTES {
        return Err(Problem::invalid_field(
            "file",
            format!("the file is larger than {} MB", MAX_BYTES / 1024 / 1024),
        ));
    }
    let permit =
        state.imports.clone().try_acquire_owned().map_err(|_| {
            Problem::unavailable("other imports are running; try again in a minute")
        })?;
    let parsed = tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|_| Problem::internal())??;
    let shown: Vec<&RowError> = parsed.errors.iter().take(MAX_ERRORS_SHOWN).collect();
    let filename: String = filename
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let id = db
        .lead_import_open(
            access.workspace.id,
            &access.actor,
            if filename.is_empty() {
                "leads.csv"
            } else {
                &filename
            },
            count(parsed.total),
            count(parsed.errors.len()),
            &json!(shown),
        )
        .await?;
    let (state, db, ws) = (state.clone(), db.clone(), access.workspace.id);
    tokio::spawn(async move {
        let _permit = permit;
        let failure = store_all(&state, &db, ws, id, &parsed.leads).await.err();
        let words = failure.map(|p| {
            tracing::warn!(import = %id, detail = %p.detail, "a lead import stopped");
            "the import stopped before the end; the rows stored so far are kept, and importing \
             the file again adds the rest (rows already there are skipped)"
        });
        if let Err(e) = db.lead_import_finish(id, words).await {
            tracing::error!(import = %id, error = %e, "a lead import could not be finished");
        }
    });
    Ok(id)
}

async fn store_all(
    state: &AppState,
    db: &Database,
    ws: genesis_core::WorkspaceId,
    id: Uuid,
    leads: &[NewLead],
) -> Result<(), Problem> {
    for chunk in leads.chunks(BATCH) {
        let mut store = db
            .leads_open(&state.router, &Caller::Tenant(ws), &ws.to_string())
            .await?;
        let report = super::leads::store_batch(&mut store, chunk).await?;
        store.commit().await?;
        let n = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        db.lead_import_progress(id, n(report.inserted), n(report.duplicates))
            .await?;
        // Other tenants' work shares the database: a large file yields between batches.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Import `raw_id` of `access`'s workspace.
pub async fn view(
    db: &Database,
    access: &Access,
    raw_id: &str,
) -> Result<genesis_store::lead_imports::LeadImport, Problem> {
    let id = Uuid::parse_str(raw_id).map_err(|_| Problem::not_found("import"))?;
    Ok(db.lead_import_get(access.workspace.id, id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_matched_by_name_and_bad_rows_named_by_line() {
        let csv = "E-mail,First Name,Company,Source\n\
                   ada@acme.test,Ada,Acme,fair\n\
                   \n\
                   not-an-address,Bob,,\n\
                   lin@lead.test,\"Lin, Jr.\",Lead Co,\n";
        let p = parse(csv.as_bytes()).expect("parsed");
        assert_eq!(p.total, 3);
        assert_eq!(p.leads.len(), 2);
        assert_eq!(p.leads[0].first_name.as_deref(), Some("Ada"));
        assert_eq!(p.leads[0].data["source"], "fair");
        assert_eq!(p.leads[1].first_name.as_deref(), Some("Lin, Jr."));
        assert_eq!(
            p.errors,
            [RowError {
                line: 4,
                field: "email".into(),
                message: p.errors[0].message.clone(),
            }]
        );
    }

    #[test]
    fn a_file_without_an_email_column_is_refused_whole() {
        let e = parse(b"name,company\nAda,Acme\n").expect_err("no email column");
        assert_eq!(e.field.as_deref(), Some("file"));
        assert!(e.detail.contains("name, company"), "{}", e.detail);
    }

    #[test]
    fn text_that_is_not_utf8_is_named() {
        let mut csv = b"email,first_name\nada@acme.test,".to_vec();
        csv.extend_from_slice(&[0xff, 0xfe]);
        csv.push(b'\n');
        let p = parse(&csv).expect("parsed");
        assert_eq!(p.leads.len(), 0);
        assert_eq!(p.errors[0].field, "first_name");
    }
}
