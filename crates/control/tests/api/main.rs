//! Black-box API tests: a real server on port 0 over a fresh database, real HTTP.

use std::sync::{Arc, OnceLock};

use genesis_core::WorkspaceId;
use genesis_store::{RegionalStore, testing::TestDb};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};

mod accounts;
mod brand;
mod command_journal;
mod console;
mod exports;
mod front_door;
mod god_mode;
mod inbound;
mod mail;
mod openapi;
mod payments;
mod reconcilers;
mod residency;
mod second_factor;
mod support_access;
mod wallet;
mod webhooks;
mod wizard;

const TOKEN: &str = "test-token-0123456789";
/// The key droplets' inbound-signing secrets derive from, in every app these tests start.
const INBOUND_KEY: [u8; 32] = [5; 32];

struct App {
    base: String,
    http: reqwest::Client,
    t: TestDb,
}

/// A workspace (with its lead partition) in `region`, slugged `{prefix}_…`, and the ingest
/// token its n8n would hold.
async fn workspace_with_ingest_token(
    db: &genesis_store::Database,
    prefix: &str,
    region: genesis_core::Region,
) -> (WorkspaceId, String) {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let ws = genesis_store::PartitionManager::new(db.clone())
        .workspace_provision(
            &genesis_store::NewWorkspace {
                id: WorkspaceId::new(),
                slug: genesis_core::Slug::parse(&format!("{prefix}_{}", &hex[..10])).expect("slug"),
                name: genesis_core::WorkspaceName::parse(prefix).expect("name"),
                region,
                tier: genesis_core::Tier::Standard,
                onboarding: Default::default(),
            },
            "test",
        )
        .await
        .expect("workspace");
    let token = format!("gws_{}", &(hex.clone() + &hex)[..43]);
    db.workspace_token_add(
        ws.id,
        &genesis_store::NewWorkspaceToken::of(&token, genesis_store::WorkspaceTokenKind::Ingest),
    )
    .await
    .expect("token");
    (ws.id, token)
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .expect("one recorder per test process");
            genesis_control::telemetry::describe();
            handle
        })
        .clone()
}

async fn spawn_app_with(token: Option<&str>) -> App {
    spawn_app_full(token, Default::default()).await
}

async fn spawn_app_full(token: Option<&str>, god: genesis_control::god::GodSettings) -> App {
    spawn_app_guarded(token, god, Default::default()).await
}

async fn spawn_app_guarded(
    token: Option<&str>,
    god: genesis_control::god::GodSettings,
    sign_ins: genesis_control::sign_in_guard::SignInLimits,
) -> App {
    spawn_app_fetching(token, god, sign_ins, Default::default()).await
}

/// An app whose outbound fetches (the brand stage's scrape) follow `outbound`.
async fn spawn_app_fetching(
    token: Option<&str>,
    god: genesis_control::god::GodSettings,
    sign_ins: genesis_control::sign_in_guard::SignInLimits,
    outbound: genesis_control::outbound::FetchLimits,
) -> App {
    spawn_app_providing(token, god, sign_ins, outbound, Default::default()).await
}

/// An app whose wizard talks to `providers` (the simulator's fake Google and AI vendors).
async fn spawn_app_providing(
    token: Option<&str>,
    god: genesis_control::god::GodSettings,
    sign_ins: genesis_control::sign_in_guard::SignInLimits,
    outbound: genesis_control::outbound::FetchLimits,
    providers: genesis_control::providers::Providers,
) -> App {
    let t = TestDb::create().await.expect("test database");
    let stores = RegionalStore::single(t.db.clone());
    spawn_app_over(
        t,
        stores,
        token,
        god,
        sign_ins,
        outbound,
        providers,
        test_vault(),
    )
    .await
}

/// An app over `stores` (whose coordinator is `t`), sealing with `vault`, with every test
/// default.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one setting a test varies"
)]
async fn spawn_app_over(
    t: TestDb,
    stores: RegionalStore,
    token: Option<&str>,
    god: genesis_control::god::GodSettings,
    sign_ins: genesis_control::sign_in_guard::SignInLimits,
    outbound: genesis_control::outbound::FetchLimits,
    providers: genesis_control::providers::Providers,
    vault: genesis_store::MasterKeys,
) -> App {
    let control_plane = genesis_control::ControlPlane::builder(stores)
        .outbound(outbound)
        .providers(providers)
        .god(god)
        .sign_in_limits(sign_ins)
        // The loopback peer stands for the load balancer: tests name other sources with
        // `X-Forwarded-For`.
        .trusted_proxies(vec![std::net::IpAddr::from([127, 0, 0, 1])])
        .redis(
            std::env::var("REDIS_URL")
                .ok()
                .and_then(|u| genesis_queue::RedisTarget::parse(&u).ok()),
        )
        .metrics(metrics_handle())
        .vault(Some(Arc::new(vault)))
        .api_token(token)
        .command_signer(Arc::new(
            genesis_protocol::CommandSigner::from_seed(&[9u8; 32]).expect("key"),
        ))
        .inbound_key(INBOUND_KEY)
        .exports_dir(std::env::temp_dir().join(format!("genesis-exports-{}", t.name)))
        .build();
    let base = run(control_plane).await;
    App {
        base,
        http: reqwest::Client::new(),
        t,
    }
}

/// Runs `control_plane` on a port of its own; its base URL.
async fn run(control_plane: genesis_control::ControlPlane) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(control_plane.run(listener, std::future::pending()));
    base
}

/// The version of eu-west's own vault key in [`spawn_app_two_regions`].
const EU_KEY_VERSION: u32 = 20;

/// The vault key every test app is given (operators' second factors are sealed with it).
fn test_vault() -> genesis_store::MasterKeys {
    genesis_store::MasterKeys::new(1, std::collections::BTreeMap::from([(1, [5u8; 32])]))
        .expect("keys")
}

async fn spawn_app() -> App {
    spawn_app_with(Some(TOKEN)).await
}

/// An app over two regional databases ([`genesis_store::testing::two_regions`]): the app's
/// own `t` is the coordinator (with every region but eu-west), and the second database
/// holds eu-west alone. eu-west has a vault ring of its own: key version
/// [`EU_KEY_VERSION`].
async fn spawn_app_two_regions() -> (App, TestDb) {
    let (home, eu, stores) = genesis_store::testing::two_regions()
        .await
        .expect("databases");
    let app = spawn_app_over(
        home,
        stores,
        Some(TOKEN),
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
        test_vault()
            .with_region(
                genesis_core::Region::EuWest,
                EU_KEY_VERSION,
                std::collections::BTreeMap::from([(EU_KEY_VERSION, [20u8; 32])]),
            )
            .expect("eu ring"),
    )
    .await;
    (app, eu)
}

impl App {
    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        req.bearer_auth(TOKEN).send().await.expect("request")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = self
            .send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `/metrics` as Prometheus reads it.
    async fn scrape(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("req")
            .text()
            .await
            .expect("text")
    }

    async fn workspace_count(&self) -> usize {
        let (_, list) = self.get("/api/v1/workspaces").await;
        list["items"].as_array().map_or(0, Vec::len)
    }
}

fn ws_body(slug: &str) -> Value {
    json!({"name": "Acme Corp", "slug": slug, "region": "eu-west", "tier": "standard"})
}

#[tokio::test]
async fn create_get_and_list_workspaces() {
    let app = spawn_app().await;
    let (status, ws, headers) = app.post("/api/v1/workspaces", ws_body("acme_corp")).await;
    assert_eq!(status, 201, "{ws}");
    let id = ws["id"].as_str().expect("id");
    assert_eq!(headers["location"], format!("/api/v1/workspaces/{id}"));
    // A row only: the partition, droplet and credentials come with the ignition.
    assert_eq!(ws["status"], "PENDING");
    let (status, got) = app.get(&format!("/api/v1/workspaces/{id}")).await;
    assert_eq!((status, &got["slug"]), (200, &json!("acme_corp")));
    app.post("/api/v1/workspaces", ws_body("beta")).await;
    let (_, list) = app.get("/api/v1/workspaces?limit=1").await;
    assert_eq!(list["items"][0]["slug"], "acme_corp");
    assert_eq!(list["next"], "acme_corp");
    let (_, rest) = app.get("/api/v1/workspaces?after=acme_corp").await;
    assert_eq!(rest["items"][0]["slug"], "beta");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn bad_input_names_the_field_and_creates_nothing() {
    let app = spawn_app().await;
    app.post("/api/v1/workspaces", ws_body("taken")).await;
    let cases = [
        (ws_body("a;drop table x"), 422, "slug"),
        (ws_body("A"), 422, "slug"),
        (ws_body("x\"y"), 422, "slug"),
        (ws_body(&"a".repeat(51)), 422, "slug"),
        (ws_body(""), 422, "slug"),
        (ws_body("taken"), 409, "slug"),
        (json!({"slug": "ok_1", "region": "eu-west"}), 422, "name"),
        (
            json!({"name": "x", "slug": "ok_2", "region": "mars"}),
            422,
            "region",
        ),
        (
            json!({"name": "x", "slug": "ok_3", "region": "apac", "tier": "gold"}),
            422,
            "tier",
        ),
        (
            json!({"name": "x", "slug": "ok_4", "region": "apac", "id": "nope"}),
            422,
            "id",
        ),
        (
            json!({"name": "invoice\u{202E}fdp.exe", "slug": "ok_5", "region": "apac"}),
            422,
            "name",
        ),
        (
            json!({"name": "Acme\u{200B}Corp", "slug": "ok_6", "region": "apac"}),
            422,
            "name",
        ),
    ];
    for (body, status, field) in cases {
        let (got, problem, headers) = app.post("/api/v1/workspaces", body.clone()).await;
        assert_eq!(got, status, "{body} -> {problem}");
        assert_eq!(problem["field"], field, "{body} -> {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/"))
        );
    }
    // An unknown field is named (a typo is then obvious); non-JSON is a malformed body.
    let (status, p, _) = app
        .post("/api/v1/workspaces", json!({"name": "x", "slugg": "y"}))
        .await;
    assert_eq!((status, &p["field"]), (422, &json!("slugg")), "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("slugg: unknown field")),
        "{p}"
    );
    let r = app
        .send(
            app.http
                .post(format!("{}/api/v1/workspaces", app.base))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status().as_u16(), 400);
    // Malformed and unknown ids.
    let (status, p) = app.get("/api/v1/workspaces/not-a-uuid").await;
    assert_eq!((status, &p["field"]), (422, &json!("id")));
    let (status, _) = app
        .get(&format!("/api/v1/workspaces/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.workspace_count().await, 1, "nothing half-created");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn the_api_fails_closed_without_the_right_token() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/workspaces", app.base);
    assert_eq!(
        app.http
            .get(&url)
            .send()
            .await
            .expect("req")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .expect("req")
            .status()
            .as_u16(),
        401
    );
    let disabled = spawn_app_with(None).await;
    let r = disabled
        .http
        .get(format!("{}/api/v1/workspaces", disabled.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("req");
    assert_eq!(
        r.status().as_u16(),
        401,
        "no configured token: the API refuses everything"
    );
    // Probes stay open.
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 200);
    app.t.cleanup().await.expect("cleanup");
    disabled.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn leads_import_is_all_or_nothing_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let (_, ws, _) = app.post("/api/v1/workspaces", ws_body("leads_ws")).await;
    let id = ws["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/{id}/leads");
    // The ignition's first step creates the partition; this test needs only that step.
    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(WorkspaceId::parse(&id).expect("uuid"), "test")
        .await
        .expect("partition");

    let bad = json!({"leads": [{"email": "a@x.example"}, {"email": "nope"}]});
    let (status, p, _) = app.post(&path, bad).await;
    assert_eq!((status, &p["field"]), (422, &json!("leads[1].email")));

    let leads: Vec<Value> = (0..25)
        .map(|i| json!({"email": format!("u{i}@x.example"), "status": "new", "data": {"i": i}}))
        .chain([json!({"email": "U0@X.example"})])
        .collect();
    let (status, report, _) = app.post(&path, json!({ "leads": leads })).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["inserted"].as_u64(), report["duplicates"].as_u64()),
        (Some(25), Some(1))
    );

    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (status, page) = app.get(&format!("{path}?status=new&limit=10{q}")).await;
        assert_eq!(status, 200, "{page}");
        seen += page["items"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 25);
    let (status, p) = app.get(&format!("{path}?cursor=garbage")).await;
    assert_eq!((status, &p["field"]), (422, &json!("cursor")));
    let (status, p) = app.get(&format!("{path}?status=won")).await;
    assert_eq!((status, &p["field"]), (422, &json!("status")));
    app.t.cleanup().await.expect("cleanup");
}

/// Found by schemathesis: leads for a workspace not yet ignited, and text PostgreSQL cannot
/// hold, were 500s.
#[tokio::test]
async fn leads_that_cannot_be_stored_are_refused_by_name_not_failed() {
    let app = spawn_app().await;
    let (_, ws, _) = app.post("/api/v1/workspaces", ws_body("early_leads")).await;
    let id = ws["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/workspaces/{id}/leads");
    let one = json!({"leads": [{"email": "a@x.example"}]});
    let (status, p, _) = app.post(&path, one.clone()).await;
    assert_eq!(status, 409, "before its ignition: {p}");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("ignited"),
        "{p}"
    );

    genesis_store::PartitionManager::new(app.t.db.clone())
        .ensure(WorkspaceId::parse(&id).expect("uuid"), "test")
        .await
        .expect("partition");
    for (lead, field) in [
        (
            json!({"email": "b@x.example", "company": "Acme\u{0}"}),
            "leads[0].company",
        ),
        (
            json!({"email": "b@x.example", "first_name": "a\u{1b}b"}),
            "leads[0].first_name",
        ),
        (
            json!({"email": "b@x.example", "last_name": "x".repeat(301)}),
            "leads[0].last_name",
        ),
        (
            json!({"email": "b@x.example", "data": {"k": ["ok", "\u{0}"]}}),
            "leads[0].data",
        ),
        (
            json!({"email": "b@x.example", "data": {"\u{0}": 1}}),
            "leads[0].data",
        ),
    ] {
        let (status, p, _) = app.post(&path, json!({ "leads": [lead] })).await;
        assert_eq!((status, p["field"].as_str()), (422, Some(field)), "{p}");
    }
    let (status, report, _) = app.post(&path, one).await;
    assert_eq!(
        (status, report["inserted"].as_u64()),
        (200, Some(1)),
        "{report}"
    );
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn metrics_expose_request_counters() {
    let app = spawn_app().await;
    app.get("/api/v1/workspaces").await;
    let body = app.scrape().await;
    assert!(body.contains("genesis_http_requests_total"), "{body}");
    assert!(body.contains("route=\"/api/v1/workspaces\""), "{body}");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn every_metric_family_says_what_it_is_and_the_fleet_is_counted_at_each_scrape() {
    let app = spawn_app().await;
    let body = app.scrape().await;
    assert!(
        body.contains("genesis_tenants{status=\"PENDING\"} 0"),
        "{body}"
    );
    for name in ["alpha_one", "alpha_two"] {
        let (status, _, _) = app
            .post(
                "/api/v1/workspaces",
                json!({"name": name, "slug": name, "region": "eu-west"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    // The figures are at most FLEET_GAUGES_MAX_AGE old.
    let mut body = app.scrape().await;
    for _ in 0..40 {
        if body.contains("genesis_tenants{status=\"PENDING\"} 2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        body = app.scrape().await;
    }
    assert!(
        body.contains("genesis_tenants{status=\"PENDING\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("genesis_droplets{region=\"eu-west\",state=\"ACTIVE_HEALTHY\"} 0"),
        "every region and state is present, zero included: {body}"
    );
    assert!(body.contains("genesis_rollouts_running 0"), "{body}");
    assert!(
        body.contains("genesis_ignitions_in_flight{step=\"none\"} 0"),
        "{body}"
    );
    // Every family has HELP and TYPE lines, HELP first.
    let mut helped = std::collections::BTreeSet::new();
    let mut typed = 0;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').expect("name and text");
            assert!(!text.trim().is_empty(), "{name} has an empty HELP");
            helped.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("name");
            assert!(helped.contains(name), "{name} has a TYPE and no HELP");
            typed += 1;
        }
    }
    assert!(typed >= 5, "{body}");
    app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_sidecar_hand_shakes_once_and_a_replay_is_refused_and_audited() {
    use genesis_core::{DropletId, Region, Slug, Tier, WorkspaceId, WorkspaceName};
    use genesis_store::{NewWorkspace, PartitionManager};

    let app = spawn_app().await;
    let db = app.t.db.clone();
    let ws = PartitionManager::new(db.clone())
        .workspace_provision(
            &NewWorkspace {
                id: WorkspaceId::new(),
                slug: Slug::parse("handshake_api").expect("slug"),
                name: WorkspaceName::parse("Handshake").expect("name"),
                region: Region::EuWest,
                tier: Tier::Standard,
                onboarding: Default::default(),
            },
            "test",
        )
        .await
        .expect("workspace");
    let droplet = DropletId::new();
    db.droplet_register(droplet, ws.id, Region::EuWest, "test")
        .await
        .expect("droplet");
    let token = db
        .provisioning_token_issue(ws.id, droplet, "ignition")
        .await
        .expect("token");
    // The cloud reported the droplet at 127.0.0.1 (where this test's requests come from).
    db.droplet_set_address(droplet, "127.0.0.1")
        .await
        .expect("address");
    let body = json!({
        "provisioning_token": token,
        "workspace_id": ws.id.as_uuid(),
        "droplet_id": 777,
        "region": "eu-west",
        "webhook_base_url": "http://127.64.0.7:5678",
        "sidecar_public_key": "c2lkZWNhcg==",
        "versions": {"sidecar": "0.1.0", "n8n": "2.8.4"}
    });
    let url = format!("{}/api/v1/sidecar/handshake", app.base);

    // The token leaked (it is in the droplet's user-data): used from another address, with
    // the attacker's own key, it is refused, audited, and stays unused.
    // Each refusal below comes from an address of its own: audit writes are rate-limited
    // per source.
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .expect("client")
    };
    let elsewhere = from(2);
    let post_from = |last: u8, body: &Value| {
        let (client, url, body) = (from(last), url.clone(), body.clone());
        async move {
            client
                .post(&url)
                .json(&body)
                .send()
                .await
                .expect("handshake")
                .status()
        }
    };
    let audited = || {
        let db = db.clone();
        async move {
            db.audit_list(Some(ws.id), Some("HANDSHAKE_REFUSED"), 50)
                .await
                .expect("audit")
        }
    };
    let mut stolen = body.clone();
    stolen["sidecar_public_key"] = json!(genesis_protocol::SealingKey::generate().public_key_b64());
    let r = elsewhere
        .post(&url)
        .json(&stolen)
        .send()
        .await
        .expect("handshake");
    assert_eq!(r.status(), 401);
    // Naming another region than the workspace's is refused too.
    let mut wrong_region = body.clone();
    wrong_region["region"] = json!("us-east");
    assert_eq!(post_from(5, &wrong_region).await, 401);
    let refused = audited().await;
    let reasons: Vec<&str> = refused
        .iter()
        .filter_map(|e| e.details["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"not_attested"), "{reasons:?}");
    assert!(reasons.contains(&"wrong_region"), "{reasons:?}");
    assert!(
        refused.iter().any(|e| e.details["source"] == "127.0.0.2"),
        "the refusal names its source"
    );
    // A flood from the thief's address is held to a handful of attempts, and to one audit
    // row per ten seconds.
    let mut limited = 0;
    for _ in 0..30 {
        let r = elsewhere
            .post(&url)
            .json(&stolen)
            .send()
            .await
            .expect("handshake");
        if r.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 20, "{limited} of 30 were held to the quota");
    let after = audited().await.len();
    assert_eq!(
        after,
        refused.len(),
        "the flood wrote nothing more to the audit log"
    );

    // From the droplet's own address, in its region: accepted. No API token: the
    // provisioning token is the credential.
    let r = app
        .http
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("handshake");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    let expected_key = genesis_protocol::CommandSigner::from_seed(&[9u8; 32])
        .expect("key")
        .public_key_b64();
    assert_eq!(answer["command_public_key"], json!(expected_key));
    assert_eq!(answer["config"]["heartbeat_interval_s"], 60);
    let sidecar_token = answer["sidecar_token"].as_str().expect("token");
    assert!(
        db.sidecar_token_verify(sidecar_token)
            .await
            .expect("verify")
            .is_some()
    );
    assert_eq!(
        db.droplet_get(droplet).await.expect("droplet").state,
        genesis_core::DropletState::ActiveHealthy
    );

    let replay = from(3).post(&url).json(&body).send().await.expect("replay");
    assert_eq!(replay.status(), 401);
    let problem: Value = replay.json().await.expect("problem");
    assert!(problem["type"].is_string(), "{problem}");
    assert_eq!(audited().await[0].details["reason"], "consumed");

    // An expired token: 401 too, audited as expired, and no sidecar token.
    let second = DropletId::new();
    db.droplet_register(second, ws.id, Region::EuWest, "test")
        .await
        .expect("droplet");
    let stale = db
        .provisioning_token_issue(ws.id, second, "ignition")
        .await
        .expect("token");
    sqlx::query("UPDATE genesis.provisioning_tokens SET expires_at = now() - interval '1 second' WHERE droplet_id = $1")
        .bind(second.as_uuid())
        .execute(db.owner_pool())
        .await
        .expect("expire");
    let mut expired_body = body.clone();
    expired_body["provisioning_token"] = json!(stale);
    expired_body["droplet_id"] = json!(778);
    assert_eq!(post_from(4, &expired_body).await, 401);
    assert_eq!(audited().await[0].details["reason"], "expired");
    assert_eq!(
        db.droplet_get(second).await.expect("droplet").state,
        genesis_core::DropletState::Pending,
        "a refused handshake changes nothing"
    );
    let bad = app
        .http
        .post(&url)
        .json(&json!({"provisioning_token": "x"}))
        .send()
        .await
        .expect("bad");
    assert_eq!(
        bad.status(),
        422,
        "a malformed handshake is refused, naming the body"
    );
    app.t.cleanup().await.expect("cleanup");
}
