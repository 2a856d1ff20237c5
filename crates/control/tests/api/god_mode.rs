//! God Mode's sign-in and access control over real HTTP: sessions, CSRF, audit.

use genesis_control::credentials::hash_password;
use genesis_control::god::GodSettings;
use genesis_core::audit::AuditCategory;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};

use genesis_control::sign_in_guard::SignInLimits;

use super::{App, spawn_app_guarded, spawn_app_with};

pub(crate) const EMAIL: &str = "ops@genesis.test";
pub(crate) const PASSWORD: &str = "a long enough password";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    pub(crate) cookie: Option<String>,
    /// Sent as `X-Forwarded-For` (the test app trusts its loopback peer as a proxy when
    /// told to): where this browser appears to be.
    pub(crate) from: Option<String>,
}

impl Browser {
    pub(crate) fn new(app: &App) -> Self {
        Self {
            http: no_redirects(),
            base: app.base.clone(),
            cookie: None,
            from: None,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(f) = &self.from {
            r = r.header("x-forwarded-for", f);
        }
        if let Some(c) = &self.cookie {
            r = r.header(COOKIE, c);
        }
        r.send().await.expect("get")
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: String,
        origin: Option<&str>,
    ) -> reqwest::Response {
        self.post_as(
            path,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            origin,
        )
        .await
    }

    /// Posts `body` of `content_type` (a multipart upload), with the session.
    pub(crate) async fn post_as(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(f) = &self.from {
            r = r.header("x-forwarded-for", f);
        }
        if let Some(c) = &self.cookie {
            r = r.header(COOKIE, c);
        }
        if let Some(o) = origin {
            r = r.header(ORIGIN, o);
        }
        r.send().await.expect("post")
    }

    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        let r = self
            .post(
                "/god/sign-in",
                form(&[("email", email), ("password", password), ("next", "/god")]),
                None,
            )
            .await;
        if let Some(c) = r.headers().get(SET_COOKIE) {
            let c = c.to_str().expect("ascii");
            self.cookie = c.split(';').next().map(str::to_owned);
        }
        r
    }
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap_or_default().to_owned()
}

pub(crate) async fn with_operator(app: &App) {
    let hash = hash_password(PASSWORD).expect("hash");
    app.t
        .db
        .operator_create(EMAIL, &hash, "test")
        .await
        .expect("operator");
}

pub(crate) async fn audit_reasons(app: &App, event: &str) -> Vec<String> {
    app.t
        .db
        .audit_list(None, Some(event), 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn every_god_mode_route_needs_a_session() {
    let app = spawn_app_with(None).await;
    let b = Browser::new(&app);
    for page in [
        "/god",
        "/god/heatmap",
        "/god/regions",
        "/god/metrics?hours=6",
        "/god/alerts",
        "/god/rollouts",
        "/god/rollouts/x",
        "/god/droplets/x?tab=audit",
        "/god/dr",
        "/god/no-such-page",
    ] {
        let r = b.get(page).await;
        assert_eq!(r.status(), 303, "{page}");
        let to = location(&r);
        assert!(to.starts_with("/god/sign-in?next="), "{page} → {to}");
        assert!(r.text().await.expect("body").is_empty(), "nothing rendered");
    }
    assert_eq!(
        location(&b.get("/god").await),
        "/god/sign-in?next=%2Fgod",
        "the page asked for is where sign-in returns"
    );
    for api in [
        "/god/api/fleet",
        "/god/api/regions",
        "/god/api/metrics",
        "/god/api/rollouts/x",
        "/god/api/rollouts/x/events",
    ] {
        let r = b.get(api).await;
        assert_eq!(
            r.status(),
            401,
            "{api}: an API call is refused, not redirected"
        );
    }
    for (form, body) in [
        ("/god/rollouts", "scenario=bug_fix"),
        ("/god/rollouts/x/abort", "csrf=x"),
    ] {
        let r = b.post(form, body.to_owned(), None).await;
        assert_eq!(r.status(), 303, "{form}: to sign in, nothing done");
    }
    let r = b.post("/god/sign-out", form(&[("csrf", "x")]), None).await;
    assert_eq!(r.status(), 303);
    // A made-up cookie is no session either.
    let mut forged = Browser::new(&app);
    forged.cookie = Some("genesis_session=forged".into());
    assert_eq!(forged.get("/god/api/fleet").await.status(), 401);
    // The sign-in page itself is open.
    let r = b.get("/god/sign-in").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains(r#"type="password""#));
}

#[tokio::test]
async fn an_operator_signs_in_sees_the_fleet_and_signs_out() {
    let app = spawn_app_with(Some(super::TOKEN)).await;
    with_operator(&app).await;
    let mut b = Browser::new(&app);

    let r = b.sign_in(EMAIL, "not the password").await;
    assert_eq!(r.status(), 401);
    assert!(b.cookie.is_none());
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Wrong e-mail, password or code.")
    );
    let r = b.sign_in("nobody@genesis.test", PASSWORD).await;
    assert_eq!(r.status(), 401, "an unknown address reads the same");
    assert_eq!(
        audit_reasons(&app, "LOGIN_FAILED").await,
        ["unknown_operator", "wrong_password"],
        "spec 63.1: refused sign-ins are audited, newest first"
    );

    let r = b.sign_in(" OPS@genesis.test ", PASSWORD).await;
    assert_eq!(r.status(), 303, "addresses are case-insensitive");
    assert_eq!(location(&r), "/god");
    let set = r.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert_eq!(
        app.t
            .db
            .audit_list(None, Some("LOGIN_SUCCESS"), 5)
            .await
            .expect("a")
            .len(),
        1
    );

    let r = b.get("/god").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.expect("page");
    assert!(html.contains("Fleet overview") && html.contains(EMAIL));
    let csrf = csrf_of(&html);

    // The JSON behind the page agrees with the API.
    let fleet: serde_json::Value = b.get("/god/api/fleet").await.json().await.expect("json");
    let (_, api) = app.get("/api/v1/fleet/health").await;
    assert_eq!(fleet["fleet"], api);

    // Sign-out needs the session's CSRF token, from this site.
    let r = b
        .post("/god/sign-out", form(&[("csrf", "forged")]), None)
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .post(
            "/god/sign-out",
            form(&[("csrf", &csrf)]),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(r.status(), 403, "a cross-site form is refused");
    assert_eq!(b.get("/god").await.status(), 200, "still signed in");
    let r = b
        .post("/god/sign-out", form(&[("csrf", &csrf)]), None)
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    // The old cookie is worth nothing now, even replayed.
    assert_eq!(b.get("/god").await.status(), 303);
    assert_eq!(b.get("/god/api/fleet").await.status(), 401);
    assert_eq!(
        app.t
            .db
            .audit_list(None, Some("LOGOUT"), 5)
            .await
            .expect("a")
            .len(),
        1
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_address_from_that_source_only() {
    let app = spawn_app_guarded(
        None,
        GodSettings {
            max_failures: 2,
            ..GodSettings::default()
        },
        SignInLimits::default(),
    )
    .await;
    with_operator(&app).await;
    let mut attacker = Browser::new(&app);
    attacker.from = Some("203.0.113.66".into());
    for _ in 0..2 {
        assert_eq!(attacker.sign_in(EMAIL, "guess").await.status(), 401);
    }
    let r = attacker.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(
        r.status(),
        429,
        "even the right password, from there, once locked"
    );
    assert!(r.headers().contains_key("retry-after"));
    assert!(attacker.cookie.is_none());
    assert_eq!(
        audit_reasons(&app, "LOGIN_FAILED").await[0],
        "too_many_failures"
    );
    // The operator, elsewhere, is not locked out by someone else's guesses.
    let mut operator = Browser::new(&app);
    operator.from = Some("198.51.100.10".into());
    assert_eq!(operator.sign_in(EMAIL, PASSWORD).await.status(), 303);
    assert!(operator.cookie.is_some());
    // Another address is not affected, even from the attacker's source.
    let hash = hash_password(PASSWORD).expect("hash");
    app.t
        .db
        .operator_create("second@genesis.test", &hash, "test")
        .await
        .expect("operator");
    assert_eq!(
        attacker
            .sign_in("second@genesis.test", PASSWORD)
            .await
            .status(),
        303
    );
}

/// Signs `b` in as the test operator (created first).
pub(crate) async fn signed_in(app: &App) -> Browser {
    with_operator(app).await;
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in(EMAIL, PASSWORD).await.status(), 303);
    b
}

#[tokio::test]
async fn the_dr_page_shows_each_databases_coverage_and_the_snapshots_cost() {
    let app = crate::spawn_app().await;
    let b = signed_in(&app).await;
    let r = b.get("/god/dr").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("page");
    assert!(html.contains(r#"id="dr-coverage""#), "{html}");
    // One database serves every region here: one row, nothing kept yet.
    assert_eq!(html.matches("<tr>").count(), 2, "{html}");
    assert!(html.contains("$0.00 a month"), "{html}");
    assert!(
        html.contains(r#"href="/god/dr""#),
        "linked from the navigation"
    );
}

#[tokio::test]
async fn the_heatmap_has_one_cell_per_droplet_and_each_opens_its_page() {
    use genesis_core::{DropletEvent, DropletId, Region, WorkspaceId};
    let app = spawn_app_with(Some(super::TOKEN)).await;
    let b = signed_in(&app).await;
    let mut healthy = Vec::new();
    for (slug, region, n) in [
        ("heat_eu", Region::EuWest, 700),
        ("heat_us", Region::UsEast, 300),
    ] {
        let (status, ws, _) = app
            .post(
                "/api/v1/workspaces",
                serde_json::json!({"name": slug, "slug": slug, "region": region.code(), "tier": "standard"}),
            )
            .await;
        assert_eq!(status, 201, "{ws}");
        let ws: WorkspaceId = ws["id"].as_str().expect("id").parse().expect("uuid");
        for i in 0..n {
            let id = DropletId::new();
            app.t
                .db
                .droplet_register(id, ws, region, "test")
                .await
                .expect("droplet");
            if i % 100 == 0 {
                for (v, e) in [
                    DropletEvent::Booted,
                    DropletEvent::CloudInitFinished,
                    DropletEvent::HandshakeCompleted,
                ]
                .into_iter()
                .enumerate()
                {
                    app.t
                        .db
                        .droplet_transition(id, v as i64, e, "test")
                        .await
                        .expect("up");
                }
                healthy.push(id);
            }
        }
    }
    let html = b.get("/god/heatmap").await.text().await.expect("page");
    let cells = html.matches(r#"<a class="s-"#).count();
    assert_eq!(cells, 1_000, "one cell per droplet");
    assert_eq!(
        html.matches(r#"<a class="s-ACTIVE_HEALTHY""#).count(),
        healthy.len()
    );
    assert_eq!(
        html.matches(r#"<a class="s-PENDING""#).count(),
        1_000 - healthy.len()
    );
    // Each cell names its tenant, state and heartbeat (tooltip and accessible name).
    assert_eq!(
        html.matches(r#"title="heat_us · being created · no heartbeat yet""#)
            .count(),
        297
    );
    // Filters narrow the map; the legend counts what each state would show.
    let filtered = b
        .get("/god/heatmap?state=ACTIVE_HEALTHY")
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(filtered.matches(r#"<a class="s-"#).count(), healthy.len());
    let filtered = b
        .get("/god/heatmap?region=us-east&tier=standard")
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(filtered.matches(r#"<a class="s-"#).count(), 300);
    assert!(
        filtered
            .contains(r#"href="/god/heatmap?state=PENDING&amp;region=us-east&amp;tier=standard""#)
    );
    let none = b
        .get("/god/heatmap?tier=enterprise")
        .await
        .text()
        .await
        .expect("page");
    assert!(none.contains(r#"id="no-cells""#));
    let eu = html.find(r#"data-region="eu-west""#).expect("eu block");
    let us = html.find(r#"data-region="us-east""#).expect("us block");
    assert!(eu < us, "regions in order");
    // Every cell links to its droplet; one of them opens with its timeline.
    let link = format!(r#"href="/god/droplets/{}""#, healthy[0]);
    assert!(html.contains(&link), "{link}");
    let r = b.get(&format!("/god/droplets/{}", healthy[0])).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("page");
    for expected in [
        "ACTIVE_HEALTHY",
        "HANDSHAKE_PENDING",
        "HANDSHAKE_COMPLETED",
        "eu-west",
    ] {
        assert!(page.contains(expected), "{expected} on the droplet page");
    }
    assert_eq!(b.get("/god/droplets/not-a-uuid").await.status(), 404);
    assert_eq!(
        b.get(&format!("/god/droplets/{}", DropletId::new()))
            .await
            .status(),
        404
    );
    // Without a session, neither page says anything.
    let stranger = Browser::new(&app);
    assert_eq!(stranger.get("/god/heatmap").await.status(), 303);
    assert_eq!(
        stranger
            .get(&format!("/god/droplets/{}", healthy[0]))
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn the_watchdog_page_separates_reviews_drift_and_heals_and_escapes_text() {
    use genesis_core::{DropletId, Region, WorkspaceId};
    use genesis_store::{AuditEvent, NewAlert};
    let app = spawn_app_with(Some(super::TOKEN)).await;
    let b = signed_in(&app).await;
    let (_, ws, _) = app
        .post(
            "/api/v1/workspaces",
            serde_json::json!({"name": "Watched", "slug": "watched", "region": "eu-west", "tier": "standard"}),
        )
        .await;
    let ws: WorkspaceId = ws["id"].as_str().expect("id").parse().expect("uuid");
    let orphan = DropletId::new();
    let drifted = DropletId::new();
    for d in [orphan, drifted] {
        app.t
            .db
            .droplet_register(d, ws, Region::EuWest, "test")
            .await
            .expect("droplet");
    }
    for (droplet, kind, summary) in [
        (
            orphan,
            "manual_review",
            "never came back <script>alert(1)</script>",
        ),
        (drifted, "version_mismatch", "n8n runs tpl:2026.10.0"),
    ] {
        app.t
            .db
            .alert_raise(
                &NewAlert {
                    workspace: Some(ws),
                    droplet: Some(droplet),
                    kind,
                    severity: "HIGH",
                    summary,
                    details: &serde_json::json!({}),
                },
                "watchdog",
            )
            .await
            .expect("alert");
    }
    let mut conn = app.t.db.app_pool().acquire().await.expect("conn");
    genesis_store::audit::record(
        &mut conn,
        &AuditEvent::new("watchdog", AuditCategory::Workflows, "DRIFT_HEALED")
            .subject(drifted.to_string())
            .details(serde_json::json!({"kind": "missing_workflow"})),
    )
    .await
    .expect("audit");

    let r = b.get("/god/alerts").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("page");
    let section = |id: &str| {
        let at = html
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("{id}"));
        html[at..]
            .split("</table>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(section("review").contains("manual_review"));
    assert!(!section("review").contains("version_mismatch"));
    assert!(section("drift").contains("version_mismatch"));
    assert!(section("healed").contains("missing_workflow"));
    assert!(section("healed").contains(&format!("droplets/{drifted}")));
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>alert"),
        "tenant text is escaped"
    );
    assert_eq!(Browser::new(&app).get("/god/alerts").await.status(), 303);
}

/// Registers `n` droplets of `ws` in `region` and walks each through `events`.
async fn droplets_in(
    app: &App,
    ws: genesis_core::WorkspaceId,
    region: genesis_core::Region,
    n: usize,
    events: &[genesis_core::DropletEvent],
) {
    for _ in 0..n {
        let id = genesis_core::DropletId::new();
        app.t
            .db
            .droplet_register(id, ws, region, "test")
            .await
            .expect("droplet");
        for (v, e) in events.iter().enumerate() {
            app.t
                .db
                .droplet_transition(id, v as i64, *e, "test")
                .await
                .expect("transition");
        }
    }
}

async fn workspace(app: &App, slug: &str, region: &str, tier: &str) -> genesis_core::WorkspaceId {
    let (status, ws, _) = app
        .post(
            "/api/v1/workspaces",
            serde_json::json!({"name": slug, "slug": slug, "region": region, "tier": tier}),
        )
        .await;
    assert_eq!(status, 201, "{ws}");
    ws["id"].as_str().expect("id").parse().expect("uuid")
}

#[tokio::test]
async fn regions_are_judged_from_their_droplets_and_the_overview_counts_tiers() {
    use genesis_core::{DropletEvent as E, Region};
    let app = spawn_app_with(Some(super::TOKEN)).await;
    let b = signed_in(&app).await;
    let up = [E::Booted, E::CloudInitFinished, E::HandshakeCompleted];
    let degraded = [
        E::Booted,
        E::CloudInitFinished,
        E::HandshakeCompleted,
        E::ResourcesHigh,
    ];
    let us = workspace(&app, "reg_us", "us-east", "standard").await;
    droplets_in(&app, us, Region::UsEast, 10, &up).await;
    let eu = workspace(&app, "reg_eu", "eu-west", "enterprise").await;
    droplets_in(&app, eu, Region::EuWest, 19, &up).await;
    droplets_in(&app, eu, Region::EuWest, 1, &degraded).await;
    let ap = workspace(&app, "reg_ap", "apac", "high-priority").await;
    droplets_in(&app, ap, Region::Apac, 3, &up).await;
    droplets_in(&app, ap, Region::Apac, 2, &degraded).await;

    let r = b.get("/god/api/regions").await;
    assert_eq!(r.status(), 200);
    let regions: serde_json::Value = r.json().await.expect("json");
    let status_of = |code: &str| {
        regions
            .as_array()
            .expect("list")
            .iter()
            .find(|v| v["region"] == code)
            .unwrap_or_else(|| panic!("{code} listed: {regions}"))
            .clone()
    };
    assert_eq!(status_of("us-east")["status"], "HEALTHY");
    assert_eq!(status_of("eu-west")["status"], "DEGRADED");
    assert_eq!(status_of("eu-west")["impaired"], 1);
    assert_eq!(status_of("apac")["status"], "CRITICAL", "60 % healthy");
    assert_eq!(
        status_of("us-west")["total"],
        0,
        "a region without droplets is listed"
    );
    let html = b.get("/god/regions").await.text().await.expect("page");
    assert!(html.contains(r#"data-region="apac" data-status="CRITICAL""#));
    assert!(html.contains("60.0 %"), "the healthy share is shown");

    let fleet: serde_json::Value = b.get("/god/api/fleet").await.json().await.expect("json");
    assert_eq!(fleet["fleet"]["by_tier"]["standard"], 10);
    assert_eq!(fleet["fleet"]["by_tier"]["enterprise"], 20);
    assert_eq!(fleet["fleet"]["by_tier"]["high-priority"], 5);
    assert_eq!(fleet["ignitions"]["count"], 0);
    let html = b.get("/god").await.text().await.expect("page");
    assert!(
        html.contains(r#"<tr data-tier="enterprise"><td>enterprise</td><td>20</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"id="ignitions""#));
    // The JSON is for signed-in operators only.
    assert_eq!(
        Browser::new(&app).get("/god/api/regions").await.status(),
        401
    );
}

#[tokio::test]
async fn sidecar_reports_add_up_into_the_metrics_page_once_each() {
    let app = spawn_app_with(Some(super::TOKEN)).await;
    let b = signed_in(&app).await;
    // Three droplets with sidecar tokens (eu-west, as the seed puts them).
    let sidecars = app.t.db.bench_sidecars_seed(3).await.expect("seed");
    let now = chrono::Utc::now().timestamp_millis();
    let report =
        |executions: u64, rate: f64, ms: u64, emails: u64, errors: serde_json::Value, end: i64| {
            serde_json::json!({
                "total_executions": executions, "success_rate": rate, "avg_duration_ms": ms,
                "email_sent_count": emails, "error_types": errors,
                "period_start_ms": end - 900_000, "period_end_ms": end,
            })
        };
    let post = |token: String, body: serde_json::Value| {
        let http = app.http.clone();
        let url = format!("{}/api/v1/sidecar/metrics", app.base);
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    let reports = [
        report(100, 0.9, 200, 40, serde_json::json!({"error": 10}), now),
        report(300, 1.0, 100, 150, serde_json::json!({}), now),
        report(
            100,
            0.5,
            600,
            0,
            serde_json::json!({"error": 30, "crashed": 20}),
            now,
        ),
    ];
    for (s, r) in sidecars.iter().zip(&reports) {
        assert_eq!(post(s.token.clone(), r.clone()).await, 204);
    }
    // A retried delivery (same period) is not counted twice; an older one neither.
    assert_eq!(
        post(sidecars[0].token.clone(), reports[0].clone()).await,
        204
    );
    let older = report(999, 1.0, 1, 999, serde_json::json!({}), now - 60_000);
    assert_eq!(post(sidecars[1].token.clone(), older).await, 204);
    // Reports that cannot be right are refused, before anything is recorded.
    for bad in [
        report(1, 1.5, 1, 0, serde_json::json!({}), now + 1_000),
        report(1, 1.0, 1, 0, serde_json::json!({}), now + 3_600_000),
    ] {
        assert_eq!(post(sidecars[2].token.clone(), bad).await, 422);
    }
    assert_eq!(
        post("not-a-token".into(), reports[0].clone()).await,
        401,
        "only sidecars report"
    );

    let r = b.get("/god/api/metrics?hours=6").await;
    assert_eq!(r.status(), 200);
    let m: serde_json::Value = r.json().await.expect("json");
    let t = &m["totals"];
    assert_eq!(t["executions"], 500);
    assert_eq!(t["reports"], 3);
    assert_eq!(t["emails_sent"], 190);
    // (90 + 300 + 50) / 500 succeeded; (100·200 + 300·100 + 100·600) / 500 ms.
    assert!(
        (t["success_rate"].as_f64().expect("rate") - 0.88).abs() < 1e-9,
        "{t}"
    );
    assert!(
        (t["avg_duration_ms"].as_f64().expect("mean") - 220.0).abs() < 1e-9,
        "{t}"
    );
    assert_eq!(
        m["top_errors"],
        serde_json::json!([["error", 40], ["crashed", 20]])
    );
    assert_eq!(
        m["buckets"].as_array().expect("buckets").len(),
        24,
        "6 h of 15 min"
    );
    let filled: Vec<&serde_json::Value> = m["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter(|b| b["executions"] != 0)
        .collect();
    assert_eq!(
        filled.len(),
        1,
        "all three in the bucket their period ends in"
    );
    let other: serde_json::Value = b
        .get("/god/api/metrics?hours=6&region=us-east")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(other["totals"]["executions"], 0, "by region");

    let html = b.get("/god/metrics").await.text().await.expect("page");
    assert!(
        html.contains(r#"<div class="card" id="executions"><b>500</b>"#),
        "{html}"
    );
    assert!(html.contains("88.0 %"));
    assert_eq!(
        html.matches("<rect ").count(),
        2,
        "one executions bar and one emails bar (the only bucket with reports)"
    );
    assert!(html.contains("<td>crashed</td><td>20</td>"));
    assert_eq!(b.get("/god/api/metrics?hours=0").await.status(), 422);
    assert_eq!(b.get("/god/api/metrics?region=mars").await.status(), 422);
    assert_eq!(Browser::new(&app).get("/god/metrics").await.status(), 303);
}
