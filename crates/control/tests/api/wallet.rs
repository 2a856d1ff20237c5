//! The Genesis Wallet end to end (spec 58): real PostgreSQL, real Redis, the real gateway
//! over HTTP, and the simulated wholesale vendors over HTTP.

use std::sync::Arc;
use std::time::Duration;

use genesis_control::app::wallet::{Hold, WalletSettings, Wallets};
use genesis_control::app::wallet_sync;
use genesis_control::workers::reconciler::Reconciler;
use genesis_control::workers::wallet::{WalletCheck, WalletSyncer};
use genesis_core::money::{Millicents, TransferKind};
use genesis_core::{Region, WorkspaceId};
use genesis_queue::RedisConn;
use genesis_queue::wallet::WalletCache;
use genesis_sim::managed::{CSE_CX, CSE_KEY, FakeWholesale, ZEROBOUNCE_KEY};
use genesis_store::RegionalStore;
use genesis_store::ledger::{NewTransfer, Phase, wallet_account};
use genesis_store::testing::TestDb;
use uuid::Uuid;

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

struct Bank {
    base: String,
    http: reqwest::Client,
    t: TestDb,
    wallets: Arc<Wallets>,
    cache: WalletCache,
    stores: RegionalStore,
    vendors: FakeWholesale,
    prefix: String,
    /// The managed proxy's door (`host:port`), the residential network behind it, and a
    /// web server on this machine to reach through them.
    door: String,
    network: genesis_sim::residential_proxy::FakeResidentialProxy,
    site: String,
    /// Whose each ingest token is, to sign its calls as that workspace's droplet would.
    tenants: std::sync::Mutex<std::collections::HashMap<String, WorkspaceId>>,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn bank(settings: WalletSettings) -> Bank {
    let t = TestDb::create().await.expect("test database");
    let stores = RegionalStore::single(t.db.clone());
    let vendors = FakeWholesale::new();
    let vendor_base = serve(vendors.router()).await;
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let conn = RedisConn::connect(&redis_url).await.expect("redis");
    let prefix = format!("t{}:", Uuid::new_v4().simple());
    let cache = WalletCache::new(conn, &prefix);
    let wallets = Arc::new(Wallets::new(cache.clone(), stores.clone(), settings));
    let network = genesis_sim::residential_proxy::FakeResidentialProxy::new();
    let network_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let network_addr = network_listener.local_addr().expect("addr").to_string();
    tokio::spawn(network.clone().serve(network_listener));
    let site = serve(axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { "hello through the tunnel" }),
    ))
    .await;
    let site = site.trim_start_matches("http://").to_owned();
    let site_port: u16 = site
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("port");
    let providers = genesis_control::providers::Providers {
        managed: genesis_control::app::managed::Upstreams {
            cse_key: Some(CSE_KEY.into()),
            cse_cx: Some(CSE_CX.into()),
            zerobounce_key: Some(ZEROBOUNCE_KEY.into()),
            apify_token: Some(genesis_sim::apify::APIFY_TOKEN.into()),
            proxy: Some(genesis_control::app::proxy_tunnel::ResidentialProxy {
                addr: network_addr,
                username: genesis_sim::residential_proxy::PROXY_USER.into(),
                password: genesis_sim::residential_proxy::PROXY_PASSWORD.into(),
                ports: vec![443, site_port],
                allow_private_targets: true,
            }),
            ..genesis_control::app::managed::Upstreams::at(&vendor_base)
        },
        ..Default::default()
    };
    let control_plane = genesis_control::ControlPlane::builder(stores.clone())
        .providers(providers)
        .metrics(super::metrics_handle())
        .wallets(Some(wallets.clone()))
        .api_token(Some(super::TOKEN))
        .inbound_key(super::INBOUND_KEY)
        .build();
    let door_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let door = door_listener.local_addr().expect("addr").to_string();
    tokio::spawn(genesis_control::proxy_door::serve(
        control_plane.state().clone(),
        door_listener,
        std::future::pending(),
    ));
    let base = super::run(control_plane).await;
    Bank {
        base,
        http: reqwest::Client::new(),
        t,
        wallets,
        cache,
        stores,
        vendors,
        prefix,
        door,
        network,
        site,
        tenants: Default::default(),
    }
}

impl Bank {
    /// A workspace with a wallet holding `deposit`, and its n8n's token.
    async fn tenant(&self, deposit: Millicents) -> (WorkspaceId, String) {
        let (ws, token) =
            super::workspace_with_ingest_token(&self.t.db, "wallet", Region::EuWest).await;
        self.tenants
            .lock()
            .expect("tenants")
            .insert(token.clone(), ws);
        if deposit.get() > 0 {
            self.wallets
                .credit(
                    ws,
                    Uuid::now_v7(),
                    TransferKind::Deposit,
                    deposit,
                    None,
                    "test",
                )
                .await
                .expect("deposit");
        }
        (ws, token)
    }

    /// `req` with `token` and the signature its droplet's relay adds (spec 65.3); a token
    /// of no tenant's is signed as some other workspace's droplet.
    fn signed(
        &self,
        req: reqwest::RequestBuilder,
        token: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let ws = self
            .tenants
            .lock()
            .expect("tenants")
            .get(token)
            .map_or_else(Uuid::new_v4, |w| w.as_uuid());
        let secret = genesis_protocol::inbound::droplet_secret(&super::INBOUND_KEY, ws, 9);
        let now = chrono::Utc::now().timestamp() as u64;
        let mut req = req.bearer_auth(token);
        for (k, v) in genesis_protocol::inbound::sign(&secret, ws, 9, body, now).expect("sign") {
            req = req.header(k, v);
        }
        req
    }

    async fn search(&self, token: &str, q: &str) -> reqwest::Response {
        self.signed(
            self.http.get(format!(
                "{}/api/v1/managed/google_cse/customsearch/v1?{}",
                self.base,
                form(&[("q", q)])
            )),
            token,
            b"",
        )
        .send()
        .await
        .expect("request")
    }

    async fn verify(&self, token: &str, email: &str) -> reqwest::Response {
        self.signed(
            self.http.get(format!(
                "{}/api/v1/managed/email_verify/v2/validate?{}",
                self.base,
                form(&[("email", email)])
            )),
            token,
            b"",
        )
        .send()
        .await
        .expect("request")
    }

    /// Runs an Apify Actor through the gateway with `input` as its body.
    async fn scrape(
        &self,
        token: &str,
        actor: &str,
        query: &str,
        input: &str,
    ) -> reqwest::Response {
        self.signed(
            self.http.post(format!(
                "{}/api/v1/managed/apify/v2/acts/{actor}/run-sync-get-dataset-items?{query}",
                self.base
            )),
            token,
            input.as_bytes(),
        )
        .header("content-type", "application/json")
        .body(input.to_owned())
        .send()
        .await
        .expect("request")
    }

    /// Asks the proxy door for a tunnel to `target` with `password` as the proxy password:
    /// the answer's status and head, and the connection.
    async fn tunnel(
        &self,
        password: Option<&str>,
        target: &str,
    ) -> (u16, String, tokio::net::TcpStream) {
        use genesis_protocol::connect;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(&self.door)
            .await
            .expect("the door");
        let (host, port) = target.rsplit_once(':').expect("host:port");
        let auth = password.map(|p| connect::basic_value("n8n", p));
        let port: u16 = port.parse().expect("port");
        sock.write_all(connect::request(host, port, auth.as_deref()).as_bytes())
            .await
            .expect("write");
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 1024];
            let n = sock.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the door closed without an answer");
            buf.extend_from_slice(&chunk[..n]);
            if let Some((status, head)) = connect::answer_status(&buf).expect("an HTTP answer") {
                let text = String::from_utf8_lossy(&buf[..head]).into_owned();
                return (status, text, sock);
            }
        }
    }

    /// A tenant with 10 cents, and a $0.005 search reserved from them.
    async fn searching(&self) -> (WorkspaceId, Hold) {
        let (ws, _) = self.tenant(Millicents::from_cents(10)).await;
        let hold = self
            .wallets
            .reserve(
                ws,
                TransferKind::CseSearch,
                Millicents(500),
                "managed:google_cse",
            )
            .await
            .expect("held");
        (ws, hold)
    }

    /// Syncs every journal, then checks cache against ledger; the check's report.
    async fn settle_books(&self) -> genesis_control::app::wallet_sync::CheckReport {
        WalletSyncer::new(self.wallets.clone(), self.stores.clone())
            .reconcile()
            .await
            .expect("sync");
        WalletCheck::new(self.wallets.clone(), self.stores.clone())
            .reconcile()
            .await
            .expect("check")
    }

    async fn ledger(&self, ws: WorkspaceId) -> genesis_store::ledger::WalletBalance {
        self.t
            .db
            .wallet_balance(ws)
            .await
            .expect("db")
            .expect("wallet")
    }

    async fn audited(&self, ws: WorkspaceId, event: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM genesis.audit_log WHERE workspace_id = $1 AND event = $2",
        )
        .bind(ws.as_uuid())
        .bind(event)
        .fetch_one(self.t.db.owner_pool())
        .await
        .expect("count")
    }
}

#[tokio::test]
async fn a_managed_call_is_charged_once_and_the_kill_switch_stops_the_next() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_cents(1)).await; // two searches at $0.005
    for q in ["dentists in leeds", "plumbers in york"] {
        let r = b.search(&token, q).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["genesis-charged-millicents"], "500");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["kind"], "customsearch#search");
    }
    let r = b.search(&token, "roofers").await;
    assert_eq!(r.status(), 402);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "a problem body"
    );
    let problem: serde_json::Value = r.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("$0.005"),
        "{problem}"
    );
    assert_eq!(
        b.vendors.calls("google_cse"),
        2,
        "a refused call never reaches Google"
    );
    // The kill-switch holds every managed service, audited once, and notified.
    assert_eq!(b.verify(&token, "a@b.co").await.status(), 402);
    assert_eq!(b.audited(ws, "KILL_SWITCH_ACTIVE").await, 1);
    assert_eq!(b.audited(ws, "WALLET_LOW_1").await, 0, "never above $1");
    let state = b.t.db.wallet_state(ws).await.expect("db").expect("wallet");
    assert!(state.halted_at.is_some());
    let kinds: Vec<String> =
        b.t.db
            .notification_list(ws)
            .await
            .expect("db")
            .into_iter()
            .map(|n| n.kind)
            .collect();
    assert!(kinds.contains(&"WALLET_EMPTY".to_string()), "{kinds:?}");

    // The journal reaches the ledger, and the cache equals the ledger.
    let report = b.settle_books().await;
    assert_eq!((report.compared, report.drifted), (1, 0));
    let l = b.ledger(ws).await;
    assert_eq!(
        (l.balance, l.reserved, l.lifetime_usage),
        (Millicents(0), Millicents(0), Millicents(1_000))
    );
    let search_posts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.ledger_transfers WHERE workspace_id = $1 AND kind = 'CSE_SEARCH' AND phase IN ('single', 'post')",
    )
    .bind(ws.as_uuid())
    .fetch_one(b.t.db.owner_pool())
    .await
    .expect("count");
    assert_eq!(search_posts, 2);

    // Money lifts the kill-switch.
    b.wallets
        .credit(
            ws,
            Uuid::now_v7(),
            TransferKind::Deposit,
            Millicents::from_dollars(10),
            None,
            "test",
        )
        .await
        .expect("deposit");
    assert_eq!(b.search(&token, "roofers").await.status(), 200);
    assert_eq!(b.audited(ws, "KILL_SWITCH_LIFTED").await, 1);
    b.settle_books().await;
    assert_eq!(b.ledger(ws).await.balance, Millicents(1_000_000 - 500));
    b.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_tenants_daily_search_cap_answers_429_with_retry_after_and_charges_nothing() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    // Spec 59.2: Google CSE, 100 a day per tenant.
    for i in 0..100 {
        assert_eq!(
            b.search(&token, &format!("q{i}")).await.status(),
            200,
            "search {i}"
        );
    }
    let r = b.search(&token, "one too many").await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=86_400).contains(&wait), "until midnight UTC: {wait}");
    let problem: serde_json::Value = r.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("daily allowance"),
        "{problem}"
    );
    assert_eq!(
        b.vendors.calls("google_cse"),
        100,
        "the 101st never reached Google"
    );
    // Another tenant searches on.
    let (_, other) = b.tenant(Millicents::from_dollars(1)).await;
    assert_eq!(b.search(&other, "plumbers").await.status(), 200);
    b.settle_books().await;
    assert_eq!(
        b.ledger(ws).await.balance,
        Millicents::from_cents(50),
        "100 searches at $0.005, the refused one free"
    );
    b.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_apify_run_is_charged_once_its_items_come_back_and_runs_in_flight_are_capped() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    let search = "apify~google-search-scraper";
    // Genesis's token goes to Apify, never the tenant's; a run that costs more is not
    // the tenant's to ask for.
    let r = b
        .scrape(
            &token,
            search,
            "token=someone-elses&memory=32768&limit=1",
            r#"{"queries": "dentists leeds\nplumbers york"}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["genesis-charged-millicents"], "2000");
    assert_eq!(r.headers()["x-apify-pagination-total"], "2");
    let items: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        items.as_array().map(Vec::len),
        Some(1),
        "limit=1 reached Apify"
    );
    assert_eq!(items[0]["searchQuery"]["term"], "dentists leeds");

    // Refused before Apify, free: an Actor Genesis has not priced, a body that is no
    // Actor input, a body too large.
    let r = b.scrape(&token, "someone~crypto-miner", "", "{}").await;
    assert_eq!(r.status(), 403);
    let r = b.scrape(&token, search, "", "[1, 2]").await;
    assert_eq!(r.status(), 400);
    let big = format!(r#"{{"queries": "{}"}}"#, "x".repeat(70 * 1024));
    assert_eq!(b.scrape(&token, search, "", &big).await.status(), 413);
    assert_eq!(b.vendors.calls("apify"), 1);
    // Refused by Apify, free: an input its schema refuses, a run past its timeout.
    let r = b.scrape(&token, search, "", r#"{"queries": 7}"#).await;
    assert_eq!(r.status(), 400);
    let charged = r.headers().get("genesis-charged-millicents").cloned();
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        charged.as_ref().map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "{body}"
    );
    assert_eq!(
        body["status"], 400,
        "a problem, as every error here: {body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Field input.queries must be string")),
        "Apify's own words: {body}"
    );
    b.vendors.set_run_time(Duration::from_millis(1500));
    let r = b
        .scrape(&token, search, "timeout=1", r#"{"queries": "slow"}"#)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["genesis-charged-millicents"], "0");

    // Spec 59.2: ten runs in flight per tenant; the eleventh waits its turn, free.
    let calls = (0..11).map(|i| {
        let input = format!(r#"{{"queries": "run {i}"}}"#);
        let b = &b;
        let token = &token;
        async move { b.scrape(token, search, "", &input).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[201; 10].as_slice(), &[429]].concat());
    let refused = answers
        .iter()
        .find(|r| r.status() == 429)
        .expect("the eleventh");
    assert!(refused.headers().contains_key("retry-after"));
    // The slots came back: the next run goes through.
    assert_eq!(
        b.scrape(&token, search, "", r#"{"queries": "after"}"#)
            .await
            .status(),
        201
    );

    b.settle_books().await;
    assert_eq!(
        b.ledger(ws).await.balance,
        Millicents(100_000 - 12 * 2_000),
        "twelve runs delivered at $0.02; every other call free"
    );
    b.t.cleanup().await.expect("cleanup");
}

/// Fetches `/hello` over an open tunnel.
async fn hello(mut sock: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(b"GET /hello HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    sock.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn a_proxy_tunnel_is_charged_once_opened_and_five_at_a_time() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    let (status, head, sock) = b.tunnel(Some(&token), &b.site).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("genesis-charged-millicents: 100"), "{head}");
    assert!(hello(sock).await.ends_with("hello through the tunnel"));
    assert_eq!(b.network.tunnels(), 1);

    // Refused before the network, free: no password or a wrong one (407, as proxies ask),
    // a port that is not the web's, an empty wallet.
    for password in [None, Some("gws_not-a-token-of-anyone-at-all-000000000000")] {
        let (status, head, _) = b.tunnel(password, &b.site).await;
        assert_eq!(status, 407, "{head}");
        assert!(head.contains("Proxy-Authenticate: Basic"), "{head}");
        assert!(head.contains("application/problem+json"), "{head}");
    }
    let (status, _, _) = b.tunnel(Some(&token), "127.0.0.1:22").await;
    assert_eq!(status, 403);
    {
        // Plain forwarding is not offered: the door only tunnels, and says so.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(&b.door).await.expect("door");
        sock.write_all(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        sock.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(
            answer.contains("GET is not allowed here; this route accepts CONNECT"),
            "{answer}"
        );
    }
    let (_, broke) = b.tenant(Millicents::ZERO).await;
    assert_eq!(b.tunnel(Some(&broke), &b.site).await.0, 402);
    // The network fails: nothing charged.
    b.network.fail_next(1);
    assert_eq!(b.tunnel(Some(&token), &b.site).await.0, 502);
    assert_eq!(b.network.tunnels(), 1);
    assert_eq!(
        b.network.refused_auth(),
        0,
        "Genesis's account is never refused"
    );

    // Spec 59.2: five tunnels at once per tenant; the sixth waits, free; one closed frees
    // its slot.
    let mut open = Vec::new();
    for _ in 0..5 {
        let (status, head, sock) = b.tunnel(Some(&token), &b.site).await;
        assert_eq!(status, 200, "{head}");
        open.push(sock);
    }
    let (status, head, _) = b.tunnel(Some(&token), &b.site).await;
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("Retry-After:"), "{head}");
    drop(open.pop());
    let mut freed = false;
    for _ in 0..50 {
        let (status, _, sock) = b.tunnel(Some(&token), &b.site).await;
        if status == 200 {
            open.push(sock);
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "a closed tunnel gives its slot back");
    drop(open);

    b.settle_books().await;
    assert_eq!(
        b.ledger(ws).await.balance,
        Millicents(100_000 - 7 * 100),
        "seven tunnels opened at $0.001; every refusal free"
    );
    b.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn an_operator_gives_one_tenant_its_own_daily_allowance_and_takes_it_back() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    let (_, other) = b.tenant(Millicents::from_dollars(1)).await;
    let limits = format!("{}/api/v1/workspaces/{ws}/limits", b.base);
    let put = |body: serde_json::Value, service: &str| {
        b.http
            .put(format!("{limits}/{service}"))
            .bearer_auth(super::TOKEN)
            .json(&body)
            .send()
    };
    // Refused, naming the field: a zero, nothing to set, no reason; an unknown service.
    for (body, field) in [
        (
            serde_json::json!({"daily_per_tenant": 0, "reason": "x"}),
            "daily_per_tenant",
        ),
        (serde_json::json!({"reason": "x"}), "daily_per_tenant"),
        (
            serde_json::json!({"daily_per_tenant": 3, "reason": "  "}),
            "reason",
        ),
    ] {
        let r = put(body.clone(), "google_cse").await.expect("put");
        assert_eq!(r.status(), 422, "{body}");
        let p: serde_json::Value = r.json().await.expect("problem");
        assert_eq!(p["field"], field, "{p}");
    }
    let r = put(
        serde_json::json!({"daily_per_tenant": 3, "reason": "x"}),
        "gmail",
    )
    .await
    .expect("put");
    assert_eq!(r.status(), 404, "gmail is not metered");
    let r = b
        .http
        .put(format!("{limits}/google_cse"))
        .json(&serde_json::json!({"daily_per_tenant": 3, "reason": "x"}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 401, "operators only");

    let r = put(
        serde_json::json!({"daily_per_tenant": 3, "reason": "trial account"}),
        "google_cse",
    )
    .await
    .expect("put");
    assert_eq!(r.status(), 200);
    let set: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (set["daily_per_tenant"].clone(), set["overridden"].clone()),
        (serde_json::json!(3), serde_json::json!(true)),
        "{set}"
    );
    for i in 0..3 {
        assert_eq!(b.search(&token, &format!("q{i}")).await.status(), 200);
    }
    assert_eq!(b.search(&token, "a fourth").await.status(), 429);
    assert_eq!(
        b.search(&other, "a fourth elsewhere").await.status(),
        200,
        "another tenant keeps the matrix's 100"
    );
    let listed: serde_json::Value = b
        .http
        .get(&limits)
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let cse = listed
        .as_array()
        .and_then(|l| l.iter().find(|s| s["service"] == "google_cse"))
        .expect("google_cse");
    assert_eq!(cse["reason"], "trial account", "{listed}");
    let apify = listed
        .as_array()
        .and_then(|l| l.iter().find(|s| s["service"] == "apify"))
        .expect("apify");
    assert_eq!(
        (
            apify["concurrent_per_tenant"].clone(),
            apify["overridden"].clone()
        ),
        (serde_json::json!(10), serde_json::json!(false)),
        "the matrix's: {listed}"
    );

    // Back to the matrix's 100 a day.
    let del = |service: &str| {
        b.http
            .delete(format!("{limits}/{service}"))
            .bearer_auth(super::TOKEN)
            .send()
    };
    assert_eq!(del("google_cse").await.expect("delete").status(), 204);
    assert_eq!(b.search(&token, "a fourth, again").await.status(), 200);
    assert_eq!(del("google_cse").await.expect("delete").status(), 404);
    assert_eq!(b.audited(ws, "LIMITS_OVERRIDDEN").await, 1);
    assert_eq!(b.audited(ws, "LIMITS_RESET").await, 1);
    b.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_vendor_that_fails_costs_the_tenant_nothing() {
    let b = bank(WalletSettings::default()).await;
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    b.vendors.fail_next("google_cse", 503, 1);
    let r = b.search(&token, "anything").await;
    assert_eq!(r.status(), 502);
    let problem: serde_json::Value = r.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("nothing was charged")
    );
    // ZeroBounce reports a bad key as 200 with an error: not delivered, not charged.
    b.vendors.fail_next("email_verify", 500, 1);
    assert_eq!(b.verify(&token, "a@b.co").await.status(), 502);
    let r = b.verify(&token, "a@b.co").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["genesis-charged-millicents"], "300");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["status"], "valid");
    // A path the gateway does not forward, and a stranger's token.
    let r = b
        .signed(
            b.http.get(format!(
                "{}/api/v1/managed/google_cse/customsearch/v1/admin",
                b.base
            )),
            &token,
            b"",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let r = b
        .search("gws_0000000000000000000000000000000000000000000", "x")
        .await;
    assert_eq!(r.status(), 401);
    b.settle_books().await;
    let l = b.ledger(ws).await;
    assert_eq!(
        l.balance,
        Millicents(100_000 - 300),
        "one verification paid"
    );
    assert_eq!(l.reserved, Millicents(0));
    let voids: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.ledger_transfers WHERE workspace_id = $1 AND phase = 'void'",
    )
    .bind(ws.as_uuid())
    .fetch_one(b.t.db.owner_pool())
    .await
    .expect("count");
    assert_eq!(voids, 2, "each failed call's hold was given back");
    b.t.cleanup().await.expect("cleanup");
}

/// Samples a wallet's cached and ledger balances from another process (`redis-cli` and
/// `psql` in a shell loop) until killed; the samples, one `cache ledger` pair per line.
struct Sampler {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Sampler {
    fn start(b: &Bank, ws: WorkspaceId) -> Self {
        let key = format!("{}wallet:{{{}}}", b.prefix, ws.as_uuid());
        let out = std::env::temp_dir().join(format!("wallet-samples-{}", Uuid::new_v4()));
        let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let db_url = format!("{}/{}", admin.rsplit_once('/').expect("url").0, b.t.name);
        let script = format!(
            "while :; do c=$(redis-cli -u \"$REDIS_URL\" HGET '{key}' avail); \
             l=$(psql -qAtX '{db_url}' -c \"SELECT credits_posted - debits_posted - debits_pending FROM genesis.ledger_accounts WHERE id = '{}'\"); \
             echo \"${{c:-none}} ${{l:-none}}\" >> '{}'; done",
            wallet_account(ws),
            out.display()
        );
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .spawn()
            .expect("sampler");
        Self { child, out }
    }

    /// Stops it; every sample taken.
    fn stop(mut self) -> Vec<(Option<i64>, Option<i64>)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(c, l)| (c.parse().ok(), l.parse().ok()))
            .collect()
    }
}

#[tokio::test]
async fn a_thousand_concurrent_calls_against_a_dollar_leave_a_tenth_of_a_cent() {
    let b = Arc::new(bank(WalletSettings::default()).await);
    let (ws, token) = b.tenant(Millicents::from_dollars(1)).await;
    let sampler = Sampler::start(&b, ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1_000 {
        let b = b.clone();
        let token = token.clone();
        calls.spawn(async move {
            b.verify(&token, &format!("lead{i}@example.com"))
                .await
                .status()
                .as_u16()
        });
    }
    // The syncer runs meanwhile, as in production.
    let syncing = {
        let b = b.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let _ = WalletSyncer::new(b.wallets.clone(), b.stores.clone())
                    .reconcile()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (mut ok, mut refused) = (0, 0);
    while let Some(status) = calls.join_next().await {
        match status.expect("task") {
            200 => ok += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    syncing.await.expect("syncer");
    let report = b.settle_books().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let samples = sampler.stop();
    assert_eq!((ok, refused), (333, 667));
    assert_eq!(b.vendors.calls("email_verify"), 333);
    assert_eq!(report.drifted, 0);
    let l = b.ledger(ws).await;
    assert_eq!(
        (l.balance, l.reserved),
        (Millicents(100), Millicents(0)),
        "$0.001 left"
    );
    assert!(
        samples.len() >= 5,
        "the sampler ran: {} samples",
        samples.len()
    );
    for (cache, ledger) in &samples {
        assert!(
            cache.unwrap_or(0) >= 0 && ledger.unwrap_or(0) >= 0,
            "{cache:?} {ledger:?}"
        );
    }
    assert!(b.t.db.ledger_totals().await.expect("totals").balances());
    if let Ok(b) = Arc::try_unwrap(b) {
        b.t.cleanup().await.expect("cleanup");
    }
}

#[tokio::test]
async fn a_flushed_cache_is_rebuilt_from_the_ledger_without_an_overdraft() {
    let b = Arc::new(bank(WalletSettings::default()).await);
    let (ws, token) = b.tenant(Millicents::from_cents(60)).await; // 200 verifications
    let [wallet, holds, journal] = b.cache.keys(ws.as_uuid());
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..400 {
        let caller = b.clone();
        let token = token.clone();
        calls.spawn(async move {
            caller
                .verify(&token, &format!("l{i}@example.com"))
                .await
                .status()
                .as_u16()
        });
        if i == 150 {
            // Half-way: sync what there is, then lose the whole wallet from Redis.
            WalletSyncer::new(b.wallets.clone(), b.stores.clone())
                .reconcile()
                .await
                .expect("sync");
            let mut conn = RedisConn::connect(&std::env::var("REDIS_URL").expect("url"))
                .await
                .expect("redis");
            let _: i64 = redis::cmd("DEL")
                .arg(&wallet)
                .arg(&holds)
                .arg(&journal)
                .query_async(&mut conn)
                .await
                .expect("flush");
        }
    }
    let mut ok = 0;
    while let Some(status) = calls.join_next().await {
        match status.expect("task") {
            200 => ok += 1,
            402 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    b.settle_books().await;
    let report = b.settle_books().await;
    assert_eq!(report.drifted, 0, "the cache equals the ledger again");
    let l = b.ledger(ws).await;
    assert!(
        l.balance >= Millicents(0) && l.available >= Millicents(0),
        "{l:?}"
    );
    assert_eq!(l.reserved, Millicents(0));
    // The ledger charged at most what was deposited, whatever the flush lost.
    assert!(l.lifetime_usage <= Millicents::from_cents(60), "{l:?}");
    assert!(ok >= 200, "the deposit's worth of calls went through: {ok}");
    assert!(b.t.db.ledger_totals().await.expect("totals").balances());
    assert_eq!(b.t.db.ledger_mismatches().await.expect("audit"), vec![]);
    if let Ok(b) = Arc::try_unwrap(b) {
        b.t.cleanup().await.expect("cleanup");
    }
}

/// The half of the crash test that runs in a child process: reserves and waits to be killed.
#[tokio::test]
#[ignore = "run by a_reservation_whose_process_dies_is_voided_at_its_timeout"]
async fn child_reserves_then_waits_to_be_killed() {
    let (Ok(prefix), Ok(ws)) = (
        std::env::var("WALLET_CHILD_PREFIX"),
        std::env::var("WALLET_CHILD_WORKSPACE"),
    ) else {
        panic!("run only by the crash test");
    };
    let conn = RedisConn::connect(&std::env::var("REDIS_URL").expect("url"))
        .await
        .expect("redis");
    let cache = WalletCache::new(conn, &prefix);
    let ws = Uuid::parse_str(&ws).expect("uuid");
    let r = cache
        .reserve(
            ws,
            Uuid::now_v7(),
            2_000,
            1,
            "APIFY_SCRAPE",
            "managed:apify",
        )
        .await
        .expect("reserve");
    assert!(
        matches!(r, genesis_queue::wallet::Reserve::Reserved(_)),
        "{r:?}"
    );
    println!("RESERVED");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn a_reservation_whose_process_dies_is_voided_at_its_timeout() {
    use std::io::BufRead;
    let b = bank(WalletSettings::default()).await;
    let (ws, _) = b.tenant(Millicents::from_cents(10)).await;
    b.wallets.load(ws).await.expect("load");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "wallet::child_reserves_then_waits_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("WALLET_CHILD_PREFIX", &b.prefix)
        .env("WALLET_CHILD_WORKSPACE", ws.as_uuid().to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child");
    let stdout = child.stdout.take().expect("stdout");
    let reserved = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("RESERVED"))
    })
    .await
    .expect("reader");
    assert!(reserved, "the child reserved");
    child.kill().expect("kill");
    let _ = child.wait();
    // The syncer writes the orphaned reservation; it holds the money until its timeout.
    b.settle_books().await;
    let l = b.ledger(ws).await;
    assert_eq!(
        (l.reserved, l.available),
        (Millicents(2_000), Millicents(8_000))
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let report = b.settle_books().await;
    assert_eq!(report.expired, 1);
    let l = b.ledger(ws).await;
    assert_eq!(
        (l.balance, l.reserved, l.available),
        (Millicents(10_000), Millicents(0), Millicents(10_000))
    );
    let snap = b
        .cache
        .snapshot(ws.as_uuid(), 10)
        .await
        .expect("redis")
        .expect("cached");
    assert_eq!(
        (snap.avail, snap.holds),
        (10_000, 0),
        "the cache gave it back too"
    );
    assert_eq!(report.drifted, 0);
    assert!(b.t.db.ledger_totals().await.expect("totals").balances());
    assert_eq!(b.audited(ws, "RESERVATION_EXPIRED").await, 1);
    b.t.cleanup().await.expect("cleanup");
}

async fn phases(b: &Bank, ws: WorkspaceId) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT phase, amount FROM genesis.ledger_transfers \
         WHERE workspace_id = $1 AND kind = 'CSE_SEARCH' ORDER BY seq",
    )
    .bind(ws.as_uuid())
    .fetch_all(b.t.db.owner_pool())
    .await
    .expect("transfers")
}

/// A caller that lost a settlement's answer retries it with the same id; the cache no longer
/// has the hold, so the retry goes to the ledger. Whenever it comes (after the reservation
/// was synced, after the syncer wrote the reservation and its post as one transfer, or
/// before any sync) the call is charged once, and the syncer is refused nothing.
#[tokio::test]
async fn a_settlement_retried_after_a_lost_answer_charges_once_whenever_it_comes() {
    let b = bank(WalletSettings::default()).await;
    for (order, written) in [
        (
            "synced, posted, retried",
            vec![("pending", 500), ("post", 300)],
        ),
        ("posted, synced, retried", vec![("single", 300)]),
        ("posted, retried, synced", vec![("single", 300)]),
    ] {
        let (ws, hold) = b.searching().await;
        let settlement = Uuid::now_v7();
        let mut refused = 0;
        for step in order.split(", ") {
            match step {
                "synced" => {
                    refused += wallet_sync::sync(&b.wallets).await.expect("sync").refused;
                }
                _ => b
                    .wallets
                    .post_as(&hold, settlement, Millicents(300))
                    .await
                    .expect("posted"),
            }
        }
        refused += wallet_sync::sync(&b.wallets).await.expect("sync").refused;
        assert_eq!(b.settle_books().await.drifted, 0, "{order}");
        assert_eq!(refused, 0, "{order}: the syncer was refused nothing");
        let written: Vec<(String, i64)> =
            written.iter().map(|(p, a)| (p.to_string(), *a)).collect();
        assert_eq!(phases(&b, ws).await, written, "{order}");
        let l = b.ledger(ws).await;
        assert_eq!(
            (l.balance, l.reserved, l.lifetime_usage),
            (Millicents(9_700), Millicents(0), Millicents(300)),
            "{order}: charged once"
        );
    }
    b.t.cleanup().await.expect("cleanup");
}

/// A sync pass that committed but lost its ack writes the same entries again. A reservation
/// it wrote as pending, and posted since, must then be posted: not written as the one posted
/// transfer a reservation and its post make when they are synced together, which the ledger
/// would refuse (its id is the reservation's), leaving the call uncharged.
#[tokio::test]
async fn a_pass_whose_ack_was_lost_posts_the_reservation_it_wrote_as_pending() {
    let b = bank(WalletSettings::default()).await;
    let (ws, hold) = b.searching().await;
    let snap = b
        .cache
        .snapshot(ws.as_uuid(), 10)
        .await
        .expect("redis")
        .expect("cached");
    let reserved = &snap.journal[0];
    // What the lost pass committed: the reservation, and the wallet's mark at it.
    let written =
        b.t.db
            .ledger_sync(
                &[vec![NewTransfer {
                    id: hold.id,
                    workspace: ws,
                    kind: TransferKind::CseSearch,
                    amount: Millicents(500),
                    phase: Phase::Pending {
                        timeout_s: reserved.timeout_s.expect("a timeout"),
                    },
                    reference: reserved.reference.clone(),
                }]],
                &[(ws, reserved.seq)],
                "system:wallet-sync",
            )
            .await
            .expect("written");
    assert!(written.iter().all(Result::is_ok));
    b.wallets
        .post(&hold, Millicents(400))
        .await
        .expect("posted");
    let report = b.settle_books().await;
    assert_eq!(report.drifted, 0);
    assert_eq!(
        phases(&b, ws).await,
        vec![("pending".to_string(), 500), ("post".to_string(), 400)]
    );
    let l = b.ledger(ws).await;
    assert_eq!((l.balance, l.reserved), (Millicents(9_600), Millicents(0)));
    b.t.cleanup().await.expect("cleanup");
}
