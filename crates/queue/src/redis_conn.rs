//! Where Redis is, and one connection type for a single node and for a Redis Cluster, so that
//! every Redis user (the queue, the governor, readiness, benchmarks) works on both.
//!
//! - `redis://host:port[/db]` is one node; when that node turns out to be a cluster node, it
//!   is used as the seed of the cluster instead (many managed clusters give one endpoint).
//! - `redis+cluster://[user:pass@]host:port,host:port,...` is a cluster given by seed nodes, as
//!   is a comma-separated list of `redis://` URLs. Any reachable seed is enough: the client
//!   learns the slot map from it, follows `MOVED` and `ASK` redirects, and refreshes the map
//!   after a failover.
//!
//! The cluster side is the `redis` crate's own (`cluster-async`). What is ours: the URL rule
//! above, retry settings that give up in seconds rather than the crate's minutes, and
//! [`RedisConn::on_primary_of`], which sends a keyless command (`SCAN`, `WAIT`) to the node
//! that holds a given key, which the crate's default routing would send anywhere.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, FromRedisValue, RedisFuture, RedisResult, Value};

/// The number of hash slots of Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the text between the first `{`
/// and the next `}`, when not empty) or of the whole key, modulo 16,384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % SLOTS
}

/// A Redis URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRedisUrl(String);

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One node (`redis://`).
    Node(String),
    /// A cluster's seed nodes, each as a `redis://` URL.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// Reads `redis://host:port[/db]`, `redis+cluster://host:port,host:port` or a
    /// comma-separated list of `redis://` URLs.
    pub fn parse(url: &str) -> Result<Self, BadRedisUrl> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            return Self::cluster_from_hosts(rest);
        }
        if url.contains(',') {
            let seeds: Vec<String> = url.split(',').map(|s| s.trim().to_owned()).collect();
            for s in &seeds {
                Self::check_node(s)?;
                if path_of(s).is_some_and(|p| p != "0") {
                    return Err(BadRedisUrl(format!(
                        "{s}: a Redis Cluster has only database 0"
                    )));
                }
            }
            return Ok(Self::Cluster(seeds));
        }
        Self::check_node(url)?;
        Ok(Self::Node(url.to_owned()))
    }

    fn check_node(url: &str) -> Result<(), BadRedisUrl> {
        if url.starts_with("rediss://") {
            return Err(BadRedisUrl(format!(
                "{}: TLS (rediss://) is not built in; reach Redis over a private network or a TLS tunnel",
                redact(url)
            )));
        }
        if !url.starts_with("redis://") {
            return Err(BadRedisUrl(format!(
                "{}: not a Redis URL (redis://host:port, or redis+cluster://host:port,host:port for a cluster)",
                redact(url)
            )));
        }
        redis::Client::open(url)
            .map(drop)
            .map_err(|e| BadRedisUrl(format!("{}: not a usable Redis URL ({e})", redact(url))))
    }

    fn cluster_from_hosts(rest: &str) -> Result<Self, BadRedisUrl> {
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.contains('/') || hosts.contains('?') {
            return Err(BadRedisUrl(
                "redis+cluster:// takes host:port pairs only (a Redis Cluster has only database 0)"
                    .into(),
            ));
        }
        let seeds: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{auth}{h}"))
            .collect();
        if seeds.is_empty() {
            return Err(BadRedisUrl(
                "redis+cluster:// needs at least one host:port".into(),
            ));
        }
        for s in &seeds {
            Self::check_node(s)?;
        }
        Ok(Self::Cluster(seeds))
    }

    /// For logs: the nodes, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Node(u) => redact(u),
            Self::Cluster(seeds) => format!(
                "cluster via {}",
                seeds
                    .iter()
                    .map(|s| redact(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

fn path_of(url: &str) -> Option<&str> {
    let after = url.split_once("://")?.1;
    let path = after.split_once('/')?.1;
    (!path.is_empty()).then_some(path)
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// A connection to one node or to a cluster. Cheap to clone; clones share the underlying
/// multiplexed connections, and both kinds reconnect by themselves.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Node(_) => "RedisConn(node)",
            Inner::Cluster(_) => "RedisConn(cluster)",
        })
    }
}

/// How long a command may wait for its reply before it fails (and, in a cluster, is retried
/// after a slot-map refresh).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisConn {
    /// Connects to `url` (see the module doc for the forms it takes).
    pub async fn connect(url: &str) -> Result<Self, crate::QueueError> {
        let target =
            RedisTarget::parse(url).map_err(|e| crate::QueueError::Invalid(e.to_string()))?;
        Ok(Self::connect_to(&target).await?)
    }

    /// Connects to `target`.
    pub async fn connect_to(target: &RedisTarget) -> RedisResult<Self> {
        let inner = match target {
            RedisTarget::Node(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let mut conn = ConnectionManager::new_with_config(client, config).await?;
                // A managed cluster is often given as one endpoint: talking to it as a single
                // node would fail on every key another node holds (`MOVED`).
                // (Some managed services rename INFO away: then it is taken for a node.)
                let info: String = redis::cmd("INFO")
                    .arg("cluster")
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if info.contains("cluster_enabled:1") {
                    tracing::info!(
                        node = %redact(url),
                        "this Redis is a cluster node: using it as the cluster's seed"
                    );
                    return Box::pin(Self::connect_to(&RedisTarget::Cluster(vec![url.clone()])))
                        .await;
                }
                Inner::Node(conn)
            }
            RedisTarget::Cluster(seeds) => {
                // The crate retries 16 times over minutes by default; a failover takes
                // seconds (cluster-node-timeout plus an election), and callers have retry
                // loops of their own, so give up after ~5 s of redirects and reconnects.
                let client =
                    redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                        .retries(8)
                        .min_retry_wait(50)
                        .max_retry_wait(1_000)
                        .connection_timeout(CONNECT_TIMEOUT)
                        .response_timeout(RESPONSE_TIMEOUT)
                        .build()?;
                Inner::Cluster(client.get_async_connection().await?)
            }
        };
        Ok(Self { inner })
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// Runs `cmd`, which names no key, on the primary that holds `key`'s slot (on the one
    /// node when not a cluster): `SCAN` of one hash tag's keys, `WAIT` after a write to it.
    pub async fn on_primary_of<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match &mut self.inner {
            Inner::Node(c) => cmd.query_async(c).await,
            Inner::Cluster(c) => {
                let route = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
                let v = c
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                redis::from_redis_value(v).map_err(Into::into)
            }
        }
    }

    /// Answers when Redis can take writes: the node, or every primary of a cluster. A
    /// replica that is down does not count: readiness would otherwise take every control
    /// plane out of its load balancer for a spare's sake.
    pub async fn ping(&mut self) -> RedisResult<()> {
        match &mut self.inner {
            Inner::Node(c) => {
                let _: Value = redis::cmd("PING").query_async(c).await?;
            }
            Inner::Cluster(c) => {
                c.route_command(
                    redis::cmd("PING"),
                    RoutingInfo::MultiNode((
                        MultipleNodeRoutingInfo::AllMasters,
                        Some(ResponsePolicy::AllSucceeded),
                    )),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// A connection made on first use, and tried again on the next use while it cannot be made
/// (once made, [`RedisConn`] reconnects by itself). For callers that must start while Redis
/// is down and report it, such as readiness.
#[derive(Debug)]
pub struct LazyRedis {
    target: RedisTarget,
    conn: tokio::sync::Mutex<Option<RedisConn>>,
}

impl LazyRedis {
    /// Nothing is connected until [`LazyRedis::get`].
    pub fn new(target: RedisTarget) -> Self {
        Self {
            target,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Where it connects.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The connection, made now if it was not yet.
    pub async fn get(&self) -> RedisResult<RedisConn> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = RedisConn::connect_to(&self.target).await?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Node(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Node(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_crc16_rule_and_hash_tags() {
        // The reference values of the Redis Cluster specification.
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // An empty tag does not count: the whole key is hashed.
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % SLOTS
        );
        // Only the first tag counts.
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn urls_name_a_node_or_a_cluster() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379/2"),
            Ok(RedisTarget::Node("redis://127.0.0.1:6379/2".into()))
        );
        assert_eq!(
            RedisTarget::parse("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7000"),
            Ok(RedisTarget::Cluster(vec![
                "redis://u:p@10.0.0.1:7000".into(),
                "redis://u:p@10.0.0.2:7000".into()
            ]))
        );
        assert_eq!(
            RedisTarget::parse("redis://a:7000, redis://b:7001"),
            Ok(RedisTarget::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into()
            ]))
        );
        for bad in [
            "http://x:1",
            "rediss://x:1",
            "redis+cluster://",
            "redis+cluster://a:1/3",
            "redis://a:1/1,redis://b:1/1",
            "localhost:6379",
        ] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad} was accepted");
        }
        let e = RedisTarget::parse("rediss://user:secret@x:1").expect_err("tls");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            RedisTarget::parse("redis+cluster://u:secret@a:1").map(|t| t.describe()),
            Ok("cluster via redis://***@a:1".into())
        );
    }
}
