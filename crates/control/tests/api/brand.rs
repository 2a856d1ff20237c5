//! The wizard's brand stage (spec 61.1) and booking stage (61.3) over real HTTP, against a
//! company website served on this machine: the draft read from the site, the tenant's
//! corrections confirmed, every way a website can go wrong answered on the form by name,
//! changing nothing, and a doubtful booking link saved only once its warnings were seen.

use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use genesis_control::outbound::FetchLimits;

use super::accounts::{new_workspace, tenant};
use super::god_mode::{Browser, csrf_of, form, location};
use super::{App, spawn_app, spawn_app_fetching};

/// A company's website, with pages that misbehave in every way the stage must survive.
async fn company_site() -> String {
    let html = |body: String| ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body);
    let app = axum::Router::new()
        .route(
            "/",
            get(move || async move {
                html(
                    r#"<!doctype html><html><head><title>Acme Rockets | Lift-off for everyone</title>
                    <meta property="og:image" content="/logo.png">
                    <meta name="description" content="Reusable rockets, delivered.">
                    </head><body><nav><a href="/catalogue">Our products</a></nav></body></html>"#
                        .to_owned(),
                )
            }),
        )
        .route(
            "/catalogue",
            get(move || async move {
                html("<h1>Catalogue</h1><h2>Rocket One</h2><p>x</p><h3>Fuel, by the tonne</h3>".to_owned())
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/loop", get(|| async { Redirect::to("/loop-again") }))
        .route("/loop-again", get(|| async { Redirect::to("/loop") }))
        .route(
            "/brochure.pdf",
            get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.7").into_response() }),
        )
        .route(
            "/book",
            get(move || async move {
                html("<h1>Ada Lovelace</h1><h2>30 minute call</h2><p>Select a Date &amp; Time</p>".to_owned())
            }),
        )
        .route(
            "/huge",
            get(move || async move { html("<p>x</p>".repeat(40_000)) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Posts the brand form of `ws_page` with `action` and `fields`.
async fn brand(
    b: &Browser,
    ws_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = b
        .get(&format!("{ws_page}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    let csrf = csrf_of(&html);
    let mut pairs = vec![("csrf", csrf.as_str()), ("action", action)];
    pairs.extend_from_slice(fields);
    b.post(&format!("{ws_page}/setup/brand"), form(&pairs), None)
        .await
}

async fn local_app() -> App {
    spawn_app_fetching(
        Some(super::TOKEN),
        Default::default(),
        Default::default(),
        FetchLimits {
            timeout: Duration::from_secs(1),
            max_bytes: 128 * 1024,
            allow_private: true,
            ..FetchLimits::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_brand_stage_fills_itself_from_the_website_and_the_tenant_confirms_it() {
    let site = company_site().await;
    let app = local_app().await;
    let owner = tenant(&app, "bea@acme.test", "eu-west").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_brand").await;
    let ws = genesis_core::WorkspaceId::parse(ws_page.rsplit('/').next().expect("id")).expect("id");

    let setup = owner
        .get(&format!("{ws_page}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(
        setup.contains(r#"data-stage="account" data-state="done""#),
        "{setup}"
    );
    assert!(setup.contains(r#"data-stage="brand" data-state="to do""#));
    assert!(setup.contains(r#"data-stage="email" data-state="to do""#));
    assert!(setup.contains(r#"data-stage="ignition" data-state="to do""#));
    // The service matrix names what each stage sets up, and what it costs (spec 57.2).
    for (service, cost) in [
        ("gmail", "Gmail (OAuth): included in your plan"),
        (
            "openai",
            "OpenAI: you pay the provider directly, with your own key",
        ),
        ("google_cse", "Google CSE — $0.005 a call, from your wallet"),
        ("digitalocean", "DigitalOcean — $4.50 a month"),
    ] {
        let at = setup
            .find(&format!(r#"data-service="{service}""#))
            .unwrap_or_else(|| panic!("{service} is not on the page: {setup}"));
        assert!(setup[at..].contains(cost), "{service}: {cost}");
    }

    let r = brand(&owner, &ws_page, "fetch", &[("website", &site)]).await;
    assert_eq!(r.status(), 200);
    let draft = r.text().await.expect("draft");
    assert!(draft.contains(r#"value="Acme Rockets""#), "{draft}");
    assert!(draft.contains(&format!(r#"value="{site}/logo.png""#)));
    assert!(draft.contains("Reusable rockets, delivered."));
    assert!(draft.contains("Rocket One\nFuel, by the tonne"), "{draft}");

    // Every way a website goes wrong is named on the website field, and changes nothing.
    for (path, says) in [
        ("/slow", "did not answer within 1 seconds"),
        ("/loop", "redirects in a loop"),
        (
            "/brochure.pdf",
            "is not a web page (it serves application/pdf)",
        ),
        ("/huge", "larger than 128 KB"),
        ("/missing", "HTTP status 404"),
    ] {
        let r = brand(
            &owner,
            &ws_page,
            "fetch",
            &[("website", &format!("{site}{path}"))],
        )
        .await;
        assert_eq!(r.status(), 422, "{path}");
        let page = r.text().await.expect("page");
        assert!(
            page.contains(r#"id="website-error""#) && page.contains(says),
            "{path}: {page}"
        );
    }
    let r = brand(&owner, &ws_page, "fetch", &[("website", "ftp://acme.test")]).await;
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("enter a web address")
    );
    assert_eq!(
        app.t
            .db
            .onboarding_progress(ws)
            .await
            .expect("progress")
            .brand,
        None
    );

    // The tenant corrects the draft; a missing name is named.
    let r = brand(
        &owner,
        &ws_page,
        "confirm",
        &[("website", &site), ("name", "  ")],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("page").contains(r#"id="name-error""#));
    let r = brand(
        &owner,
        &ws_page,
        "confirm",
        &[
            ("website", &site),
            ("name", "Acme"),
            ("description", "Reusable rockets."),
            ("products", "Rocket One\nRocket Two"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{ws_page}/setup"));
    let setup = owner
        .get(&format!("{ws_page}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(setup.contains(r#"data-stage="brand" data-state="done""#));
    assert!(setup.contains("brand-confirmed") && setup.contains("2 products"));
    // Resumable anywhere: the values are the workspace's, and the template gets the name.
    let workspace = app.t.db.workspace_get(ws).await.expect("workspace");
    assert_eq!(
        workspace.onboarding.for_placeholder("YOUR_COMPANY_NAME"),
        Some("Acme")
    );
    let progress = app.t.db.onboarding_progress(ws).await.expect("progress");
    assert_eq!(progress.brand.expect("brand")["products"][1], "Rocket Two");
    let audit = app
        .t
        .db
        .audit_list(Some(ws), Some("ONBOARDING_STAGE_COMPLETED"), 10)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "account:bea@acme.test");
}

#[tokio::test]
async fn a_website_on_an_internal_address_is_not_fetched() {
    let site = company_site().await;
    // The default limits: no private or loopback addresses (SSRF).
    let app = spawn_app().await;
    let owner = tenant(&app, "sam@acme.test", "us-east").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_ssrf").await;
    for website in [
        site.clone(),
        "http://169.254.169.254/metadata/v1/".to_owned(),
        "http://localhost:6379/".to_owned(),
        "http://[::1]/".to_owned(),
    ] {
        let r = brand(&owner, &ws_page, "fetch", &[("website", &website)]).await;
        assert_eq!(r.status(), 422, "{website}");
        let page = r.text().await.expect("page");
        assert!(
            page.contains("private or internal network address"),
            "{website}: {page}"
        );
    }
}

async fn booking(b: &Browser, ws_page: &str, link: &str, accept: bool) -> reqwest::Response {
    let html = b
        .get(&format!("{ws_page}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    let csrf = csrf_of(&html);
    let mut pairs = vec![("csrf", csrf.as_str()), ("booking_url", link)];
    if accept {
        pairs.push(("accept", "1"));
    }
    b.post(&format!("{ws_page}/setup/booking"), form(&pairs), None)
        .await
}

#[tokio::test]
async fn a_doubtful_booking_link_is_saved_only_once_its_warnings_were_seen() {
    let site = company_site().await;
    let app = local_app().await;
    let owner = tenant(&app, "cal@acme.test", "us-west").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_booking").await;
    let ws = genesis_core::WorkspaceId::parse(ws_page.rsplit('/').next().expect("id")).expect("id");

    // Not a web address: refused by name.
    let r = booking(&owner, &ws_page, "not a link at all", false).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains(r#"id="booking_url-error""#)
    );

    // Doubts are warnings, by kind, and nothing is saved until they are accepted.
    for (path, says) in [
        ("/book", "not a booking service we know"),
        ("/", "does not look like a booking page"),
        (
            "/missing",
            "could not be checked: the site answered with HTTP status 404",
        ),
    ] {
        let link = format!("{site}{path}");
        let r = booking(&owner, &ws_page, &link, false).await;
        assert_eq!(r.status(), 200, "{path}");
        let page = r.text().await.expect("page");
        assert!(
            page.contains("booking-warnings") && page.contains(says),
            "{path}: {page}"
        );
        assert!(page.contains("not HTTPS"), "{path}");
    }
    assert_eq!(
        app.t
            .db
            .onboarding_progress(ws)
            .await
            .expect("progress")
            .booking,
        None
    );

    let link = format!("{site}/book");
    let r = booking(&owner, &ws_page, &link, true).await;
    assert_eq!(r.status(), 303);
    let setup = owner
        .get(&format!("{ws_page}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(
        setup.contains(r#"data-stage="booking" data-state="done""#),
        "{setup}"
    );
    assert!(setup.contains("booking-confirmed"));
    let workspace = app.t.db.workspace_get(ws).await.expect("workspace");
    assert_eq!(
        workspace.onboarding.for_placeholder("YOUR_CALENDLY_LINK_1"),
        Some(link.as_str())
    );
    let saved = app
        .t
        .db
        .onboarding_progress(ws)
        .await
        .expect("progress")
        .booking
        .expect("saved");
    assert_eq!(
        saved["warnings"].as_array().map(Vec::len),
        Some(2),
        "{saved}"
    );

    // An internal address is refused even when warnings are accepted.
    let app = spawn_app().await;
    let owner = tenant(&app, "cal@acme.test", "us-west").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_booking_ssrf").await;
    let r = booking(&owner, &ws_page, "http://169.254.169.254/latest/", true).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("private or internal network address")
    );
}
