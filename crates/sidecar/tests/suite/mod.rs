//! The sidecar's command suite against an n8n at a URL: the same steps run against the fake
//! n8n in `make test` and against a real n8n 2.8.4 in `make test-n8n`.

use std::sync::Arc;
use std::time::Duration;

use genesis_n8n::bootstrap::{BootstrapOptions, bootstrap};
use genesis_protocol::command::{CredentialRef, FailureCode, TemplateMapping};
use genesis_protocol::{Command, CommandReply, SealedSecret, SealingKey};
use genesis_sidecar::commands::Executor;
use genesis_sidecar::runtime::ExternalRuntime;
use serde_json::{Value, json};

fn template() -> Value {
    json!({
        "name": "Suite for YOUR_COMPANY_NAME",
        "nodes": [
            {"id": "5b0c1f7e-0000-4000-8000-000000000001", "name": "Inbound",
             "type": "n8n-nodes-base.webhook", "typeVersion": 2, "position": [0, 0],
             "webhookId": "YOUR_WEBHOOK_ID",
             "parameters": {"httpMethod": "POST", "path": "YOUR_WEBHOOK_PATH", "options": {}}},
            {"id": "5b0c1f7e-0000-4000-8000-000000000002", "name": "Check n8n",
             "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2, "position": [220, 0],
             "parameters": {"method": "GET", "url": "YOUR_N8N_URL/healthz",
                 "authentication": "genericCredentialType", "genericAuthType": "httpHeaderAuth",
                 "options": {}},
             "credentials": {"httpHeaderAuth": {"id": "TEMPLATE_HEADER_UUID", "name": "template"}}}
        ],
        "connections": {"Inbound": {"main": [[{"node": "Check n8n", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"}
    })
}

async fn run(exec: &Executor<ExternalRuntime>, cmd: Command) -> CommandReply {
    let name = cmd.name();
    exec.run(cmd)
        .await
        .unwrap_or_else(|f| panic!("{name}: {} {}", f.code, f.message))
}

/// Deploys the suite's template, active, at `version`: n8n's id and the webhook URL.
async fn deploy(
    exec: &Executor<ExternalRuntime>,
    mapping: &TemplateMapping,
    version: &str,
) -> (String, Option<String>) {
    match run(
        exec,
        Command::DeployWorkflow {
            template: template(),
            mapping: mapping.clone(),
            activate: true,
            template_version: Some(version.into()),
        },
    )
    .await
    {
        CommandReply::DeployWorkflow {
            workflow_id,
            webhook_url,
        } => (workflow_id, webhook_url),
        other => panic!("not a deploy reply: {other:?}"),
    }
}

/// A deploy right after another (the sidecar's listing of n8n's credentials is fresh) still
/// refuses a credential n8n does not have, and accepts one injected since that listing.
async fn credentials_are_checked_even_when_lately_listed(
    exec: &Executor<ExternalRuntime>,
    public: &str,
    mapping: &TemplateMapping,
) {
    let mut other = mapping.clone();
    other
        .variables
        .insert("YOUR_COMPANY_NAME".into(), "Other Co".into());
    other.variables.insert(
        "YOUR_WEBHOOK_PATH".into(),
        format!("suite-other-{}", uuid::Uuid::now_v7().simple()),
    );
    other.credentials.insert(
        "TEMPLATE_HEADER_UUID".into(),
        CredentialRef {
            id: "NoSuchCredential".into(),
            name: "Suite header".into(),
        },
    );
    let deploy_other = |m: &TemplateMapping| Command::DeployWorkflow {
        template: template(),
        mapping: m.clone(),
        activate: false,
        template_version: None,
    };
    let refused = exec
        .run(deploy_other(&other))
        .await
        .expect_err("a credential n8n does not have is refused");
    assert_eq!(
        refused.code,
        FailureCode::UnknownCredential,
        "{}",
        refused.message
    );

    let CommandReply::InjectCredential { credential_id } = run(
        exec,
        Command::InjectCredential {
            name: "Suite header two".into(),
            credential_type: "httpHeaderAuth".into(),
            data: SealedSecret::seal(public, br#"{"name":"X-Genesis","value":"two"}"#)
                .expect("seal"),
        },
    )
    .await
    else {
        panic!("not an inject reply")
    };
    other.credentials.insert(
        "TEMPLATE_HEADER_UUID".into(),
        CredentialRef {
            id: credential_id.clone(),
            name: "Suite header two".into(),
        },
    );
    let CommandReply::DeployWorkflow { workflow_id, .. } = run(exec, deploy_other(&other)).await
    else {
        panic!("not a deploy reply")
    };
    run(exec, Command::DeleteWorkflow { workflow_id }).await;
    exec.n8n
        .credential_delete(&credential_id)
        .await
        .expect("clean up");
}

/// What n8n 2.8.4 does where the fake n8n once differed from it (issue 18): a Webhook node
/// without a `webhookId` is served under the workflow's id and its percent-encoded name;
/// an active workflow updated to one n8n cannot publish stays active, and its old webhook
/// answers 500; tag names over 24 characters get 409 and unknown tag ids 404.
async fn n8n_quirks_hold(exec: &Executor<ExternalRuntime>, http: &reqwest::Client, n8n_url: &str) {
    let path = format!("quirk-{}", uuid::Uuid::now_v7().simple());
    let hook = json!({"name": "Lead Webhook", "type": "n8n-nodes-base.webhook",
        "typeVersion": 2, "position": [0, 0],
        "parameters": {"httpMethod": "POST", "path": path, "options": {}}});
    let doc = |nodes: Vec<Value>| {
        json!({"name": format!("Quirks {path}"), "nodes": nodes, "connections": {},
               "settings": {"executionOrder": "v1"}})
    };
    let CommandReply::DeployWorkflow {
        workflow_id,
        webhook_url,
    } = run(
        exec,
        Command::DeployWorkflow {
            template: doc(vec![hook.clone()]),
            mapping: TemplateMapping::default(),
            activate: true,
            template_version: None,
        },
    )
    .await
    else {
        panic!("not a deploy reply")
    };
    let webhook_url = webhook_url.expect("a webhook URL");
    assert_eq!(
        webhook_url,
        format!(
            "{}/webhook/{workflow_id}/lead%2520webhook/{path}",
            n8n_url.trim_end_matches('/')
        ),
        "n8n registers the encoded name, so the URL encodes it again"
    );
    let call = |url: String| {
        let http = http.clone();
        async move {
            http.post(url)
                .json(&json!({"email": "quirk@example.com"}))
                .send()
                .await
                .expect("webhook")
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(webhook_url.clone()).await, 200);
    assert_eq!(
        call(webhook_url.replace("%2520", "%20")).await,
        404,
        "the URL n8n's editor shows is not the one it serves"
    );

    // An update n8n cannot publish (no trigger left) is refused but saved; the workflow
    // stays active and its old webhook fails.
    let noop = json!({"name": "Nothing", "type": "n8n-nodes-base.noOp", "typeVersion": 1,
        "position": [0, 0], "parameters": {}});
    let refused = exec
        .run(Command::UpdateWorkflow {
            workflow_id: workflow_id.clone(),
            template: doc(vec![noop]),
            mapping: TemplateMapping::default(),
            template_version: None,
            activate: false,
        })
        .await
        .expect_err("n8n cannot publish a workflow with no trigger");
    assert_eq!(
        refused.code,
        FailureCode::N8nRejected,
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("no trigger node"),
        "{}",
        refused.message
    );
    let kept = exec.n8n.workflow_get(&workflow_id).await.expect("get");
    assert!(kept.active, "n8n keeps it active");
    assert_eq!(kept.nodes[0]["type"], "n8n-nodes-base.noOp", "and saved");
    assert_eq!(call(webhook_url.clone()).await, 500);

    // Tags: a name n8n cannot store is a 409 (reported as a refusal), an unknown id a 404.
    assert!(matches!(
        exec.n8n.tag_ensure("tpl:a-version-name-far-too-long").await,
        Err(genesis_n8n::N8nError::BadRequest(m)) if m.contains("24 characters")
    ));
    assert!(matches!(
        exec.n8n
            .workflow_tags_set(&workflow_id, &["NoSuchTagId0000".into()])
            .await,
        Err(genesis_n8n::N8nError::NotFound(_))
    ));
    run(
        exec,
        Command::DeactivateWorkflow {
            workflow_id: workflow_id.clone(),
        },
    )
    .await;
    run(exec, Command::DeleteWorkflow { workflow_id }).await;
}

/// n8n's credential schemas are the pinned ones, and data shaped from what a tenant gives
/// (the README's payloads) is accepted where the same data unshaped is refused.
async fn credential_types_are_the_pinned_ones(exec: &Executor<ExternalRuntime>, public: &str) {
    let types = genesis_n8n::CredentialTypes::pinned();
    for name in types.names() {
        let live = exec
            .n8n
            .credential_schema(name)
            .await
            .unwrap_or_else(|e| panic!("schema of {name}: {e}"));
        let pinned = types.get(name).expect("pinned").json_schema();
        assert_eq!(live, pinned, "n8n's schema of {name} is not the pinned one");
    }
    for (kind, given) in [
        ("openAiApi", json!({"apiKey": "sk-suite"})),
        (
            "gmailOAuth2",
            json!({"clientId": "cid.apps.example", "clientSecret": "gsecret",
                "oauthTokenData": {"access_token": "ya29.a", "refresh_token": "1//r",
                    "expiry_date": 1_900_000_000_000_i64}}),
        ),
    ] {
        let inject = |data: &Value, name: &str| Command::InjectCredential {
            name: name.into(),
            credential_type: kind.into(),
            data: SealedSecret::seal(public, data.to_string().as_bytes()).expect("seal"),
        };
        let refused = exec
            .run(inject(&given, &format!("Suite raw {kind}")))
            .await
            .expect_err("unshaped data is refused");
        assert_eq!(
            refused.code,
            FailureCode::N8nRejected,
            "{}",
            refused.message
        );
        let shaped = types
            .get(kind)
            .expect("pinned")
            .shape(&given)
            .expect("shaped");
        let CommandReply::InjectCredential { credential_id } =
            run(exec, inject(&shaped, &format!("Suite shaped {kind}"))).await
        else {
            panic!("not an inject reply")
        };
        exec.n8n
            .credential_delete(&credential_id)
            .await
            .expect("clean up");
    }
}

/// Bootstrap, inject a credential, deploy a mapped template with a Webhook trigger, activate,
/// call the webhook, see the execution, update, deactivate, delete. With `delete_tag` (a way
/// to delete a tag by name behind the sidecar's back, which its API key may not do), also
/// that a tag deleted in n8n is noticed and replaced.
pub async fn sidecar_commands_drive_n8n(
    n8n_url: &str,
    state_dir: &std::path::Path,
    delete_tag: Option<&dyn Fn(&str)>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http");
    let n8n = bootstrap(
        &http,
        &BootstrapOptions {
            base_url: n8n_url.into(),
            state_file: state_dir.join("n8n-owner.json"),
            owner_email: "owner@genesis.local".into(),
            readiness_timeout: Duration::from_secs(120),
        },
    )
    .await
    .expect("bootstrap")
    .client;
    let sealing = SealingKey::generate();
    let public = sealing.public_key_b64();
    let exec = Executor::new(
        n8n.clone(),
        Arc::new(ExternalRuntime::new(genesis_n8n::N8N_VERSION)),
        Arc::new(sealing),
        n8n_url.into(),
        http.clone(),
        Duration::from_secs(60),
        Default::default(),
    );

    let CommandReply::InjectCredential { credential_id } = run(
        &exec,
        Command::InjectCredential {
            name: "Suite header".into(),
            credential_type: "httpHeaderAuth".into(),
            data: SealedSecret::seal(&public, br#"{"name":"X-Genesis","value":"suite"}"#)
                .expect("seal"),
        },
    )
    .await
    else {
        panic!("not an inject reply")
    };

    let path = format!("suite-{}", uuid::Uuid::now_v7().simple());
    let mut mapping = TemplateMapping::default();
    mapping.credentials.insert(
        "TEMPLATE_HEADER_UUID".into(),
        CredentialRef {
            id: credential_id.clone(),
            name: "Suite header".into(),
        },
    );
    for (k, v) in [
        ("YOUR_COMPANY_NAME", "Acme".to_string()),
        ("YOUR_WEBHOOK_PATH", path.clone()),
        ("YOUR_WEBHOOK_ID", uuid::Uuid::new_v4().to_string()),
        ("YOUR_N8N_URL", n8n_url.trim_end_matches('/').to_string()),
    ] {
        mapping.variables.insert(k.into(), v);
    }
    let (workflow_id, webhook_url) = deploy(&exec, &mapping, "2026.11.1").await;
    let webhook_url = webhook_url.expect("webhook url");
    assert!(
        webhook_url.ends_with(&format!("/webhook/{path}")),
        "{webhook_url}"
    );
    credentials_are_checked_even_when_lately_listed(&exec, &public, &mapping).await;
    n8n_quirks_hold(&exec, &http, n8n_url).await;
    credential_types_are_the_pinned_ones(&exec, &public).await;

    let r = http
        .post(&webhook_url)
        .json(&json!({"email": "lead@example.com"}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = n8n
            .execution_list(Some(&workflow_id))
            .await
            .expect("executions");
        if seen.iter().any(|e| e.finished || e.status == "error") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].status, "success", "{seen:?}");
    assert_eq!(seen[0].mode, "webhook");

    mapping
        .variables
        .insert("YOUR_COMPANY_NAME".into(), "Acme Two".into());
    let CommandReply::UpdateWorkflow {
        success: true,
        webhook_url: Some(moved),
    } = run(
        &exec,
        Command::UpdateWorkflow {
            workflow_id: workflow_id.clone(),
            template: template(),
            mapping: mapping.clone(),
            template_version: Some("2026.12.0".into()),
            activate: false,
        },
    )
    .await
    else {
        panic!("not an update reply with a webhook")
    };
    assert_eq!(moved, webhook_url, "the path is the same mapping's");
    let updated = n8n.workflow_get(&workflow_id).await.expect("get");
    assert_eq!(updated.name, "Suite for Acme Two");
    assert_eq!(
        updated.template_version(),
        Some("2026.12.0"),
        "the version tag moved: {:?}",
        updated.tags
    );
    assert_eq!(updated.tags.len(), 1, "{:?}", updated.tags);

    // Someone deletes the version tag in n8n: the sidecar, which remembers its id, notices
    // when n8n refuses it and tags with a fresh one. Deploying again updates in place, and
    // the active workflow stays active (n8n re-publishes it on update).
    let stale = updated.tags[0].id.clone();
    if let Some(delete) = delete_tag {
        delete("tpl:2026.12.0");
    }
    let (again, _) = deploy(&exec, &mapping, "2026.12.0").await;
    assert_eq!(again, workflow_id, "deployed in place, by name");
    let redeployed = n8n.workflow_get(&workflow_id).await.expect("get");
    assert_eq!(redeployed.template_version(), Some("2026.12.0"));
    if delete_tag.is_some() {
        assert_ne!(redeployed.tags[0].id, stale);
    }
    assert!(redeployed.active);

    let CommandReply::CollectMetrics(m) = run(&exec, Command::CollectMetrics).await else {
        panic!("not metrics")
    };
    assert!(m.total_executions >= 1 && m.success_rate > 0.0, "{m:?}");
    // The periodic report counts the executions that started in its period, and says which.
    let all = exec.metrics_in(Some((0, i64::MAX))).await.expect("metrics");
    assert_eq!(all.total_executions, m.total_executions);
    assert_eq!(
        (all.period_start_ms, all.period_end_ms),
        (Some(0), Some(i64::MAX))
    );
    let long_ago = exec.metrics_in(Some((0, 1_000))).await.expect("metrics");
    assert_eq!(long_ago.total_executions, 0, "nothing started in 1970");
    assert_eq!(m.period_end_ms, None, "a collected report names no period");

    run(
        &exec,
        Command::DeactivateWorkflow {
            workflow_id: workflow_id.clone(),
        },
    )
    .await;
    let r = http
        .post(&webhook_url)
        .json(&json!({}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(
        r.status(),
        404,
        "an inactive workflow's webhook is not registered"
    );
    // Updated by id with `activate`, as a rollout redeploys a workflow the control plane
    // wants active: it is active again, and its webhook answers.
    run(
        &exec,
        Command::UpdateWorkflow {
            workflow_id: workflow_id.clone(),
            template: template(),
            mapping: mapping.clone(),
            template_version: Some("2026.12.1".into()),
            activate: true,
        },
    )
    .await;
    let reactivated = n8n.workflow_get(&workflow_id).await.expect("get");
    assert!(reactivated.active);
    assert_eq!(reactivated.template_version(), Some("2026.12.1"));
    run(
        &exec,
        Command::DeactivateWorkflow {
            workflow_id: workflow_id.clone(),
        },
    )
    .await;
    run(
        &exec,
        Command::DeleteWorkflow {
            workflow_id: workflow_id.clone(),
        },
    )
    .await;
    assert!(n8n.workflow_get(&workflow_id).await.is_err());
    n8n.credential_delete(&credential_id)
        .await
        .expect("clean up");
}
