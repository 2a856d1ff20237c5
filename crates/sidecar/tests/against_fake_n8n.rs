//! The sidecar command suite against the fake n8n (the same suite `make test-n8n` runs
//! against a real n8n 2.8.4).

mod suite;

use genesis_sim::n8n::{FakeN8n, FakeN8nConfig, serve};

#[tokio::test]
async fn sidecar_commands_drive_the_fake_n8n() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(serve(
        listener,
        FakeN8n::new(FakeN8nConfig::default()),
        std::future::pending(),
    ));
    let dir = std::env::temp_dir().join(format!("genesis-suite-{}", uuid::Uuid::now_v7().simple()));
    suite::sidecar_commands_drive_n8n(&url, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
