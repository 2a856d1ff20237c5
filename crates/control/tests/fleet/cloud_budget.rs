//! The DigitalOcean budget shared by replicas (DECISIONS 107), against the simulator's own
//! rate limit: two control-plane processes, each with its own client and limiter, together
//! overrun a token's budget unless they share one in Redis; sharing it, neither is ever
//! refused, and routine work leaves room for the rest.

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{CallPriority, ClientOptions, Cloud, DigitalOcean};
use genesis_control::cloud_budget::RedisCloudBudget;
use genesis_sim::digitalocean::{SimConfig, Simulator, Stats};

/// The minute, compressed; the simulator's limit per window.
const WINDOW: Duration = Duration::from_secs(1);
const LIMIT: u32 = 100;

async fn simulator() -> (String, Simulator) {
    let sim = Simulator::new(SimConfig {
        per_window: LIMIT,
        per_long_window: 1_000_000,
        rate_window: WINDOW,
        ..SimConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(genesis_sim::digitalocean::serve(
        listener,
        sim.clone(),
        std::future::pending(),
    ));
    (base, sim)
}

/// One replica's client of `token`, sharing `budget` when given.
async fn replica(base: &str, token: &str, shared: bool) -> DigitalOcean {
    let mut o = ClientOptions::new(base, token);
    o.per_minute = LIMIT;
    o.per_hour = 1_000_000;
    o.rate_window = WINDOW;
    o.max_attempts = 1;
    let url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let conn = genesis_queue::RedisConn::connect(&url)
        .await
        .expect("redis");
    let budget = RedisCloudBudget::for_token(conn, token, &o);
    let client = DigitalOcean::new(o).expect("client");
    if shared {
        client.with_shared_budget(Arc::new(budget))
    } else {
        client
    }
}

/// `n` reads from each client at once, for `for_`; what the simulator saw.
async fn hammer(sim: &Simulator, clients: &[DigitalOcean], for_: Duration) -> Stats {
    let until = tokio::time::Instant::now() + for_;
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|c| (0..10).map(move |_| c.clone()))
        .map(|c| {
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    let _ = c.regions().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    sim.stats()
}

#[tokio::test]
async fn two_replicas_sharing_the_budget_are_never_refused_where_two_alone_are() {
    let token = format!("token-{}", uuid::Uuid::new_v4());
    // Alone, each paces itself to the whole limit: together they overrun it.
    let (base, sim) = simulator().await;
    let alone = [
        replica(&base, &token, false).await,
        replica(&base, &token, false).await,
    ];
    let s = hammer(&sim, &alone, WINDOW * 3).await;
    assert!(s.rate_limited > 0, "the baseline must overrun: {s:?}");

    // Sharing one budget, they never do, and still use most of it.
    let token = format!("token-{}", uuid::Uuid::new_v4());
    let (base, sim) = simulator().await;
    let shared = [
        replica(&base, &token, true).await,
        replica(&base, &token, true).await,
    ];
    let s = hammer(&sim, &shared, WINDOW * 3).await;
    assert_eq!(s.rate_limited, 0, "{s:?}");
    assert!(s.max_in_window <= u64::from(LIMIT), "{s:?}");
    assert!(
        s.accepted >= u64::from(LIMIT) * 2,
        "the budget was used: {s:?}"
    );
}

#[tokio::test]
async fn routine_work_leaves_most_of_the_budget_to_the_rest() {
    let token = format!("token-{}", uuid::Uuid::new_v4());
    let (base, sim) = simulator().await;
    let client = replica(&base, &token, true).await;
    let routine = client.prioritised(CallPriority::Routine);
    // Routine work alone, flat out, for three windows: about two fifths of the limit.
    let s = hammer(&sim, std::slice::from_ref(&routine), WINDOW * 3).await;
    assert!(
        s.accepted <= u64::from(LIMIT) * 3 * 2 / 5 + 10,
        "routine work took more than its share: {s:?}"
    );
    // Meanwhile an urgent request goes at once.
    let urgent = client.prioritised(CallPriority::Urgent);
    let t = tokio::time::Instant::now();
    urgent.regions().await.expect("regions");
    assert!(t.elapsed() < WINDOW / 2, "{:?}", t.elapsed());
}
