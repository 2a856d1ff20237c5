//! The API commands as an operator's laptop runs them against a real `genesis serve`: only
//! the address and token (or a saved context), lists of every page, slugs for ids, errors
//! written for people (the problem document under `-o json`), and pipes closed early.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use genesis_store::testing::TestDb;

const TOKEN: &str = "cli-test-api-token-0123456789";
const COMMAND_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const VAULT_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const TENANTS: usize = 205;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `genesis` with nothing of the caller's environment but PATH and the variables given:
/// no configuration file, no database, a contexts file of the test's own.
fn genesis(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genesis"));
    cmd.args(args).env_clear();
    if let Ok(p) = std::env::var("PATH") {
        cmd.env("PATH", p);
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::null());
    cmd.output().expect("genesis runs")
}

/// Runs `pipeline` (a shell pipeline whose first command is `genesis`) under bash with
/// pipefail, so that `genesis`'s own exit status decides.
fn piped(pipeline: &str, env: &[(&str, &str)]) -> Output {
    let bin = env!("CARGO_BIN_EXE_genesis");
    let mut cmd = Command::new("bash");
    cmd.args([
        "-o",
        "pipefail",
        "-c",
        &pipeline.replacen("genesis", bin, 1),
    ])
    .env_clear();
    if let Ok(p) = std::env::var("PATH") {
        cmd.env("PATH", p);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("bash runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A server that answers every request with an HTML 404, as a wrong port often does.
async fn not_a_control_plane() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::response::Html("<h1>Not Found</h1>"),
        )
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_commands_need_only_an_address_and_a_token_and_read_like_unix_tools() {
    let t = TestDb::create().await.expect("test database");
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db_url = format!("{}/{}", url.rsplit_once('/').expect("db").0, t.name);
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let set = format!("cli{}", uuid::Uuid::now_v7().simple());
    let exports = std::env::temp_dir().join(format!("{set}-exports"));
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_genesis"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs([
                ("GENESIS_LOG", "warn"),
                ("GENESIS_DATABASE__URL", db_url.as_str()),
                ("GENESIS_REDIS__URL", redis.as_str()),
                ("GENESIS_SERVER__LISTEN", listen.as_str()),
                ("GENESIS_SERVER__API_TOKEN", TOKEN),
                ("GENESIS_SERVER__COMMAND_KEY", COMMAND_KEY),
                ("GENESIS_CLOUD__URL", "http://127.0.0.1:9"),
                ("GENESIS_CLOUD__TOKEN", "unused"),
                ("GENESIS_STANDBY__TOTAL", "0"),
                ("GENESIS_IGNITION__QUEUE_SET", set.as_str()),
                ("GENESIS_VAULT__CURRENT", "1"),
                ("GENESIS_VAULT__KEYS__1", VAULT_KEY),
                (
                    "GENESIS_SERVER__EXPORTS_DIR",
                    exports.to_str().expect("utf-8 path"),
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("genesis serve"),
    );
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "genesis serve never answered");
    let mut ids = Vec::new();
    for i in 0..TENANTS {
        let slug = format!("t_{i:03}");
        let r: serde_json::Value = http
            .post(format!("{base}/api/v1/workspaces"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"name": slug, "slug": slug, "region": "eu-west"}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        ids.push(r["id"].as_str().expect("id").to_owned());
    }

    let dir = tempfile::tempdir().expect("dir");
    let contexts = dir.path().join("contexts.toml");
    let contexts = contexts.to_str().expect("utf-8");
    let api = [
        ("GENESIS_API_URL", base.as_str()),
        ("GENESIS_API_TOKEN", TOKEN),
        ("GENESIS_CONTEXTS", contexts),
    ];

    // No configuration, no database: the address and the token are enough. Every page.
    let o = genesis(&["tenants", "list"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), TENANTS + 1, "a header and every tenant");
    assert!(lines[0].starts_with("SLUG"), "{}", lines[0]);
    assert!(lines[TENANTS].starts_with(&format!("t_{:03}", TENANTS - 1)));
    let o = genesis(&["-o", "json", "tenants", "list"], &api);
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(all["items"].as_array().map(Vec::len), Some(TENANTS));
    assert!(all["next"].is_null(), "{}", all["next"]);

    // A limited list says that more follow, and how to get them, on stderr only.
    let o = genesis(&["tenants", "list", "--limit", "10"], &api);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 11);
    assert!(
        stderr(&o).contains("genesis tenants list --after t_009"),
        "{}",
        stderr(&o)
    );
    let o = genesis(&["-o", "json", "tenants", "list", "--after", "t_009"], &api);
    let rest: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rest["items"][0]["slug"], "t_010");
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(TENANTS - 10));
    // Rollouts are listed in the same shape.
    let o = genesis(&["-o", "json", "rollouts", "list"], &api);
    let rollouts: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(rollouts["items"].is_array(), "{rollouts}");

    // A workspace's own per-tenant limits: set with a reason, shown beside the matrix's,
    // refused without a limit to set, reset.
    let o = genesis(
        &[
            "billing",
            "limits",
            "set",
            "t_001",
            "google_cse",
            "--daily",
            "500",
            "--reason",
            "agency plan",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = genesis(&["billing", "limits", "show", "t_001"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = stdout(&o);
    let cse = table
        .lines()
        .find(|l| l.starts_with("google_cse"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        cse.contains("500") && cse.contains("own: agency plan"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("apify") && l.contains("matrix")),
        "{table}"
    );
    let o = genesis(
        &[
            "billing",
            "limits",
            "set",
            "t_001",
            "google_cse",
            "--reason",
            "x",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--daily"), "{}", stderr(&o));
    let o = genesis(
        &[
            "billing", "limits", "set", "t_001", "nope", "--daily", "1", "--reason", "x",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("metered service \"nope\" not found"),
        "the server's refusal: {}",
        stderr(&o)
    );
    let o = genesis(&["billing", "limits", "reset", "t_001", "google_cse"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = genesis(&["-o", "json", "billing", "limits", "show", "t_001"], &api);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        shown
            .as_array()
            .is_some_and(|l| l.iter().all(|s| s["overridden"] == false)),
        "{shown}"
    );

    // Webhook endpoints: production rules (public https only), the secret printed once.
    let o = genesis(
        &[
            "webhooks",
            "add",
            "t_002",
            "http://127.0.0.1:9/x",
            "--event",
            "lead.created",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("url: must use https"), "{}", stderr(&o));
    let o = genesis(
        &[
            "-o",
            "json",
            "webhooks",
            "add",
            "t_002",
            "https://hooks.example.com/genesis",
            "--event",
            "lead.created,wallet.low",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let created: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let secret = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let o = genesis(&["webhooks", "list", "t_002"], &api);
    let table = stdout(&o);
    assert!(
        table.contains("https://hooks.example.com/genesis")
            && table.contains("lead.created,wallet.low"),
        "{table}"
    );
    assert!(!table.contains(&secret));
    let o = genesis(&["webhooks", "deliveries", "t_002", "--dead"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "a header, no dead letter");
    let o = genesis(
        &[
            "webhooks",
            "replay",
            "t_002",
            &uuid::Uuid::now_v7().to_string(),
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dead-lettered delivery not found"),
        "{}",
        stderr(&o)
    );

    // The vault's master key: what it seals, then a rotation to a new version.
    let with_db = [
        ("GENESIS_DATABASE__URL", db_url.as_str()),
        ("GENESIS_VAULT__CURRENT", "1"),
        ("GENESIS_VAULT__KEYS__1", VAULT_KEY),
    ];
    let o = genesis(&["vault", "status"], &with_db);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.contains("webhook_endpoints") && l.contains("current")),
        "{}",
        stdout(&o)
    );
    let key2 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let rotating = [
        ("GENESIS_DATABASE__URL", db_url.as_str()),
        ("GENESIS_VAULT__CURRENT", "2"),
        ("GENESIS_VAULT__KEYS__1", VAULT_KEY),
        ("GENESIS_VAULT__KEYS__2", key2),
    ];
    let o = genesis(&["vault", "rotate"], &rotating);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Key version(s) 1 can now be removed"),
        "{}",
        stderr(&o)
    );
    let o = genesis(&["-o", "json", "vault", "status"], &rotating);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        status["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(|r| r["key_version"] == 2)),
        "{status}"
    );

    // A closed pipe ends the command quietly: `head` after one line, and a reader that
    // never reads at all (the write fails at once).
    let o = piped("genesis tenants list | head -1", &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("SLUG"), "{}", stdout(&o));
    assert_eq!(stderr(&o), "", "no panic, no complaint");
    let o = piped("genesis -o json tenants list | true", &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");

    // A slug wherever an id goes.
    let by_slug = genesis(&["-o", "json", "tenants", "get", "t_007"], &api);
    let by_id = genesis(&["-o", "json", "tenants", "get", &ids[7]], &api);
    assert_eq!(by_slug.status.code(), Some(0), "{}", stderr(&by_slug));
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&by_slug.stdout).expect("json"),
        serde_json::from_slice(&by_id.stdout).expect("json"),
    );
    assert_eq!(a["id"], b["id"]);
    let o = genesis(&["tenants", "hold", "t_007"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A tenant's deletion: a reason is asked for before anything is sent, and without a
    // terminal to confirm on, --yes; then it starts once, and is called off.
    let o = genesis(&["tenants", "delete", "t_008", "--trigger", "tos"], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--reason"), "{}", stderr(&o));
    let o = genesis(&["tenants", "delete", "t_008", "--trigger", "user"], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    let delete = ["tenants", "delete", "t_008", "--trigger", "user", "--yes"];
    let o = genesis(&delete, &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cancel-deletion t_008"),
        "{}",
        stderr(&o)
    );
    let o = genesis(&delete, &api);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: this workspace is already being deleted"
    );
    let o = genesis(&["tenants", "cancel-deletion", "t_008"], &api);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("called off"), "{}", stderr(&o));
    let o = genesis(&["tenants", "cancel-deletion", "t_008"], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not being deleted"), "{}", stderr(&o));

    // Everything a tenant holds, into one file, with the export's parts listed.
    let file = exports.join("t_007.zip");
    let o = genesis(
        &[
            "-o",
            "json",
            "tenants",
            "export",
            "t_007",
            "--out",
            file.to_str().expect("utf-8 path"),
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(got["parts"].as_array().map(Vec::len), Some(1), "{got}");
    let bytes = std::fs::read(&file).expect("the export");
    assert!(bytes.starts_with(b"PK\x03\x04"), "a ZIP");
    assert_eq!(got["parts"][0]["bytes"].as_u64(), Some(bytes.len() as u64));
    let o = genesis(&["tenants", "export", "t_007", "--out", "/"], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));

    // Errors for people: no status, no parser internals; the status is in `-o json`.
    let o = genesis(
        &[
            "tenants", "create", "--name", "X", "--slug", "aB", "--region", "eu-west",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: slug: 'B' is not allowed: use lowercase letters, digits and '_'"
    );
    let o = genesis(
        &[
            "rollouts",
            "start",
            "--scenario",
            "bug_fix",
            "--scope",
            "region:mars",
        ],
        &api,
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with("error: scope: unknown region \"mars\""),
        "{e}"
    );
    for internal in ["422", "Failed to", "line 1", "column"] {
        assert!(!e.contains(internal), "{internal} in {e}");
    }
    let o = genesis(&["-o", "json", "tenants", "get", "nobody_here"], &api);
    assert_eq!(o.status.code(), Some(2));
    let problem: serde_json::Value = serde_json::from_slice(&o.stdout).expect("problem");
    assert_eq!(problem["status"], 404, "{problem}");
    // A typed id stays inside its path segment: `../workspaces` is no way to another route.
    let o = genesis(&["-o", "json", "rollouts", "status", "../workspaces"], &api);
    let problem: serde_json::Value = serde_json::from_slice(&o.stdout).expect("problem");
    assert_eq!(problem["status"], 422, "{problem}");
    assert_eq!(problem["field"], "id", "{problem}");
    // A fixed value is checked, and listed, before any request.
    let o = genesis(&["rollouts", "start", "--scenario", "yolo"], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bug_fix"), "{}", stderr(&o));
    // Destructive actions ask first; with nobody to ask, they are refused.
    let o = genesis(&["rollouts", "abort", &ids[0]], &api);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));

    // Something that is not a control plane is called that; nothing listening too.
    let other = not_a_control_plane().await;
    let wrong = [("GENESIS_API_URL", other.as_str()), api[1], api[2]];
    let o = genesis(&["tenants", "list"], &wrong);
    assert!(
        stderr(&o).contains("does not answer like a Genesis control plane"),
        "{}",
        stderr(&o)
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    let o = genesis(
        &["tenants", "list"],
        &[("GENESIS_API_URL", closed.as_str()), api[1], api[2]],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot reach the control plane"));
    // A broken contexts file does not stop a command that names its control plane.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "current = [").expect("write");
    let o = genesis(
        &["tenants", "list", "--limit", "1"],
        &[
            api[0],
            api[1],
            ("GENESIS_CONTEXTS", broken.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Nothing configured at all: say what to do.
    let o = genesis(&["tenants", "list"], &[api[2]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("genesis auth login"), "{}", stderr(&o));

    // A saved context: log in once (the address is checked, the token too), then nothing.
    let o = piped(
        &format!("echo wrong-token | genesis auth login --api-url {base} --token-stdin"),
        &[api[2]],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("refused this API token"),
        "{}",
        stderr(&o)
    );
    let o = piped(
        &format!("echo wrong-token | genesis auth login --api-url {other} --token-stdin"),
        &[api[2]],
    );
    assert!(stderr(&o).contains("does not answer like a Genesis control plane"));
    let o = piped(
        &format!("echo {TOKEN} | genesis auth login --api-url {base} --name test --token-stdin"),
        &[api[2]],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = genesis(
        &["-o", "json", "tenants", "list", "--limit", "1"],
        &[api[2]],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = genesis(&["context", "list"], &[api[2]]);
    assert!(stdout(&o).contains("*  test"), "{}", stdout(&o));
    let o = genesis(&["auth", "logout"], &[api[2]]);
    assert_eq!(o.status.code(), Some(0));
    let o = genesis(&["tenants", "list"], &[api[2]]);
    assert_eq!(o.status.code(), Some(2), "logged out");

    let _ = std::fs::remove_dir_all(&exports);
    t.cleanup().await.expect("cleanup");
}
