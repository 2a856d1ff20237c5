//! The wizard's stages that reach other services, over real HTTP against the simulator's
//! fakes: "Connect Gmail" through Google's consent page and back (PKCE, state, granular
//! consent, replays), and the AI keys checked live with each vendor.

use std::sync::Arc;

use genesis_sim::ai_providers::{FakeAiProviders, Vendor};
use genesis_sim::dns::{DnsRecord, Knot};
use genesis_sim::google_oauth::FakeGoogleOAuth;
use genesis_sim::wizard::WizardFakes;
use genesis_store::onboarding::SecretKind;

use super::accounts::{new_workspace, tenant};
use super::god_mode::{Browser, csrf_of, form, location};
use super::{App, spawn_app_providing};

const CLIENT_ID: &str = "genesis-test.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-test-secret";

/// The wizard's third parties (a real Knot DNS server among them) on a listener of their own.
struct Fakes {
    google: FakeGoogleOAuth,
    ai: FakeAiProviders,
    knot: Arc<Knot>,
    base: String,
}

async fn fakes() -> Fakes {
    let dir = std::env::temp_dir().join(format!("genesis-knot-{}", uuid::Uuid::now_v7().simple()));
    let fakes = WizardFakes::start(&dir)
        .await
        .expect("knotd (Debian's knot package)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = fakes.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let WizardFakes { google, ai, knot } = fakes;
    Fakes {
        google,
        ai,
        knot,
        base,
    }
}

/// An app whose wizard talks to the fakes, with its OAuth client registered at the fake
/// Google for the app's own callback address.
async fn app_with_fakes() -> (App, Fakes) {
    let f = fakes().await;
    let providers = genesis_control::providers::Providers::simulated(
        &f.base,
        Some((CLIENT_ID, CLIENT_SECRET)),
        Some(f.knot.addr()),
    );
    let app = spawn_app_providing(
        Some(super::TOKEN),
        Default::default(),
        Default::default(),
        Default::default(),
        providers,
    )
    .await;
    f.google.register_client(
        CLIENT_ID,
        CLIENT_SECRET,
        &[&format!("{}/app/oauth/google/callback", app.base)],
    );
    (app, f)
}

fn outside() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Presses "Connect Gmail": answers Google's consent page URL.
async fn connect(b: &Browser, ws: &str, sender: &str) -> String {
    let r = submit(b, &format!("{ws}/setup/email"), &[("sender_name", sender)]).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    location(&r)
}

/// On Google's consent page: chooses the account, ticks (or not) the permissions, and
/// answers where Google sends the browser back.
async fn consent(url: &str, account: &str, allow: bool, grant_send: bool) -> String {
    let http = outside();
    let page = http.get(url).send().await.expect("consent page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let at = html.find(r#"name="request" value=""#).expect("request id") + 22;
    let request = html[at..].split('"').next().expect("id").to_owned();
    let origin = url.split("/o/oauth2").next().expect("origin");
    let mut pairs = vec![
        ("request", request.as_str()),
        ("account", account),
        ("decision", if allow { "allow" } else { "deny" }),
    ];
    if grant_send {
        pairs.push(("grant", "https://www.googleapis.com/auth/gmail.send"));
    }
    let r = http
        .post(format!("{origin}/o/oauth2/v2/auth/consent"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .expect("consent");
    assert_eq!(r.status(), 303);
    location(&r)
}

/// Follows Google's redirect back into the app, as the browser would (with its session).
async fn back(b: &Browser, app: &App, callback: &str) -> reqwest::Response {
    let path = callback
        .strip_prefix(&app.base)
        .expect("back to the app's own callback");
    b.get(path).await
}

async fn onboarding(app: &App, ws_page: &str) -> serde_json::Value {
    let id = ws_page.rsplit('/').next().expect("id");
    sqlx::query_scalar::<_, serde_json::Value>(
        "SELECT onboarding FROM genesis.workspaces WHERE id = $1::uuid",
    )
    .bind(id)
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("workspace")
}

/// Every byte the workspace's wizard secrets occupy in the database.
async fn stored_secrets(app: &App) -> Vec<u8> {
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT ciphertext, hint FROM genesis.onboarding_secrets")
            .fetch_all(app.t.db.owner_pool())
            .await
            .expect("secrets");
    rows.into_iter()
        .flat_map(|(c, h)| c.into_iter().chain(h.into_bytes()))
        .collect()
}

/// A wizard secret of the workspace at `ws_page`, opened with the test vault's key.
async fn opened(app: &App, ws_page: &str, kind: SecretKind) -> Vec<u8> {
    let id = genesis_core::WorkspaceId::parse(ws_page.rsplit('/').next().expect("id")).expect("id");
    app.t
        .db
        .onboarding_secret(&super::test_vault(), id, kind)
        .await
        .expect("read")
        .expect("a sealed secret")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn connect_gmail_runs_pkce_through_googles_consent_and_vaults_the_grant() {
    let (app, f) = app_with_fakes().await;
    let b = tenant(&app, "ada@acme.example", "eu-west").await;
    let ws = new_workspace(&b, "Acme", "acme_gmail").await;

    let google_url = connect(&b, &ws, "Ada Lovelace").await;
    // What Google is asked: the code flow, S256 PKCE, offline access, gmail.send as the only
    // Gmail scope, and a state.
    let u = reqwest::Url::parse(&google_url).expect("url");
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["client_id"], CLIENT_ID);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"https://www.googleapis.com/auth/gmail.send"));
    assert!(
        scopes
            .iter()
            .all(|s| !s.contains("gmail") || s.ends_with("gmail.send")),
        "{scopes:?}"
    );
    assert!(!q["state"].is_empty());

    let callback = consent(&google_url, "ada@gmail.example", true, true).await;
    let r = back(&b, &app, &callback).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), format!("{ws}/setup"));
    assert_eq!(f.google.exchanges(), 1);

    let setup = b
        .get(&format!("{ws}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(
        setup.contains(r#"data-stage="email" data-state="done""#),
        "{setup}"
    );
    let page = b
        .get(&format!("{ws}/setup/email"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("ada@gmail.example") && page.contains("Ada Lovelace"));
    let o = onboarding(&app, &ws).await;
    assert_eq!(o["sender_email"], "ada@gmail.example");
    assert_eq!(o["name"], "Ada Lovelace");

    // The refresh token is in the vault, sealed: no byte of it in clear, and it is one
    // Google issued and still honours.
    assert!(
        !contains(&stored_secrets(&app).await, "1//0"),
        "a refresh token stored in clear"
    );
    let grant: serde_json::Value =
        serde_json::from_slice(&opened(&app, &ws, SecretKind::Gmail).await).expect("json");
    let refresh = grant["refresh_token"].as_str().expect("refresh token");
    assert!(f.google.refresh_token_valid(refresh));
    assert!(grant["expiry_date"].as_i64().is_some());

    // The same callback again (a replay, or the back button): refused, nothing exchanged.
    let r = back(&b, &app, &callback).await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.expect("page");
    assert!(text.contains("no longer valid"), "{text}");
    assert_eq!(f.google.exchanges(), 1);

    // A callback with a forged state finds nothing.
    let forged = callback.replace("state=", "state=eu-west.AAAA");
    assert_ne!(back(&b, &app, &forged).await.status(), 303);
}

#[tokio::test]
async fn a_refused_or_tampered_gmail_connection_says_why_and_saves_nothing() {
    let (app, f) = app_with_fakes().await;
    let b = tenant(&app, "grace@acme.example", "eu-west").await;
    let ws = new_workspace(&b, "Acme", "acme_refused").await;

    // An empty sender name is named, and Google is not visited.
    let r = submit(&b, &format!("{ws}/setup/email"), &[("sender_name", " ")]).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains(r#"id="sender_name-error""#)
    );

    // Cancel on Google's page.
    let url = connect(&b, &ws, "Grace").await;
    let cb = consent(&url, "grace@gmail.example", false, true).await;
    assert!(cb.contains("error=access_denied"));
    let text = back(&b, &app, &cb).await.text().await.expect("page");
    assert!(text.contains("you cancelled on Google"), "{text}");

    // "Send email on your behalf" unticked: Google grants the rest; we refuse.
    let url = connect(&b, &ws, "Grace").await;
    let cb = consent(&url, "grace@gmail.example", true, false).await;
    let text = back(&b, &app, &cb).await.text().await.expect("page");
    assert!(
        text.contains("did not give permission to send email"),
        "{text}"
    );

    // A challenge swapped on the way to Google (PKCE): the code is useless to whoever
    // holds it without our verifier, and Google refuses the exchange.
    let url = connect(&b, &ws, "Grace").await;
    let swapped = {
        let mut u = reqwest::Url::parse(&url).expect("url");
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "code_challenge" {
                    "A".repeat(43)
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.to_string()
    };
    let cb = consent(&swapped, "grace@gmail.example", true, true).await;
    let r = back(&b, &app, &cb).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("page").contains("Google refused"));

    // Another tenant cannot finish this tenant's flow.
    let url = connect(&b, &ws, "Grace").await;
    let cb = consent(&url, "grace@gmail.example", true, true).await;
    let mallory = tenant(&app, "mallory@evil.example", "eu-west").await;
    assert_ne!(back(&mallory, &app, &cb).await.status(), 303);
    // ...and the flow is spent by the attempt, so it cannot be replayed by its owner either.
    assert_ne!(back(&b, &app, &cb).await.status(), 303);

    assert_eq!(
        f.google.exchanges(),
        1,
        "only the untick case reached a token"
    );
    let o = onboarding(&app, &ws).await;
    assert!(o.get("sender_email").is_none(), "{o}");
    assert!(stored_secrets(&app).await.is_empty());
}

/// Posts the form of the page at `path` back to it: its CSRF token and `pairs`.
async fn submit(b: &Browser, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    let page = b.get(path).await.text().await.expect("page");
    let csrf = csrf_of(&page);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(pairs);
    b.post(path, form(&all), None).await
}

async fn save_keys(b: &Browser, ws: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    submit(b, &format!("{ws}/setup/ai-keys"), pairs).await
}

#[tokio::test]
async fn ai_keys_are_checked_with_each_vendor_and_saved_all_or_none() {
    let (app, f) = app_with_fakes().await;
    let b = tenant(&app, "lin@acme.example", "eu-west").await;
    let ws = new_workspace(&b, "Acme", "acme_keys").await;
    let openai = f.ai.issue(Vendor::OpenAi);
    let anthropic = f.ai.issue(Vendor::Anthropic);
    let relevance = f.ai.issue(Vendor::Relevance);
    let rel: Vec<&str> = relevance.split(':').collect();

    // Shape first: nothing is sent to a vendor for a key that cannot be one.
    let r = save_keys(&b, &ws, &[("openai_key", "hello")]).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains(r#"id="openai_key-error""#)
    );
    assert_eq!(f.ai.checks(), 0);

    // OpenAI refuses a key it never issued, and says so in its own words.
    let wrong = format!("sk-proj-{}", "x".repeat(60));
    let r = save_keys(&b, &ws, &[("openai_key", &wrong)]).await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.expect("page");
    assert!(text.contains("OpenAI does not accept this key"), "{text}");
    assert!(text.contains("Incorrect API key provided"), "{text}");
    assert!(!text.contains(&wrong), "a key was shown back");

    // A good OpenAI key with a revoked Anthropic one: nothing is saved.
    let dead = f.ai.issue(Vendor::Anthropic);
    f.ai.revoke(Vendor::Anthropic, &dead);
    let r = save_keys(
        &b,
        &ws,
        &[("openai_key", &openai), ("anthropic_key", &dead)],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains(r#"id="anthropic_key-error""#)
    );
    assert!(stored_secrets(&app).await.is_empty());

    // A Relevance key used against another region's host is refused there.
    let r = save_keys(
        &b,
        &ws,
        &[
            ("openai_key", &openai),
            ("relevance_region", "d7b62b"),
            ("relevance_project", rel[1]),
            ("relevance_key", rel[2]),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains(r#"id="relevance_key-error""#)
    );

    // All three good: saved, sealed, shown masked.
    let r = save_keys(
        &b,
        &ws,
        &[
            ("openai_key", &openai),
            ("anthropic_key", &anthropic),
            ("relevance_region", rel[0]),
            ("relevance_project", rel[1]),
            ("relevance_key", rel[2]),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let page = b
        .get(&format!("{ws}/setup/ai-keys"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains(&openai[openai.len() - 4..]));
    for key in [&openai, &anthropic, &rel[2].to_owned()] {
        assert!(!page.contains(key.as_str()), "a key shown in full");
    }
    let stored = stored_secrets(&app).await;
    for key in [&openai, &anthropic, &rel[2].to_owned()] {
        assert!(!contains(&stored, key), "a key stored in clear");
    }
    let setup = b
        .get(&format!("{ws}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(setup.contains(r#"data-stage="ai_keys" data-state="done""#));
}

async fn dns(b: &Browser, ws: &str, pairs: &[(&str, &str)]) -> (u16, String) {
    let r = submit(b, &format!("{ws}/setup/dns"), pairs).await;
    (r.status().as_u16(), r.text().await.expect("page"))
}

fn state_of(page: &str, purpose: &str) -> String {
    let needle = format!(r#"data-purpose="{purpose}" data-state=""#);
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {purpose} row in {page}"));
    page[at + needle.len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn dns_records_are_applied_by_the_provider_and_checked_against_a_real_server() {
    let (app, f) = app_with_fakes().await;
    let b = tenant(&app, "ops@acme.example", "eu-west").await;
    let ws = new_workspace(&b, "Acme", "acme_dns").await;

    // A public mail service's domain cannot be the tenant's.
    let (code, page) = dns(&b, &ws, &[("action", "domain"), ("domain", "gmail.com")]).await;
    assert_eq!(code, 422);
    assert!(page.contains(r#"id="domain-error""#), "{page}");

    // The company's domain exists (its zone is served), without the mail records.
    f.knot
        .apply(
            "acme-rockets.test",
            &[DnsRecord {
                kind: "A".into(),
                host: "@".into(),
                value: "192.0.2.10".into(),
                ttl: 60,
            }],
        )
        .await
        .expect("zone");
    let (code, page) = dns(
        &b,
        &ws,
        &[("action", "domain"), ("domain", "Acme-Rockets.test")],
    )
    .await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Records for acme-rockets.test"));
    // Nothing is there yet: each record is missing, asked of the real server.
    let (code, page) = dns(&b, &ws, &[("action", "check")]).await;
    assert_eq!(code, 200, "{page}");
    for purpose in ["SPF", "DKIM", "DMARC"] {
        assert_eq!(state_of(&page, purpose), "missing", "{purpose}");
    }

    // The provider applies them; the server serves them; the stage is done.
    let (code, page) = dns(&b, &ws, &[("action", "apply")]).await;
    assert_eq!(code, 200, "{page}");
    for purpose in ["SPF", "DKIM", "DMARC"] {
        assert_eq!(state_of(&page, purpose), "found", "{purpose}");
    }
    assert!(page.contains("dns-configured"));
    let setup = b
        .get(&format!("{ws}/setup"))
        .await
        .text()
        .await
        .expect("setup");
    assert!(setup.contains(r#"data-stage="dns" data-state="done""#));
    // The DKIM private key is sealed, the public one is what DNS serves (2048-bit).
    assert!(opened(&app, &ws, SecretKind::Dkim).await.len() > 1000);

    // Someone edits the zone: a second SPF record and another DKIM key read as wrong.
    f.knot
        .apply(
            "acme-rockets.test",
            &[DnsRecord {
                kind: "TXT".into(),
                host: "@".into(),
                value: "v=spf1 include:mailgun.org ~all".into(),
                ttl: 60,
            }],
        )
        .await
        .expect("edit");
    let selector_host = page
        .split("<code>")
        .find_map(|s| {
            s.split("</code>")
                .next()
                .filter(|h| h.ends_with("._domainkey"))
        })
        .expect("selector")
        .to_owned();
    f.knot
        .apply(
            "acme-rockets.test",
            &[DnsRecord {
                kind: "TXT".into(),
                host: selector_host,
                value: "v=DKIM1; k=rsa; p=SOMEONEELSE".into(),
                ttl: 60,
            }],
        )
        .await
        .expect("edit");
    let (code, page) = dns(&b, &ws, &[("action", "check")]).await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(state_of(&page, "DKIM"), "wrong");
    assert_eq!(state_of(&page, "DMARC"), "found");
    // (The edit replaced the apex TXT: one SPF, without Google's include.)
    assert_eq!(state_of(&page, "SPF"), "wrong");
}
