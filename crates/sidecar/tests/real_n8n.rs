//! The sidecar command suite against a real n8n 2.8.4, the same steps the fake n8n is held
//! to (`against_fake_n8n.rs`): where the two differ, one of these fails. The test starts its
//! own n8n from the install `scripts/n8n-install.sh` caches (`GENESIS_N8N_HOME`, which
//! `make test` sets), on a free loopback port, and stops it, with its task runners, at the
//! end.

mod suite;

use std::time::Duration;

use genesis_sidecar::runtime::{ContainerRuntime, ProcessRuntime, ProcessSpec};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn sidecar_commands_drive_a_real_n8n() {
    let home = std::env::var_os("GENESIS_N8N_HOME").unwrap_or_else(|| {
        panic!(
            "GENESIS_N8N_HOME is not set: run `make test`, or export \
             GENESIS_N8N_HOME=$(scripts/n8n-install.sh)"
        )
    });
    let program = std::path::Path::new(&home).join("node_modules/.bin/n8n");
    let dir = std::env::temp_dir().join(format!(
        "genesis-real-n8n-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(dir.join("n8n")).expect("dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = [
        ("N8N_USER_FOLDER", dir.join("n8n").display().to_string()),
        ("N8N_PORT", port.to_string()),
        ("N8N_LISTEN_ADDRESS", "127.0.0.1".into()),
        ("N8N_HOST", "127.0.0.1".into()),
        ("N8N_PROTOCOL", "http".into()),
        ("WEBHOOK_URL", format!("{url}/")),
        ("N8N_RUNNERS_BROKER_PORT", free_port().to_string()),
        ("N8N_DIAGNOSTICS_ENABLED", "false".into()),
        ("N8N_VERSION_NOTIFICATIONS_ENABLED", "false".into()),
        ("N8N_DYNAMIC_BANNERS_ENABLED", "false".into()),
        ("N8N_PERSONALIZATION_ENABLED", "false".into()),
        ("N8N_SECURE_COOKIE", "false".into()),
    ];
    let n8n = ProcessRuntime::start(ProcessSpec {
        program: program.display().to_string(),
        args: vec!["start".into()],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        pull: None,
        image: genesis_n8n::N8N_VERSION.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let run = tokio::time::timeout(
        Duration::from_secs(300),
        suite::sidecar_commands_drive_n8n(&url, &dir.join("state"), None),
    )
    .await;
    if run.is_err() {
        eprintln!("n8n's last lines:\n{}", n8n.logs(40).await.join("\n"));
    }
    n8n.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    run.expect("the suite finished within 5 minutes");
}
