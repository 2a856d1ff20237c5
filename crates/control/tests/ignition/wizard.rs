//! The wizard from a tenant's sign-up to a running engine, over real HTTP: the stages saved
//! through the dashboard's forms, Gmail through the fake Google's consent page, the AI key
//! checked at the fake OpenAI, then "Start Engine" igniting a droplet in the simulated
//! cloud, followed live over server-sent events. And a rollback said in words, then retried.

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_sim::ai_providers::Vendor;
use genesis_sim::digitalocean::Faults;
use genesis_sim::dns::DnsRecord;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::{Options, World, world};

const PASSWORD: &str = "staple orbit velvet canyon";

/// A person's browser: the session cookie, no automatic redirects.
pub(crate) struct Person {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap_or_default().to_owned()
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl Person {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("get")
    }

    pub(crate) async fn text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("text")
    }

    /// Posts a page's form: its CSRF token (read from `page`) and `pairs`.
    pub(crate) async fn submit(
        &self,
        page: &str,
        action: &str,
        pairs: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.text(page).await;
        let csrf = csrf_of(&html);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.http
            .post(format!("{}{action}", self.base))
            .header(COOKIE, &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&all))
            .send()
            .await
            .expect("post")
    }
}

/// Signs up, proves the address with the link the outbox holds, signs in.
pub(crate) async fn sign_up(w: &World, email: &str) -> Person {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", w.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = post(
        "/app/sign-up",
        form(&[
            ("email", email),
            ("password", PASSWORD),
            ("region", "eu-west"),
        ]),
    )
    .await
    .expect("sign up");
    assert_eq!(r.status(), 200);
    let link: String = sqlx::query_scalar(
        "SELECT body->>'link' FROM genesis.notifications WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(email)
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("a verification link");
    let token = link.split("token=").nth(1).expect("token");
    let r = post("/app/verify", form(&[("token", token)]))
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    let r = post(
        "/app/sign-in",
        form(&[("email", email), ("password", PASSWORD), ("next", "/app")]),
    )
    .await
    .expect("sign in");
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get(SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_owned();
    Person {
        http,
        base: w.base.clone(),
        cookie,
    }
}

/// A booking page on this machine, with the words a booking page has.
async fn booking_site() -> String {
    let app = axum::Router::new().route(
        "/ada/30min",
        axum::routing::get(|| async {
            axum::response::Html(
                "<html><head><title>Book a meeting with Ada</title></head>\
                 <body><h1>Schedule a 30 minute call</h1><p>Pick a time slot.</p></body></html>",
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/ada/30min", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// Stages 2 to 6 through the dashboard: answers the workspace's page path.
async fn set_up(w: &World, p: &Person, slug: &str) -> String {
    let r = p
        .submit(
            "/app",
            "/app/workspaces",
            &[("name", "Acme"), ("slug", slug)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let ws = location(&r);
    let setup = format!("{ws}/setup");

    let r = p
        .submit(
            &setup,
            &format!("{ws}/setup/brand"),
            &[
                ("action", "confirm"),
                ("name", "Acme Rockets"),
                ("products", "Rockets"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let link = booking_site().await;
    let r = p
        .submit(
            &setup,
            &format!("{ws}/setup/booking"),
            &[("booking_url", &link), ("accept", "1")],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());

    // Start Engine waits for Gmail.
    let engine = p.text(&format!("{ws}/setup/ignition")).await;
    assert!(engine.contains("engine-waiting"), "{engine}");

    let r = p
        .submit(
            &format!("{ws}/setup/email"),
            &format!("{ws}/setup/email"),
            &[("sender_name", "Ada Lovelace")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let consent_url = location(&r);
    let outside = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = outside
        .get(&consent_url)
        .send()
        .await
        .expect("consent")
        .text()
        .await
        .expect("html");
    let at = page.find(r#"name="request" value=""#).expect("request") + 22;
    let request = page[at..].split('"').next().expect("id");
    let origin = consent_url.split("/o/oauth2").next().expect("origin");
    let r = outside
        .post(format!("{origin}/o/oauth2/v2/auth/consent"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("request", request),
            ("account", "ada@gmail.example"),
            ("decision", "allow"),
            ("grant", "https://www.googleapis.com/auth/gmail.send"),
        ]))
        .send()
        .await
        .expect("consent");
    let back = location(&r);
    let r = p
        .get(back.strip_prefix(&w.base).expect("our callback"))
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());

    // DNS: the company's zone exists; the provider adds the records; the check sees them.
    let domain = format!("{slug}.test").replace('_', "-");
    w.knot
        .apply(
            &domain,
            &[DnsRecord {
                kind: "A".into(),
                host: "@".into(),
                value: "192.0.2.20".into(),
                ttl: 60,
            }],
        )
        .await
        .expect("zone");
    let dns = format!("{ws}/setup/dns");
    let r = p
        .submit(&dns, &dns, &[("action", "domain"), ("domain", &domain)])
        .await;
    assert_eq!(r.status(), 200);
    let r = p.submit(&dns, &dns, &[("action", "apply")]).await;
    let page = r.text().await.expect("page");
    assert!(page.contains("dns-configured"), "{page}");

    let key = w.ai.issue(Vendor::OpenAi);
    let r = p
        .submit(
            &format!("{ws}/setup/ai-keys"),
            &format!("{ws}/setup/ai-keys"),
            &[("openai_key", &key)],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    ws
}

/// Presses Start Engine on the workspace at `ws`.
async fn press_start(p: &Person, ws: &str) -> reqwest::Response {
    let engine = format!("{ws}/setup/ignition");
    p.submit(&engine, &engine, &[]).await
}

/// Reads the event stream until a `progress` event says the saga finished; answers every
/// progress event's data.
async fn follow(p: &Person, ws: &str) -> Vec<serde_json::Value> {
    let mut res = p.get(&format!("{ws}/setup/ignition/events")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("the engine finished in time")
            .expect("stream")
            .expect("the stream ended before the saga finished");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: progress") {
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                let v: serde_json::Value = serde_json::from_str(&data).expect("json");
                let finished = v["finished"] == true;
                events.push(v);
                if finished {
                    return events;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_tenant_goes_from_sign_up_to_a_running_engine() {
    let w = world(Options::default()).await;
    let p = sign_up(&w, "ada@acme.example").await;
    let ws = set_up(&w, &p, "acme_engine").await;

    let r = press_start(&p, &ws).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("lead-token") && page.contains("whk_"),
        "{page}"
    );
    assert!(page.contains("step-DROPLET_PROVISIONING"));

    // A second press while it runs: refused, and nothing new starts.
    let again = press_start(&p, &ws).await;
    let code = again.status().as_u16();
    let text = again.text().await.expect("page");
    assert!(code == 409 && text.contains("already"), "{code}: {text}");

    let events = follow(&p, &ws).await;
    let last = events.last().expect("an event");
    assert_eq!(last["phase"], "DONE", "{last:#}");
    assert!(
        last["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["status"] == "done"),
        "{last:#}"
    );
    assert_eq!(last["steps"].as_array().map(Vec::len), Some(6));

    let id = genesis_core::WorkspaceId::parse(ws.rsplit('/').next().expect("id")).expect("id");
    let ignitions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM genesis.ignitions WHERE workspace_id = $1")
            .bind(id.as_uuid())
            .fetch_one(w.t.db.owner_pool())
            .await
            .expect("count");
    assert_eq!(ignitions, 1, "the second press started nothing");
    let engine = p.text(&format!("{ws}/setup/ignition")).await;
    assert!(engine.contains("engine-running"), "{engine}");
    let setup = p.text(&format!("{ws}/setup")).await;
    assert!(setup.contains(r#"data-stage="ignition" data-state="done""#));
    // Once running, Start Engine is refused too.
    let again = press_start(&p, &ws).await;
    assert_eq!(again.status(), 409);

    // Campaigns: pausing one changes what the engine should run, then the engine itself.
    let page = p.text(&ws).await;
    assert!(
        page.contains(r#"data-campaign="outreach" data-active="true""#),
        "{page}"
    );
    let droplet =
        w.t.db
            .droplet_live_for_workspace(id)
            .await
            .expect("droplets")
            .into_iter()
            .next()
            .expect("the engine");
    let n8n = w
        .hook
        .n8n(droplet.provider_id.expect("provider"))
        .expect("its n8n");
    let outreach_id =
        w.t.db
            .droplet_workflows(droplet.id)
            .await
            .expect("desired")
            .into_iter()
            .find(|r| r.key == "outreach")
            .expect("outreach")
            .workflow_id;
    let active_in_n8n = |n8n: &genesis_sim::n8n::FakeN8n| {
        n8n.workflow_summary()
            .into_iter()
            .find(|(wid, _, _)| *wid == outreach_id)
            .map(|(_, _, a)| a)
    };
    assert_eq!(active_in_n8n(&n8n), Some(true));
    let r = p
        .submit(
            &ws,
            &format!("{ws}/campaigns/outreach"),
            &[("action", "pause")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).ends_with("?applied=now"), "{}", location(&r));
    assert_eq!(active_in_n8n(&n8n), Some(false), "the engine paused it");
    let desired = w.t.db.droplet_workflows(droplet.id).await.expect("desired");
    assert!(desired.iter().any(|r| r.key == "outreach" && !r.active));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE event = 'WORKFLOW_DEACTIVATED' AND workspace_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1);
    let page = p.text(&ws).await;
    assert!(
        page.contains(r#"data-campaign="outreach" data-active="false""#),
        "{page}"
    );
    let r = p
        .submit(
            &ws,
            &format!("{ws}/campaigns/outreach"),
            &[("action", "resume")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(active_in_n8n(&n8n), Some(true));
    // A campaign the engine does not run is not found.
    let r = p
        .submit(
            &ws,
            &format!("{ws}/campaigns/nothing"),
            &[("action", "pause")],
        )
        .await;
    assert_eq!(r.status(), 404);
    // A new OpenAI key given on the AI keys page reaches the running engine's n8n, in the
    // credential the ignition made (issue 24: a tenant's own key update).
    let fresh = w.ai.issue(Vendor::OpenAi);
    let r = p
        .submit(
            &format!("{ws}/setup/ai-keys"),
            &format!("{ws}/setup/ai-keys"),
            &[("openai_key", &fresh)],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let openai: Vec<_> = n8n
        .credential_summary()
        .into_iter()
        .filter(|c| c.2 == "openAiApi")
        .collect();
    assert_eq!(openai.len(), 1, "{openai:?}");
    let data = n8n.credential_data(&openai[0].0).expect("data");
    assert_eq!(data["apiKey"], fresh.as_str());
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_start_is_said_in_words_and_can_be_retried() {
    let w = world(Options::default()).await;
    let p = sign_up(&w, "grace@acme.example").await;
    let ws = set_up(&w, &p, "acme_retry").await;
    w.faults(Faults {
        endpoint_error_rates: BTreeMap::from([("POST /v2/droplets".to_owned(), 1.0)]),
        ..Faults::default()
    });
    let r = press_start(&p, &ws).await;
    assert_eq!(r.status(), 200);
    let events = follow(&p, &ws).await;
    let last = events.last().expect("an event");
    assert_eq!(last["phase"], "ROLLED_BACK", "{last:#}");
    assert_eq!(last["failed"], "Starting your private server");
    assert!(!last["advice"].as_array().expect("advice").is_empty());

    let page = p.text(&format!("{ws}/setup/ignition")).await;
    assert!(page.contains("Your engine did not start"), "{page}");
    assert!(
        page.contains("try again") || page.contains("Try again"),
        "{page}"
    );
    // Internals stay in the log: the page says no HTTP status or endpoint.
    assert!(!page.contains("/v2/droplets"), "{page}");

    w.faults(Faults::default());
    let r = press_start(&p, &ws).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let events = follow(&p, &ws).await;
    assert_eq!(events.last().expect("an event")["phase"], "DONE");
    w.finish().await;
}
