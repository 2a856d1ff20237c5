//! Money into wallets end to end (spec 58.1): the payment provider's webhook refuses what is
//! forged, stale or replayed and credits a genuine charge once; a tenant saves a card and tops
//! up from the dashboard; automatic top-up charges once when spending crosses the threshold,
//! and a declined card tells the tenant. Real PostgreSQL, Redis and HTTP; the provider is the
//! simulator speaking Stripe's API over HTTP.

use std::sync::Arc;
use std::time::Duration;

use genesis_control::app::payments::{PaymentProvider, credit_id};
use genesis_control::app::wallet::{WalletSettings, Wallets};
use genesis_control::workers::reconciler::Reconciler;
use genesis_control::workers::wallet::WalletSyncer;
use genesis_core::WorkspaceId;
use genesis_core::money::{Millicents, TransferKind};
use genesis_queue::RedisConn;
use genesis_queue::wallet::WalletCache;
use genesis_sim::payments::{FakeStripe, SECRET_KEY, sign};
use genesis_store::RegionalStore;
use genesis_store::testing::TestDb;
use serde_json::json;
use uuid::Uuid;

use super::accounts::{new_workspace, tenant};
use super::god_mode::{csrf_of, form, location};
use super::{App, metrics_handle, test_vault};

struct Till {
    app: App,
    stores: RegionalStore,
    wallets: Arc<Wallets>,
    stripe: FakeStripe,
    hook_secret: String,
}

async fn till() -> Till {
    let t = TestDb::create().await.expect("test database");
    let stores = RegionalStore::single(t.db.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stripe = FakeStripe::new();
    let stripe_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stripe_base = format!("http://{}", stripe_listener.local_addr().expect("addr"));
    let router = stripe.router();
    tokio::spawn(async move { axum::serve(stripe_listener, router).await });
    let hook_secret = stripe.add_endpoint(
        &format!("{base}/api/v1/payments/webhook"),
        &["payment_intent.succeeded", "payment_intent.payment_failed"],
    );
    let provider = PaymentProvider {
        api_url: format!("{stripe_base}/stripe"),
        secret_key: SECRET_KEY.into(),
        webhook_secret: hook_secret.clone(),
        tolerance_s: 300,
    };
    let conn = RedisConn::connect(&std::env::var("REDIS_URL").expect("REDIS_URL"))
        .await
        .expect("redis");
    let prefix = format!("t{}:", Uuid::new_v4().simple());
    let wallets = Arc::new(
        Wallets::new(
            WalletCache::new(conn, &prefix),
            stores.clone(),
            WalletSettings::default(),
        )
        .with_payments(provider.clone(), reqwest::Client::new()),
    );
    let control_plane = genesis_control::ControlPlane::builder(stores.clone())
        .providers(genesis_control::providers::Providers {
            payments: Some(provider),
            ..Default::default()
        })
        .trusted_proxies(vec![std::net::IpAddr::from([127, 0, 0, 1])])
        .api_token(Some(super::TOKEN))
        .metrics(metrics_handle())
        .vault(Some(Arc::new(test_vault())))
        .wallets(Some(wallets.clone()))
        .build();
    tokio::spawn(control_plane.run(listener, std::future::pending()));
    Till {
        app: App {
            base,
            http: reqwest::Client::new(),
            t,
        },
        stores,
        wallets,
        stripe,
        hook_secret,
    }
}

impl Till {
    /// The ledger's available balance, once the syncer has written what the cache spent.
    async fn available(&self, ws: WorkspaceId) -> Millicents {
        WalletSyncer::new(self.wallets.clone(), self.stores.clone())
            .reconcile()
            .await
            .expect("sync");
        self.app
            .t
            .db
            .wallet_balance(ws)
            .await
            .expect("db")
            .map_or(Millicents::ZERO, |b| b.available)
    }

    /// Waits (at most 10 s) until `ws`'s available balance is `want`.
    async fn until_available(&self, ws: WorkspaceId, want: Millicents) {
        for _ in 0..200 {
            if self.available(ws).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("balance stayed at {}, not {want}", self.available(ws).await);
    }

    async fn transfers_of(&self, ws: WorkspaceId, kind: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM genesis.ledger_transfers WHERE workspace_id = $1 AND kind = $2",
        )
        .bind(ws.as_uuid())
        .bind(kind)
        .fetch_one(self.app.t.db.owner_pool())
        .await
        .expect("count")
    }

    async fn audits(&self, ws: WorkspaceId, action: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM genesis.audit_log WHERE workspace_id = $1 AND event = $2",
        )
        .bind(ws.as_uuid())
        .bind(action)
        .fetch_one(self.app.t.db.owner_pool())
        .await
        .expect("count")
    }

    async fn deliver(&self, signature: Option<&str>, body: &str) -> (u16, serde_json::Value) {
        let mut r = self
            .app
            .http
            .post(format!("{}/api/v1/payments/webhook", self.app.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = signature {
            r = r.header("stripe-signature", s);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }
}

fn succeeded(ws: WorkspaceId, pi: &str, cents: i64) -> String {
    json!({
        "id": format!("evt_{pi}"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": chrono::Utc::now().timestamp(),
        "type": "payment_intent.succeeded",
        "livemode": false,
        "data": { "object": {
            "id": pi, "object": "payment_intent", "amount": cents, "amount_received": cents,
            "currency": "usd", "status": "succeeded",
            "metadata": { "workspace": ws.to_string(), "kind": "DEPOSIT" },
        }},
    })
    .to_string()
}

/// Posts a dashboard form that must succeed (303 back to the page).
async fn post_form(b: &super::god_mode::Browser, path: &str, fields: &[(&str, &str)]) {
    let r = b.post(path, form(fields), None).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
}

async fn workspace_of(b: &super::god_mode::Browser) -> WorkspaceId {
    let path = new_workspace(
        b,
        "Acme",
        &format!("acme_{}", &Uuid::new_v4().simple().to_string()[..8]),
    )
    .await;
    WorkspaceId::parse(path.rsplit('/').next().expect("id")).expect("workspace id")
}

#[tokio::test]
async fn a_webhook_is_credited_once_and_forged_stale_or_replayed_deliveries_are_refused() {
    let till = till().await;
    let b = tenant(&till.app, "payer@acme.test", "eu-west").await;
    let ws = workspace_of(&b).await;
    till.app.t.db.wallet_open(ws).await.expect("wallet");
    let now = chrono::Utc::now().timestamp();
    let body = succeeded(ws, "pi_genuine_1", 2_500);

    // Forged: another secret, or the body changed after signing; nothing moves.
    let forged = sign("whsec_not_ours", now, body.as_bytes());
    assert_eq!(till.deliver(Some(&forged), &body).await.0, 422);
    let genuine = sign(&till.hook_secret, now, body.as_bytes());
    let swapped = body.replace("2500", "250000");
    let (status, problem) = till.deliver(Some(&genuine), &swapped).await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["detail"],
        "stripe-signature: the delivery's signature is not valid"
    );
    // Stale: signed ten minutes ago (the tolerance is five).
    let stale = sign(&till.hook_secret, now - 600, body.as_bytes());
    assert_eq!(till.deliver(Some(&stale), &body).await.0, 422);
    // Unsigned.
    assert_eq!(till.deliver(None, &body).await.0, 422);
    assert_eq!(till.available(ws).await, Millicents::ZERO);

    // Genuine: credited, once.
    let (status, answer) = till.deliver(Some(&genuine), &body).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("credited"))
    );
    assert_eq!(till.available(ws).await, Millicents::from_cents(2_500));
    // The same delivery again (a captured request sent twice): refused as a replay.
    let (status, problem) = till.deliver(Some(&genuine), &body).await;
    assert_eq!(status, 409, "{problem}");
    // The provider's own retry (re-signed later): accepted, and not credited again.
    let retry = sign(&till.hook_secret, now + 1, body.as_bytes());
    let (status, answer) = till.deliver(Some(&retry), &body).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("already credited"))
    );
    assert_eq!(till.available(ws).await, Millicents::from_cents(2_500));
    assert_eq!(till.transfers_of(ws, "DEPOSIT").await, 1);
    let t = till
        .app
        .t
        .db
        .ledger_get(credit_id("pi_genuine_1"))
        .await
        .expect("db")
        .expect("the credit is named by its payment");
    assert_eq!(t.amount, Millicents::from_cents(2_500));
    assert!(
        till.app
            .t
            .db
            .ledger_totals()
            .await
            .expect("totals")
            .balances()
    );
    till.app.t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_payment_calls_off_a_deletion_for_non_payment_and_no_other() {
    use genesis_core::WorkspaceStatus;
    use genesis_core::deletion::DeletionTrigger;
    let till = till().await;
    let b = tenant(&till.app, "late@acme.test", "eu-west").await;
    let db = &till.app.t.db;
    let (unpaid, cancelled) = (workspace_of(&b).await, workspace_of(&b).await);
    for (ws, trigger) in [
        (unpaid, DeletionTrigger::NonPayment),
        (cancelled, DeletionTrigger::Cancelled),
    ] {
        db.wallet_open(ws).await.expect("wallet");
        db.deletion_request(ws, trigger, None, "operator:billing", chrono::Utc::now())
            .await
            .expect("deletion");
    }
    // Calling it off from the dashboard before paying is refused, and says how.
    let page = format!("/app/workspaces/{unpaid}");
    let token = csrf_of(&b.get(&page).await.text().await.expect("page"));
    let r = b
        .post(
            &format!("{page}/deletion/cancel"),
            form(&[("csrf", &token)]),
            None,
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("once a payment arrives")
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let now = chrono::Utc::now().timestamp();
    for (ws, pi) in [(unpaid, "pi_late_1"), (cancelled, "pi_late_2")] {
        let body = succeeded(ws, pi, 1_000);
        let signed = sign(&till.hook_secret, now, body.as_bytes());
        let (status, answer) = till.deliver(Some(&signed), &body).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (200, Some("credited"))
        );
    }
    assert_ne!(
        db.workspace_get(unpaid).await.expect("ws").status,
        WorkspaceStatus::PendingDeletion,
        "paid: called off"
    );
    assert_eq!(
        db.workspace_get(cancelled).await.expect("ws").status,
        WorkspaceStatus::PendingDeletion,
        "a cancelled subscription is not called off by a deposit"
    );
    let by: String = sqlx::query_scalar(
        "SELECT actor FROM genesis.audit_log WHERE event = 'DELETION_CANCELLED' AND workspace_id = $1",
    )
    .bind(unpaid.as_uuid())
    .fetch_one(db.owner_pool())
    .await
    .expect("audited");
    assert_eq!(by, "system:payments");
}

#[tokio::test]
async fn a_tenant_tops_up_from_the_dashboard_and_automatic_top_up_charges_once() {
    let till = till().await;
    let b = tenant(&till.app, "owner@acme.test", "eu-west").await;
    let ws = workspace_of(&b).await;
    let page = format!("/app/workspaces/{ws}/wallet");
    let html = b.get(&page).await.text().await.expect("page");
    assert!(html.contains("No money has moved yet"), "{html}");
    let csrf = csrf_of(&html);

    // No card yet: the top-up says so, and nothing is charged.
    let key = Uuid::new_v4().to_string();
    let top_up = |amount: &'static str, key: String| {
        let csrf = csrf.clone();
        let page = page.clone();
        let b = &b;
        async move {
            b.post(
                &format!("{page}/top-up"),
                form(&[("csrf", &csrf), ("key", &key), ("amount", amount)]),
                None,
            )
            .await
        }
    };
    let r = top_up("50", key.clone()).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("page").contains("save a card first"));

    // A card, then $50: the webhook credits it; the same form sent twice is one charge.
    post_form(
        &b,
        &format!("{page}/card"),
        &[("csrf", &csrf), ("payment_method", "pm_card_visa")],
    )
    .await;
    let r = top_up("2.5", Uuid::new_v4().to_string()).await;
    assert_eq!(r.status(), 422, "below the $5 minimum");
    for _ in 0..2 {
        let r = top_up("50", key.clone()).await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).ends_with("done=top-up"));
    }
    till.until_available(ws, Millicents::from_dollars(50)).await;
    assert_eq!(till.stripe.succeeded_charges(), 1);
    let html = b.get(&page).await.text().await.expect("page");
    assert!(
        html.contains("visa ending 4242") && html.contains("+$50"),
        "{html}"
    );
    assert_eq!(till.audits(ws, "PAYMENT_METHOD_SAVED").await, 1);

    // Automatic top-up: $20 whenever the balance falls under $10.
    post_form(
        &b,
        &format!("{page}/auto-top-up"),
        &[
            ("csrf", &csrf),
            ("enabled", "on"),
            ("threshold", "10"),
            ("amount", "20"),
        ],
    )
    .await;
    // Spending crosses the threshold from many callers at once: one top-up.
    let spend = |n: i64| {
        let w = till.wallets.clone();
        async move {
            let hold = w
                .reserve(
                    ws,
                    TransferKind::CseSearch,
                    Millicents::from_dollars(n),
                    "test",
                )
                .await
                .expect("held");
            w.post(&hold, hold.amount).await.expect("posted");
        }
    };
    spend(40).await;
    futures_util::future::join_all((0..5).map(|_| spend(1))).await;
    // $50 - $45 = $5, under $10: one automatic charge of $20.
    till.until_available(ws, Millicents::from_dollars(25)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(till.available(ws).await, Millicents::from_dollars(25));
    assert_eq!(till.transfers_of(ws, "AUTO_TOPUP").await, 1);
    assert_eq!(till.stripe.succeeded_charges(), 2);
    assert_eq!(till.audits(ws, "AUTO_TOPUP_STARTED").await, 1);
    let state = till
        .app
        .t
        .db
        .wallet_state(ws)
        .await
        .expect("db")
        .expect("wallet");
    assert_eq!(state.topup_started_at, None, "the webhook ended the claim");

    // A card that declines: the tenant's top-up is refused in words, and an automatic
    // top-up is recorded as failed and sent to the tenant.
    post_form(
        &b,
        &format!("{page}/card"),
        &[
            ("csrf", &csrf),
            ("payment_method", "pm_card_chargeDeclinedInsufficientFunds"),
        ],
    )
    .await;
    let r = top_up("50", Uuid::new_v4().to_string()).await;
    assert_eq!(r.status(), 402);
    assert!(r.text().await.expect("page").contains("insufficient funds"));
    post_form(
        &b,
        &format!("{page}/auto-top-up"),
        &[
            ("csrf", &csrf),
            ("enabled", "on"),
            ("threshold", "30"),
            ("amount", "20"),
        ],
    )
    .await;
    for _ in 0..100 {
        if till.audits(ws, "AUTO_TOPUP_FAILED").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(till.audits(ws, "AUTO_TOPUP_FAILED").await, 1);
    let told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM genesis.notifications WHERE workspace_id = $1 AND kind = 'WALLET_TOPUP_FAILED'",
    )
    .bind(ws.as_uuid())
    .fetch_one(till.app.t.db.owner_pool())
    .await
    .expect("count");
    assert_eq!(told, 1);
    assert_eq!(till.available(ws).await, Millicents::from_dollars(25));

    assert!(
        till.app
            .t
            .db
            .ledger_totals()
            .await
            .expect("totals")
            .balances()
    );
    till.app.t.cleanup().await.expect("cleanup");
}

/// A workspace provisioned directly (as ignition's first step does), with `deposit` in its
/// wallet.
async fn provisioned(till: &Till, slug: &str, deposit: Millicents) -> WorkspaceId {
    let ws = genesis_store::PartitionManager::new(till.app.t.db.clone())
        .workspace_provision(
            &genesis_store::NewWorkspace {
                id: WorkspaceId::new(),
                slug: genesis_core::Slug::parse(slug).expect("slug"),
                name: genesis_core::WorkspaceName::parse(slug).expect("name"),
                region: genesis_core::Region::EuWest,
                tier: genesis_core::Tier::Standard,
                onboarding: Default::default(),
            },
            "test",
        )
        .await
        .expect("workspace");
    till.wallets
        .credit(
            ws.id,
            Uuid::now_v7(),
            TransferKind::Deposit,
            deposit,
            None,
            "test",
        )
        .await
        .expect("deposit");
    ws.id
}

#[tokio::test]
async fn the_margin_report_and_the_financial_page_read_the_ledger_and_the_fleet() {
    let till = till().await;
    let month = genesis_control::app::margins::this_month();
    let (start, _) = genesis_control::app::margins::month_bounds(&month).expect("month");
    // Acme spends as spec 59.1's example: 770 scrapes, 900 searches, 2,100 proxied requests.
    let acme = provisioned(&till, "acme", Millicents::from_dollars(100)).await;
    for (kind, charged) in [
        (TransferKind::ApifyScrape, Millicents::from_cents(1_540)),
        (TransferKind::CseSearch, Millicents::from_cents(450)),
        (TransferKind::ProxyRequest, Millicents::from_cents(210)),
    ] {
        let hold = till
            .wallets
            .reserve(acme, kind, charged, "test")
            .await
            .expect("held");
        till.wallets.post(&hold, charged).await.expect("posted");
    }
    // Its droplet existed 100.5 hours this month (billed as 101 started hours); one that
    // never reached the cloud costs nothing.
    for (provider, hours) in [(Some(9_001_i64), 100.5_f64), (None, 300.0)] {
        sqlx::query(
            "INSERT INTO genesis.droplets (id, workspace_id, provider_id, region, state, created_at, updated_at)
             VALUES ($1, $2, $3, 'fra1', 'TERMINATED', $4, $4 + make_interval(secs => $5))",
        )
        .bind(Uuid::new_v4())
        .bind(acme.as_uuid())
        .bind(provider)
        .bind(start + chrono::Duration::hours(1))
        .bind(hours * 3600.0)
        .execute(till.app.t.db.owner_pool())
        .await
        .expect("droplet");
    }
    // Bolt has $2 and is refused a $3 call: the kill-switch.
    let bolt = provisioned(&till, "bolt", Millicents::from_dollars(2)).await;
    let refused = till
        .wallets
        .reserve(
            bolt,
            TransferKind::ApifyScrape,
            Millicents::from_dollars(3),
            "test",
        )
        .await;
    assert_eq!(refused.expect_err("short").status, 402);
    till.available(acme).await; // The syncer writes the spending to the ledger.

    let r = till
        .app
        .http
        .get(format!(
            "{}/api/v1/billing/margins?month={month}",
            till.app.base
        ))
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.expect("json");
    let tenant = |slug: &str| {
        report["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["slug"] == slug)
            .expect("tenant")
            .clone()
    };
    // By hand: revenue $99 + $15.40 + $4.50 + $2.10 = $121.00. Costs: droplet 101 h at
    // $0.00596 ($4.00 / 672 h, rounded up to a millicent) = $0.60196, Apify 770 × $0.015 =
    // $11.55, CSE 900 × $0.004 = $3.60, proxies 2,100 × $0.0007 = $1.47, overhead $0.05:
    // $17.27196. Margin $103.72804, 85.7%.
    let a = tenant("acme");
    assert_eq!(a["droplet_hours"], 101);
    assert_eq!(a["margin"]["total_revenue"], 12_100_000);
    assert_eq!(a["margin"]["total_costs"], 1_727_196);
    assert_eq!(a["margin"]["margin"], 10_372_804);
    assert_eq!(a["percent"], "85.7%");
    // Bolt: the subscription, the overhead, nothing else ($99 − $0.05).
    let b = tenant("bolt");
    assert_eq!(b["margin"]["margin"], 9_895_000);
    // The fleet: $220 against $17.32196: $202.67804, 92.1%.
    assert_eq!(report["total_revenue_millicents"], 22_000_000);
    assert_eq!(report["margin_millicents"], 20_267_804);
    assert_eq!(report["percent"], "92.1%");
    // A month that has not started is refused in words.
    let r = till
        .app
        .http
        .get(format!(
            "{}/api/v1/billing/margins?month=2999-01",
            till.app.base
        ))
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 422);

    // God Mode's Financial page: the fleet's figures, Bolt under watch, Acme the top spender.
    let op = super::god_mode::signed_in(&till.app).await;
    let html = op.get("/god/financial").await.text().await.expect("page");
    assert!(html.contains(r#"id="margin">$202.67804 (92.1%)"#), "{html}");
    let watch = html.split(r#"id="watch""#).nth(1).expect("the watch list");
    assert!(
        watch.contains(&format!(r#"data-workspace="{bolt}" data-halted="true""#)),
        "{watch}"
    );
    let spenders = html.split(r#"id="spenders""#).nth(1).expect("spenders");
    assert!(
        spenders.contains(&format!(r#"data-workspace="{acme}""#)) && spenders.contains("$22.00")
    );
    till.app.t.cleanup().await.expect("cleanup");
}
