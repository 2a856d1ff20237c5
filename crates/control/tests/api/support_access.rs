//! Support access (spec 63.3) over real HTTP: a support operator sees nothing of a tenant
//! and nothing fleet-wide without a grant; a grant opens exactly its tier, for its time;
//! acting beyond the tier or after the expiry is refused and audited; Write waits for a
//! manager; the tenant sees every grant and action, and can end a grant.
//!
//! The fleet here has no cloud, so an action the grant allows goes as far as reaching for
//! the droplet (503, no cloud configured) and an action it does not allow stops at 403:
//! the line between the two is the check. The ignition suite runs an allowed action on a
//! real sidecar.

use genesis_control::credentials::hash_password;
use genesis_core::support::OperatorRole;
use genesis_core::{DropletId, Region, WorkspaceId};

use super::accounts::{new_workspace, tenant};
use super::god_mode::{Browser, PASSWORD, csrf_of, form, location};
use super::{App, spawn_app};

async fn staff(app: &App, name: &str, role: OperatorRole, from: &str) -> Browser {
    let email = format!("{name}@genesis.test");
    let hash = hash_password(PASSWORD).expect("hash");
    app.t
        .db
        .operator_create_with_role(&email, &hash, role, "test")
        .await
        .expect("operator");
    let mut b = Browser::new(app);
    b.from = Some(from.into());
    assert_eq!(b.sign_in(&email, PASSWORD).await.status(), 303);
    b
}

/// `(event, why or action, grant)` of the audit events of `actor`, oldest first.
async fn trail(app: &App, actor: &str) -> Vec<(String, String, Option<String>)> {
    let mut rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event, details FROM genesis.audit_log WHERE actor = $1 ORDER BY id")
            .bind(actor)
            .fetch_all(app.t.db.owner_pool())
            .await
            .expect("audit");
    rows.drain(..)
        .map(|(event, d)| {
            let what = d["why"]
                .as_str()
                .or(d["action"].as_str())
                .unwrap_or_default()
                .to_owned();
            (event, what, d["grant"].as_str().map(str::to_owned))
        })
        .collect()
}

/// Every value of attribute `name` in `html`, in order.
fn attrs<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    html.split(&format!(r#"{name}=""#))
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect()
}

/// God Mode's page of tenant `ws`, as `b` sees it.
async fn tenant_page(b: &Browser, ws: WorkspaceId) -> String {
    b.get(&format!("/god/tenants/{ws}"))
        .await
        .text()
        .await
        .expect("page")
}

async fn csrf(b: &Browser) -> String {
    csrf_of(&b.get("/god/support").await.text().await.expect("page"))
}

async fn request(b: &Browser, ws: WorkspaceId, tier: &str, reason: &str) -> reqwest::Response {
    request_for(b, ws, tier, reason, "").await
}

/// [`request`], naming an incident.
async fn request_for(
    b: &Browser,
    ws: WorkspaceId,
    tier: &str,
    reason: &str,
    incident: &str,
) -> reqwest::Response {
    let token = csrf(b).await;
    b.post(
        "/god/support/grants",
        form(&[
            ("csrf", &token),
            ("workspace", &ws.to_string()),
            ("tier", tier),
            ("reason", reason),
            ("incident", incident),
        ]),
        None,
    )
    .await
}

async fn op(b: &Browser, droplet: DropletId, op: &str, extra: &[(&str, &str)]) -> u16 {
    let token = csrf(b).await;
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend_from_slice(extra);
    b.post(
        &format!("/god/droplets/{droplet}/ops/{op}"),
        form(&fields),
        None,
    )
    .await
    .status()
    .as_u16()
}

async fn grant_id(app: &App, ws: WorkspaceId) -> uuid::Uuid {
    sqlx::query_scalar(
        "SELECT id FROM genesis.support_grants WHERE workspace_id = $1 AND ended_at IS NULL",
    )
    .bind(ws.as_uuid())
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("an open grant")
}

#[tokio::test]
async fn a_support_operator_reaches_a_tenant_only_under_a_grant_of_the_right_tier_and_time() {
    let app = spawn_app().await;
    let owner = tenant(&app, "owner@acme.test", "eu-west").await;
    let page = new_workspace(&owner, "Acme", "acme_support").await;
    let ws = WorkspaceId::parse(page.rsplit('/').next().expect("id")).expect("workspace id");
    let droplet = DropletId::new();
    app.t
        .db
        .droplet_register(droplet, ws, Region::EuWest, "test")
        .await
        .expect("droplet");
    let sam = staff(&app, "sam", OperatorRole::Support, "198.51.100.7").await;
    let me = "operator:sam@genesis.test";

    // Nothing fleet-wide: no links to it, and the pages refuse.
    let overview = sam.get("/god").await.text().await.expect("overview");
    assert!(
        !overview.contains(r#"href="/god/audit""#),
        "no link to what is refused"
    );
    assert!(overview.contains(r#"href="/god/support""#));
    for path in [
        "/god/audit",
        "/god/rollouts",
        "/god/financial",
        "/god/security",
        "/god/dr",
    ] {
        assert_eq!(sam.get(path).await.status(), 403, "{path}");
    }
    let token = csrf(&sam).await;
    let r = sam
        .post(
            "/god/reconcilers/watchdog/wake",
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 403);

    // Without a grant: the tenant's page is the request form, the droplet's is refused.
    let html = sam
        .get("/god/tenants/acme_support")
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains(r#"id="request-grant""#) && !html.contains(r#"id="tenant-facts""#));
    assert_eq!(
        sam.get(&format!("/god/droplets/{droplet}")).await.status(),
        403
    );
    assert_eq!(op(&sam, droplet, "logs", &[]).await, 403);

    // A request names its tier and says why.
    let r = request(&sam, ws, "read_only", "logs").await;
    assert_eq!(r.status(), 422, "a reason of four letters says nothing");
    let r = request(&sam, ws, "root", "customer reports failed runs").await;
    assert_eq!(r.status(), 422);
    let r = request(&sam, ws, "read_only", "customer reports failed runs").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, format!("/god/tenants/{ws}"))
    );
    let read_only = grant_id(&app, ws).await;

    // Read-Only: the tenant, the droplet, logs and health; not a restart, a pull or a reboot.
    let html = tenant_page(&sam, ws).await;
    assert!(html.contains(r#"id="tenant-facts""#) && html.contains(r#"id="grant-banner""#));
    assert_eq!(
        sam.get(&format!("/god/droplets/{droplet}")).await.status(),
        200
    );
    assert_eq!(
        op(&sam, droplet, "logs", &[("lines", "5")]).await,
        503,
        "allowed: reaches for the droplet"
    );
    assert_eq!(op(&sam, droplet, "health", &[]).await, 503);
    assert_eq!(op(&sam, droplet, "restart", &[]).await, 403);
    assert_eq!(
        op(&sam, droplet, "pull", &[("image", "n8nio/n8n:2.8.4")]).await,
        403
    );
    let token = csrf(&sam).await;
    let r = sam
        .post(
            &format!("/god/droplets/{droplet}/power/reboot"),
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let html = tenant_page(&sam, ws).await;
    assert!(html.contains(r#"id="grant-banner""#));

    // Thirty-one minutes later (the grant's clock moved back), it allows nothing.
    sqlx::query(
        "UPDATE genesis.support_grants SET requested_at = requested_at - interval '31 min',
             granted_at = granted_at - interval '31 min', expires_at = expires_at - interval '31 min'
         WHERE id = $1",
    )
    .bind(read_only)
    .execute(app.t.db.owner_pool())
    .await
    .expect("age");
    assert_eq!(op(&sam, droplet, "logs", &[]).await, 403);
    let html = tenant_page(&sam, ws).await;
    assert!(html.contains(r#"id="request-grant""#) && !html.contains(r#"id="tenant-facts""#));

    // Write waits for a manager; the requester cannot approve it.
    let r = request(&sam, ws, "write", "pull the patched image for the tenant").await;
    assert_eq!(r.status(), 303);
    let write = grant_id(&app, ws).await;
    let html = tenant_page(&sam, ws).await;
    assert!(html.contains(r#"id="grant-pending""#), "{html}");
    assert_eq!(
        op(&sam, droplet, "logs", &[]).await,
        403,
        "pending allows nothing"
    );
    let token = csrf(&sam).await;
    let r = sam
        .post(
            &format!("/god/support/grants/{write}/approve"),
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 403);
    let max = staff(&app, "max", OperatorRole::Manager, "198.51.100.8").await;
    let list = max.get("/god/support").await.text().await.expect("list");
    assert!(list.contains(&format!("/god/support/grants/{write}/approve")));
    let token = csrf_of(&list);
    let r = max
        .post(
            &format!("/god/support/grants/{write}/approve"),
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        op(&sam, droplet, "pull", &[("image", "n8nio/n8n:2.8.4")]).await,
        503
    );
    assert_eq!(op(&sam, droplet, "restart", &[]).await, 503);

    // A manager sees the tenant without a grant, and asks for one only to SSH: any other
    // tier is refused, Emergency needs its incident and then waits for two others.
    let html = tenant_page(&max, ws).await;
    assert!(html.contains(r#"id="tenant-facts""#) && html.contains(r#"id="emergency-ssh""#));
    assert_eq!(
        request(&max, ws, "debug", "restart n8n for the customer")
            .await
            .status(),
        409
    );
    assert_eq!(
        request(&max, ws, "emergency", "n8n will not start at all")
            .await
            .status(),
        422
    );
    let r = request_for(&max, ws, "emergency", "n8n will not start at all", "INC-9").await;
    assert_eq!(r.status(), 303);
    let html = tenant_page(&max, ws).await;
    assert!(html.contains(r#"data-status="pending""#), "{html}");
    // The approvers' list shows it; a support operator's shows their own grants only.
    let emergency: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM genesis.support_grants WHERE tier = 'emergency' AND ended_at IS NULL",
    )
    .fetch_one(app.t.db.owner_pool())
    .await
    .expect("the manager's request");
    let mine = sam.get("/god/support").await.text().await.expect("page");
    assert!(mine.contains(&write.to_string()) && !mine.contains(&emergency.to_string()));
    let all = max.get("/god/support").await.text().await.expect("page");
    assert!(all.contains(&emergency.to_string()) && all.contains(&write.to_string()));

    // What the audit log says of sam, in order: each refusal with why, each action with
    // the grant it ran under.
    let ro = Some(read_only.to_string());
    let wr = Some(write.to_string());
    let t = trail(&app, me).await;
    let denied: Vec<&str> = t
        .iter()
        .filter(|(e, ..)| e == "PERMISSION_DENIED")
        .map(|(_, why, _)| why.as_str())
        .collect();
    assert_eq!(
        denied,
        [
            "fleet_role_required",
            "fleet_role_required",
            "fleet_role_required",
            "fleet_role_required",
            "fleet_role_required",
            "fleet_role_required",
            "no_grant",
            "no_grant",
            "beyond_tier",
            "beyond_tier",
            "beyond_tier",
            "expired",
            "pending",
            "fleet_role_required",
        ],
        "{t:#?}"
    );
    let taken: Vec<(&str, Option<String>)> = t
        .iter()
        .filter(|(e, ..)| e == "ACTION_TAKEN")
        .map(|(_, what, g)| (what.as_str(), g.clone()))
        .collect();
    assert_eq!(
        taken,
        [
            ("VIEW_TENANT", ro.clone()),
            ("VIEW_DROPLET", ro.clone()),
            ("VIEW_TENANT", ro.clone()),
        ],
        "a sidecar command is audited once the droplet is reached; views at once"
    );
    assert!(t.iter().any(|(e, _, g)| e == "ACCESS_GRANTED" && *g == ro));
    assert!(
        t.iter()
            .any(|(e, _, g)| e == "ACCESS_REQUESTED" && *g == wr)
    );
    assert!(
        trail(&app, "operator:max@genesis.test")
            .await
            .iter()
            .any(|(e, _, g)| e == "ACCESS_GRANTED" && *g == wr)
    );

    // The tenant sees both grants and what was done, and its owner ends the live one.
    let html = owner
        .get(&format!("{page}/support"))
        .await
        .text()
        .await
        .expect("page");
    for g in [read_only, write] {
        assert!(html.contains(&format!(r#"data-grant="{g}""#)), "{html}");
    }
    assert!(html.contains("pull the patched image") && html.contains("VIEW_TENANT"));
    let token = csrf_of(&html);
    // Another tenant cannot end it through its own workspace.
    let other = tenant(&app, "eve@evil.test", "eu-west").await;
    let other_page = new_workspace(&other, "Evil", "evil_support").await;
    let other_token = csrf_of(&other.get(&other_page).await.text().await.expect("page"));
    let r = other
        .post(
            &format!("{other_page}/support/{write}/revoke"),
            form(&[("csrf", &other_token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = owner
        .post(
            &format!("{page}/support/{write}/revoke"),
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        op(&sam, droplet, "logs", &[]).await,
        403,
        "ended by the tenant"
    );
    let ended = app.t.db.support_grant_get(write).await.expect("grant");
    assert_eq!(ended.end_reason.as_deref(), Some("revoked"));
    assert_eq!(ended.ended_by.as_deref(), Some("account:owner@acme.test"));
}

#[tokio::test]
async fn a_tenant_reads_its_own_audit_log_by_category_and_nobody_elses() {
    let app = spawn_app().await;
    let owner = tenant(&app, "ada@acme.test", "eu-west").await;
    let page = new_workspace(&owner, "Acme", "acme_audit").await;
    let ws = WorkspaceId::parse(page.rsplit('/').next().expect("id")).expect("workspace id");
    let other = tenant(&app, "eve@evil.test", "eu-west").await;
    let other_page = new_workspace(&other, "Evil", "evil_audit").await;
    // Support looked at Acme under a grant: that is in Acme's log, under Support.
    let sam = staff(&app, "sam", OperatorRole::Support, "198.51.100.9").await;
    assert_eq!(
        request(&sam, ws, "read_only", "customer asked about a failed run")
            .await
            .status(),
        303
    );

    let home = owner.get(&page).await.text().await.expect("page");
    assert!(home.contains(&format!(r#"href="{page}/audit""#)));
    let html = owner
        .get(&format!("{page}/audit"))
        .await
        .text()
        .await
        .expect("log");
    let events = attrs(&html, "data-event");
    assert!(events.contains(&"WORKSPACE_CREATED"), "{events:?}");
    assert!(events.contains(&"ACCESS_GRANTED"), "{events:?}");
    let html = owner
        .get(&format!("{page}/audit?category=support"))
        .await
        .text()
        .await
        .expect("log");
    let categories = attrs(&html, "data-category");
    assert!(
        !categories.is_empty() && categories.iter().all(|c| *c == "support"),
        "{categories:?}"
    );
    // Every category written is one of spec 63.1's (and operations).
    let written: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT category FROM genesis.audit_log")
            .fetch_all(app.t.db.owner_pool())
            .await
            .expect("categories");
    assert!(
        written
            .iter()
            .all(|c| genesis_core::audit::AuditCategory::from_code(c).is_some()),
        "{written:?}"
    );

    let r = owner.get(&format!("{page}/audit?category=misc")).await;
    assert_eq!(r.status(), 422);
    let r = owner.get(&format!("{page}/audit?after=yesterday")).await;
    assert_eq!(r.status(), 422);
    // Eve's log has none of Acme's events, and Acme's log is not Eve's to read.
    let html = other
        .get(&format!("{other_page}/audit"))
        .await
        .text()
        .await
        .expect("log");
    assert!(!html.contains("ACCESS_GRANTED") && html.contains("WORKSPACE_CREATED"));
    assert_eq!(other.get(&format!("{page}/audit")).await.status(), 404);
}
