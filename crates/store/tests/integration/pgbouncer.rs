//! The isolation checks again, through PgBouncer in transaction mode (spec 40.2).
//!
//! Starts a private PgBouncer (Debian's 1.18) on a free port in front of the test server with
//! `pool_mode = transaction` and `server_reset_query = DISCARD ALL` applied after every
//! transaction, which is the configuration `db.rs` documents for production on 1.18.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use genesis_store::{Database, Pooler, testing::TestDb};
use sqlx::postgres::PgConnectOptions;

use crate::isolation::run_all_isolation_checks;

struct Bouncer {
    child: Child,
    _dir: tempdir::Dir,
    port: u16,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A directory removed on drop (kept tiny to avoid a dependency).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_bouncer(server: &PgConnectOptions) -> Bouncer {
    let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("pgbouncer is installed (make test installs Debian's pgbouncer)");
    let dir = std::env::temp_dir().join(format!("genesis-pgb-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let ini = format!(
        "[databases]\n* = host={host} port={pgport}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
         unix_socket_dir =\nauth_type = trust\nauth_file = {dir}/users.txt\npool_mode = transaction\n\
         server_reset_query = DISCARD ALL\nserver_reset_query_always = 1\ndefault_pool_size = 4\n\
         max_client_conn = 100\nignore_startup_parameters = extra_float_digits\nlogfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n",
        host = server.get_host(),
        pgport = server.get_port(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("pgbouncer.ini"), ini).expect("ini");
    std::fs::write(
        dir.join("users.txt"),
        "\"genesis_app\" \"\"\n\"postgres\" \"\"\n",
    )
    .expect("users");
    let mut cmd = Command::new(bin);
    // PgBouncer refuses to run as root; -u drops privileges to the postgres system user.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let _ = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(&dir)
            .status();
        cmd.args(["-u", "postgres"]);
    }
    let child = cmd
        .arg(dir.join("pgbouncer.ini"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pgbouncer starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Bouncer {
        child,
        _dir: tempdir::Dir(dir),
        port,
    }
}

/// `t`'s options with the runtime login going through `bouncer` in transaction mode.
fn through(bouncer: &Bouncer, t: &TestDb) -> genesis_store::DbOptions {
    let app = PgConnectOptions::from_str(&format!(
        "postgres://genesis_app@127.0.0.1:{}/{}",
        bouncer.port, t.name
    ))
    .expect("url");
    t.options_via(app, Pooler::PgBouncerTransaction)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_holds_through_pgbouncer_in_transaction_mode() {
    let t = TestDb::create().await.expect("test database");
    let bouncer = start_bouncer(&t.db.options().admin);
    let mut opts = through(&bouncer, &t);
    opts.app_pool_size = 8;
    let via = Database::connect_lazy(opts);
    // Concurrency forces PgBouncer to hand server connections between clients.
    let (a, b) = tokio::join!(
        run_all_isolation_checks(&via),
        run_all_isolation_checks(&via)
    );
    let _ = (a, b);
    let checks = via
        .settings_check()
        .await
        .expect("settings through the pooler");
    assert!(
        checks
            .iter()
            .any(|c| c.setting.starts_with("plan_cache_mode") && c.ok)
    );
    via.close().await;
    drop(bouncer);
    t.cleanup().await.expect("cleanup");
}

/// What needs a server session of its own (a leader's advisory lock, a `LISTEN`) still works
/// when the runtime login goes through PgBouncer in transaction mode: there, the server
/// connection changes hands after every transaction and `DISCARD ALL` drops session locks
/// and listeners, so these connect past the pooler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_and_wake_ups_hold_through_pgbouncer_in_transaction_mode() {
    let t = TestDb::create().await.expect("test database");
    let bouncer = start_bouncer(&t.db.options().admin);
    let via = Database::connect_lazy(through(&bouncer, &t));

    let mut held = via
        .leader_try("pgbouncer-test")
        .await
        .expect("try")
        .expect("the first contender leads");
    // Traffic through the pooler meanwhile (it would reset a shared server connection).
    for _ in 0..5 {
        via.settings_check()
            .await
            .expect("a query through the pooler");
    }
    assert!(
        held.still_held().await,
        "the lock outlives other transactions"
    );
    assert!(
        via.leader_try("pgbouncer-test")
            .await
            .expect("try")
            .is_none(),
        "a second contender does not lead while the first does"
    );
    drop(held);
    let mut again = None;
    for _ in 0..50 {
        again = via.leader_try("pgbouncer-test").await.expect("try");
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the lock goes with its holder's session");

    let mut wakes = via.reconciler_wakes().await.expect("listen");
    for _ in 0..5 {
        via.settings_check()
            .await
            .expect("a query through the pooler");
    }
    via.reconciler_wake("watchdog").await.expect("notify");
    let got = tokio::time::timeout(Duration::from_secs(5), wakes.next())
        .await
        .expect("the wake arrives")
        .expect("listener");
    assert_eq!(got, "watchdog");
    drop(again);
    drop(wakes);
    via.close().await;
    drop(bouncer);
    t.cleanup().await.expect("cleanup");
}
