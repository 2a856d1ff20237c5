//! The n8n client, bootstrap and mapper against the fake n8n over HTTP, with every
//! `/api/v1` request and response checked against n8n 2.8.4's own OpenAPI document.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use genesis_n8n::bootstrap::{BootstrapOptions, bootstrap};
use genesis_n8n::{MapError, N8nError, WorkflowDraft, map_template, verify_credentials};
use genesis_protocol::command::{CredentialRef, TemplateMapping};
use genesis_sim::contract::{Contract, ContractLog, checked};
use genesis_sim::n8n::{FakeN8n, FakeN8nConfig, serve_with};
use serde_json::{Value, json};

/// n8n's OpenAPI document, with the differences between it and what n8n 2.8.4 really does.
fn n8n_contract() -> Contract {
    let path = std::env::var("GENESIS_N8N_OPENAPI").unwrap_or_else(|_| {
        panic!(
            "GENESIS_N8N_OPENAPI is not set: run `make test`, or export \
             GENESIS_N8N_OPENAPI=$(scripts/fetch-n8n-openapi.sh)"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Contract::from_yaml(&text)
        .expect("n8n's OpenAPI document loads")
        // n8n 2.8.4 answers execution ids and their workflow ids as strings.
        .with_patch("/execution/properties/id", json!({"type": "string"}))
        .expect("patch")
        .with_patch(
            "/execution/properties/workflowId",
            json!({"type": "string"}),
        )
        .expect("patch")
}

struct Harness {
    base: String,
    n8n: FakeN8n,
    contract: Arc<ContractLog>,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

impl Harness {
    async fn start() -> Self {
        let contract = ContractLog::new(n8n_contract(), "/api/v1/");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let log = contract.clone();
        let n8n = FakeN8n::new(FakeN8nConfig {
            ready_after: Duration::from_millis(100),
            // As n8n 2.8.4: ready before /rest is mounted.
            rest_after: Duration::from_millis(400),
            ..FakeN8nConfig::default()
        });
        tokio::spawn(serve_with(
            listener,
            n8n.clone(),
            move |r| checked(r, log),
            std::future::pending(),
        ));
        let dir = std::env::temp_dir().join(format!(
            "genesis-n8n-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            base,
            n8n,
            contract,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http"),
            dir,
        }
    }

    fn options(&self) -> BootstrapOptions {
        BootstrapOptions {
            base_url: self.base.clone(),
            state_file: self.dir.join("n8n-owner.json"),
            owner_email: "owner@tenant.example".into(),
            readiness_timeout: Duration::from_secs(5),
        }
    }

    fn assert_contract_kept(&self) {
        let v = self.contract.violations();
        assert!(v.is_empty(), "contract violations: {v:#?}");
        assert!(self.contract.checked() > 0);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn template() -> Value {
    json!({
        "name": "Inbound leads for YOUR_COMPANY_NAME",
        "nodes": [
            {"id": "a1", "name": "Inbound", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
             "position": [0, 0], "webhookId": "a1",
             "parameters": {"path": "leads-YOUR_WORKSPACE_ID", "httpMethod": "POST"}},
            {"id": "a2", "name": "Score", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 1,
             "position": [200, 0], "parameters": {"prompt": "Score this lead for YOUR_COMPANY_NAME"},
             "credentials": {"openAiApi": {"id": "TEMPLATE_OPENAI_UUID", "name": "Template OpenAI"}}}
        ],
        "connections": {"Inbound": {"main": [[{"node": "Score", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"}
    })
}

#[tokio::test]
async fn bootstrap_then_reuse_and_recover_the_key() {
    let h = Harness::start().await;
    let first = bootstrap(&h.http, &h.options()).await.expect("bootstrap");
    assert!(!first.reused);
    let mode = std::fs::metadata(h.dir.join("n8n-owner.json"))
        .expect("state file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner password and key are private");
    first.client.workflow_list().await.expect("the key works");

    let again = bootstrap(&h.http, &h.options()).await.expect("second boot");
    assert!(again.reused, "a second boot reuses the saved key");

    // The key is lost (the file kept only the owner): log in with the password, mint anew.
    let path = h.dir.join("n8n-owner.json");
    let mut saved: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    saved["api_key"] = json!("n8n_api_revoked");
    std::fs::write(&path, serde_json::to_vec(&saved).expect("json")).expect("write");
    let third = bootstrap(&h.http, &h.options()).await.expect("recover");
    assert!(!third.reused);
    third
        .client
        .workflow_list()
        .await
        .expect("the new key works");
    h.assert_contract_kept();
}

#[tokio::test]
async fn a_mapped_template_deploys_runs_updates_and_goes_away() {
    let h = Harness::start().await;
    let n8n = bootstrap(&h.http, &h.options())
        .await
        .expect("bootstrap")
        .client;

    // n8n 2.8.4's schema wants `header` spelt out (its `if` holds when it is absent).
    assert!(matches!(
        n8n.credential_create("Acme OpenAI", "openAiApi", &json!({"apiKey": "sk-test"})).await,
        Err(N8nError::BadRequest(m)) if m.contains("headerName")
    ));
    let cred = n8n
        .credential_create(
            "Acme OpenAI",
            "openAiApi",
            &json!({"apiKey": "sk-test", "header": false}),
        )
        .await
        .expect("credential");
    assert_eq!(cred.kind, "openAiApi");
    let schema = n8n.credential_schema("openAiApi").await.expect("schema");
    assert_eq!(schema["required"], json!(["apiKey"]));
    assert!(matches!(
        n8n.credential_create("x", "openAiApi", &json!({"header": false})).await,
        Err(N8nError::BadRequest(m)) if m.contains("apiKey")
    ));

    let mut mapping = TemplateMapping::default();
    mapping.credentials.insert(
        "TEMPLATE_OPENAI_UUID".into(),
        CredentialRef {
            id: cred.id.clone(),
            name: cred.name.clone(),
        },
    );
    mapping
        .variables
        .insert("YOUR_COMPANY_NAME".into(), "Acme".into());
    mapping
        .variables
        .insert("YOUR_WORKSPACE_ID".into(), "3f0c".into());
    let mapped = map_template(&template(), &mapping).expect("mapped");
    let existing: BTreeSet<String> = n8n
        .credential_list()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    verify_credentials(&mapped, &existing).expect("every credential exists");

    let draft = WorkflowDraft::from_document(&mapped).expect("draft");
    let wf = n8n.workflow_create(&draft).await.expect("create");
    assert!(!wf.active);
    assert_eq!(wf.name, "Inbound leads for Acme");
    let hooks = genesis_n8n::production_webhooks(&wf.id, &draft.nodes);
    assert_eq!(
        (hooks[0].method.as_str(), hooks[0].path.as_str()),
        ("POST", "leads-3f0c")
    );

    let hook = hooks[0].url(&h.base);
    let call = || {
        h.http
            .post(&hook)
            .json(&json!({"email": "lead@example.com"}))
            .send()
    };
    assert_eq!(
        call().await.expect("call").status(),
        404,
        "not registered before activation"
    );
    assert!(
        n8n.workflow_activate(&wf.id)
            .await
            .expect("activate")
            .active
    );
    assert_eq!(call().await.expect("call").status(), 200);
    let runs = n8n.execution_list(Some(&wf.id)).await.expect("executions");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].mode, "webhook");
    assert_eq!(runs[0].workflow_id.as_deref(), Some(wf.id.as_str()));
    // The OpenAI node is not one the fake can run (nor would a real n8n reach OpenAI with
    // this key): the execution fails, naming the node, instead of passing for success.
    let mut one = n8n.execution_get(&runs[0].id).await.expect("execution");
    for _ in 0..50 {
        if one.status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        one = n8n.execution_get(&runs[0].id).await.expect("execution");
    }
    assert_eq!(one.status, "error");
    assert!(!one.finished);
    let outcomes = h.n8n.execution_outcomes();
    assert!(
        outcomes[0]
            .1
            .as_deref()
            .is_some_and(|m| m.contains("@n8n/n8n-nodes-langchain.openAi")),
        "{outcomes:?}"
    );

    // Updates take only the four writable fields; n8n refuses versionId and friends.
    let mut renamed = draft.clone();
    renamed.name = "Renamed".into();
    let updated = n8n.workflow_update(&wf.id, &renamed).await.expect("update");
    assert_eq!(updated.name, "Renamed");
    assert!(updated.active, "an update keeps the workflow active");
    assert!(
        !n8n.workflow_deactivate(&wf.id)
            .await
            .expect("deactivate")
            .active
    );
    assert_eq!(call().await.expect("call").status(), 404);
    n8n.credential_patch(&cred.id, &json!({"apiKey": "sk-rotated", "header": false}))
        .await
        .expect("rotate");
    n8n.workflow_delete(&wf.id).await.expect("delete");
    assert!(matches!(
        n8n.workflow_get(&wf.id).await,
        Err(N8nError::NotFound(_))
    ));
    n8n.credential_delete(&cred.id)
        .await
        .expect("delete credential");
    assert!(n8n.credential_list().await.expect("list").is_empty());
    h.assert_contract_kept();
}

#[tokio::test]
async fn n8n_refuses_what_the_real_one_refuses() {
    let h = Harness::start().await;
    let n8n = bootstrap(&h.http, &h.options())
        .await
        .expect("bootstrap")
        .client;
    let no_key = genesis_n8n::N8n::new(&h.base, "nope", Duration::from_secs(5)).expect("client");
    assert!(matches!(
        no_key.workflow_list().await,
        Err(N8nError::Unauthorized(_))
    ));
    // A workflow without a trigger cannot be activated.
    let manual = WorkflowDraft {
        name: "manual".into(),
        nodes: vec![
            json!({"name": "Start", "type": "n8n-nodes-base.manualTrigger",
            "typeVersion": 1, "position": [0, 0], "parameters": {}}),
        ],
        connections: json!({}),
        settings: json!({}),
    };
    let wf = n8n.workflow_create(&manual).await.expect("create");
    assert!(matches!(
        n8n.workflow_activate(&wf.id).await,
        Err(N8nError::BadRequest(m)) if m.contains("trigger")
    ));
    // Writes with fields n8n rejects.
    let key = h.options().state_file;
    let saved: Value = serde_json::from_slice(&std::fs::read(key).expect("read")).expect("json");
    let api_key = saved["api_key"].as_str().expect("key").to_owned();
    for extra in ["versionId", "pinData", "meta"] {
        let mut raw = serde_json::to_value(&manual).expect("json");
        raw[extra] = json!({});
        let r = h
            .http
            .put(format!("{}/api/v1/workflows/{}", h.base, wf.id))
            .header("X-N8N-API-KEY", &api_key)
            .json(&raw)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), 400, "{extra} is refused");
    }
    // Placeholders left unmapped never reach n8n.
    let mut only_variables = TemplateMapping::default();
    for k in ["YOUR_COMPANY_NAME", "YOUR_WORKSPACE_ID"] {
        only_variables.variables.insert(k.into(), "x".into());
    }
    assert_eq!(
        map_template(&template(), &only_variables),
        Err(MapError::UnmappedCredential {
            placeholder: "TEMPLATE_OPENAI_UUID".into(),
            node: "Score".into()
        })
    );
    assert!(matches!(
        map_template(&template(), &TemplateMapping::default()),
        Err(MapError::UnmappedVariable { ref node, .. }) if node == "Inbound"
    ));
    // The deliberately bad requests above are the only contract violations.
    let v = h.contract.violations();
    assert!(
        v.iter()
            .all(|v| v.part == "request" && v.operation == "PUT /workflows/{id}"),
        "{v:#?}"
    );
    assert_eq!(v.len(), 3, "{v:#?}");
}

#[tokio::test]
async fn template_version_tags_are_created_once_and_replaced() {
    let h = Harness::start().await;
    let n8n = bootstrap(&h.http, &h.options())
        .await
        .expect("bootstrap")
        .client;
    let draft = WorkflowDraft {
        name: "tagged".into(),
        nodes: vec![json!({"name": "Hook", "type": "n8n-nodes-base.webhook",
            "typeVersion": 2, "position": [0, 0], "parameters": {"path": "t", "httpMethod": "POST"}})],
        connections: json!({}),
        settings: json!({}),
    };
    let wf = n8n.workflow_create(&draft).await.expect("create");
    assert_eq!(wf.template_version(), None);

    let old = n8n
        .tag_ensure(&genesis_n8n::template_tag("2026.11.1"))
        .await
        .expect("tag");
    assert_eq!(
        n8n.tag_ensure("tpl:2026.11.1").await.expect("again"),
        old,
        "an existing tag is found, not duplicated"
    );
    let mine = n8n.tag_ensure("operator-label").await.expect("tag");
    n8n.workflow_tags_set(&wf.id, &[old.clone(), mine.clone()])
        .await
        .expect("set");
    let got = n8n.workflow_get(&wf.id).await.expect("get");
    assert_eq!(got.template_version(), Some("2026.11.1"));
    assert_eq!(got.tags.len(), 2);
    let listed = n8n.workflow_list().await.expect("list");
    assert_eq!(listed[0].template_version(), Some("2026.11.1"));

    // n8n's own limits: names are unique and at most 24 characters (n8n 2.8.4 answers a
    // longer one 409, as a duplicate); unknown tag ids are refused with 404.
    assert!(matches!(
        n8n.tag_ensure("tpl:a-version-name-far-too-long").await,
        Err(N8nError::BadRequest(m)) if m.contains("24 characters")
    ));
    assert!(matches!(
        n8n.workflow_tags_set(&wf.id, &["nope".into()]).await,
        Err(N8nError::NotFound(_))
    ));
    assert_eq!(n8n.tag_list().await.expect("tags").len(), 2);
    h.assert_contract_kept();
}

#[tokio::test]
async fn a_workflow_is_found_by_exact_name_and_an_active_one_is_republished_on_update() {
    let h = Harness::start().await;
    let n8n = bootstrap(&h.http, &h.options())
        .await
        .expect("bootstrap")
        .client;
    let hook = |path: &str| {
        vec![
            json!({"name": "Hook", "type": "n8n-nodes-base.webhook", "webhookId": path,
            "typeVersion": 2, "position": [0, 0], "parameters": {"path": path, "httpMethod": "POST"}}),
        ]
    };
    let draft = |name: &str, path: &str| WorkflowDraft {
        name: name.into(),
        nodes: hook(path),
        connections: json!({}),
        settings: json!({}),
    };
    let intake = n8n
        .workflow_create(&draft("Lead Intake", "intake"))
        .await
        .expect("create");
    let longer = n8n
        .workflow_create(&draft("Lead Intake (copy)", "copy"))
        .await
        .expect("create");
    // n8n's filter is a substring match: the client keeps only the exact name.
    let found = n8n.workflow_find("Lead Intake").await.expect("find");
    assert_eq!(found.map(|w| w.id), Some(intake.id.clone()));
    assert_eq!(n8n.workflow_find("Intake").await.expect("find"), None);
    assert_eq!(
        n8n.workflow_find("Lead Intake (copy)")
            .await
            .expect("find")
            .map(|w| w.id),
        Some(longer.id.clone())
    );

    // An active workflow stays active through an update that can be published...
    n8n.workflow_activate(&intake.id).await.expect("activate");
    n8n.workflow_activate(&longer.id).await.expect("activate");
    let updated = n8n
        .workflow_update(&intake.id, &draft("Lead Intake", "intake-v2"))
        .await
        .expect("update");
    assert!(updated.active);
    // ...and one that cannot be published (its webhook is taken) is refused with n8n's
    // reason, yet saved: n8n 2.8.4 keeps it active, registered at its old webhook, which
    // then answers 500.
    assert!(matches!(
        n8n.workflow_update(&intake.id, &draft("Lead Intake", "copy"))
            .await,
        Err(N8nError::BadRequest(m)) if m.contains("conflict")
    ));
    let kept = n8n.workflow_get(&intake.id).await.expect("get");
    assert!(kept.active);
    assert_eq!(kept.nodes[0]["parameters"]["path"], "copy");
    let old = h
        .http
        .post(format!("{}/webhook/intake-v2", h.base))
        .json(&json!({}))
        .send()
        .await
        .expect("call");
    assert_eq!(old.status(), 500);
    // A workflow with no trigger at all is refused the same way, with n8n's words.
    let none = WorkflowDraft {
        name: "Lead Intake (copy)".into(),
        nodes: vec![
            json!({"name": "Nothing", "type": "n8n-nodes-base.noOp", "typeVersion": 1,
            "position": [0, 0], "parameters": {}}),
        ],
        connections: json!({}),
        settings: json!({}),
    };
    assert!(matches!(
        n8n.workflow_update(&longer.id, &none).await,
        Err(N8nError::BadRequest(m)) if m.contains("has no trigger node")
    ));
    assert!(n8n.workflow_get(&longer.id).await.expect("get").active);
    h.assert_contract_kept();
}
