//! A tenant's data, exported (spec 64.3), through the API: asked for, followed to READY,
//! downloaded through its signed link (no other credential), resumed with `Range`, refused
//! when forged or expired, and audited; split into files and parts as its size asks.

use std::io::Read as _;
use std::time::Duration;

use base64::Engine as _;
use genesis_core::{Email, Region, WorkspaceId};
use genesis_store::NewLead;
use hmac::Mac as _;

use super::{INBOUND_KEY, spawn_app, workspace_with_ingest_token};

async fn seed_leads(db: &genesis_store::Database, ws: WorkspaceId, n: usize) {
    let leads: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            first_name: Some(format!("Zoë \"{i}\", née Ω")),
            company: (i % 3 == 0).then(|| "Line\nbreak & co".to_owned()),
            ..NewLead::with_email(Email::parse(&format!("lead{i}@example.org")).expect("email"))
        })
        .collect();
    let mut s = db.tenant_session(ws).await.expect("session");
    s.lead_import(&leads).await.expect("import");
    s.commit().await.expect("commit");
}

/// The signature a link carries, computed as the server derives it from its inbound key.
fn link_sig(export: &str, part: u32, expires: i64) -> String {
    type H = hmac::Hmac<sha2::Sha256>;
    let mut d = <H as hmac::Mac>::new_from_slice(&INBOUND_KEY).expect("key");
    d.update(b"genesis-derived-key-v1:genesis-export-links-v1");
    let key = d.finalize().into_bytes();
    let mut m = <H as hmac::Mac>::new_from_slice(&key).expect("key");
    m.update(uuid::Uuid::parse_str(export).expect("id").as_bytes());
    m.update(&part.to_be_bytes());
    m.update(&expires.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

fn zip_file(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    let mut s = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_to_string(&mut s)
        .expect("utf-8");
    s
}

#[tokio::test]
async fn an_export_is_downloaded_through_its_signed_link_resumes_and_is_audited() {
    let app = spawn_app().await;
    let (ws, _) = workspace_with_ingest_token(&app.t.db, "export", Region::EuWest).await;
    seed_leads(&app.t.db, ws, 1_000).await;

    let (status, started, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/exports"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/{ws}/exports/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (status, job) = app.get(&path).await;
        assert_eq!(status, 200, "{job}");
        if job["state"] != "RUNNING" {
            break job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "READY", "{job}");
    assert_eq!(
        (job["leads_total"].as_i64(), job["leads_written"].as_i64()),
        (Some(1_000), Some(1_000))
    );
    let links = job["links"].as_array().expect("links");
    assert_eq!(links.len(), 1, "{job}");
    let link = format!("{}{}", app.base, links[0].as_str().expect("link"));

    // The link is the credential: no token needed.
    let r = reqwest::get(&link).await.expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().expect("type"),
        "application/zip"
    );
    let whole = r.bytes().await.expect("body").to_vec();
    let leads = zip_file(&whole, "leads.csv");
    let mut csv = leads.as_bytes();
    let rows = {
        // Parsed as CSV, quotes and line breaks in fields included.
        let mut n = 0;
        let mut rdr = csv_rows(&mut csv);
        while rdr.next().is_some() {
            n += 1;
        }
        n
    };
    assert_eq!(rows, 1_001, "a header and every lead");
    assert!(
        leads.contains("\"Zoë \"\"7\"\", née Ω\""),
        "{}",
        &leads[..300]
    );
    let settings: serde_json::Value =
        serde_json::from_str(&zip_file(&whole, "settings.json")).expect("settings.json");
    assert_eq!(settings["workspace"]["id"], ws.to_string());
    for line in zip_file(&whole, "audit_log.jsonl").lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
    }

    // Cut off at byte 1,000: the rest, with Range.
    let r = reqwest::Client::new()
        .get(&link)
        .header("Range", "bytes=1000-")
        .send()
        .await
        .expect("resume");
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.expect("rest").as_ref(), &whole[1_000..]);

    // A forged signature, another part, and an expired (genuinely signed) link: refused.
    let forged = link.replace("sig=", "sig=A");
    assert_eq!(reqwest::get(&forged).await.expect("get").status(), 403);
    let past = chrono::Utc::now().timestamp() - 1;
    let expired = format!(
        "{}/exports/{id}/download?part=1&expires={past}&sig={}",
        app.base,
        link_sig(&id, 1, past)
    );
    let r = reqwest::get(&expired).await.expect("get");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("problem");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{body}"
    );
    let future = chrono::Utc::now().timestamp() + 60;
    let other = format!(
        "{}/exports/{id}/download?part=2&expires={future}&sig={}",
        app.base,
        link_sig(&id, 2, future)
    );
    assert_eq!(reqwest::get(&other).await.expect("get").status(), 404);

    // Audited: the export once, the download from the start once (not its resumption).
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event FROM genesis.audit_log WHERE workspace_id = $1 AND category = 'data' AND event LIKE 'EXPORT%' ORDER BY id",
    )
    .bind(ws.as_uuid())
    .fetch_all(app.t.db.app_pool())
    .await
    .expect("audit");
    assert_eq!(
        events,
        ["EXPORT_REQUESTED", "EXPORTED", "EXPORT_DOWNLOADED"]
    );
    app.t.cleanup().await.expect("cleanup");
}

/// A minimal CSV record splitter (RFC 4180): enough to count records whose fields hold
/// quotes and line breaks.
fn csv_rows<'a>(input: &'a mut &[u8]) -> impl Iterator<Item = ()> + 'a {
    std::iter::from_fn(move || {
        if input.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        *input = &input[(i + 1).min(input.len())..];
        Some(())
    })
}

#[tokio::test]
async fn a_large_export_splits_into_files_and_parts_and_a_deleted_tenant_has_none() {
    use genesis_control::app::exports::write_archive;
    use genesis_store::export::ExportLimits;
    let app = spawn_app().await;
    let (ws, _) = workspace_with_ingest_token(&app.t.db, "big", Region::EuWest).await;
    seed_leads(&app.t.db, ws, 14).await;
    let root = std::env::temp_dir().join(format!("genesis-parts-{}", app.t.name));
    let (progress, seen) = tokio::sync::watch::channel((None, 0));
    // 3 leads a file, 6 a part: 5 files over 3 parts.
    let limits = ExportLimits {
        leads_per_file: 3,
        leads_per_part: 6,
    };
    let written = write_archive(&app.t.db, ws, &root, "t", limits, progress)
        .await
        .expect("written");
    assert_eq!(*seen.borrow(), (Some(14), 14));
    let names: Vec<Vec<String>> = written
        .parts
        .iter()
        .map(|p| {
            let f = std::fs::File::open(root.join(&p.file)).expect("part");
            assert_eq!(f.metadata().expect("meta").len(), p.bytes);
            let z = zip::ZipArchive::new(f).expect("zip");
            z.file_names()
                .map(|n| n.expect("a file name").into_owned())
                .collect()
        })
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].contains(&"settings.json".to_owned()), "{names:?}");
    let leads: Vec<&String> = names
        .iter()
        .flatten()
        .filter(|n| n.starts_with("leads"))
        .collect();
    assert_eq!(
        leads,
        [
            "leads-0001.csv",
            "leads-0002.csv",
            "leads-0003.csv",
            "leads-0004.csv",
            "leads-0005.csv"
        ]
    );
    // Every lead once, in order, across the files.
    let mut emails = Vec::new();
    for (p, files) in written.parts.iter().zip(&names) {
        let bytes = std::fs::read(root.join(&p.file)).expect("read");
        for f in files.iter().filter(|n| n.starts_with("leads")) {
            let text = zip_file(&bytes, f);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("@example.org"))
                .collect();
            emails.extend(
                lines
                    .iter()
                    .map(|l| l.split(',').nth(1).unwrap_or("").to_owned()),
            );
        }
    }
    let mut unique = emails.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((emails.len(), unique.len()), (14, 14), "{emails:?}");
    let _ = std::fs::remove_dir_all(&root);

    // A second export while one runs is refused; one that stopped reporting is replaced.
    let db = &app.t.db;
    let first = db
        .export_start(ws, "test", Duration::from_secs(120))
        .await
        .expect("start");
    let e = db
        .export_start(ws, "test", Duration::from_secs(120))
        .await
        .expect_err("one at a time");
    assert!(e.to_string().contains("already being written"), "{e}");
    let second = db
        .export_start(ws, "test", Duration::ZERO)
        .await
        .expect("the stale one is replaced");
    let old = db.export_get(ws, first.id).await.expect("first");
    assert_eq!(old.state, "FAILED");
    assert!(
        old.error
            .as_deref()
            .is_some_and(|e| e.contains("interrupted"))
    );
    assert_eq!(second.state, "RUNNING");

    // A deleted tenant has nothing to export.
    for event in [
        genesis_core::WorkspaceEvent::DeletionRequested,
        genesis_core::WorkspaceEvent::DeletionCompleted,
    ] {
        let w = db.workspace_get(ws).await.expect("ws");
        db.workspace_transition(ws, w.version, event, "test")
            .await
            .expect("transition");
    }
    let (status, body, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/exports"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("deleted")),
        "{body}"
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_owner_exports_from_the_dashboard_and_a_stranger_cannot() {
    use super::accounts::{new_workspace, tenant};
    use super::god_mode::{csrf_of, form, location};
    let app = spawn_app().await;
    let owner = tenant(&app, "ola@export.test", "eu-west").await;
    let ws_page = new_workspace(&owner, "Exporter", "exp_dash").await;
    let html = owner.get(&ws_page).await.text().await.expect("page");
    assert!(
        html.contains("start-export"),
        "the owner is offered an export"
    );
    let r = owner
        .post(
            &format!("{ws_page}/exports"),
            form(&[("csrf", &csrf_of(&html))]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    let export_page = location(&r);
    assert!(
        export_page.starts_with(&format!("{ws_page}/exports/")),
        "{export_page}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = owner.get(&export_page).await.text().await.expect("page");
        if !page.contains("export-progress") {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains("export-ready"), "{page}");
    let at = page.find("href=\"/exports/").expect("a download link") + 6;
    let href = page[at..]
        .split('"')
        .next()
        .expect("href")
        .replace("&amp;", "&");
    let r = reqwest::get(format!("{}{href}", app.base))
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("zip");
    let settings: serde_json::Value =
        serde_json::from_str(&zip_file(&bytes, "settings.json")).expect("settings");
    assert_eq!(settings["workspace"]["slug"], "exp_dash");

    // Someone who is not an owner of it gets nothing.
    let eve = tenant(&app, "eve@export.test", "eu-west").await;
    let r = eve.get(&export_page).await;
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    app.t.cleanup().await.expect("cleanup");
}
