//! Tenants' own accounts over real HTTP: sign-up with a verification link, sign-in and
//! sign-out everywhere, workspaces with owners and invited members, API tokens, and the
//! enumeration test: no tenant route tells one tenant anything about another's workspace.

use reqwest::header::SET_COOKIE;

use super::god_mode::{Browser, csrf_of, form, location};
use super::{App, spawn_app};

const PASSWORD: &str = "staple orbit velvet canyon";

/// The newest link the outbox holds for `email` (what the demo prints until delivery).
async fn link_for(app: &App, email: &str, kind: &str) -> String {
    link_in(app.t.db.owner_pool(), email, kind).await
}

/// [`link_for`] in the regional database `db`.
async fn link_in(db: &sqlx::PgPool, email: &str, kind: &str) -> String {
    let link: String = sqlx::query_scalar(
        "SELECT body->>'link' FROM genesis.notifications
         WHERE recipient = $1 AND kind = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(email)
    .bind(kind)
    .fetch_one(db)
    .await
    .expect("a link in the outbox");
    link
}

async fn accounts_named(app: &App, email: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM genesis.accounts WHERE email = $1")
        .bind(email)
        .fetch_one(app.t.db.owner_pool())
        .await
        .expect("count")
}

/// The path and query of a link (the test talks to the app's own address).
fn path_of(link: &str) -> String {
    let at = link.find("/app/").expect("a dashboard link");
    link[at..].to_owned()
}

fn token_in(link: &str) -> String {
    link.split("token=").nth(1).expect("token").to_owned()
}

async fn sign_up(b: &Browser, email: &str, password: &str, region: &str) -> reqwest::Response {
    b.post(
        "/app/sign-up",
        form(&[("email", email), ("password", password), ("region", region)]),
        None,
    )
    .await
}

async fn sign_in(b: &mut Browser, email: &str) -> reqwest::Response {
    let r = b
        .post(
            "/app/sign-in",
            form(&[("email", email), ("password", PASSWORD), ("next", "/app")]),
            None,
        )
        .await;
    if let Some(c) = r.headers().get(SET_COOKIE) {
        b.cookie = c
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .map(str::to_owned);
    }
    r
}

/// Signs `email` up in `region`, confirms the address, and signs in.
pub(crate) async fn tenant(app: &App, email: &str, region: &str) -> Browser {
    tenant_in(app, app.t.db.owner_pool(), email, region).await
}

/// [`tenant`], for a region whose database is `db`.
pub(crate) async fn tenant_in(app: &App, db: &sqlx::PgPool, email: &str, region: &str) -> Browser {
    let mut b = Browser::new(app);
    // Each person from their own address: the sign-in quota is per source.
    b.from = Some(format!(
        "203.0.113.{}",
        1 + email.bytes().map(u32::from).sum::<u32>() % 250
    ));
    assert_eq!(sign_up(&b, email, PASSWORD, region).await.status(), 200);
    let link = link_in(db, email, "EMAIL_VERIFICATION").await;
    let r = b
        .post("/app/verify", form(&[("token", &token_in(&link))]), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(sign_in(&mut b, email).await.status(), 303);
    b
}

/// Creates a workspace from the home page's form; returns its page's path.
pub(crate) async fn new_workspace(b: &Browser, name: &str, slug: &str) -> String {
    let home = b.get("/app").await.text().await.expect("home");
    let r = b
        .post(
            "/app/workspaces",
            form(&[("csrf", &csrf_of(&home)), ("name", name), ("slug", slug)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    location(&r)
}

#[tokio::test]
async fn a_tenant_signs_up_confirms_signs_in_and_starts_a_workspace_in_their_region() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.from = Some("198.51.100.1".into());

    // Bad input is named field by field, and creates nothing.
    for (email, password, region, field) in [
        ("not-an-address", PASSWORD, "eu-west", "email"),
        ("ada@acme.test", "password1234", "eu-west", "password"),
        ("ada@acme.test", "short", "eu-west", "password"),
        ("ada@acme.test", PASSWORD, "mars", "region"),
    ] {
        let r = sign_up(&b, email, password, region).await;
        assert_eq!(r.status(), 422, "{email} {password} {region}");
        let html = r.text().await.expect("page");
        assert!(
            html.contains(&format!(r#"id="{field}-error""#)),
            "{field}: {html}"
        );
    }
    assert_eq!(accounts_named(&app, "ada@acme.test").await, 0);

    let r = sign_up(&b, "Ada@Acme.test", PASSWORD, "eu-west").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("page").contains("check-inbox"));
    assert_eq!(accounts_named(&app, "ada@acme.test").await, 1);
    // The password is kept as an argon2id hash only.
    let hash: String = sqlx::query_scalar(
        "SELECT password_hash FROM genesis.accounts WHERE email = 'ada@acme.test'",
    )
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("hash");
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));

    // Signing up again with a registered address looks the same, and changes nothing.
    let again = sign_up(
        &b,
        "ada@acme.test",
        "another fine passphrase here",
        "us-east",
    )
    .await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.expect("page").contains("check-inbox"));
    assert_eq!(accounts_named(&app, "ada@acme.test").await, 1);

    // (Sign-ins from another address: the sign-ups above used up much of this one's quota.)
    b.from = Some("198.51.100.2".into());
    // Not verified yet: the right password is refused, and a new link is sent (once).
    let r = sign_in(&mut b, "ada@acme.test").await;
    assert_eq!(r.status(), 403);
    assert!(b.cookie.is_none());

    let link = link_for(&app, "ada@acme.test", "EMAIL_VERIFICATION").await;
    // Opening the link shows a button; only posting it spends the token.
    let page = b.get(&path_of(&link)).await;
    assert_eq!(page.status(), 200);
    let token = token_in(&link);
    assert_eq!(
        b.post("/app/verify", form(&[("token", &token)]), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        b.post("/app/verify", form(&[("token", &token)]), None)
            .await
            .status(),
        410,
        "a link works once"
    );
    assert_eq!(
        b.post("/app/verify", form(&[("token", "eu-west.forged")]), None)
            .await
            .status(),
        410
    );

    // A wrong password and an unknown address read the same.
    let wrong = b
        .post(
            "/app/sign-in",
            form(&[
                ("email", "ada@acme.test"),
                ("password", "wrong password here"),
            ]),
            None,
        )
        .await;
    let unknown = b
        .post(
            "/app/sign-in",
            form(&[
                ("email", "nobody@acme.test"),
                ("password", "wrong password here"),
            ]),
            None,
        )
        .await;
    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    assert_eq!(sign_in(&mut b, "ada@acme.test").await.status(), 303);

    let home = b.get("/app").await.text().await.expect("home");
    assert!(home.contains("no-workspaces") && home.contains("Frankfurt"));
    // Without the CSRF token, or from another site, nothing is created.
    let forged = b
        .post(
            "/app/workspaces",
            form(&[("name", "Acme"), ("slug", "acme")]),
            None,
        )
        .await;
    assert_eq!(forged.status(), 403);
    let cross = b
        .post(
            "/app/workspaces",
            form(&[
                ("csrf", &csrf_of(&home)),
                ("name", "Acme"),
                ("slug", "acme"),
            ]),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(cross.status(), 403);

    let ws_page = new_workspace(&b, "Acme Corp", "acme").await;
    let html = b.get(&ws_page).await.text().await.expect("workspace");
    assert!(html.contains("Acme Corp") && html.contains("Frankfurt") && html.contains("owner"));
    let ws = app
        .t
        .db
        .workspace_get_by_slug(&genesis_core::Slug::parse("acme").expect("slug"))
        .await
        .expect("created");
    assert_eq!(
        ws.region,
        genesis_core::Region::EuWest,
        "the account's region"
    );
    let events: Vec<String> = app
        .t
        .db
        .audit_list(None, None, 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.actor == "account:ada@acme.test")
        .map(|e| e.event)
        .collect();
    for e in ["ACCOUNT_CREATED", "EMAIL_VERIFIED", "LOGIN_SUCCESS"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

#[tokio::test]
async fn owners_invite_members_make_tokens_and_sign_out_everywhere() {
    let app = spawn_app().await;
    let owner = tenant(&app, "olga@acme.test", "us-east").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_inv").await;
    let ws_id = ws_page.rsplit('/').next().expect("id").to_owned();
    let html = owner.get(&ws_page).await.text().await.expect("page");
    let csrf = csrf_of(&html);

    let r = owner
        .post(
            &format!("{ws_page}/members"),
            form(&[
                ("csrf", &csrf),
                ("email", "mo@acme.test"),
                ("role", "member"),
            ]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    let invite = link_for(&app, "mo@acme.test", "INVITATION").await;

    // Someone else cannot use the invitation, even signed in.
    let eve = tenant(&app, "eve@other.test", "apac").await;
    let eve_page = eve.get("/app").await.text().await.expect("home");
    let r = eve
        .post(
            "/app/invitations",
            form(&[("csrf", &csrf_of(&eve_page)), ("token", &token_in(&invite))]),
            None,
        )
        .await;
    assert_eq!(r.status(), 410);

    // The invited address joins (its account lives in another region's database).
    let mo = tenant(&app, "mo@acme.test", "eu-north").await;
    let page = mo
        .get(&path_of(&invite))
        .await
        .text()
        .await
        .expect("invitation");
    let r = mo
        .post(
            "/app/invitations",
            form(&[("csrf", &csrf_of(&page)), ("token", &token_in(&invite))]),
            None,
        )
        .await;
    assert_eq!(location(&r), ws_page);
    let as_member = mo.get(&ws_page).await.text().await.expect("page");
    assert!(as_member.contains("olga@acme.test") && !as_member.contains("new-token"));
    // A member cannot make tokens.
    let r = mo
        .post(
            &format!("{ws_page}/tokens"),
            form(&[("csrf", &csrf_of(&as_member)), ("name", "mine")]),
            None,
        )
        .await;
    assert_eq!(r.status(), 403);

    // An owner's token: shown once, works on the tenant API for its workspace only.
    let r = owner
        .post(
            &format!("{ws_page}/tokens"),
            form(&[("csrf", &csrf), ("name", "CRM sync")]),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let shown = r.text().await.expect("page");
    let at = shown.find("gt_").expect("the token");
    let token: String = shown[at..].chars().take_while(|c| *c != '<').collect();
    let api = |path: String, bearer: String| {
        let http = reqwest::Client::new();
        let base = app.base.clone();
        async move {
            http.get(format!("{base}{path}"))
                .bearer_auth(bearer)
                .send()
                .await
                .expect("api")
        }
    };
    let r = api(format!("/api/v1/tenant/workspaces/{ws_id}"), token.clone()).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["slug"], "acme_inv");
    let members: serde_json::Value = api(
        format!("/api/v1/tenant/workspaces/{ws_id}/members"),
        token.clone(),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(members["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        api(
            format!("/api/v1/tenant/workspaces/{ws_id}/tokens"),
            token.clone()
        )
        .await
        .status(),
        403,
        "a token cannot list its siblings"
    );
    // The owner's scripts take the workspace's data away with them (spec 64.3).
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/tenant/workspaces/{ws_id}/exports",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 202);
    let started: serde_json::Value = r.json().await.expect("json");
    let export = started["id"].as_str().expect("id").to_owned();
    let job = loop {
        let job: serde_json::Value = api(
            format!("/api/v1/tenant/workspaces/{ws_id}/exports/{export}"),
            token.clone(),
        )
        .await
        .json()
        .await
        .expect("json");
        if job["state"] != "RUNNING" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "READY", "{job}");
    assert!(!job["links"].as_array().expect("links").is_empty(), "{job}");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM genesis.tenant_api_tokens")
        .fetch_one(app.t.db.owner_pool())
        .await
        .expect("digest");
    assert_eq!(stored.len(), 32);
    let later = owner.get(&ws_page).await.text().await.expect("page");
    assert!(
        later.contains("CRM sync") && !later.contains(&token),
        "never shown again"
    );

    // Revoked: refused at once.
    let tokens = app
        .t
        .db
        .tenant_token_list(genesis_core::WorkspaceId::parse(&ws_id).expect("id"))
        .await
        .expect("tokens");
    let r = owner
        .post(
            &format!("{ws_page}/tokens/{}/revoke", tokens[0].id),
            form(&[("csrf", &csrf)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        api(format!("/api/v1/tenant/workspaces/{ws_id}"), token)
            .await
            .status(),
        401
    );

    // Sign out everywhere ends every session of the account.
    let mut second = Browser::new(&app);
    assert_eq!(sign_in(&mut second, "olga@acme.test").await.status(), 303);
    assert_eq!(second.get("/app").await.status(), 200);
    let r = owner
        .post(
            "/app/sign-out",
            form(&[("csrf", &csrf), ("everywhere", "1")]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    for b in [&owner, &second] {
        let r = b.get("/app").await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/app/sign-in"));
    }
}

/// Every tenant route, walked by a signed-in tenant and by a token holder with another
/// tenant's workspace id, answers exactly as for a workspace that does not exist.
#[tokio::test]
async fn no_tenant_route_says_anything_about_another_tenants_workspace() {
    let app = spawn_app().await;
    let alice = tenant(&app, "alice@a.test", "us-west").await;
    let alice_page = new_workspace(&alice, "Alice Co", "alice_co").await;
    let alice_id = alice_page.rsplit('/').next().expect("id").to_owned();

    let mallory = tenant(&app, "mallory@m.test", "us-west").await;
    let mallory_page = new_workspace(&mallory, "Mallory Co", "mallory_co").await;
    let html = mallory.get(&mallory_page).await.text().await.expect("page");
    let csrf = csrf_of(&html);
    let r = mallory
        .post(
            &format!("{mallory_page}/tokens"),
            form(&[("csrf", &csrf), ("name", "probe")]),
            None,
        )
        .await;
    let shown = r.text().await.expect("page");
    let at = shown.find("gt_").expect("the token");
    let token: String = shown[at..].chars().take_while(|c| *c != '<').collect();

    let missing = uuid::Uuid::now_v7().to_string();
    let mut answers = Vec::new();
    for id in [alice_id.as_str(), missing.as_str(), "not-an-id"] {
        let base = format!("/app/workspaces/{id}");
        let mut seen = Vec::new();
        for page in [
            base.clone(),
            format!("{base}/setup"),
            format!("{base}/leads"),
            format!("{base}/setup/email"),
            format!("{base}/setup/ai-keys"),
            format!("{base}/setup/dns"),
            format!("{base}/setup/ignition"),
            format!("{base}/setup/ignition/events"),
            format!("{base}/leads/imports/{missing}"),
            format!("{base}/tracking-domains"),
        ] {
            let r = mallory.get(&page).await;
            seen.push((r.status().as_u16(), "GET page"));
        }
        for (path, body) in [
            (
                format!("{base}/members"),
                form(&[("csrf", &csrf), ("email", "x@m.test"), ("role", "owner")]),
            ),
            (
                format!("{base}/tokens"),
                form(&[("csrf", &csrf), ("name", "steal")]),
            ),
            (
                format!("{base}/tokens/{missing}/revoke"),
                form(&[("csrf", &csrf)]),
            ),
            (
                format!("{base}/setup/brand"),
                form(&[("csrf", &csrf), ("action", "confirm"), ("name", "Stolen")]),
            ),
            (
                format!("{base}/setup/booking"),
                form(&[
                    ("csrf", &csrf),
                    ("booking_url", "https://calendly.com/x"),
                    ("accept", "1"),
                ]),
            ),
            (
                format!("{base}/setup/email"),
                form(&[("csrf", &csrf), ("sender_name", "Mallory")]),
            ),
            (
                format!("{base}/setup/ai-keys"),
                form(&[
                    ("csrf", &csrf),
                    ("openai_key", &format!("sk-{}", "x".repeat(40))),
                ]),
            ),
            (
                format!("{base}/setup/dns"),
                form(&[
                    ("csrf", &csrf),
                    ("action", "domain"),
                    ("domain", "evil.test"),
                ]),
            ),
            (format!("{base}/setup/ignition"), form(&[("csrf", &csrf)])),
            (
                format!("{base}/campaigns/outreach"),
                form(&[("csrf", &csrf), ("action", "pause")]),
            ),
            (
                format!("{base}/tracking-domains"),
                form(&[("csrf", &csrf), ("host", "track.evil.test")]),
            ),
            (
                format!("{base}/tracking-domains/track.acme.test/check"),
                form(&[("csrf", &csrf)]),
            ),
            (
                format!("{base}/tracking-domains/track.acme.test/remove"),
                form(&[("csrf", &csrf)]),
            ),
        ] {
            let r = mallory.post(&path, body, None).await;
            seen.push((r.status().as_u16(), "POST"));
        }
        let (ct, body) = upload(&csrf, "leads.csv", b"email\nx@m.test\n");
        let r = mallory
            .post_as(&format!("{base}/leads/import"), &ct, body, None)
            .await;
        seen.push((r.status().as_u16(), "POST upload"));
        for path in ["", "/members", "/tokens", "/tracking-domains"] {
            let r = reqwest::Client::new()
                .get(format!("{}/api/v1/tenant/workspaces/{id}{path}", app.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("api");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("problem");
            assert_eq!(body["detail"], "workspace not found", "{id}{path}");
            seen.push((status, "API"));
        }
        assert!(seen.iter().all(|(s, _)| *s == 404), "{id}: {seen:?}");
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "another's workspace reads as a missing one"
    );
    // And nothing changed in Alice's workspace.
    let ws = genesis_core::WorkspaceId::parse(&alice_id).expect("id");
    assert_eq!(app.t.db.member_list(ws).await.expect("members").len(), 1);
    assert!(
        app.t
            .db
            .invitation_list(ws)
            .await
            .expect("invitations")
            .is_empty()
    );
    assert!(
        app.t
            .db
            .tenant_token_list(ws)
            .await
            .expect("tokens")
            .is_empty()
    );
    let progress = app.t.db.onboarding_progress(ws).await.expect("progress");
    assert_eq!(progress.brand, None);
    assert!(
        app.t
            .db
            .tracking_domains(ws)
            .await
            .expect("tracking domains")
            .is_empty()
    );
}

/// The dashboard shows a tenant their leads (newest first, 50 a page, filtered and searched
/// in their own partition only), their engine in their words, and recent activity.
#[tokio::test]
async fn a_tenant_pages_and_searches_their_leads_and_sees_their_activity() {
    let app = spawn_app().await;
    let owner = tenant(&app, "lea@acme.test", "eu-west").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_leads").await;
    let id = ws_page.rsplit('/').next().expect("id").to_owned();
    let ws = genesis_core::WorkspaceId::parse(&id).expect("id");
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(ws, "test")
        .await
        .expect("partition");
    let leads: Vec<serde_json::Value> = (0..60)
        .map(|i| {
            serde_json::json!({
                "email": format!("lead{i:02}@corp.example"),
                "company": if i % 2 == 0 { "Even Corp" } else { "Odd_Ltd" },
                "status": if i < 5 { "replied" } else { "new" },
            })
        })
        .collect();
    let (status, report, _) = app
        .post(
            &format!("/api/v1/workspaces/{id}/leads"),
            serde_json::json!({ "leads": leads }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    // Another tenant's lead with a matching address stays out of sight.
    let other = tenant(&app, "zed@other.test", "eu-west").await;
    let other_page = new_workspace(&other, "Other", "other_leads").await;
    let other_id = other_page.rsplit('/').next().expect("id").to_owned();
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(
            genesis_core::WorkspaceId::parse(&other_id).expect("id"),
            "test",
        )
        .await
        .expect("partition");
    app.post(
        &format!("/api/v1/workspaces/{other_id}/leads"),
        serde_json::json!({ "leads": [{"email": "lead99@corp.example", "company": "Odd_Ltd"}] }),
    )
    .await;

    let rows = |html: &str| html.matches("@corp.example</td>").count();
    let first = owner
        .get(&format!("{ws_page}/leads"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(rows(&first), 50, "a page holds 50");
    assert!(first.contains("lead59@corp.example") && !first.contains("lead99"));
    let marker = "id=\"next-page\" href=\"";
    let at = first.find(marker).expect("a next page") + marker.len();
    let next: String = first[at..].chars().take_while(|c| *c != '"').collect();
    let second = owner
        .get(&next.replace("&amp;", "&"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(rows(&second), 10);
    assert!(!second.contains("next-page"));

    // Search is a substring in any case, `_` a character (not a wildcard); status filters.
    let odd = owner
        .get(&format!("{ws_page}/leads?q=ODD_LTD&status="))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(rows(&odd), 30);
    let replied = owner
        .get(&format!("{ws_page}/leads?status=replied"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(rows(&replied), 5);
    let bad = owner.get(&format!("{ws_page}/leads?status=won")).await;
    assert_eq!(bad.status(), 422);

    let page = owner.get(&ws_page).await.text().await.expect("workspace");
    assert!(page.contains(r#"id="engine">not started yet"#), "{page}");
    assert!(page.contains("id=\"activity\""));
}

/// A `multipart/form-data` body with the CSRF token and one file.
fn upload(csrf: &str, filename: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "genesis-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_csv_import_stores_the_good_rows_in_batches_and_names_the_bad_ones_by_line() {
    let app = spawn_app().await;
    let owner = tenant(&app, "ivy@acme.test", "eu-west").await;
    let ws_page = new_workspace(&owner, "Acme", "acme_import").await;
    let id = ws_page.rsplit('/').next().expect("id").to_owned();
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(genesis_core::WorkspaceId::parse(&id).expect("id"), "test")
        .await
        .expect("partition");
    // 2,500 rows (three batches), then a bad address and a duplicate.
    let mut csv = String::from("Email,First Name,Company,Source\n");
    for i in 0..2_500 {
        csv.push_str(&format!("lead{i}@corp.example,Lead {i},Corp,fair\n"));
    }
    csv.push_str("not-an-address,Bad,Corp,\n");
    csv.push_str("lead7@corp.example,Again,Corp,\n");
    let leads = owner
        .get(&format!("{ws_page}/leads"))
        .await
        .text()
        .await
        .expect("page");
    assert!(leads.contains(r#"id="import-leads""#));
    let (ct, body) = upload(&csrf_of(&leads), "leads.csv", csv.as_bytes());
    let r = owner
        .post_as(&format!("{ws_page}/leads/import"), &ct, body, None)
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let progress = location(&r);
    assert!(progress.contains("/leads/imports/"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let page = owner.get(&progress).await.text().await.expect("page");
        if !page.contains(r#"data-state="running""#) {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import never finished: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(page.contains("import-done"), "{page}");
    let fact = |id: &str| -> String {
        let at = page.find(&format!(r#"id="{id}">"#)).expect("fact") + id.len() + 6;
        page[at..].split('<').next().unwrap_or_default().to_owned()
    };
    assert_eq!(fact("imported"), "2500");
    assert_eq!(fact("duplicates"), "1");
    assert_eq!(fact("refused"), "1");
    assert!(
        page.contains("<td>2502</td>"),
        "the bad row named by its line: {page}"
    );
    // Read back as the tenant (RLS): every good row, with its extra column kept as data.
    let ws = genesis_core::WorkspaceId::parse(&id).expect("id");
    let mut store = app
        .t
        .db
        .leads_open(
            &genesis_core::TenantRouter::new(None),
            &genesis_store::Caller::Tenant(ws),
            &id,
        )
        .await
        .expect("the tenant's leads");
    assert_eq!(store.count(None).await.expect("count"), 2_500);
    let genesis_store::LeadStore::Sovereign(s) = &mut store else {
        panic!("a sovereign tenant")
    };
    let found = s
        .lead_search(None, Some("lead2499@corp.example"), None, 5)
        .await
        .expect("search");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].data["source"], "fair");
    assert_eq!(found.items[0].first_name.as_deref(), Some("Lead 2499"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.audit_log WHERE event = 'LEADS_IMPORTED' AND workspace_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1);

    // A file without an email column changes nothing and says why.
    let (ct, body) = upload(&csrf_of(&leads), "people.csv", b"name,company\nAda,Acme\n");
    let r = owner
        .post_as(&format!("{ws_page}/leads/import"), &ct, body, None)
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("page").contains("needs an"));
    // Another tenant cannot see this import.
    let other = tenant(&app, "ned@other.test", "eu-west").await;
    let other_ws = new_workspace(&other, "Other", "other_import").await;
    let theirs = progress.replace(&ws_page, &other_ws);
    assert_eq!(other.get(&theirs).await.status(), 404);
    assert_eq!(other.get(&progress).await.status(), 404);
}
