//! Outbound webhooks over real HTTP: endpoints registered through the API (the secret shown
//! once), events written with the change they report, delivered signed per Standard
//! Webhooks on spec 65.4's schedule (checked on a clock the test moves), dead-lettered,
//! replayed, and kept off private addresses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use genesis_control::app::outbound_webhooks::{Attempt, WebhookSender, WebhookSettings};
use genesis_control::clock::Clock;
use genesis_core::WorkspaceId;
use genesis_protocol::webhook::WebhookVerifier;
use genesis_store::RegionalStore;
use genesis_store::testing::TestDb;
use serde_json::{Value, json};

use super::{App, TOKEN, metrics_handle, run, test_vault, ws_body};

/// What a test receiver does with the next request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (within any sane timeout).
    Hang,
    /// Redirects to `/elsewhere` on the same server.
    Redirect,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    received: Vec<Received>,
}

/// A real HTTP receiver: answers from its script (200 once the script is spent) and keeps
/// every request.
#[derive(Clone)]
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let answer = {
        let mut s = script.lock().expect("script");
        s.received.push(Received {
            path: uri.path().to_owned(),
            headers,
            body,
        });
        s.answers.pop_front().unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::OK)
            .into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
        Answer::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
    }
}

impl Receiver {
    async fn start(answers: &[Answer]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            received: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/hooks/genesis",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, script }
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().expect("script").received.clone()
    }

    fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().expect("script").answers = answers.iter().copied().collect();
    }

    /// Waits (real time, a few seconds at most) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests, got {:?}", self.received().len());
    }
}

/// An app that may call loopback endpoints, whose webhook sender runs on `clock`.
async fn app_on(clock: Clock, timeout: Duration) -> App {
    let t = TestDb::create().await.expect("test database");
    let plane = genesis_control::ControlPlane::builder(RegionalStore::single(t.db.clone()))
        .outbound(genesis_control::outbound::FetchLimits {
            allow_private: true,
            ..Default::default()
        })
        .webhooks(WebhookSettings {
            allow_private: true,
            timeout,
            clock,
            ..Default::default()
        })
        .metrics(metrics_handle())
        .vault(Some(Arc::new(test_vault())))
        .api_token(Some(TOKEN))
        .build();
    App {
        base: run(plane).await,
        http: reqwest::Client::new(),
        t,
    }
}

async fn workspace(app: &App, slug: &str) -> WorkspaceId {
    let (status, ws, _) = app.post("/api/v1/workspaces", ws_body(slug)).await;
    assert_eq!(status, 201, "{ws}");
    let id = WorkspaceId::parse(ws["id"].as_str().expect("id")).expect("uuid");
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(id, "test")
        .await
        .expect("partition");
    id
}

async fn register(app: &App, ws: WorkspaceId, url: &str, events: &[&str]) -> (String, String) {
    let (status, created, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks"),
            json!({ "url": url, "events": events }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created["id"].as_str().expect("id").to_owned(), secret)
}

async fn import(app: &App, ws: WorkspaceId, emails: &[&str]) {
    let leads: Vec<Value> = emails.iter().map(|e| json!({ "email": e })).collect();
    let (status, report, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/leads"),
            json!({ "leads": leads }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
}

fn header(r: &Received, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_it_on_the_fourth_try_at_the_specs_times() {
    let clock = Clock::manual(Utc::now());
    let app = app_on(clock.clone(), Duration::from_secs(5)).await;
    let ws = workspace(&app, "hooks_schedule").await;
    let rx = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
    ])
    .await;
    let (_, secret) = register(&app, ws, &rx.url, &["lead.created"]).await;
    // An endpoint for other events hears nothing of this one.
    let other = Receiver::start(&[]).await;
    register(&app, ws, &other.url, &["wallet.low"]).await;
    let (_, list) = app.get(&format!("/api/v1/workspaces/{ws}/webhooks")).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert!(
        !list.to_string().contains(&secret),
        "the secret is shown once only"
    );

    let t0 = clock.now().timestamp();
    import(&app, ws, &["ada@lead.test"]).await;
    // Immediate: within a pass or two of the sender.
    let got = rx.wait_for(1).await;
    for (wait, attempts) in [(5, 2), (30, 3), (300, 4)] {
        // A second early: nothing.
        clock.advance(Duration::from_secs(wait - 1));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            rx.received().len(),
            attempts - 1,
            "no attempt before its time ({wait} s)"
        );
        clock.advance(Duration::from_secs(1));
        rx.wait_for(attempts).await;
    }
    let got = [got, rx.received()].concat();
    let times: Vec<i64> = rx
        .received()
        .iter()
        .map(|r| {
            header(r, "webhook-timestamp")
                .parse::<i64>()
                .expect("a timestamp")
                - t0
        })
        .collect();
    assert_eq!(
        times,
        [0, 5, 35, 335],
        "immediate, then 5 s, 30 s and 5 min later"
    );
    // One message, four attempts: the same id, each signed with the secret shown once.
    let ids: Vec<String> = rx
        .received()
        .iter()
        .map(|r| header(r, "webhook-id"))
        .collect();
    assert!(
        ids.iter().all(|i| i == &ids[0] && i.starts_with("msg_")),
        "{ids:?}"
    );
    for r in rx.received() {
        // Each attempt verifies on its own (a receiver's verifier spends the id it accepts).
        let verifier = WebhookVerifier::new(std::slice::from_ref(&secret)).expect("secret");
        let ts = header(&r, "webhook-timestamp");
        verifier
            .verify(
                Some(&header(&r, "webhook-id")),
                Some(&ts),
                Some(&header(&r, "webhook-signature")),
                r.body.as_bytes(),
                ts.parse().expect("ts"),
            )
            .expect("each attempt is signed with the secret shown once");
        assert_eq!(r.path, "/hooks/genesis");
    }
    let body: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["type"], "lead.created");
    assert_eq!(body["data"]["email"], "ada@lead.test");
    assert_eq!(body["data"]["workspace_id"], ws.to_string());
    let (_, deliveries) = app
        .get(&format!("/api/v1/workspaces/{ws}/webhook-deliveries"))
        .await;
    let d = &deliveries["items"][0];
    assert_eq!(
        (d["attempts"].as_i64(), d["last_status"].as_i64()),
        (Some(4), Some(200)),
        "{d}"
    );
    assert!(d["delivered_at"].is_string());
    assert!(
        other.received().is_empty(),
        "an endpoint gets only the events it chose"
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_dead_lettered_and_a_replay_delivers_it() {
    let clock = Clock::manual(Utc::now());
    let app = app_on(clock.clone(), Duration::from_millis(300)).await;
    let ws = workspace(&app, "hooks_dead").await;
    let rx = Receiver::start(&[Answer::Hang; 4]).await;
    register(&app, ws, &rx.url, &["lead.created"]).await;
    import(&app, ws, &["bob@lead.test"]).await;
    rx.wait_for(1).await;
    for (wait, n) in [(5, 2), (30, 3), (300, 4)] {
        tokio::time::sleep(Duration::from_millis(600)).await;
        clock.advance(Duration::from_secs(wait));
        rx.wait_for(n).await;
    }
    let mut dead = Value::Null;
    for _ in 0..50 {
        let (_, list) = app
            .get(&format!(
                "/api/v1/workspaces/{ws}/webhook-deliveries?dead=true"
            ))
            .await;
        if list["items"].as_array().is_some_and(|a| a.len() == 1) {
            dead = list["items"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead["attempts"], 4, "{dead}");
    let why = dead["last_error"].as_str().expect("why");
    assert!(
        why.starts_with("gave up after 4 attempts") && why.contains("did not answer"),
        "{why}"
    );
    // Nothing more is tried, however long we wait.
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received().len(), 4);

    rx.answer_next(&[Answer::Status(204)]);
    let id = dead["id"].as_str().expect("id");
    let (status, body, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhook-deliveries/{id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let got = rx.wait_for(5).await;
    assert_eq!(
        header(&got[4], "webhook-id"),
        header(&got[0], "webhook-id"),
        "the same message"
    );
    let (status, again, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhook-deliveries/{id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "not a dead letter any more: {again}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE event = 'WEBHOOK_DELIVERY_REPLAYED'",
    )
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1);
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn endpoints_on_private_addresses_and_redirects_go_nowhere() {
    // Production rules: the app under test refuses private endpoints.
    let app = super::spawn_app().await;
    let (status, ws, _) = app.post("/api/v1/workspaces", ws_body("hooks_ssrf")).await;
    assert_eq!(status, 201);
    let id = ws["id"].as_str().expect("id");
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1:9/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
    ] {
        let (status, p, _) = app
            .post(
                &format!("/api/v1/workspaces/{id}/webhooks"),
                json!({ "url": url, "events": ["lead.created"] }),
            )
            .await;
        assert_eq!(
            (status, p["field"].as_str()),
            (422, Some("url")),
            "{url}: {p}"
        );
    }
    let (status, p, _) = app
        .post(
            &format!("/api/v1/workspaces/{id}/webhooks"),
            json!({ "url": "https://hooks.example.com/x", "events": ["lead.deleted"] }),
        )
        .await;
    assert_eq!((status, p["field"].as_str()), (422, Some("events")), "{p}");

    // A host name that resolves to this machine passes the URL check; the sender's
    // resolver refuses it when connecting.
    let ws = WorkspaceId::parse(id).expect("uuid");
    let rx = Receiver::start(&[]).await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .expect("port")
        .to_owned();
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let vault = Arc::new(test_vault());
    let endpoint = uuid::Uuid::now_v7();
    let secret = genesis_protocol::webhook::new_secret();
    let sealed = vault
        .seal(
            secret.as_bytes(),
            &genesis_store::outbound_webhooks::secret_aad(endpoint),
        )
        .expect("seal");
    let url = format!("https://{host}:{port}/hooks");
    app.t
        .db
        .webhook_endpoint_create(
            &genesis_store::NewEndpoint {
                id: endpoint,
                workspace: ws,
                url: &url,
                events: &["lead.created".to_owned()],
                description: "",
                secret: &sealed,
            },
            "test",
        )
        .await
        .expect("endpoint");
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(ws, "test")
        .await
        .expect("partition");
    import(&app, ws, &["eve@lead.test"]).await;
    let strict = WebhookSender::new(vault.clone(), WebhookSettings::default()).expect("sender");
    let due = app
        .t
        .db
        .webhook_claim(Utc::now(), 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(
        strict.deliver(&app.t.db, &due[0]).await.expect("attempt"),
        Attempt::Retrying
    );
    let (_, list) = app
        .get(&format!("/api/v1/workspaces/{id}/webhook-deliveries"))
        .await;
    let why = list["items"][0]["last_error"]
        .as_str()
        .expect("why")
        .to_owned();
    assert!(why.contains("private or internal"), "{why}");
    assert!(
        rx.received().is_empty(),
        "nothing reached the private address"
    );

    // A redirect is a failed attempt, and its target is never called.
    let redirecting = Receiver::start(&[Answer::Redirect]).await;
    sqlx::query("UPDATE genesis.webhook_endpoints SET url = $1")
        .bind(&redirecting.url)
        .execute(app.t.db.owner_pool())
        .await
        .expect("point it at the redirect");
    let lenient = WebhookSender::new(
        vault,
        WebhookSettings {
            allow_private: true,
            ..Default::default()
        },
    )
    .expect("sender");
    let due = app
        .t
        .db
        .webhook_claim(
            Utc::now() + chrono::Duration::seconds(10),
            10,
            Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(
        lenient.deliver(&app.t.db, &due[0]).await.expect("attempt"),
        Attempt::Retrying
    );
    let got = redirecting.received();
    assert_eq!(got.len(), 1, "the redirect's target was not followed");
    assert_eq!(got[0].path, "/hooks/genesis");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_owner_adds_an_endpoint_in_the_dashboard_and_sees_its_secret_once() {
    use super::accounts::{new_workspace, tenant};
    use super::god_mode::{csrf_of, form};
    let app = app_on(Clock::System, Duration::from_secs(5)).await;
    let rx = Receiver::start(&[]).await;
    let owner = tenant(&app, "olga@hooks.test", "eu-west").await;
    let ws_page = new_workspace(&owner, "Hooks", "hooks_dash").await;
    let path = format!("{ws_page}/webhooks");
    let page = owner.get(&path).await.text().await.expect("page");
    assert!(page.contains("No endpoint yet"), "{page}");
    let csrf = csrf_of(&page);
    let r = owner
        .post(&path, form(&[("csrf", &csrf), ("url", &rx.url)]), None)
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("choose at least one event")
    );
    let r = owner
        .post(
            &path,
            form(&[
                ("csrf", &csrf),
                ("url", &rx.url),
                ("event:lead.created", "on"),
                ("event:wallet.low", "on"),
                ("description", "our CRM"),
            ]),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let shown = r.text().await.expect("page");
    let at = shown
        .find("id=\"secret\">")
        .expect("the secret, on this page")
        + 12;
    let secret = shown[at..].split('<').next().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let later = owner.get(&path).await.text().await.expect("page");
    assert!(
        later.contains(&rx.url) && later.contains("lead.created, wallet.low"),
        "{later}"
    );
    assert!(!later.contains(&secret), "the secret is shown once only");
    app.t.cleanup().await.expect("cleanup");
}

fn verifies(secret: &str, r: &Received) -> bool {
    let ts = header(r, "webhook-timestamp");
    WebhookVerifier::new(&[secret])
        .expect("secret")
        .verify(
            Some(&header(r, "webhook-id")),
            Some(&ts),
            Some(&header(r, "webhook-signature")),
            r.body.as_bytes(),
            ts.parse().expect("ts"),
        )
        .is_ok()
}

#[tokio::test]
async fn a_renewed_secret_signs_beside_the_old_one_through_the_overlap_and_alone_after() {
    let clock = Clock::manual(Utc::now());
    let app = app_on(clock.clone(), Duration::from_secs(5)).await;
    let ws = workspace(&app, "hooks_renew").await;
    let rx = Receiver::start(&[]).await;
    let (endpoint, old) = register(&app, ws, &rx.url, &["lead.created"]).await;
    let (status, renewed, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks/{endpoint}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let new = renewed["secret"]
        .as_str()
        .expect("the new secret, once")
        .to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    // During the overlap: two signatures, and a receiver with either secret verifies.
    import(&app, ws, &["first@lead.test"]).await;
    let got = rx.wait_for(1).await;
    assert_eq!(header(&got[0], "webhook-signature").split(' ').count(), 2);
    assert!(verifies(&old, &got[0]) && verifies(&new, &got[0]));
    // After it: the new secret alone.
    clock.advance(Duration::from_secs(25 * 3600));
    import(&app, ws, &["second@lead.test"]).await;
    let got = rx.wait_for(2).await;
    assert_eq!(header(&got[1], "webhook-signature").split(' ').count(), 1);
    assert!(verifies(&new, &got[1]) && !verifies(&old, &got[1]));
    // A secret the tenant was shown in the answer is not shown again.
    let (status, p, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks/{endpoint}/secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn secrets_older_than_90_days_are_renewed_once_and_the_owners_are_told() {
    use genesis_control::workers::reconciler::Reconciler;
    use genesis_control::workers::webhook_secrets::WebhookSecrets;
    let clock = Clock::manual(Utc::now());
    let app = app_on(clock.clone(), Duration::from_secs(5)).await;
    let ws = workspace(&app, "hooks_age").await;
    let rx = Receiver::start(&[]).await;
    let (endpoint, old) = register(&app, ws, &rx.url, &["lead.created"]).await;
    let (fresh, _) = register(&app, ws, &rx.url, &["wallet.low"]).await;
    sqlx::query("UPDATE genesis.webhook_endpoints SET rotated_at = now() - interval '91 days' WHERE id = $1::uuid")
        .bind(&endpoint)
        .execute(app.t.db.owner_pool())
        .await
        .expect("age it");
    let rotation = WebhookSecrets::new(
        RegionalStore::single(app.t.db.clone()),
        Arc::new(test_vault()),
        clock.clone(),
    );
    rotation.reconcile().await.expect("pass");
    assert_eq!(
        rotation.reconcile().await.expect("pass").rotated,
        0,
        "renewed once"
    );
    let count = |sql: &'static str| {
        let pool = app.t.db.owner_pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM genesis.audit_log WHERE event = 'WEBHOOK_SECRET_ROTATED'")
            .await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM genesis.notifications WHERE kind = 'WEBHOOK_SECRET_ROTATED'")
            .await,
        1
    );
    let (_, list) = app.get(&format!("/api/v1/workspaces/{ws}/webhooks")).await;
    let shown: Vec<(String, bool)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().expect("id").to_owned(),
                e["secret_shown"].as_bool().expect("bool"),
            )
        })
        .collect();
    assert!(
        shown.contains(&(endpoint.clone(), false)) && shown.contains(&(fresh, true)),
        "{shown:?}"
    );
    // The new secret, once; a week of both signatures meanwhile.
    let (status, revealed, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks/{endpoint}/secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{revealed}");
    let new = revealed["secret"].as_str().expect("secret").to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    let (status, _, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks/{endpoint}/secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "shown once");
    import(&app, ws, &["aged@lead.test"]).await;
    let got = rx.wait_for(1).await;
    assert!(verifies(&old, &got[0]) && verifies(&new, &got[0]));
    assert_eq!(
        count("SELECT count(*) FROM genesis.audit_log WHERE event = 'WEBHOOK_SECRET_ACCESSED'")
            .await,
        1
    );
    app.t.cleanup().await.expect("cleanup");
}

/// Found by the demo: `[webhooks] allow_private_endpoints` let the sender call a private
/// endpoint, but registration still refused one (it read the brand scraper's setting).
#[tokio::test]
async fn the_webhook_setting_alone_decides_whether_private_endpoints_may_be_registered() {
    let t = TestDb::create().await.expect("test database");
    let plane = genesis_control::ControlPlane::builder(RegionalStore::single(t.db.clone()))
        .webhooks(WebhookSettings {
            allow_private: true,
            ..Default::default()
        })
        .metrics(metrics_handle())
        .vault(Some(Arc::new(test_vault())))
        .api_token(Some(TOKEN))
        .build();
    let app = App {
        base: run(plane).await,
        http: reqwest::Client::new(),
        t,
    };
    let (status, ws, _) = app.post("/api/v1/workspaces", ws_body("hooks_demo")).await;
    assert_eq!(status, 201);
    let id = ws["id"].as_str().expect("id");
    let (status, created, _) = app
        .post(
            &format!("/api/v1/workspaces/{id}/webhooks"),
            json!({ "url": "http://127.0.0.1:9/hooks", "events": ["lead.created"] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    app.t.cleanup().await.expect("cleanup");
}
