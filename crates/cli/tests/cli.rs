//! The `genesis` binary as a user runs it: exit codes and messages.

use std::process::{Command, Output};

fn genesis(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genesis"));
    cmd.args(args)
        .env_remove("GENESIS_DATABASE__URL")
        .env_remove("GENESIS_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("genesis runs")
}

/// A fresh migrated database and the URL `genesis` reaches it at.
async fn test_database() -> (genesis_store::testing::TestDb, String) {
    let t = genesis_store::testing::TestDb::create()
        .await
        .expect("test database");
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db_url = format!(
        "{}/{}",
        url.rsplit_once('/').expect("url with a database").0,
        t.name
    );
    (t, db_url)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn config_check_lists_every_problem_and_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("genesis.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"nope\"\n[database]\nurl = \"postgres://u@h/d\"\npooler = \"x\"\n",
    )
    .expect("write");
    let o = genesis(
        &["--config", file.to_str().expect("utf8"), "config", "check"],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("server.listen") && out.contains("database.pooler"),
        "{out}"
    );

    let o = genesis(
        &["config", "check"],
        &[("GENESIS_DATABASE__URL", "postgres://u@127.0.0.1/db")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = genesis(&["config", "check"], &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "missing database.url: {}",
        text(&o)
    );
    assert!(text(&o).contains("database.url"));
}

#[test]
fn bad_arguments_name_the_flag_and_exit_2_before_any_sql() {
    // An unreachable database: parsing must fail first.
    let env = [(
        "GENESIS_DATABASE__URL",
        "postgres://nobody@127.0.0.1:1/none",
    )];
    for (slug, region) in [
        ("A", "eu-west"),
        ("a;drop table x", "eu-west"),
        ("ok", "mars"),
    ] {
        let o = genesis(
            &[
                "admin", "tenants", "create", "--name", "X", "--slug", slug, "--region", region,
            ],
            &env,
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let flag = if region == "mars" {
            "--region"
        } else {
            "--slug"
        };
        assert!(text(&o).contains(flag), "{}", text(&o));
    }
}

#[tokio::test]
async fn create_get_duplicate_and_db_check_against_a_real_database() {
    let (t, db_url) = test_database().await;
    let env = [("GENESIS_DATABASE__URL", db_url.as_str())];
    let args = [
        "admin", "tenants", "create", "--name", "Acme", "--slug", "acme", "--region", "eu-west",
    ];
    let o = genesis(&args, &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = genesis(&["-o", "json", "admin", "tenants", "get", "acme"], &env);
    let ws: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(ws["region"], "eu-west");
    let o = genesis(&args, &env);
    assert_eq!(o.status.code(), Some(2), "duplicate slug: {}", text(&o));

    let o = genesis(&["-o", "json", "db", "check"], &env);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let required_off = rows
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["level"] == "required" && r["ok"] == false);
    assert_eq!(
        o.status.code(),
        Some(if required_off { 3 } else { 0 }),
        "{}",
        text(&o)
    );
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .any(|r| r["setting"] == "plan_cache_mode (as genesis_app)" && r["ok"] == true)
    );
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn audit_verify_passes_a_sealed_log_and_names_a_row_changed_by_hand() {
    let (t, db_url) = test_database().await;
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = [
        ("GENESIS_DATABASE__URL", db_url.as_str()),
        ("GENESIS_SERVER__AUDIT_KEY", key),
    ];
    // Without the key, nothing can be checked: a usage error that says which setting.
    let o = genesis(&["audit", "verify"], &env[..1]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("server.audit_key"), "{}", text(&o));
    let o = genesis(&["audit", "verify", "--region", "mars"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    let args = [
        "admin", "tenants", "create", "--name", "Acme", "--slug", "acme", "--region", "eu-west",
    ];
    assert_eq!(genesis(&args, &env).status.code(), Some(0));
    let o = genesis(&["-o", "json", "audit", "seal"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sealed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(sealed[0]["sealed"].as_u64().expect("count") > 0, "{sealed}");
    let o = genesis(&["audit", "verify"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("intact"), "{}", text(&o));

    let changed: i64 = sqlx::query_scalar(
        "UPDATE genesis.audit_log SET actor = 'operator:eve'
         WHERE chain_seq = 1 RETURNING id",
    )
    .fetch_one(t.db.owner_pool())
    .await
    .expect("tamper");
    let o = genesis(&["audit", "verify", "--region", "eu-west"], &env);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("row {changed} (place 1)")),
        "{}",
        text(&o)
    );
    t.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn dr_failover_names_bad_datacenters_and_a_dry_run_writes_nothing() {
    let (t, db_url) = test_database().await;
    let env = [("GENESIS_DATABASE__URL", db_url.as_str())];
    let o = genesis(&["dr", "failover", "--region", "ams3"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("ams3 is not a datacenter the platform uses (one of: nyc3"),
        "{}",
        text(&o)
    );
    let o = genesis(
        &["dr", "failover", "--region", "fra1", "--to", "fra1"],
        &env,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("failed region itself"), "{}", text(&o));

    let o = genesis(
        &[
            "-o",
            "json",
            "dr",
            "failover",
            "--region",
            "fra1",
            "--dry-run",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(plan["to"], "lon1", "spec 66.3's backup of fra1");
    assert_eq!(plan["restore"], 0);
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM genesis.failovers")
        .fetch_one(t.db.owner_pool())
        .await
        .expect("count");
    assert_eq!(open, 0, "a dry run declares nothing");
    let o = genesis(&["dr", "cleanup", "--region", "fra1"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no failover out of fra1 is open"),
        "{}",
        text(&o)
    );
    let o = genesis(&["dr", "failback", "--region", "fra1"], &env);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no failover out of fra1 to fail back"),
        "{}",
        text(&o)
    );
    t.cleanup().await.expect("cleanup");
}
