//! `genesis-queue-worker`: a worker process for the queue's multi-process tests and the
//! queue benchmarks. Its jobs sleep for `--job-ms` (or forever when the payload says "hang")
//! and record, in Redis keys of their own under `--record`, how many run at once (per queue
//! and in all, with the maximum) and how many times each job completed. Those counters are
//! independent of the queue's own bookkeeping, which is what the tests check. On a Redis
//! Cluster, give `--record` a hash tag (`{rec-1}`): its keys are updated together.

use std::time::Duration;

use genesis_queue::{
    Bus, Claimed, GovernorConfig, Handler, JobError, QueueConfig, RedisConn, Worker,
};

struct Recorder {
    conn: RedisConn,
    record: String,
    job: Duration,
    enter: redis::Script,
}

impl Handler for Recorder {
    async fn handle(&self, job: &Claimed) -> Result<(), JobError> {
        let mut c = self.conn.clone();
        let r = &self.record;
        let _: () = self
            .enter
            .key(format!("{r}:inflight"))
            .key(format!("{r}:max"))
            .arg(&job.queue)
            .invoke_async(&mut c)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        if job.payload.contains("hang") {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.job).await;
        let _: () = redis::pipe()
            .cmd("HINCRBY")
            .arg(format!("{r}:inflight"))
            .arg(&job.queue)
            .arg(-1)
            .ignore()
            .cmd("HINCRBY")
            .arg(format!("{r}:inflight"))
            .arg("*")
            .arg(-1)
            .ignore()
            .cmd("HINCRBY")
            .arg(format!("{r}:done"))
            .arg(&job.id)
            .arg(1)
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }
}

const ENTER: &str = r#"
local q = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local all = redis.call('HINCRBY', KEYS[1], '*', 1)
if q > tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') then redis.call('HSET', KEYS[2], ARGV[1], q) end
if all > tonumber(redis.call('HGET', KEYS[2], '*') or '0') then redis.call('HSET', KEYS[2], '*', all) end
"#;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(args: &[String], name: &str, default: u64) -> u64 {
    arg(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--queues a:1:5,b:2:10` (name:priority:concurrency).
fn queues(spec: &str) -> Vec<QueueConfig> {
    spec.split(',')
        .filter_map(|q| {
            let mut p = q.split(':');
            Some(QueueConfig::new(
                p.next()?,
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
            ))
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(set), Some(spec), Some(record)) = (
        arg(&args, "--redis"),
        arg(&args, "--set"),
        arg(&args, "--queues"),
        arg(&args, "--record"),
    ) else {
        eprintln!(
            "usage: genesis-queue-worker --redis URL --set NAME --queues name:prio:conc,... --record KEY \
             [--capacity N] [--job-ms N] [--max-concurrency N] [--rate-max N] [--rate-window-ms N] [--lease-ms N]"
        );
        return std::process::ExitCode::from(2);
    };
    let cfg = GovernorConfig {
        max_concurrency: num(&args, "--max-concurrency", 100) as u32,
        rate_max: num(&args, "--rate-max", 200) as u32,
        rate_window: Duration::from_millis(num(&args, "--rate-window-ms", 1000)),
        lease: Duration::from_millis(num(&args, "--lease-ms", 30_000)),
        backoff_base: Duration::from_millis(50),
        ..GovernorConfig::default()
    };
    let run = async {
        let conn = RedisConn::connect(&url).await?;
        let bus = Bus::on(conn.clone(), &set, queues(&spec), cfg)?;
        let handler = Recorder {
            conn,
            record,
            job: Duration::from_millis(num(&args, "--job-ms", 0)),
            enter: redis::Script::new(ENTER),
        };
        let worker = Worker::new(bus, handler, num(&args, "--capacity", 50) as u32);
        println!("ready {}", worker.id());
        worker
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("genesis-queue-worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
