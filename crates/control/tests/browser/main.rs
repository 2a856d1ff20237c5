//! God Mode in a real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over WebDriver with `fantoccini`: what an operator does all day, clicked through the way
//! a person would, against the whole stack (real sidecars, fake n8n, PostgreSQL, Redis).
//!
//! `make test` (and CI) installs Chromium and its driver when they are missing; run alone,
//! this test says how to install them instead of skipping. Screenshots of every page visited
//! are written to `target/artifacts/browser/` (or `$GENESIS_ARTIFACTS`), and the README's
//! screenshot is one of them.

#[path = "../ignition/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the ignition tests; not every helper is used here"
)]
mod helpers;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::rollouts::RolloutConductor;
use genesis_core::{DropletEvent, DropletId, Region};
use genesis_sim::ai_providers::Vendor;
use genesis_sim::dns::DnsRecord;
use helpers::{GOOGLE_CLIENT, Options, credentials, world};
use serde_json::{Value, json};

const EMAIL: &str = "ops@genesis.test";
const PASSWORD: &str = "correct horse battery staple";

/// A running `chromedriver` in a process group of its own, which Chromium joins: dropping
/// it kills the whole group, so a test that fails before closing its browser leaves no
/// Chromium behind (killing only the driver would orphan it, still running).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

async fn start_driver() -> Driver {
    let program = find_program("GENESIS_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "chromedriver not found: `make test` installs it; by hand, \
             `sudo apt-get install -y chromium chromium-driver` (or set GENESIS_CHROMEDRIVER)"
        )
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&program)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not become ready on {}", driver.url);
}

async fn open_browser(driver: &Driver) -> Client {
    let mut options = json!({
        "args": [
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1400,1000",
        ],
    });
    if let Some(chromium) = find_program("GENESIS_CHROMIUM", &["chromium", "chromium-browser"]) {
        options["binary"] = json!(chromium);
    }
    let caps = json!({ "browserName": "chrome", "goog:chromeOptions": options });
    let Value::Object(caps) = caps else {
        unreachable!("a JSON object literal")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("GENESIS_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts/browser"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    dir
}

async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn text_of(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn displayed(b: &Client, css: &str) -> bool {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .is_displayed()
        .await
        .expect("displayed")
}

async fn path_of(b: &Client) -> String {
    b.current_url().await.expect("url").path().to_owned()
}

/// Waits for the browser to reach a page whose path `is` (a click returns before the page
/// it leads to has loaded), and returns that path.
async fn arrive(b: &Client, what: &str, is: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let path = path_of(b).await;
        if is(&path) && b.find(Locator::Css("main")).await.is_ok() {
            return path;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {what}: still on {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds, up to `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(b: &Client, email: &str, password: &str) {
    // The style sheet is a file the Content-Security-Policy allows (no inline <style>): the
    // page is styled, not bare.
    let background = b
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        background,
        json!("rgb(244, 246, 248)"),
        "the style sheet applies"
    );
    // After a refusal the form keeps the e-mail typed: replace it.
    let field = b
        .find(Locator::Css("input[name=email]"))
        .await
        .expect("email field");
    field.clear().await.expect("clear");
    field.send_keys(email).await.expect("type");
    b.find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type");
    b.find(Locator::Css("form button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
}

/// The events that take crowd droplet `i` to its state: mostly serving, some asleep, a few
/// degraded, drifting, lost or still booting.
fn crowd_events(i: usize) -> Vec<DropletEvent> {
    use DropletEvent as E;
    let up = vec![E::Booted, E::CloudInitFinished, E::HandshakeCompleted];
    let then = |e: E| {
        let mut v = up.clone();
        v.push(e);
        v
    };
    match i % 40 {
        0..=27 => up,
        28..=33 => then(E::Hibernated),
        34 | 35 => then(E::ResourcesHigh),
        36 => then(E::DriftFound),
        37 => then(E::HeartbeatsMissed),
        _ => vec![E::Booted],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_works_through_god_mode_in_a_real_browser() {
    let w = world(Options {
        metrics_interval_s: 1,
        ..Options::default()
    })
    .await;
    // Four tenants ignited through the whole stack: they are what the rollout updates.
    let mut tenants = Vec::new();
    for i in 0..4 {
        let ws = w.create_workspace(&format!("browser_{i}")).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        tenants.push(ws);
    }
    for ws in &tenants {
        let got = w.wait_finished(*ws, Duration::from_secs(120)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    }
    // And a thousand more droplets of a tenant not yet live (no rollout touches them), in a
    // fleet's usual mix of states, for the heatmap.
    let crowd = w.create_workspace("browser_crowd").await;
    let mut crowd_healthy = 0;
    for i in 0..1_000 {
        let region = [Region::UsEast, Region::EuWest, Region::UsWest][i % 3];
        let id = DropletId::new();
        w.t.db
            .droplet_register(id, crowd, region, "test")
            .await
            .expect("droplet");
        let events = crowd_events(i);
        if events.len() == 3 {
            crowd_healthy += 1;
        }
        for (v, e) in events.iter().enumerate() {
            w.t.db
                .droplet_transition(id, v as i64, *e, "test")
                .await
                .expect("transition");
        }
    }
    let hash = genesis_control::credentials::hash_password(PASSWORD).expect("hash");
    w.t.db
        .operator_create(EMAIL, &hash, "test")
        .await
        .expect("operator");
    // Chromium treats localhost as a secure origin, so the Secure session cookie is kept
    // over plain HTTP there (as in `make demo`).
    let base = w.base.replace("127.0.0.1", "localhost");

    let driver = start_driver().await;
    let b = open_browser(&driver).await;

    // Without a session, God Mode sends the browser to sign in.
    b.goto(&format!("{base}/god")).await.expect("goto");
    arrive(&b, "/god/sign-in", |p| p == "/god/sign-in").await;

    // A wrong password is refused, and says so.
    sign_in(&b, EMAIL, "not the password").await;
    b.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(".error"))
        .await
        .expect("the refusal is shown");
    assert_eq!(path_of(&b).await, "/god/sign-in");
    assert_eq!(
        text_of(&b, ".error").await,
        "Wrong e-mail, password or code."
    );
    screenshot(&b, "sign-in-refused").await;
    let failed =
        w.t.db
            .audit_list(None, Some("LOGIN_FAILED"), 10)
            .await
            .expect("audit");
    assert_eq!(failed.len(), 1, "the refusal is audited");

    // The right one lands on the fleet overview, whose counts are the API's.
    sign_in(&b, EMAIL, PASSWORD).await;
    arrive(&b, "/god", |p| p == "/god").await;
    let (status, api) = w.get("/api/v1/fleet/health").await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(
        text_of(&b, "#total b").await,
        api["total"].to_string(),
        "{api}"
    );
    assert_eq!(api["total"], 1_004);
    let cards = b
        .find_all(Locator::Css(".card[data-state]"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), api["by_state"].as_object().expect("map").len());
    for card in cards {
        let state = card.attr("data-state").await.expect("attr").expect("state");
        let n = card
            .find(Locator::Css("b"))
            .await
            .expect("figure")
            .text()
            .await
            .expect("text");
        assert_eq!(n, api["by_state"][&state].to_string(), "{state}");
    }
    screenshot(&b, "overview").await;

    // Regional status: every region, each judged.
    b.find(Locator::LinkText("Regions"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    arrive(&b, "/god/regions", |p| p == "/god/regions").await;
    let rows = b
        .find_all(Locator::Css("#regions tr[data-region]"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), Region::ALL.len());
    // us-east: 1 zombie of ~300 counted, and some degraded: degraded, not critical.
    let us_east = b
        .find(Locator::Css(r#"#regions tr[data-region="us-east"]"#))
        .await
        .expect("row");
    assert_eq!(
        us_east.attr("data-status").await.expect("attr").as_deref(),
        Some("DEGRADED")
    );
    screenshot(&b, "regions").await;

    // The metric aggregator: the sidecars' reports (one a second here) arrive.
    // And the fleet sampler's minute (the reconciler is not running in this test).
    w.t.db.fleet_sample().await.expect("fleet sample");
    b.find(Locator::LinkText("Metrics"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    arrive(&b, "/god/metrics", |p| p == "/god/metrics").await;
    eventually(
        Duration::from_secs(30),
        "metric reports on the page",
        || async {
            b.refresh().await.expect("reload");
            text_of(&b, "#reports b").await.parse::<u64>().unwrap_or(0) >= 4
        },
    )
    .await;
    assert_eq!(
        b.find_all(Locator::Css("figure.chart svg"))
            .await
            .expect("charts")
            .len(),
        5
    );
    assert!(
        b.find_all(Locator::Css(
            "#chart-fleet-states [data-state=ACTIVE_HEALTHY]"
        ))
        .await
        .is_ok_and(|l| l.len() == 1),
        "the fleet's healthy droplets are drawn"
    );
    screenshot(&b, "metrics").await;

    // The heatmap: one cell per droplet.
    b.find(Locator::LinkText("Heatmap"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    arrive(&b, "/god/heatmap", |p| p == "/god/heatmap").await;
    let cells = b
        .find_all(Locator::Css(".grid a"))
        .await
        .expect("cells")
        .len();
    assert_eq!(cells, 1_004, "one cell per droplet");
    let healthy = b
        .find_all(Locator::Css(".grid a.s-ACTIVE_HEALTHY"))
        .await
        .expect("cells");
    assert_eq!(healthy.len(), 4 + crowd_healthy, "the serving droplets");
    screenshot(&b, "heatmap").await;
    // Every cell is painted (a style rule the browser rejects leaves a cell invisible).
    let unpainted = b
        .execute(
            "return Array.from(document.querySelectorAll('.grid a, .legend i'))
               .filter(e => getComputedStyle(e).backgroundColor === 'rgba(0, 0, 0, 0)')
               .map(e => e.className)",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(unpainted, json!([]), "cells without a colour");
    // Each cell's tooltip (its accessible name too) says whose it is, how it is, and when
    // it was last heard from.
    let tip = healthy[0]
        .attr("title")
        .await
        .expect("attr")
        .unwrap_or_default();
    assert!(
        tip.starts_with("browser_") && tip.contains(" · healthy · heartbeat "),
        "{tip}"
    );
    // Filter by state with the form, as an operator would.
    b.find(Locator::Css(
        "#filters select[name=state] option[value=ACTIVE_HEALTHY]",
    ))
    .await
    .expect("state option")
    .click()
    .await
    .expect("choose");
    b.find(Locator::Id("apply-filters"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    eventually(Duration::from_secs(10), "the filtered map", || async {
        b.current_url().await.is_ok_and(|u| {
            u.query()
                .unwrap_or_default()
                .contains("state=ACTIVE_HEALTHY")
        })
    })
    .await;
    let shown = b.find_all(Locator::Css(".grid a")).await.expect("cells");
    assert_eq!(shown.len(), 4 + crowd_healthy, "only the healthy droplets");
    assert_eq!(text_of(&b, "#shown").await, (4 + crowd_healthy).to_string());
    screenshot(&b, "heatmap-filtered").await;
    let healthy = shown;

    // A cell opens its droplet.
    healthy[0].click().await.expect("click");
    arrive(&b, "a droplet's page", |p| p.starts_with("/god/droplets/")).await;
    let page = b.source().await.expect("html");
    assert!(
        page.contains("ACTIVE_HEALTHY"),
        "the droplet's state is shown"
    );
    assert!(
        page.contains("HANDSHAKE_COMPLETED"),
        "its timeline is shown"
    );
    screenshot(&b, "droplet").await;

    // Restarting n8n asks first (a script file: the CSP refuses inline handlers); saying no
    // sends nothing.
    let droplet_path = path_of(&b).await;
    b.find(Locator::Id("restart-n8n"))
        .await
        .expect("restart button")
        .click()
        .await
        .expect("click");
    let asked = b.get_alert_text().await.expect("a confirmation dialog");
    assert!(asked.contains("Restart n8n"), "{asked}");
    b.dismiss_alert().await.expect("dismiss");
    assert_eq!(path_of(&b).await, droplet_path, "nothing was sent");

    // A rollout started from the form reaches 100 % on its page, live (no reload).
    b.find(Locator::LinkText("Rollouts"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    b.find(Locator::Css("select[name=scenario] option[value=bug_fix]"))
        .await
        .expect("scenario")
        .click()
        .await
        .expect("choose");
    for (field, value) in [("batch_size", "2"), ("pause_between_s", "0")] {
        b.find(Locator::Css(&format!("input[name={field}]")))
            .await
            .expect("field")
            .send_keys(value)
            .await
            .expect("type");
    }
    b.find(Locator::Id("start-rollout"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let asked = b.get_alert_text().await.expect("a confirmation dialog");
    assert!(asked.contains("Start this rollout"), "{asked}");
    b.accept_alert().await.expect("accept");
    let path = arrive(&b, "the rollout's page", |p| {
        p.len() > "/god/rollouts/".len() && p.starts_with("/god/rollouts/")
    })
    .await;
    let id = uuid::Uuid::parse_str(path.trim_start_matches("/god/rollouts/"))
        .unwrap_or_else(|_| panic!("on the rollout's page: {path}"));
    assert_eq!(text_of(&b, "#percent").await, "0");
    assert!(displayed(&b, "#pause-rollout").await && displayed(&b, "#abort-rollout").await);
    assert!(
        !displayed(&b, "#resume-rollout").await,
        "nothing to resume yet"
    );
    let conductor = RolloutConductor::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
    );
    let conducting = tokio::spawn(async move {
        loop {
            conductor.reconcile().await.expect("conductor pass");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    eventually(Duration::from_secs(120), "the page shows 100 %", || async {
        text_of(&b, "#percent").await == "100" && text_of(&b, "#status").await == "COMPLETED"
    })
    .await;
    conducting.abort();
    assert_eq!(path_of(&b).await, path, "the page updated itself");
    assert_eq!(text_of(&b, "#done").await, "4");
    assert_eq!(text_of(&b, "#timing-label").await.trim(), "Took");
    assert!(
        !displayed(&b, "#eta-phrase").await,
        "no ETA once it is over"
    );
    for control in ["#pause-rollout", "#resume-rollout", "#abort-rollout"] {
        assert!(!displayed(&b, control).await, "{control} after the end");
    }
    assert_eq!(
        w.t.db.rollout_get(id).await.expect("rollout").created_by,
        format!("operator:{EMAIL}")
    );
    screenshot(&b, "rollout").await;

    // Search from the navigation bar: a tenant's slug opens its page, with its droplet,
    // workflows, commands and audit trail.
    let search = b
        .find(Locator::Css("header input[name=q]"))
        .await
        .expect("search box");
    search.send_keys("browser_1\n").await.expect("type");
    arrive(&b, "the tenant's page", |p| p == "/god/tenants/browser_1").await;
    assert!(displayed(&b, "section.tenant-droplet").await);
    assert!(displayed(&b, "#tenant-audit").await);
    assert_eq!(text_of(&b, "#tenant-status").await, "live");
    screenshot(&b, "tenant").await;

    // Reboot from the tenant's page: asked first, then done under the operator's name.
    let section = b
        .find(Locator::Css("section.tenant-droplet"))
        .await
        .expect("droplet");
    let rebooted = section
        .attr("data-droplet")
        .await
        .expect("attr")
        .expect("id");
    b.find(Locator::Id("reboot"))
        .await
        .expect("reboot button")
        .click()
        .await
        .expect("click");
    let asked = b.get_alert_text().await.expect("a confirmation dialog");
    assert!(asked.contains("Hard-reboot"), "{asked}");
    b.accept_alert().await.expect("accept");
    arrive(&b, "back on the tenant's page", |p| {
        p == "/god/tenants/browser_1"
    })
    .await;
    let history =
        w.t.db
            .droplet_history(DropletId::from_uuid(rebooted.parse().expect("uuid")), 50)
            .await
            .expect("history");
    assert!(
        history
            .iter()
            .any(|c| c.to.as_deref() == Some("REBOOTING") && c.actor == format!("operator:{EMAIL}")),
        "{history:?}"
    );

    // A lost droplet is destroyed from its page, after a confirmation.
    let lost = DropletId::new();
    w.t.db
        .droplet_register(lost, crowd, Region::EuWest, "test")
        .await
        .expect("droplet");
    for (v, e) in [
        DropletEvent::Booted,
        DropletEvent::CloudInitFinished,
        DropletEvent::HandshakeTimedOut,
    ]
    .into_iter()
    .enumerate()
    {
        w.t.db
            .droplet_transition(lost, v as i64, e, "test")
            .await
            .expect("transition");
    }
    b.goto(&format!("{base}/god/droplets/{lost}"))
        .await
        .expect("goto");
    assert_eq!(text_of(&b, "#state .state").await, "lost");
    b.find(Locator::Id("destroy"))
        .await
        .expect("destroy button")
        .click()
        .await
        .expect("click");
    b.accept_alert().await.expect("accept");
    eventually(
        Duration::from_secs(10),
        "the droplet is destroyed",
        || async {
            w.t.db
                .droplet_get(lost)
                .await
                .is_ok_and(|d| d.state == genesis_core::DropletState::Terminated)
        },
    )
    .await;

    // At phone width every page still fits: nothing wider than the screen but tables,
    // which scroll inside themselves.
    b.set_window_size(420, 900).await.expect("resize");
    for (path, name) in [
        ("/god", "overview-phone"),
        ("/god/tenants/browser_1", "tenant-phone"),
    ] {
        b.goto(&format!("{base}{path}")).await.expect("goto");
        let width = b
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .expect("script");
        let inner = b
            .execute("return window.innerWidth", vec![])
            .await
            .expect("script");
        assert!(
            width.as_u64().unwrap_or(u64::MAX) <= inner.as_u64().unwrap_or(0),
            "{path} is {width} px wide in a {inner} px window"
        );
        screenshot(&b, name).await;
    }
    b.set_window_size(1400, 1000).await.expect("resize");

    // Signing out ends the session: God Mode asks to sign in again.
    b.find(Locator::Id("sign-out"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    arrive(&b, "/god/sign-in", |p| p == "/god/sign-in").await;
    b.goto(&format!("{base}/god/heatmap")).await.expect("goto");
    arrive(&b, "/god/sign-in", |p| p == "/god/sign-in").await;

    // The API's browsable documentation renders under the same Content-Security-Policy, and
    // lists the operations of the OpenAPI document.
    b.goto(&format!("{base}/api/v1/docs/")).await.expect("goto");
    eventually(
        Duration::from_secs(20),
        "the API docs list operations",
        || async {
            b.find_all(Locator::Css(".opblock-summary-path"))
                .await
                .is_ok_and(|ops| ops.len() >= 20)
        },
    )
    .await;
    let title = text_of(&b, ".information-container .title").await;
    assert!(title.contains("Genesis Engine"), "{title}");
    screenshot(&b, "api-docs").await;
    b.close().await.expect("close");
}

/// A company's website on this machine: a home page with a title, and a booking page.
async fn company_site() -> String {
    use axum::http::header;
    let html = |body: &'static str| ([(header::CONTENT_TYPE, "text/html")], body);
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move {
                html("<title>Acme Rockets | Lift-off</title><a href='/products'>Products</a>")
            }),
        )
        .route(
            "/products",
            axum::routing::get(move || async move { html("<h2>Rocket One</h2>") }),
        )
        .route(
            "/book",
            axum::routing::get(move || async move { html("<h1>Select a Date &amp; Time</h1>") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Fills the field named `name` in the page's form.
async fn fill(b: &Client, name: &str, value: &str) {
    let field = b
        .find(Locator::Css(&format!("[name={name}]")))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// A tenant's first minutes, as a person clicks through them: sign up (with a weak password
/// first), confirm the address from the link, sign in, start a workspace in the region
/// chosen, make an API token, then the whole wizard: brand, booking, Gmail through Google's
/// consent page, the AI key, DNS going green, and Start Engine followed live to a running
/// engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_signs_up_and_starts_a_workspace_in_a_real_browser() {
    let w = world(Options::default()).await;
    let base = w.base.replace("127.0.0.1", "localhost");
    let driver = start_driver().await;
    let b = open_browser(&driver).await;

    b.goto(&format!("{base}/app")).await.expect("goto");
    arrive(&b, "the sign-in page", |p| p == "/app/sign-in").await;
    click(&b, "a[href='/app/sign-up']").await;
    arrive(&b, "the sign-up page", |p| p == "/app/sign-up").await;
    fill(&b, "email", "ada@acme.test").await;
    fill(&b, "password", "password1234").await;
    b.find(Locator::Css("#region option[value=eu-west]"))
        .await
        .expect("the EU")
        .click()
        .await
        .expect("choose");
    click(&b, "form button[type=submit]").await;
    b.wait()
        .for_element(Locator::Css("#password-error"))
        .await
        .expect("the password is refused by name");
    screenshot(&b, "tenant-sign-up-refused").await;
    // The form kept the address and the region.
    let region = b
        .execute("return document.getElementById('region').value", vec![])
        .await
        .expect("script");
    assert_eq!(region, json!("eu-west"));
    fill(&b, "password", "staple orbit velvet canyon").await;
    click(&b, "form button[type=submit]").await;
    b.wait()
        .for_element(Locator::Css("#check-inbox"))
        .await
        .expect("check your inbox");

    let link: String = sqlx::query_scalar(
        "SELECT body->>'link' FROM genesis.notifications WHERE recipient = 'ada@acme.test'",
    )
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("the verification link");
    b.goto(&link.replace("127.0.0.1", "localhost"))
        .await
        .expect("goto");
    click(&b, "#confirm").await;
    b.wait()
        .for_element(Locator::Css("#verified"))
        .await
        .expect("confirmed");

    b.goto(&format!("{base}/app/sign-in")).await.expect("goto");
    fill(&b, "email", "ada@acme.test").await;
    fill(&b, "password", "staple orbit velvet canyon").await;
    click(&b, "form button[type=submit]").await;
    arrive(&b, "the dashboard", |p| p == "/app").await;
    assert!(text_of(&b, "main").await.contains("Frankfurt"));
    fill(&b, "name", "Acme Corp").await;
    fill(&b, "slug", "acme_browser").await;
    click(&b, "#new-workspace button").await;
    arrive(&b, "the workspace", |p| p.starts_with("/app/workspaces/")).await;
    assert_eq!(text_of(&b, "#role").await, "owner");
    assert_eq!(text_of(&b, "#status").await, "not started");
    screenshot(&b, "tenant-workspace").await;

    // Its own audit log, which every member reads (spec 63.1), and back.
    click(&b, "#audit-link").await;
    arrive(&b, "the audit log", |p| p.ends_with("/audit")).await;
    assert!(displayed(&b, "#tenant-audit").await);
    assert!(
        text_of(&b, "#tenant-audit")
            .await
            .contains("Workspace created")
    );
    screenshot(&b, "tenant-audit").await;
    b.back().await.expect("back");
    arrive(&b, "the workspace", |p| {
        p.starts_with("/app/workspaces/") && !p.ends_with("/audit")
    })
    .await;

    // The setup wizard: the brand drafted from the company's site, corrected, confirmed;
    // then a booking link whose doubts are read before it is saved anyway.
    let site = company_site().await;
    let workspace_path = path_of(&b).await;
    click(&b, "#setup").await;
    arrive(&b, "the setup wizard", |p| p.ends_with("/setup")).await;
    fill(&b, "website", &site).await;
    click(&b, "#fetch").await;
    b.wait()
        .for_element(Locator::Css("#note"))
        .await
        .expect("the draft");
    let name = b
        .execute("return document.getElementById('name').value", vec![])
        .await
        .expect("script");
    assert_eq!(name, json!("Acme Rockets"), "read from the site's title");
    fill(&b, "name", "Acme").await;
    click(&b, "#confirm-brand").await;
    b.wait()
        .for_element(Locator::Css("#brand-confirmed"))
        .await
        .expect("confirmed");
    fill(&b, "booking_url", &format!("{site}/book")).await;
    click(&b, "#save-booking").await;
    b.wait()
        .for_element(Locator::Css("#booking-warnings"))
        .await
        .expect("the doubts, shown");
    click(&b, "#save-booking-anyway").await;
    b.wait()
        .for_element(Locator::Css("#booking-confirmed"))
        .await
        .expect("saved");
    assert_eq!(
        b.find(Locator::Css("li[data-stage=brand]"))
            .await
            .expect("stage")
            .attr("data-state")
            .await
            .expect("attr")
            .as_deref(),
        Some("done")
    );
    screenshot(&b, "tenant-setup").await;
    b.goto(&format!("{base}{workspace_path}"))
        .await
        .expect("goto");
    arrive(&b, "the workspace", |p| p == workspace_path).await;

    fill(&b, "name", "CRM sync").await;
    click(&b, "#new-token button").await;
    b.wait()
        .for_element(Locator::Css("#new-token-value"))
        .await
        .expect("the token, once");
    assert!(
        text_of(&b, "#new-token-value")
            .await
            .starts_with("gt_eu-west.")
    );

    // The rest of the wizard, to a running engine. Gmail: the browser goes to Google's
    // consent page (the simulator's) and back to this address.
    w.google.register_client(
        GOOGLE_CLIENT.0,
        GOOGLE_CLIENT.1,
        &[&format!("{base}/app/oauth/google/callback")],
    );
    b.goto(&format!("{base}{workspace_path}/setup/email"))
        .await
        .expect("goto");
    fill(&b, "sender_name", "Ada Lovelace").await;
    click(&b, "#connect").await;
    b.wait()
        .for_element(Locator::Css("#allow"))
        .await
        .expect("Google's consent page");
    fill(&b, "account", "ada@acme.test").await;
    screenshot(&b, "tenant-google-consent").await;
    click(&b, "#allow").await;
    arrive(&b, "back in the set-up", |p| p.ends_with("/setup")).await;
    let stage = |name: &'static str| {
        let b = b.clone();
        async move {
            b.find(Locator::Css(&format!("li[data-stage={name}]")))
                .await
                .expect("stage")
                .attr("data-state")
                .await
                .expect("attr")
                .unwrap_or_default()
        }
    };
    assert_eq!(stage("email").await, "done");

    b.goto(&format!("{base}{workspace_path}/setup/ai-keys"))
        .await
        .expect("goto");
    fill(&b, "openai_key", &w.ai.issue(Vendor::OpenAi)).await;
    click(&b, "#save-ai-keys").await;
    arrive(&b, "back in the set-up", |p| p.ends_with("/setup")).await;
    assert_eq!(stage("ai_keys").await, "done");

    // DNS: the company's zone is served by the real DNS server; the provider adds the
    // records; each row turns found.
    w.knot
        .apply(
            "acme.test",
            &[DnsRecord {
                kind: "A".into(),
                host: "@".into(),
                value: "192.0.2.30".into(),
                ttl: 60,
            }],
        )
        .await
        .expect("zone");
    b.goto(&format!("{base}{workspace_path}/setup/dns"))
        .await
        .expect("goto");
    let suggested = b
        .execute("return document.getElementById('domain').value", vec![])
        .await
        .expect("script");
    assert_eq!(suggested, json!("acme.test"), "from the Gmail address");
    click(&b, "#choose-domain").await;
    b.wait()
        .for_element(Locator::Css("#dns-records"))
        .await
        .expect("the records to add");
    click(&b, "#check-dns").await;
    b.wait()
        .for_element(Locator::Css("tr[data-purpose=DKIM][data-state=missing]"))
        .await
        .expect("missing before the provider");
    click(&b, "#apply-dns").await;
    b.wait()
        .for_element(Locator::Css("#dns-configured"))
        .await
        .expect("DNS configured");
    assert_eq!(
        b.find_all(Locator::Css("tr[data-state=found]"))
            .await
            .expect("rows")
            .len(),
        3
    );
    screenshot(&b, "tenant-dns").await;

    // Start Engine: the live page follows the six steps to a running engine.
    b.goto(&format!("{base}{workspace_path}/setup/ignition"))
        .await
        .expect("goto");
    click(&b, "#start").await;
    b.wait()
        .for_element(Locator::Css("#engine-steps"))
        .await
        .expect("the steps");
    eventually(Duration::from_secs(60), "every step done, live", || {
        let b = b.clone();
        async move {
            let done = b
                .find_all(Locator::Css("#engine-steps li[data-status=done]"))
                .await
                .map(|v| v.len())
                .unwrap_or(0);
            done == 6 && displayed(&b, "#engine-running").await
        }
    })
    .await;
    assert!(text_of(&b, "#lead-token").await.contains("whk_"));
    screenshot(&b, "tenant-engine").await;
    b.goto(&format!("{base}{workspace_path}"))
        .await
        .expect("goto");
    assert_eq!(text_of(&b, "#status").await, "live");

    // A campaign paused from the workspace page: the engine does it at once.
    click(&b, "tr[data-campaign=outreach] button").await;
    b.wait()
        .for_element(Locator::Css("#campaign-note"))
        .await
        .expect("the toggle's outcome");
    assert!(text_of(&b, "#campaign-note").await.starts_with("Done"));
    assert!(
        text_of(&b, "tr[data-campaign=outreach]")
            .await
            .contains("paused")
    );

    // Leads from a CSV file: the progress page, then the refused rows by line.
    let dir = std::env::temp_dir().join(format!("genesis-leads-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("prospects.csv");
    let mut csv = String::from("Email,First Name,Company\n");
    for i in 0..3_000 {
        csv.push_str(&format!("lead{i}@prospect.example,Lead {i},Prospect Co\n"));
    }
    csv.push_str("not-an-address,Nobody,Nowhere\n");
    std::fs::write(&file, csv).expect("the CSV file");
    b.goto(&format!("{base}{workspace_path}/leads"))
        .await
        .expect("goto");
    b.find(Locator::Css("input[type=file]"))
        .await
        .expect("the file input")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose the file");
    click(&b, "#import").await;
    b.wait()
        .for_element(Locator::Css("#import-done"))
        .await
        .expect("the import finished");
    assert_eq!(text_of(&b, "#imported").await, "3000");
    assert_eq!(text_of(&b, "#refused").await, "1");
    assert!(text_of(&b, "#import-errors").await.contains("3002"));
    screenshot(&b, "tenant-import").await;
    let _ = std::fs::remove_dir_all(&dir);
    b.close().await.expect("close");
}
