//! The operator's console (issue 21) over real HTTP: finding a tenant, its page, acting on
//! alerts from God Mode and from the API under the same kind of name, the audit viewer's
//! filters, and refusals that say why.

use genesis_core::{DropletEvent, DropletId, Region, WorkspaceId};
use genesis_store::NewAlert;

use super::god_mode::{Browser, csrf_of, form, location, signed_in};
use super::{App, spawn_app};

async fn tenant(app: &App, slug: &str, name: &str, region: Region) -> WorkspaceId {
    let (status, ws, _) = app
        .post(
            "/api/v1/workspaces",
            serde_json::json!({"name": name, "slug": slug, "region": region.code(), "tier": "standard"}),
        )
        .await;
    assert_eq!(status, 201, "{ws}");
    ws["id"].as_str().expect("id").parse().expect("uuid")
}

async fn healthy_droplet(app: &App, ws: WorkspaceId, region: Region) -> DropletId {
    let id = DropletId::new();
    app.t
        .db
        .droplet_register(id, ws, region, "test")
        .await
        .expect("droplet");
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
    id
}

async fn page(b: &Browser, path: &str) -> (u16, String) {
    let r = b.get(path).await;
    (r.status().as_u16(), r.text().await.expect("page"))
}

#[tokio::test]
async fn an_operator_finds_a_tenant_acts_on_its_alert_and_reads_the_audit_log() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let acme = tenant(&app, "acme_corp", "Acme Corp", Region::EuWest).await;
    tenant(&app, "acme_labs", "Acme Labs", Region::UsEast).await;
    tenant(&app, "zeta", "Zeta 100% Widgets", Region::UsEast).await;
    let droplet = healthy_droplet(&app, acme, Region::EuWest).await;
    app.t
        .db
        .alert_raise(
            &NewAlert {
                workspace: Some(acme),
                droplet: Some(droplet),
                kind: "manual_review",
                severity: "HIGH",
                summary: "Droplet did not come back after a hard reboot",
                details: &serde_json::json!({}),
            },
            "zombie-detector",
        )
        .await
        .expect("alert");

    // Search: part of a name or slug, any case, lists; an exact slug or a droplet id opens
    // its page; one letter is too little; `%` is a character, not a wildcard.
    let (status, html) = page(&b, "/god/search?q=ACME").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-slug="acme_corp""#) && html.contains(r#"data-slug="acme_labs""#));
    assert!(!html.contains(r#"data-slug="zeta""#), "{html}");
    // An exact slug wins even among more partial matches than a page shows.
    for i in 0..55 {
        tenant(
            &app,
            &format!("zz_acme_corp_{i:02}"),
            "Another Acme",
            Region::UsEast,
        )
        .await;
    }
    let r = b.get("/god/search?q=Acme_Corp").await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/god/tenants/acme_corp".to_owned())
    );
    let r = b.get(&format!("/god/search?q={droplet}")).await;
    assert_eq!(location(&r), format!("/god/droplets/{droplet}"));
    let (_, html) = page(&b, "/god/search?q=a").await;
    assert!(
        html.contains(r#"id="search-hint""#),
        "one letter is too little"
    );
    let (_, html) = page(&b, "/god/search?q=100%25").await;
    assert!(
        html.contains(r#"data-slug="zeta""#),
        "a literal percent sign matches"
    );
    let (_, html) = page(&b, "/god/search?q=me%25la").await;
    assert!(html.contains(r#"id="no-match""#), "and is not a wildcard");

    // The tenant's page: its droplet (linked, in words), the open alert, the audit trail;
    // the navigation marks the section and counts the open alert.
    let (status, html) = page(&b, "/god/tenants/acme_corp").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!(r#"href="/god/droplets/{droplet}""#)));
    assert!(html.contains("healthy") && html.contains(r#"id="tenant-audit""#));
    assert!(
        html.contains(r#"data-kind="manual_review""#),
        "the open alert"
    );
    assert!(
        html.contains(r#"<a href="/god/search" aria-current="page">"#),
        "{html}"
    );
    assert!(html.contains(r#"id="open-alerts""#) && html.contains(r#"title="1 open alerts""#));
    assert_eq!(page(&b, "/god/tenants/nobody_here").await.0, 404);
    assert_eq!(
        page(&b, &format!("/god/tenants/{acme}")).await.0,
        200,
        "by id too"
    );
    // The droplet's page links back to its tenant.
    let (_, html) = page(&b, &format!("/god/droplets/{droplet}")).await;
    assert!(html.contains(r#"href="/god/tenants/acme_corp""#));

    // Acknowledged in God Mode, resolved through the API: both audited, both "operator:".
    let back = "/god/tenants/acme_corp";
    let csrf = csrf_of(&page(&b, back).await.1);
    let r = b
        .post(
            &format!("/god/droplets/{droplet}/alerts/manual_review/acknowledge"),
            form(&[("csrf", &csrf), ("back", back)]),
            None,
        )
        .await;
    assert_eq!((r.status().as_u16(), location(&r)), (303, back.to_owned()));
    let (_, html) = page(&b, back).await;
    assert!(
        html.contains(r#"title="operator:ops@genesis.test">ops@genesis.test</span>"#),
        "taken by"
    );
    let forged = b
        .post(
            &format!("/god/droplets/{droplet}/alerts/manual_review/resolve"),
            form(&[("csrf", "forged"), ("back", back)]),
            None,
        )
        .await;
    assert_eq!(forged.status(), 403, "no CSRF token, no action");
    let (status, alert, _) = app
        .post(
            &format!("/api/v1/droplets/{droplet}/alerts/manual_review/resolve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{alert}");
    assert!(alert["resolved_at"].is_string());
    assert_eq!(alert["acknowledged_by"], "operator:ops@genesis.test");
    let (status, again, _) = app
        .post(
            &format!("/api/v1/droplets/{droplet}/alerts/manual_review/resolve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        (status, again["detail"].as_str()),
        (404, Some("open alert not found"))
    );
    let (_, html) = page(&b, back).await;
    assert!(
        !html.contains(r#"id="open-alerts""#),
        "no open alert, no badge"
    );

    // The audit viewer: operators only, then one tenant's fleet events.
    let (status, html) = page(&b, "/god/audit?actor=operator%3A").await;
    assert_eq!(status, 200);
    let actors: Vec<&str> = html
        .split(r#"data-actor=""#)
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(
        actors.contains(&"operator:ops@genesis.test") && actors.contains(&"operator:api-token"),
        "{actors:?}"
    );
    assert!(
        actors.iter().all(|a| a.starts_with("operator:")),
        "{actors:?}"
    );
    let (_, html) = page(&b, "/god/audit?tenant=acme_corp&category=droplet").await;
    for event in ["ALERT_RAISED", "ALERT_ACKNOWLEDGED", "ALERT_RESOLVED"] {
        assert!(
            html.contains(&format!(r#"data-event="{event}""#)),
            "{event}"
        );
    }
    let (_, html) = page(&b, "/god/audit?category=droplet&since=2999-01-01T00%3A00").await;
    assert!(html.contains(r#"id="no-events""#));
    // Filters that cannot be read say which and why, and show nothing.
    let (status, html) = page(&b, "/god/audit?since=yesterday").await;
    assert_eq!(status, 422);
    assert!(html.contains("since: must be a date and time"), "{html}");
    assert!(!html.contains(r#"id="audit""#));
    let (_, html) = page(&b, "/god/audit?tenant=nobody_here").await;
    assert!(html.contains("tenant: no tenant has this slug or id"));

    // Power actions through the state machine: a healthy droplet is not destroyed.
    let (status, refused, _) = app
        .post(
            &format!("/api/v1/droplets/{droplet}/power/destroy"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("the droplet is healthy"),
        "{refused}"
    );
    let (status, _, _) = app
        .post(
            &format!("/api/v1/droplets/{droplet}/power/explode"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn fleet_states_are_sampled_once_a_minute_and_drawn_per_state() {
    let app = spawn_app().await;
    let b = signed_in(&app).await;
    let ws = tenant(&app, "sampled", "Sampled Inc", Region::UsWest).await;
    for _ in 0..3 {
        healthy_droplet(&app, ws, Region::UsWest).await;
    }
    app.t
        .db
        .droplet_register(DropletId::new(), ws, Region::EuWest, "test")
        .await
        .expect("droplet");
    // Two (region, state) pairs: written once, whatever the number of passes that minute.
    assert_eq!(app.t.db.fleet_sample().await.expect("sample"), 2);
    assert_eq!(app.t.db.fleet_sample().await.expect("sample"), 0);
    let since = chrono::Utc::now() - chrono::Duration::minutes(5);
    let samples = app
        .t
        .db
        .fleet_samples_since(since, Some("us-west"))
        .await
        .expect("samples");
    assert_eq!(samples.len(), 1);
    assert_eq!(
        (samples[0].state.as_str(), samples[0].droplets),
        ("ACTIVE_HEALTHY", 3)
    );

    // The metrics page draws one line per state, and the form's "every region" is no error.
    let (status, html) = page(&b, "/god/metrics?region=&hours=6").await;
    assert_eq!(status, 200);
    for state in ["ACTIVE_HEALTHY", "PENDING"] {
        assert!(
            html.contains(&format!(r#"data-series="{state}""#)),
            "{state}"
        );
        assert!(
            html.contains(&format!(r#"data-state="{state}""#)),
            "{state}"
        );
    }
    let (_, html) = page(&b, "/god/metrics?region=eu-west&hours=720").await;
    assert!(
        html.contains(r#"data-series="PENDING""#)
            && !html.contains(r#"data-series="ACTIVE_HEALTHY""#)
    );
    // A month is read from the hourly sums: the minute just sampled is in them.
    let (_, html) = page(&b, "/god/metrics?hours=720").await;
    assert!(
        html.contains(r#"data-series="PENDING""#)
            && html.contains(r#"data-series="ACTIVE_HEALTHY""#)
    );
    let hour =
        chrono::DurationRound::duration_trunc(chrono::Utc::now(), chrono::Duration::hours(1))
            .expect("hour");
    let steps = app
        .t
        .db
        .fleet_sample_hour_steps(hour - chrono::Duration::hours(2), 60, 3, Some("us-west"))
        .await
        .expect("hourly");
    assert_eq!(steps.len(), 1, "{steps:?}");
    // (The sample may have been taken just before this hour began.)
    assert!(matches!(steps[0].step, 1 | 2), "{steps:?}");
    assert_eq!(
        (steps[0].state.as_str(), steps[0].droplets, steps[0].minutes),
        ("ACTIVE_HEALTHY", 3, 1),
        "one sampled minute of three droplets, counted once"
    );
    assert_eq!(page(&b, "/god/metrics?hours=721").await.0, 422);
}
