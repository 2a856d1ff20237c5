//! Test support: a throwaway Redis Cluster of a test's own, for tests that kill its nodes
//! (`scripts/redis-cluster.sh` starts it), and where a key's slot is served. Panics on
//! failure, as test support does.

use std::path::PathBuf;

use crate::redis_conn::{RedisConn, key_slot};

/// A throwaway cluster (3 shards, 1 replica each), stopped and deleted on drop.
pub struct TestCluster {
    dir: PathBuf,
    /// Its URL.
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redis-cluster.sh")
}

impl TestCluster {
    /// Three shards, one replica each.
    pub fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("genesis-rc-{}", uuid::Uuid::now_v7().simple()));
        let out = std::process::Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run redis-cluster.sh");
        assert!(
            out.status.success(),
            "cluster start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { dir, url }
    }

    /// The port of the primary serving `key`'s slot.
    pub async fn primary_of(&self, key: &str) -> u16 {
        primary_of(&self.url, key).await
    }

    /// Kills the node on `port` with SIGKILL.
    pub fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(port.to_string()).join("redis.pid"))
            .expect("pid file");
        let status = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port of the primary serving `key`'s slot, from `CLUSTER NODES`.
pub async fn primary_of(url: &str, key: &str) -> u16 {
    let slot = key_slot(key.as_bytes());
    let mut c = RedisConn::connect(url).await.expect("connect");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut c)
        .await
        .expect("cluster nodes");
    for line in nodes.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
            continue;
        }
        let serves = f[8..].iter().any(|r| match r.split_once('-') {
            Some((a, b)) => {
                a.parse::<u16>().is_ok_and(|a| a <= slot)
                    && b.parse::<u16>().is_ok_and(|b| slot <= b)
            }
            None => r.parse::<u16>().is_ok_and(|s| s == slot),
        });
        if serves {
            let addr = f[1].split('@').next().unwrap_or_default();
            return addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    }
    panic!("no primary serves slot {slot}:\n{nodes}");
}
