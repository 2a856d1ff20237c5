//! The notifications outbox delivered by e-mail to a real SMTP server (MailDev, from npm):
//! what arrives (recipient, subject, both parts, headers), the one-click unsubscribe over
//! real HTTP, and a server that is down and then back (nothing lost, nothing sent twice).
//!
//! Needs `GENESIS_MAILDEV`: MailDev's executable, as `scripts/maildev-install.sh` prints it
//! (`make test` sets it).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use genesis_control::app::notifications::{MailSettings, Outbox};
use genesis_control::mail::smtp::SmtpSettings;
use genesis_control::workers::mail::MailSender;
use genesis_control::workers::reconciler::Reconciler;
use genesis_core::WorkspaceId;
use genesis_store::RegionalStore;
use serde_json::{Value, json};

use super::god_mode::form;
use super::{App, spawn_app, ws_body};

/// A MailDev on ports of its own, stopped when dropped.
pub(crate) struct MailDev {
    child: Child,
    pub(crate) smtp_port: u16,
    web: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl MailDev {
    /// Starts one listening for SMTP on `smtp_port` (a fresh port when `None`).
    pub(crate) async fn start(smtp_port: Option<u16>) -> Self {
        let bin = std::env::var_os("GENESIS_MAILDEV").unwrap_or_else(|| {
            panic!(
                "GENESIS_MAILDEV is not set: run `make test`, or export \
                 GENESIS_MAILDEV=$(scripts/maildev-install.sh)"
            )
        });
        let smtp_port = smtp_port.unwrap_or_else(free_port);
        let web_port = free_port();
        let child = Command::new(bin)
            .args(["--smtp", &smtp_port.to_string(), "--ip", "127.0.0.1"])
            .args(["--web", &web_port.to_string(), "--web-ip", "127.0.0.1"])
            .arg("--silent")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("maildev starts");
        let md = Self {
            child,
            smtp_port,
            web: format!("http://127.0.0.1:{web_port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..200 {
            let smtp_up = tokio::net::TcpStream::connect(("127.0.0.1", smtp_port))
                .await
                .is_ok();
            if smtp_up
                && md
                    .http
                    .get(format!("{}/api/email", md.web))
                    .send()
                    .await
                    .is_ok()
            {
                return md;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("maildev did not come up on {smtp_port}/{web_port}");
    }

    /// Every message received, each with its raw headers (MailDev's parsed ones are
    /// partial) as `headers`, lower-cased names to unfolded values.
    pub(crate) async fn messages(&self) -> Vec<Value> {
        let list: Vec<Value> = self
            .http
            .get(format!("{}/api/email", self.web))
            .send()
            .await
            .expect("maildev answers")
            .json()
            .await
            .expect("a list");
        let mut out = Vec::new();
        for mut m in list {
            let id = m["id"].as_str().expect("id").to_owned();
            let source = self
                .http
                .get(format!("{}/api/email/{id}/source", self.web))
                .send()
                .await
                .expect("source")
                .text()
                .await
                .expect("text");
            m["headers"] = raw_headers(&source);
            out.push(m);
        }
        out
    }
}

impl Drop for MailDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The header section of a raw message, unfolded.
fn raw_headers(source: &str) -> Value {
    let head = source.split("\r\n\r\n").next().unwrap_or_default();
    let head = head.split("\n\n").next().unwrap_or_default();
    let mut map = serde_json::Map::new();
    let mut last: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(name) = &last
                && let Some(Value::String(v)) = map.get_mut(name)
            {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            map.insert(name.clone(), Value::String(value.trim().to_owned()));
            last = Some(name);
        }
    }
    Value::Object(map)
}

fn outbox(smtp_port: u16, public_url: &str, retries: Vec<Duration>) -> Arc<Outbox> {
    let smtp = SmtpSettings::parse(
        &format!("smtp://127.0.0.1:{smtp_port}"),
        "Genesis <notices@genesis.test>",
        Duration::from_secs(5),
    )
    .expect("settings");
    let mut settings = MailSettings::new(smtp, public_url);
    settings.retries = retries;
    Arc::new(Outbox::new(settings).expect("outbox"))
}

fn sender(app: &App, outbox: Arc<Outbox>) -> MailSender {
    MailSender::new(RegionalStore::single(app.t.db.clone()), outbox)
}

/// A workspace with two owners (each gets their own message).
async fn workspace_with_owners(app: &App, slug: &str, owners: &[&str]) -> WorkspaceId {
    let (status, ws, _) = app.post("/api/v1/workspaces", ws_body(slug)).await;
    assert_eq!(status, 201, "{ws}");
    let id: WorkspaceId = ws["id"].as_str().expect("id").parse().expect("uuid");
    for owner in owners {
        sqlx::query(
            "INSERT INTO genesis.workspace_members (workspace_id, account_id, account_region, email, role)
             VALUES ($1, gen_random_uuid(), 'eu-west', $2, 'owner')",
        )
        .bind(id.as_uuid())
        .bind(owner)
        .execute(app.t.db.owner_pool())
        .await
        .expect("owner");
    }
    id
}

async fn notify(
    app: &App,
    ws: Option<WorkspaceId>,
    to: Option<&str>,
    kind: &str,
    subject: &str,
    body: Value,
) {
    sqlx::query(
        "INSERT INTO genesis.notifications (workspace_id, recipient, kind, subject, body)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ws.map(|w| w.as_uuid()))
    .bind(to)
    .bind(kind)
    .bind(subject)
    .bind(body)
    .execute(app.t.db.owner_pool())
    .await
    .expect("notification");
}

/// A failed top-up's notice (an essential kind), as the payments path writes it.
async fn top_up_failed(app: &App, ws: WorkspaceId) {
    notify(
        app,
        Some(ws),
        None,
        "WALLET_TOPUP_FAILED",
        "Your automatic top-up did not go through",
        json!({ "reason": "card declined" }),
    )
    .await;
}

async fn outbox_rows(app: &App) -> Vec<(String, i32, bool, bool, Option<String>)> {
    sqlx::query_as(
        "SELECT kind, attempts, delivered_at IS NOT NULL, dead_at IS NOT NULL, last_error
         FROM genesis.notifications ORDER BY id",
    )
    .fetch_all(app.t.db.owner_pool())
    .await
    .expect("rows")
}

fn to_of(m: &Value) -> String {
    m["to"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn each_notification_arrives_with_its_content_and_advisories_can_be_stopped() {
    let app = spawn_app().await;
    let md = MailDev::start(None).await;
    let ws = workspace_with_owners(&app, "mail_acme", &["ada@acme.test", "bob@acme.test"]).await;
    // A real producer (the hibernation notice) and rows shaped as the others write them.
    assert!(
        app.t
            .db
            .hibernation_notice(ws, "test")
            .await
            .expect("notice")
    );
    notify(
        &app,
        Some(ws),
        None,
        "WALLET_EMPTY",
        "Managed services are paused: your wallet is empty",
        json!({ "available": "$0.00", "level": "empty" }),
    )
    .await;
    notify(&app, None, Some("new@person.test"), "EMAIL_VERIFICATION", "Confirm your e-mail address for Genesis",
        json!({ "link": "http://genesis.test/app/verify?token=abc", "expires_at": "2026-12-08 10:00 UTC" })).await;

    let report = sender(&app, outbox(md.smtp_port, &app.base, vec![Duration::ZERO]))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!(
        (report.delivered, report.messages, report.dead),
        (3, 5, 0),
        "{report:?}"
    );
    let got = md.messages().await;
    assert_eq!(
        got.len(),
        5,
        "one message per owner, one to the new address"
    );

    let hib: Vec<_> = got
        .iter()
        .filter(|m| m["subject"] == "Your instance will hibernate in 24 hours")
        .collect();
    let mut to: Vec<_> = hib.iter().map(|m| to_of(m)).collect();
    to.sort();
    assert_eq!(to, ["ada@acme.test", "bob@acme.test"]);
    for m in &hib {
        let text = m["text"].as_str().expect("a text part");
        let html = m["html"].as_str().expect("an html part");
        assert!(
            text.contains("Acme Corp") && html.contains("Acme Corp"),
            "{text}"
        );
        assert!(text.contains("sign in, start a campaign"), "{text}");
        assert_eq!(m["from"][0]["address"], "notices@genesis.test");
        let h = &m["headers"];
        let unsubscribe = h["list-unsubscribe"]
            .as_str()
            .expect("an advisory carries List-Unsubscribe");
        assert!(
            unsubscribe.starts_with(&format!("<{}/notifications/unsubscribe?", app.base)),
            "{unsubscribe}"
        );
        assert_eq!(h["list-unsubscribe-post"], "List-Unsubscribe=One-Click");
        assert!(
            h["message-id"]
                .as_str()
                .expect("message-id")
                .contains("notification-")
        );
    }
    let empty = got
        .iter()
        .find(|m| m["subject"] == "Managed services are paused: your wallet is empty")
        .expect("kill-switch notice");
    assert!(
        empty["headers"].get("list-unsubscribe").is_none(),
        "the kill-switch is not advisory"
    );
    assert!(empty["text"].as_str().expect("text").contains("$0.00"));
    let verify = got
        .iter()
        .find(|m| to_of(m) == "new@person.test")
        .expect("verification");
    assert!(
        verify["html"]
            .as_str()
            .expect("html")
            .contains("http://genesis.test/app/verify?token=abc")
    );
    assert!(verify["headers"].get("list-unsubscribe").is_none());
    assert!(outbox_rows(&app).await.iter().all(|r| r.2), "all delivered");

    // Ada follows her link: GET only asks, POST (the one-click) stops it.
    let ada = hib
        .iter()
        .find(|m| to_of(m) == "ada@acme.test")
        .expect("ada's");
    let link = ada["headers"]["list-unsubscribe"]
        .as_str()
        .expect("link")
        .trim_matches(['<', '>'])
        .to_owned();
    let page = app.http.get(&link).send().await.expect("get");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains("ada@acme.test"));
    let opted: i64 = sqlx::query_scalar("SELECT count(*) FROM genesis.notification_opt_outs")
        .fetch_one(app.t.db.owner_pool())
        .await
        .expect("count");
    assert_eq!(opted, 0, "a GET (a mail scanner) unsubscribes no one");
    let done = app
        .http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("List-Unsubscribe", "One-Click")]))
        .send()
        .await
        .expect("post");
    assert_eq!(done.status(), 200);
    let forged = app
        .http
        .post(link.replace("&t=", "&t=00"))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 404);

    // The next hibernation notice goes to Bob only; the kill-switch still goes to both.
    sqlx::query("UPDATE genesis.workspace_activity SET notice_at = NULL")
        .execute(app.t.db.owner_pool())
        .await
        .expect("reset");
    assert!(
        app.t
            .db
            .hibernation_notice(ws, "test")
            .await
            .expect("notice")
    );
    notify(
        &app,
        Some(ws),
        None,
        "WALLET_EMPTY",
        "Managed services are paused again",
        json!({ "available": "$0.00" }),
    )
    .await;
    let report = sender(&app, outbox(md.smtp_port, &app.base, vec![Duration::ZERO]))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!((report.delivered, report.messages), (2, 3), "{report:?}");
    let got = md.messages().await;
    let second_notice: Vec<_> = got
        .iter()
        .filter(|m| m["subject"] == "Your instance will hibernate in 24 hours")
        .map(to_of)
        .collect();
    assert_eq!(
        second_notice
            .iter()
            .filter(|t| *t == "ada@acme.test")
            .count(),
        1,
        "Ada got only the first"
    );
    assert_eq!(
        second_notice
            .iter()
            .filter(|t| *t == "bob@acme.test")
            .count(),
        2
    );
    assert_eq!(
        got.iter()
            .filter(|m| m["subject"] == "Managed services are paused again")
            .count(),
        2
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_server_down_then_back_loses_nothing_and_sends_nothing_twice() {
    let app = spawn_app().await;
    let ws = workspace_with_owners(&app, "mail_down", &["ops@down.test"]).await;
    for i in 0..5 {
        notify(
            &app,
            Some(ws),
            None,
            "CAMPAIGN_ERROR",
            &format!("Workflow {i} stopped"),
            json!({ "key": format!("flow{i}"), "reason": "it is missing from your n8n" }),
        )
        .await;
    }
    let port = free_port();
    let retries = vec![Duration::ZERO; 3];
    let report = sender(&app, outbox(port, &app.base, retries.clone()))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!(
        (report.delivered, report.retrying, report.dead),
        (0, 5, 0),
        "{report:?}"
    );
    for (kind, attempts, delivered, dead, error) in outbox_rows(&app).await {
        assert_eq!(
            (kind.as_str(), attempts, delivered, dead),
            ("CAMPAIGN_ERROR", 1, false, false)
        );
        assert!(
            error.expect("why").contains("could not be reached"),
            "a message for people"
        );
    }
    let md = MailDev::start(Some(port)).await;
    let report = sender(&app, outbox(port, &app.base, retries.clone()))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!((report.delivered, report.messages), (5, 5), "{report:?}");
    let again = sender(&app, outbox(port, &app.base, retries))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!(
        (again.delivered, again.messages),
        (0, 0),
        "nothing is sent twice"
    );
    let got = md.messages().await;
    assert_eq!(got.len(), 5);
    let mut ids: Vec<_> = got
        .iter()
        .map(|m| {
            m["headers"]["message-id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "five distinct messages");
    assert!(
        outbox_rows(&app)
            .await
            .iter()
            .all(|r| r.1 == 2 && r.2 && r.4.is_none())
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_notice_that_fails_for_good_is_a_dead_letter_until_replayed() {
    let app = spawn_app().await;
    let ws = workspace_with_owners(&app, "mail_dead", &["ops@dead.test"]).await;
    top_up_failed(&app, ws).await;
    // A template that cannot be filled is dead at once, naming the field.
    notify(
        &app,
        Some(ws),
        None,
        "WALLET_LOW",
        "Your wallet is running low",
        json!({}),
    )
    .await;
    // So is a notice about a workspace with no owner to write to.
    let (_, orphan, _) = app.post("/api/v1/workspaces", ws_body("mail_orphan")).await;
    let orphan: WorkspaceId = orphan["id"].as_str().expect("id").parse().expect("uuid");
    notify(
        &app,
        Some(orphan),
        None,
        "WALLET_EMPTY",
        "Paused",
        json!({ "available": "$0.00" }),
    )
    .await;

    let port = free_port();
    let report = sender(&app, outbox(port, &app.base, vec![]))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!((report.delivered, report.dead), (0, 3), "{report:?}");
    let rows = outbox_rows(&app).await;
    assert!(
        rows[0]
            .4
            .as_deref()
            .unwrap_or_default()
            .starts_with("gave up after 1 attempts"),
        "{rows:?}"
    );
    assert!(
        rows[1]
            .4
            .as_deref()
            .unwrap_or_default()
            .contains("`available`"),
        "{rows:?}"
    );
    assert!(
        rows[2]
            .4
            .as_deref()
            .unwrap_or_default()
            .contains("no owner"),
        "{rows:?}"
    );

    let (dead, counts) = genesis_control::app::notifications::dead_letters(&app_state(&app), 50)
        .await
        .expect("list");
    assert_eq!((dead.len(), counts.dead, counts.pending), (3, 3, 0));
    let md = MailDev::start(Some(port)).await;
    let topup = dead
        .iter()
        .find(|d| d.letter.kind == "WALLET_TOPUP_FAILED")
        .expect("the top-up notice");
    genesis_control::app::notifications::replay(
        &app_state(&app),
        &topup.shard,
        topup.letter.id,
        "operator:ops",
    )
    .await
    .expect("replayed");
    let again = genesis_control::app::notifications::replay(
        &app_state(&app),
        &topup.shard,
        topup.letter.id,
        "operator:ops",
    )
    .await;
    assert_eq!(again.expect_err("not dead any more").status, 409);
    let report = sender(&app, outbox(port, &app.base, vec![]))
        .reconcile()
        .await
        .expect("pass");
    assert_eq!((report.delivered, report.messages), (1, 1), "{report:?}");
    let got = md.messages().await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["text"]
            .as_str()
            .expect("text")
            .contains("card declined")
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE event = 'NOTIFICATION_REPLAYED'",
    )
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1);
    app.t.cleanup().await.expect("cleanup");
}

fn app_state(app: &App) -> genesis_control::AppState {
    genesis_control::ControlPlane::builder(RegionalStore::single(app.t.db.clone()))
        .build()
        .state()
        .clone()
}

#[tokio::test]
async fn god_mode_lists_dead_letters_replays_one_and_shows_where_rotations_stand() {
    use super::god_mode::{csrf_of, location, signed_in};
    let app = spawn_app().await;
    let ws = workspace_with_owners(&app, "mail_god", &["ops@god.test"]).await;
    top_up_failed(&app, ws).await;
    let port = free_port();
    sender(&app, outbox(port, &app.base, vec![]))
        .reconcile()
        .await
        .expect("pass");
    let b = signed_in(&app).await;
    let page = b.get("/god/deliveries").await.text().await.expect("page");
    assert!(
        page.contains("WALLET_TOPUP_FAILED") && page.contains("gave up after 1 attempts"),
        "{page}"
    );
    assert!(page.contains("1 dead."), "{page}");
    let at = page.find("/god/deliveries/mail/").expect("a replay form");
    let action = page[at..].split('"').next().expect("action").to_owned();
    let r = b
        .post(
            &action,
            super::god_mode::form(&[("csrf", &csrf_of(&page))]),
            None,
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/god/deliveries".to_owned())
    );
    let rows = outbox_rows(&app).await;
    assert!(
        !rows[0].3 && rows[0].1 == 0,
        "due again, from the first attempt: {rows:?}"
    );
    // Without the session's CSRF token, nothing is replayed.
    let r = b
        .post(&action, super::god_mode::form(&[("csrf", "forged")]), None)
        .await;
    assert_ne!(r.status().as_u16(), 303);

    let security = b.get("/god/security").await.text().await.expect("page");
    assert!(
        security.contains("id=\"rotation-vault\"") && security.contains("version 1"),
        "{security}"
    );
    assert!(security.contains("id=\"rotation-webhooks\""), "{security}");
    app.t.cleanup().await.expect("cleanup");
}
