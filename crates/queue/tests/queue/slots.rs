//! Every queue script keeps to one hash slot, which is what makes it atomic on Redis Cluster.
//!
//! The scripts derive their keys from `KEYS[1]`, so reading their text proves little. This
//! test watches them run instead: Redis's `MONITOR` shows each command a script issues, Redis
//! itself names the keys of each command (`COMMAND GETKEYS`), and the slot of each key is
//! computed with the CRC16 rule, checked against a real cluster's `CLUSTER KEYSLOT`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use genesis_queue::redis_conn::key_slot;
use genesis_queue::{Bus, GovernorConfig, QueueConfig, RedisConn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn node_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL (make test starts Redis and sets it)")
}

/// `host:port` of a `redis://host:port[/db]` URL.
fn host_port(url: &str) -> String {
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The arguments of one `MONITOR` line: `<time> [<db> <client>] "ARG" "ARG" ...`, with the
/// quoting of Redis's `sdscatrepr`. Returns the client (`lua` inside a script) and the args.
fn parse_monitor_line(line: &str) -> Option<(String, Vec<Vec<u8>>)> {
    let open = line.find('[')?;
    let close = line[open..].find(']')? + open;
    let client = line[open + 1..close].split_once(' ')?.1.to_owned();
    let mut args = Vec::new();
    let bytes = &line.as_bytes()[close + 1..];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        i += 1;
        let mut arg = Vec::new();
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                i += 1;
                match bytes[i] {
                    b'n' => arg.push(b'\n'),
                    b'r' => arg.push(b'\r'),
                    b't' => arg.push(b'\t'),
                    b'a' => arg.push(7),
                    b'b' => arg.push(8),
                    b'x' if i + 2 < bytes.len() => {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                        arg.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    other => arg.push(other),
                }
            } else {
                arg.push(bytes[i]);
            }
            i += 1;
        }
        args.push(arg);
        i += 1;
    }
    Some((client, args))
}

/// One command's arguments.
type Command = Vec<Vec<u8>>;

/// A script invocation seen: its SHA, its declared keys, and the commands it issued.
type ScriptRun = (Vec<u8>, Vec<Vec<u8>>, Vec<Command>);

/// Every operation of the bus, each script at least once.
async fn exercise(bus: &Bus) {
    bus.add("a", "j1", "{}", Duration::ZERO).await.expect("add");
    bus.add("b", "j2", "{}", Duration::ZERO).await.expect("add");
    bus.add("b", "j3", "{}", Duration::from_millis(1))
        .await
        .expect("add delayed");
    bus.add("a", "j4", "{}", Duration::ZERO).await.expect("add");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (jobs, _) = bus.claim("w", 2).await.expect("claim");
    assert_eq!(jobs.len(), 2);
    assert!(bus.extend("w", &jobs[0].id).await.expect("extend"));
    bus.progress("w", &jobs[0].id, 50).await.expect("progress");
    bus.complete("w", &jobs[0], 1).await.expect("complete");
    bus.fail("w", &jobs[1], "boom", false).await.expect("fail");
    let (more, _) = bus.claim("w", 5).await.expect("claim");
    for j in &more {
        bus.fail("w", j, "for good", true).await.expect("fail");
    }
    bus.pause("a").await.expect("pause");
    bus.resume("a").await.expect("resume");
    bus.add("a", "j5", "{}", Duration::from_secs(60))
        .await
        .expect("add");
    bus.drain("a").await.expect("drain");
    bus.publish("note", &[("k", "v".into())])
        .await
        .expect("publish");
    bus.events("note", 5).await.expect("events");
    bus.counts("a").await.expect("counts");
    bus.dead("b").await.expect("dead");
    bus.rates("a", Duration::from_secs(5)).await.expect("rates");
    bus.latencies("a").await.expect("latencies");
    bus.destroy().await.expect("destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_script_touches_only_its_sets_slot() {
    let url = node_url();
    let stream = tokio::net::TcpStream::connect(host_port(&url))
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    write.write_all(b"MONITOR\r\n").await.expect("monitor");
    let mut lines = BufReader::new(read).lines();
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("+OK")
    );

    let set = format!("slots{}", uuid::Uuid::now_v7().simple());
    let bus = Bus::connect(
        &url,
        &set,
        vec![QueueConfig::new("a", 1, 10), QueueConfig::new("b", 2, 10)],
        GovernorConfig {
            rate_max: 100_000,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..GovernorConfig::default()
        },
    )
    .await
    .expect("bus");
    exercise(&bus).await;
    let mut probe = RedisConn::connect(&url).await.expect("probe");
    let sentinel = format!("end-of-{set}");
    let _: String = redis::cmd("ECHO")
        .arg(&sentinel)
        .query_async(&mut probe)
        .await
        .expect("echo");

    // Group the monitored commands: a script's own commands follow its EVALSHA as `lua`
    // lines (a script runs alone, so nothing interleaves).
    let prefix = bus.prefix().as_bytes().to_vec();
    let mut scripts: Vec<ScriptRun> = Vec::new();
    let mut in_ours = false;
    let mut plain: Vec<Command> = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("monitor lines until the sentinel")
            .expect("read")
            .expect("monitor open");
        let Some((client, args)) = parse_monitor_line(&line) else {
            continue;
        };
        if args.len() == 2 && args[1] == sentinel.as_bytes() {
            break;
        }
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        if client == "lua" {
            if in_ours && let Some(last) = scripts.last_mut() {
                last.2.push(args);
            }
            continue;
        }
        let names_ours = args.iter().any(|a| a.starts_with(&prefix));
        in_ours = false;
        if (name == b"EVALSHA" || name == b"EVAL") && names_ours {
            let n: usize = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("numkeys");
            scripts.push((args[1].clone(), args[3..3 + n].to_vec(), Vec::new()));
            in_ours = true;
        } else if names_ours {
            plain.push(args);
        }
    }

    // Redis names the keys of each command.
    let keys_of = |cmd: Command| {
        let mut probe = probe.clone();
        async move {
            let mut c = redis::cmd("COMMAND");
            c.arg("GETKEYS");
            for a in &cmd {
                c.arg(a.as_slice());
            }
            // Commands without keys (TIME) are an error here: no keys.
            c.query_async::<Vec<Vec<u8>>>(&mut probe)
                .await
                .unwrap_or_default()
        }
    };
    let mut shas = BTreeSet::new();
    let mut all_keys = BTreeSet::new();
    let mut touched = 0;
    for (sha, declared, commands) in scripts {
        assert_eq!(declared.len(), 1, "a queue script declares its prefix only");
        let slot = key_slot(&declared[0]);
        shas.insert(sha);
        for cmd in commands {
            let shown = String::from_utf8_lossy(&cmd.join(&b' ')).into_owned();
            for key in keys_of(cmd).await {
                assert_eq!(
                    key_slot(&key),
                    slot,
                    "{} in `{shown}` is outside the set's slot",
                    String::from_utf8_lossy(&key)
                );
                all_keys.insert(key);
                touched += 1;
            }
        }
    }
    // Multi-key commands sent outside scripts (pipelines, DEL) keep to the slot too.
    for cmd in plain {
        let keys = keys_of(cmd).await;
        let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k)).collect();
        assert!(slots.len() <= 1, "a command spans slots {slots:?}");
        all_keys.extend(keys);
    }
    assert_eq!(
        shas.len(),
        7,
        "every script ran: add, claim, complete, fail, extend, progress, drain"
    );
    assert!(
        touched > 40,
        "the scripts' commands were seen ({touched} keys)"
    );

    // Our CRC16 agrees with a real cluster on every key seen.
    let mut cluster = RedisConn::connect(
        &std::env::var("REDIS_CLUSTER_URL").expect("REDIS_CLUSTER_URL (make test sets it)"),
    )
    .await
    .expect("cluster");
    let mut by_slot: BTreeMap<u16, usize> = BTreeMap::new();
    for key in &all_keys {
        let theirs: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key.as_slice())
            .query_async(&mut cluster)
            .await
            .expect("keyslot");
        assert_eq!(key_slot(key), theirs, "{}", String::from_utf8_lossy(key));
        *by_slot.entry(theirs).or_default() += 1;
    }
    assert_eq!(by_slot.len(), 1, "one set, one slot: {by_slot:?}");
}

#[test]
fn monitor_lines_are_read_as_redis_quotes_them() {
    let (client, args) = parse_monitor_line(
        r#"1733400000.123456 [0 lua] "HSET" "genesis:{gov:x}:job:a\"b" "p" "\x00\xff\n""#,
    )
    .expect("parsed");
    assert_eq!(client, "lua");
    assert_eq!(
        args,
        vec![
            b"HSET".to_vec(),
            b"genesis:{gov:x}:job:a\"b".to_vec(),
            b"p".to_vec(),
            vec![0, 0xff, b'\n']
        ]
    );
    let (client, _) = parse_monitor_line(r#"1.0 [0 127.0.0.1:5000] "PING""#).expect("parsed");
    assert_eq!(client, "127.0.0.1:5000");
}
