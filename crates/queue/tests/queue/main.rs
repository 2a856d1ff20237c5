//! The queue against real Redis: the same suite on one node (`REDIS_URL`) and on a 3-shard
//! Redis Cluster with a replica per shard (`REDIS_CLUSTER_URL`), both started by `make test`;
//! that every script keeps to one hash slot; and a primary's failover under load.

mod failover;
mod redirects;
mod slots;

/// The suite on one Redis node.
mod node {
    fn redis_url() -> String {
        std::env::var("REDIS_URL").expect("REDIS_URL (make test starts Redis and sets it)")
    }

    include!("suite.rs");
    include!("wallet_suite.rs");
    include!("limits_suite.rs");
    include!("cloud_budget_suite.rs");
}

/// The same suite on a Redis Cluster.
mod cluster {
    fn redis_url() -> String {
        std::env::var("REDIS_CLUSTER_URL")
            .expect("REDIS_CLUSTER_URL (make test starts a Redis Cluster and sets it)")
    }

    include!("suite.rs");
    include!("wallet_suite.rs");
    include!("limits_suite.rs");
    include!("cloud_budget_suite.rs");
}
