//! An operator's commands to one droplet (issue 18 finding 5): logs, health, restart and
//! pull reach the droplet's real sidecar through the API and through God Mode's droplet
//! page, each audited before it is sent and journaled with how it went.

use std::time::Duration;

use genesis_core::support::{OperatorRole, SupportTier};
use genesis_store::GrantRequest;
use reqwest::header::COOKIE;
use serde_json::json;

use crate::helpers::{Options, credentials, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_reads_logs_checks_health_restarts_n8n_and_pulls_an_image() {
    let w = world(Options::default()).await;
    let ws = w.create_workspace("droplet_ops").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["status"], "ACTIVE", "{got:#}");
    let row = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let id = row.id;
    let path = |op: &str| format!("/api/v1/droplets/{id}/{op}");

    let (s, health) = w.post(&path("health"), json!({})).await;
    assert_eq!(s, 200, "{health}");
    assert_eq!(health["action"], "HEALTH_CHECK");
    assert_eq!(
        health["reply"]["result"]["n8n_status"], "running",
        "{health}"
    );

    let (s, logs) = w.post(&path("logs"), json!({"lines": 3})).await;
    assert_eq!(s, 200, "{logs}");
    let lines = logs["reply"]["result"]["logs"].as_array().expect("lines");
    assert!(lines.len() <= 3, "{logs}");

    let (s, restart) = w.post(&path("restart"), json!({})).await;
    assert_eq!(s, 200, "{restart}");
    assert_eq!(restart["reply"]["result"]["success"], true);
    let (s, after) = w.post(&path("health"), json!({})).await;
    assert_eq!(
        (s, &after["reply"]["result"]["n8n_status"]),
        (200, &json!("running"))
    );

    let (s, pull) = w
        .post(&path("pull"), json!({"image": "n8nio/n8n:2.8.4"}))
        .await;
    assert_eq!(s, 200, "{pull}");

    // Bad input is refused before anything is sent or audited.
    for (op, body, field) in [
        ("logs", json!({"lines": 0}), "lines"),
        ("logs", json!({"lines": 2001}), "lines"),
        ("pull", json!({"image": "n8nio/n8n"}), "image"),
        ("pull", json!({}), "image"),
    ] {
        let (s, p) = w.post(&path(op), body).await;
        assert_eq!((s, p["field"].as_str()), (422, Some(field)), "{op}: {p}");
    }
    let (s, p) = w
        .post(&path("logs"), json!({"lines": 3, "follow": true}))
        .await;
    assert_eq!(s, 400, "unknown fields are refused: {p}");
    let (s, _) = w.post(&path("reboot"), json!({})).await;
    assert_eq!(s, 404);
    let (s, _) = w
        .post(
            &format!("/api/v1/droplets/{}/health", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = w
        .post("/api/v1/droplets/not-a-uuid/health", json!({}))
        .await;
    assert_eq!(s, 422);
    let anonymous = w
        .http
        .post(format!("{}{}", w.base, path("restart")))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);

    // God Mode: the droplet page carries the buttons; a form without the session's CSRF
    // token is refused; with it, the logs come back as a page.
    let (http, cookie) = w.god_session().await;
    let page = http
        .get(format!("{}/god/droplets/{id}", w.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    for op in ["health", "logs", "restart", "pull"] {
        assert!(
            page.contains(&format!(r#"action="/god/droplets/{id}/ops/{op}""#)),
            "no {op} button"
        );
    }
    let at = page.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
    let csrf = page[at..].split('"').next().expect("token").to_owned();
    let forged = http
        .post(format!("{}/god/droplets/{id}/ops/restart", w.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let logs_page = http
        .post(format!("{}/god/droplets/{id}/ops/logs", w.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("lines", "5")])
        .send()
        .await
        .expect("post");
    assert_eq!(logs_page.status(), 200);
    let html = logs_page.text().await.expect("html");
    assert!(html.contains("GET_LOGS"), "{html}");
    let refused = http
        .post(format!("{}/god/droplets/{id}/ops/pull", w.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("image", "latest please")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 422);

    // Audited before sending: the four API commands and the operator's logs request, and
    // nothing for what was refused.
    let audit =
        w.t.db
            .audit_list(Some(ws), Some("ACTION_TAKEN"), 50)
            .await
            .expect("audit");
    let mut actions: Vec<(String, String)> = audit
        .iter()
        .map(|e| {
            (
                e.actor.clone(),
                e.details["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            ("operator:api-token", "GET_LOGS"),
            ("operator:api-token", "HEALTH_CHECK"),
            ("operator:api-token", "HEALTH_CHECK"),
            ("operator:api-token", "PULL_IMAGE"),
            ("operator:api-token", "RESTART_N8N"),
            ("operator:ops@genesis.test", "GET_LOGS"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(
        audit
            .iter()
            .all(|e| e.subject.as_deref() == Some(&*id.to_string()))
    );

    // Journaled with their outcome, on the droplet's page.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, d) = w.get(&format!("/api/v1/droplets/{id}")).await;
        let ours: Vec<_> = d["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .filter(|c| {
                ["GET_LOGS", "HEALTH_CHECK", "RESTART_N8N", "PULL_IMAGE"]
                    .contains(&c["action"].as_str().unwrap_or_default())
            })
            .cloned()
            .collect();
        if ours.len() >= 6 {
            assert!(ours.iter().all(|c| c["outcome"] == "ok"), "{ours:#?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not journaled: {d:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Support staff (spec 63.3): under a Read-Only grant, the logs come from the real
    // sidecar and the audit event names the grant; a restart is refused before anything
    // is sent.
    let (http, cookie) = w
        .god_session_as("support@genesis.test", OperatorRole::Support)
        .await;
    let support =
        w.t.db
            .operator_credentials("support@genesis.test")
            .await
            .expect("read")
            .expect("operator")
            .operator;
    let grant =
        w.t.db
            .support_grant_request(
                &support,
                &GrantRequest {
                    workspace: ws,
                    tier: SupportTier::ReadOnly,
                    reason: "customer asks why a run failed",
                    incident: None,
                },
            )
            .await
            .expect("grant");
    let csrf = w
        .god_csrf(&http, &cookie, &format!("/god/droplets/{id}"))
        .await;
    let send = |op: &'static str| {
        http.post(format!("{}/god/droplets/{id}/ops/{op}", w.base))
            .header(COOKIE, &cookie)
            .form(&[("csrf", csrf.as_str()), ("lines", "3")])
            .send()
    };
    let logs = send("logs").await.expect("post");
    assert_eq!(logs.status(), 200);
    assert!(logs.text().await.expect("html").contains("GET_LOGS"));
    assert_eq!(send("restart").await.expect("post").status(), 403);
    let under_grant: Vec<String> =
        w.t.db
            .audit_list(Some(ws), Some("ACTION_TAKEN"), 50)
            .await
            .expect("audit")
            .into_iter()
            .filter(|e| e.actor == "operator:support@genesis.test")
            .map(|e| {
                format!(
                    "{} {}",
                    e.details["action"].as_str().unwrap_or_default(),
                    e.details["grant"].as_str().unwrap_or("no grant")
                )
            })
            .collect();
    assert_eq!(
        under_grant,
        [
            format!("GET_LOGS {}", grant.id),
            format!("VIEW_DROPLET {}", grant.id)
        ],
        "newest first; the refused restart is not an action taken"
    );

    // Emergency (spec 63.3): SSH only under a grant two managers approved for an incident;
    // the key lands in the droplet's authorized_keys with the grant's expiry, and goes when
    // the grant is ended.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAqQPlZyXXxRZCvAfySRXtHFvKglaFDTUkrQ4GqkvXMK oncall@laptop";
    let install = |cookie: String, csrf: String, key: &'static str| {
        let http = http.clone();
        let base = w.base.clone();
        async move {
            http.post(format!("{base}/god/droplets/{id}/ssh-key"))
                .header(COOKIE, &cookie)
                .form(&[("csrf", csrf.as_str()), ("public_key", key)])
                .send()
                .await
                .expect("post")
        }
    };
    assert_eq!(
        install(cookie.clone(), csrf.clone(), key).await.status(),
        403,
        "Read-Only is not SSH"
    );
    let file = w.hook.authorized_keys(row.provider_id.expect("cloud id"));
    assert!(!file.exists());
    let managers: Vec<genesis_store::Operator> = {
        let mut v = Vec::new();
        for name in ["max", "mia"] {
            v.push(
                w.t.db
                    .operator_create_with_role(
                        &format!("{name}@genesis.test"),
                        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                        OperatorRole::Manager,
                        "test",
                    )
                    .await
                    .expect("manager"),
            );
        }
        v
    };
    w.t.db
        .support_grant_revoke(grant.id, "test", "done")
        .await
        .expect("revoke");
    let emergency =
        w.t.db
            .support_grant_request(
                &support,
                &GrantRequest {
                    workspace: ws,
                    tier: SupportTier::Emergency,
                    reason: "n8n will not start and the logs say nothing",
                    incident: Some("INC-4711"),
                },
            )
            .await
            .expect("request");
    for m in &managers {
        w.t.db
            .support_grant_approve(emergency.id, m)
            .await
            .expect("approve");
    }
    // The key is checked before anything is sent or audited.
    let bad = install(
        cookie.clone(),
        csrf.clone(),
        "ssh-rsa AAAAB3NzaC1yc2E= old@key",
    )
    .await;
    assert_eq!(bad.status(), 422);
    let ok = install(cookie.clone(), csrf.clone(), key).await;
    assert_eq!(ok.status(), 200);
    let html = ok.text().await.expect("html");
    assert!(
        html.contains("SHA256:3PJDZ1I4eFNJBtuyWKLilnFIVnEhXxajduUAXNlD+Mc"),
        "{html}"
    );
    let written = std::fs::read_to_string(&file).expect("authorized_keys");
    let line = written
        .lines()
        .find(|l| l.ends_with(&format!("genesis-support-{}", emergency.id)))
        .unwrap_or_else(|| panic!("no line for the grant: {written}"));
    assert!(line.starts_with("restrict,pty,expiry-time=\""), "{line}");
    assert!(!line.contains("oncall@laptop"));
    // An admin without a grant gets no SSH either.
    let (_, admin_cookie) = w
        .god_session_as("admin@genesis.test", OperatorRole::Admin)
        .await;
    let admin_csrf = w
        .god_csrf(&http, &admin_cookie, &format!("/god/droplets/{id}"))
        .await;
    let refused = install(admin_cookie, admin_csrf, key).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .expect("html")
            .contains("no support grant")
    );
    let audited =
        w.t.db
            .audit_list(Some(ws), Some("ACTION_TAKEN"), 10)
            .await
            .expect("audit")
            .into_iter()
            .find(|e| e.details["action"] == "INSTALL_SSH_KEY")
            .expect("audited");
    assert_eq!(audited.details["grant"], emergency.id.to_string());
    assert_eq!(
        audited.details["fingerprint"],
        "SHA256:3PJDZ1I4eFNJBtuyWKLilnFIVnEhXxajduUAXNlD+Mc"
    );
    // Ended early by a manager: the key leaves the droplet at once.
    genesis_control::app::support_access::revoke(&w.state, &managers[0], &emergency.id.to_string())
        .await
        .expect("revoke");
    let after = std::fs::read_to_string(&file).expect("authorized_keys");
    assert!(!after.contains(&emergency.id.to_string()), "{after}");
    w.finish().await;
}
