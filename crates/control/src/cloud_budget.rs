//! The cloud client's shared budget ([`genesis_cloud::SharedBudget`]) on Redis
//! ([`genesis_queue::cloud_budget::CloudBudget`]): the glue between the two crates, which
//! know nothing of each other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use genesis_cloud::{CallPriority, SharedBudget};
use genesis_queue::cloud_budget::CloudBudget;

/// A token's budget in Redis, as the cloud client asks it.
#[derive(Debug, Clone)]
pub struct RedisCloudBudget(pub CloudBudget);

impl RedisCloudBudget {
    /// The budget of `token` (named in Redis by a hash of it, never the token) on `conn`,
    /// under the limits the client is configured with.
    pub fn for_token(
        conn: genesis_queue::RedisConn,
        token: &str,
        opts: &genesis_cloud::ClientOptions,
    ) -> Self {
        use sha2::Digest as _;
        let hash = crate::credentials::hex(&sha2::Sha256::digest(token.as_bytes()));
        Self(CloudBudget::new(
            conn,
            "genesis:",
            &hash,
            opts.per_minute,
            opts.per_hour,
            opts.rate_window,
        ))
    }
}

impl SharedBudget for RedisCloudBudget {
    fn admit(
        &self,
        priority: CallPriority,
    ) -> Pin<Box<dyn Future<Output = Result<Duration, String>> + Send + '_>> {
        let code = match priority {
            CallPriority::Routine => 0,
            CallPriority::Normal => 1,
            CallPriority::Urgent => 2,
        };
        Box::pin(async move {
            self.0
                .admit(code)
                .await
                .map(Duration::from_millis)
                .map_err(|e| e.to_string())
        })
    }
}
