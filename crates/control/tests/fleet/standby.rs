//! The hot-standby pool (spec 55.4 strategy 3), with simulated boot delays at a fifth of
//! DigitalOcean's (create 5–11 s, boot 3–8 s, power 1–3 s): a High-Priority tenant woken
//! from hibernation serves from a warm standby within seconds, while its own droplet boots;
//! then it moves back, the standby is destroyed and the pool refills.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use genesis_cloud::Cloud;
use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::standby::{StandbyPool, StandbySettings};
use genesis_core::{DropletState, Region};
use genesis_sim::digitalocean::Timings;

use super::helpers::{self, Options, credentials, world};
use super::{hibernate_now, wait_state};

/// The pool's standbys of the test's one database, and the one that is ready, if any.
async fn ready_standby(w: &helpers::World) -> Option<genesis_store::StandbyDroplet> {
    w.t.db
        .standby_live()
        .await
        .expect("pool")
        .into_iter()
        .find(|s| s.claimed_by.is_none() && s.droplet.state == DropletState::ActiveHealthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waking_high_priority_tenant_serves_from_a_warm_standby_and_swaps_back() {
    let mut opts = Options {
        timings: Timings::realistic().scaled(0.2),
        ..Options::default()
    };
    opts.timeouts.insert(
        genesis_core::IgnitionStep::HandshakePending,
        Duration::from_secs(60),
    );
    let w = world(opts).await;
    let pool = StandbyPool::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
        w.igniter.clone(),
        StandbySettings {
            sizes: BTreeMap::from([(Region::EuWest, 1)]),
            ..StandbySettings::default()
        },
    );
    // The pool warms one standby while the tenant ignites.
    let first = pool.reconcile().await.expect("pass");
    assert_eq!((first.created, first.ready), (1, 0), "{first:?}");
    assert_eq!(
        pool.reconcile().await.expect("pass").created,
        0,
        "a warming standby counts towards the pool"
    );
    let ws = w.create_workspace("vip").await;
    sqlx::query("UPDATE genesis.workspaces SET tier = 'high-priority' WHERE id = $1")
        .bind(ws.as_uuid())
        .execute(w.t.db.owner_pool())
        .await
        .expect("tier");
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(90)).await;
    assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let standby = loop {
        if let Some(s) = ready_standby(&w).await {
            break s;
        }
        assert!(Instant::now() < deadline, "the standby never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let standby_provider = standby.droplet.provider_id.expect("provider");
    let (_, pools) = w.get("/api/v1/fleet/standby").await;
    assert_eq!(pools["eu-west"]["ready"], 1, "{pools}");
    // The pool's workspace is not a tenant.
    let (_, list) = w.get("/api/v1/workspaces").await;
    assert!(
        !list.to_string().contains("standby_pool"),
        "the pool's workspace is listed as a tenant: {list}"
    );
    // The watchdog watches the standby like any droplet; its pool has no leads, so no
    // partition is missing.
    let watchdog = genesis_control::workers::watchdog::Watchdog::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let watched = loop {
        let r = watchdog.reconcile().await.expect("watchdog");
        if r.checked >= 2 {
            break r;
        }
        assert!(Instant::now() < deadline, "no inventory reported: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(watched.drifts.is_empty(), "{watched:?}");
    let home_hooks = w.t.db.webhook_list(ws).await.expect("hooks");
    assert!(!home_hooks.is_empty());

    let own = hibernate_now(&w, ws).await;
    let own_provider = own.provider_id.expect("provider");
    // Someone signs in to the tenant's dashboard (spec 55.3's login trigger): the droplet
    // powers on, the reconciler (every second in `genesis serve`) claims the standby and the
    // job puts the tenant on it. The test's clock runs from the sign-in.
    let woke = Instant::now();
    let (status, body) = w
        .post(
            &format!("/api/v1/workspaces/{ws}/logins"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (202, Some("waking")),
        "{body}"
    );
    let (trigger, login): (Option<String>, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT h.wake_trigger, a.last_login_at FROM genesis.hibernations h
         JOIN genesis.workspace_activity a USING (workspace_id) WHERE h.droplet_id = $1",
    )
    .bind(own.id.as_uuid())
    .fetch_one(w.t.db.owner_pool())
    .await
    .expect("episode");
    assert_eq!(trigger.as_deref(), Some("login"));
    assert!(login.is_some(), "the sign-in counts as activity");
    let (mut claims, mut refills) = (0, 0);
    let served = loop {
        let pass = pool.reconcile().await.expect("pass");
        claims += pass.claims;
        refills += pass.created;
        let live = w.t.db.standby_live().await.expect("pool");
        if let Some(s) = live
            .iter()
            .find(|s| s.droplet.id == standby.droplet.id && s.serving_at.is_some())
        {
            break s.clone();
        }
        assert!(
            woke.elapsed() < Duration::from_secs(30),
            "the standby never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let serve_time = woke.elapsed();
    let (_, pools) = w.get("/api/v1/fleet/standby").await;
    assert_eq!(pools["eu-west"]["serving"], 1, "{pools}");
    assert_eq!(claims, 1, "one claim for one wake");
    assert_eq!(refills, 1, "a claimed standby is replaced at once");
    assert_eq!(served.claimed_by, Some(ws));
    assert!(
        serve_time < Duration::from_secs(5),
        "served from the standby after {serve_time:?}"
    );
    // Serving: the tenant's three workflows run on the standby, its webhooks point there,
    // and its own droplet is still booting.
    let flows = w
        .hook
        .n8n(standby_provider)
        .expect("standby n8n")
        .workflow_summary();
    assert_eq!(flows.len(), 3, "{flows:?}");
    assert!(flows.iter().all(|f| f.2), "{flows:?}");
    let (base, _) =
        w.t.db
            .droplet_handshake_record(standby.droplet.id)
            .await
            .expect("record")
            .expect("handshake");
    let hooks = w.t.db.webhook_list(ws).await.expect("hooks");
    assert_eq!(hooks.len(), home_hooks.len());
    assert!(
        hooks.iter().all(|h| h.url.starts_with(&base)),
        "{hooks:?} not on {base}"
    );
    assert_eq!(
        w.t.db.droplet_get(own.id).await.expect("own").state,
        DropletState::Waking,
        "the tenant's own droplet was still booting when the standby served ({serve_time:?})"
    );
    // Its n8n's calls home go through the standby's relay, signed as the pool's droplet,
    // and count for the tenant that claimed it, and for no other (spec 65.3).
    let standby_n8n = w.hook.n8n(standby_provider).expect("standby n8n");
    let bearer = standby_n8n
        .credential_summary()
        .iter()
        .find(|c| c.1 == "Genesis API")
        .and_then(|c| standby_n8n.credential_data(&c.0))
        .and_then(|d| d["value"].as_str().map(str::to_owned))
        .expect("the API credential");
    let relay =
        w.t.db
            .droplet_relay_url(standby.droplet.id)
            .await
            .expect("db")
            .expect("the standby's relay");
    let stranger = w.create_workspace("stranger").await;
    let http = reqwest::Client::new();
    for (path_ws, want) in [(ws.to_string(), 200), (stranger.to_string(), 401)] {
        let r = http
            .get(format!("{relay}/api/v1/workspaces/{path_ws}/leads"))
            .header("authorization", &bearer)
            .send()
            .await
            .expect("relay");
        assert_eq!(r.status(), want, "leads of {path_ws} through the standby");
    }
    assert_eq!(
        pool.reconcile().await.expect("pass").swap_backs,
        0,
        "no swap back while the tenant's own droplet boots"
    );

    // Its own droplet comes up: the tenant moves back and the standby is destroyed.
    wait_state(&w, own.id, DropletState::ActiveHealthy).await;
    let own_wake = woke.elapsed();
    assert_eq!(pool.reconcile().await.expect("pass").swap_backs, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while w
        .t
        .db
        .droplet_get(standby.droplet.id)
        .await
        .expect("standby")
        .state
        != DropletState::Terminated
    {
        if Instant::now() > deadline {
            let q = genesis_control::workers::hibernation::HIBERNATION_QUEUE;
            panic!(
                "the standby was never released: {:?}, dead jobs {:?}",
                w.bus.counts(q).await,
                w.bus.dead(q).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = w.t.db.webhook_list(ws).await.expect("hooks");
    assert_eq!(back, home_hooks, "webhooks point home again");
    assert!(
        matches!(
            w.cloud.droplet_get(standby_provider).await,
            Err(genesis_cloud::CloudError::NotFound)
        ),
        "the standby's machine is deleted"
    );
    let home_flows = w
        .hook
        .n8n(own_provider)
        .expect("own n8n")
        .workflow_summary();
    assert_eq!(home_flows.len(), 3);
    assert!(home_flows.iter().all(|f| f.2), "{home_flows:?}");
    let trail: Vec<String> =
        w.t.db
            .audit_list(Some(ws), None, 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.event)
            .filter(|e| e.starts_with("STANDBY_"))
            .rev()
            .collect();
    assert_eq!(
        trail,
        ["STANDBY_CLAIMED", "STANDBY_SERVING", "STANDBY_RELEASED"],
        "{trail:?}"
    );
    // The released standby is gone for good; its replacement is the pool.
    let after = pool.reconcile().await.expect("pass");
    assert_eq!(
        (after.created, after.claimed, after.ready + after.warming),
        (0, 0, 1),
        "{after:?}"
    );
    println!(
        "standby served after {serve_time:?}; the tenant's own droplet was healthy after {own_wake:?}"
    );
    w.finish().await;
}
