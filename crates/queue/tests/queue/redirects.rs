//! Any node of a cluster is enough to reach every set: the client learns the slot map and
//! follows `MOVED`. (Before, a set whose slot another node held failed with
//! `Moved: 14191 127.0.0.1:7103`.)

use std::time::Duration;

use genesis_queue::{AddOutcome, Bus, GovernorConfig, QueueConfig};

use genesis_queue::testing::primary_of;

#[tokio::test]
async fn a_node_that_does_not_hold_the_sets_slot_is_enough() {
    let cluster = std::env::var("REDIS_CLUSTER_URL")
        .expect("REDIS_CLUSTER_URL (make test starts a Redis Cluster and sets it)");
    let seed = cluster
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .expect("a seed")
        .to_owned();
    let seed_port: u16 = seed
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    // As a cluster URL with that one seed, and as the plain URL of that node.
    for url in [format!("redis+cluster://{seed}"), format!("redis://{seed}")] {
        let mut set = String::new();
        for i in 0.. {
            set = format!("away{i}{}", uuid::Uuid::now_v7().simple());
            if primary_of(&cluster, &format!("genesis:{{gov:{set}}}")).await != seed_port {
                break;
            }
        }
        let bus = Bus::connect(
            &url,
            &set,
            vec![QueueConfig::new("q", 1, 5)],
            GovernorConfig::default(),
        )
        .await
        .expect("connect");
        assert_eq!(
            bus.add("q", "j1", "{}", Duration::ZERO).await.expect("add"),
            AddOutcome::Created,
            "{url}"
        );
        let (jobs, _) = bus.claim("w", 1).await.expect("claim");
        let (counted, _, _) = bus.complete("w", &jobs[0], 0).await.expect("complete");
        assert!(counted);
        assert_eq!(bus.counts("q").await.expect("counts").completed, 1, "{url}");
        bus.destroy().await.expect("clean");
    }
    // Readiness's probe: every primary answers.
    let mut conn = genesis_queue::RedisConn::connect(&cluster)
        .await
        .expect("connect");
    conn.ping().await.expect("every primary answers");
}
