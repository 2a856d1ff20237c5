//! The front door under attack (issue 19): errors the framework produces are problem+json
//! too, every response carries the browser security headers, and sign-ins cannot be turned
//! into a flood of CPU, memory or audit rows.

use std::time::{Duration, Instant};

use genesis_control::god::GodSettings;
use genesis_control::sign_in_guard::SignInLimits;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::Value;

use super::god_mode::{Browser, EMAIL, PASSWORD, form, with_operator};
use super::{TOKEN, spawn_app, spawn_app_guarded};

async fn problem(r: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    assert_eq!(
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {status}"
    );
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(body["status"], status);
    (status, body, headers)
}

#[tokio::test]
async fn errors_the_framework_produces_are_problems_written_for_people() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", app.base);

    // A bad query string: 422 naming the parameter, not "Failed to deserialize".
    let r = http
        .get(url("/api/v1/workspaces?limit=lots"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    let (status, body, _) = problem(r).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("limit")));
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Failed to"),
        "{body}"
    );

    // A method the route does not take: 405 with a body and the Allow header.
    let r = http
        .delete(url("/api/v1/workspaces"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete");
    let (status, body, headers) = problem(r).await;
    assert_eq!(status, 405);
    let allow = headers["allow"].to_str().expect("allow").to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("DELETE"),
        "{body}"
    );

    // Malformed JSON and the wrong content type.
    let r = http
        .post(url("/api/v1/workspaces"))
        .bearer_auth(TOKEN)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(problem(r).await.0, 400);
    let r = http
        .post(url("/api/v1/workspaces"))
        .bearer_auth(TOKEN)
        .header(CONTENT_TYPE, "text/plain")
        .body("name=x")
        .send()
        .await
        .expect("post");
    assert_eq!(problem(r).await.0, 415);
    // A JSON value of the wrong type names its field, without the parser's position.
    let (status, body, _) = app
        .post(
            "/api/v1/workspaces",
            serde_json::json!({"name": 7, "slug": "x", "region": "apac"}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("name")),
        "{body}"
    );
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("line 1"),
        "{body}"
    );

    // God Mode's forms too.
    let b = Browser::new(&app);
    let r = b
        .post("/god/sign-in", form(&[("email", "a@b.c")]), None)
        .await;
    let (status, body, _) = problem(r).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("password"),
        "{body}"
    );
    let r = b.post("/god/sign-in", "x".repeat(64 * 1024), None).await;
    assert_eq!(
        problem(r).await.0,
        413,
        "a sign-in body is small, or not read"
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn every_response_has_the_security_headers_and_no_page_has_inline_script() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    for path in [
        "/healthz",
        "/god/sign-in",
        "/api/v1/workspaces",
        "/nowhere",
        "/god",
    ] {
        let r = b.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let script = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .expect("a script-src directive");
        assert_eq!(script, "script-src 'self'", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
    }
    let html = b.get("/god/sign-in").await.text().await.expect("html");
    assert!(!html.contains("<style"), "no inline style element");
    assert!(
        html.matches("<script").count() == html.matches("<script src=").count(),
        "no inline script: {html}"
    );
    let css = b.get("/god/assets/god.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/css")
    );
    let js = b.get("/god/assets/rollout-live.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.text().await.expect("js").contains("EventSource"));
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_next_with_a_newline_sends_to_the_overview_without_a_500() {
    let app = spawn_app().await;
    with_operator(&app).await;
    let b = Browser::new(&app);
    for next in ["/god/x\r\nSet-Cookie: evil=1", "/god/\n", "/god/caf\u{e9}"] {
        let r = b
            .post(
                "/god/sign-in",
                form(&[("email", EMAIL), ("password", PASSWORD), ("next", next)]),
                None,
            )
            .await;
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()[LOCATION], "/god", "{next:?}");
        assert!(
            r.headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap_or_default().contains("evil")),
        );
    }
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_origin_on_another_scheme_is_another_site() {
    let app = spawn_app().await;
    with_operator(&app).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let attempt = |origin: &'static str| {
        http.post(format!("{}/god/sign-in", app.base))
            .header("host", "ops.example.com")
            .header("origin", origin)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("email", EMAIL), ("password", PASSWORD)]))
            .send()
    };
    let r = attempt("http://ops.example.com").await.expect("post");
    assert_eq!(
        problem(r).await.0,
        403,
        "plain HTTP is not God Mode's origin"
    );
    let r = attempt("https://ops.example.com").await.expect("post");
    assert_eq!(r.status(), 303, "HTTPS on the same host is");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn one_source_flooding_sign_ins_is_throttled_in_bounded_audit_rows() {
    let delay = Duration::from_millis(50);
    let app = spawn_app_guarded(
        None,
        GodSettings::default(),
        SignInLimits {
            per_source_per_minute: 5,
            refusal_delay: delay,
            ..SignInLimits::default()
        },
    )
    .await;
    let b = Browser::new(&app);
    let mut statuses = Vec::new();
    for i in 0..40 {
        let started = Instant::now();
        let r = b
            .post(
                "/god/sign-in",
                form(&[
                    ("email", &format!("nobody{i}@x.test")),
                    ("password", "guess"),
                ]),
                None,
            )
            .await;
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            assert!(
                started.elapsed() >= delay,
                "a refusal is held back, so a client that waits for it cannot hammer"
            );
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        35,
        "{statuses:?}"
    );
    let rows = app
        .t
        .db
        .audit_list(None, Some("LOGIN_FAILED"), 100)
        .await
        .expect("audit");
    assert_eq!(
        rows.len(),
        6,
        "one row per checked attempt and one for the throttled ones: {rows:#?}"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.details["reason"] == "throttled")
            .count(),
        1
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sources_at_once_wait_in_a_bounded_queue_or_are_told_to_come_back() {
    let app = spawn_app_guarded(
        None,
        GodSettings::default(),
        SignInLimits {
            hashers: 1,
            max_waiting: 4,
            max_wait: Duration::from_millis(300),
            refusal_delay: Duration::from_millis(20),
            ..SignInLimits::default()
        },
    )
    .await;
    with_operator(&app).await;
    let started = Instant::now();
    let attempts: Vec<_> = (0..64)
        .map(|i| {
            let mut b = Browser::new(&app);
            b.from = Some(format!("198.18.{}.{}", i / 200, i % 200 + 1));
            tokio::spawn(async move {
                let r = b
                    .post(
                        "/god/sign-in",
                        form(&[("email", EMAIL), ("password", "not the password")]),
                        None,
                    )
                    .await;
                (r.status().as_u16(), r.headers().contains_key("retry-after"))
            })
        })
        .collect();
    let mut checked = 0;
    let mut busy = 0;
    for a in attempts {
        match a.await.expect("task") {
            (401, _) => checked += 1,
            (503, true) => busy += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "the queue is bounded: {checked} checked, {busy} busy"
    );
    assert!(checked >= 1, "the hasher kept working");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "nobody waits past max_wait for a hasher"
    );
    // The operator still gets in once the flood has passed.
    let mut b = Browser::new(&app);
    b.from = Some("192.0.2.1".into());
    assert_eq!(b.sign_in(EMAIL, PASSWORD).await.status(), 303);
    app.t.cleanup().await.expect("cleanup");
}
