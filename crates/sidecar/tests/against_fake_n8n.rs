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
    let n8n = FakeN8n::new(FakeN8nConfig::default());
    tokio::spawn(serve(listener, n8n.clone(), std::future::pending()));
    let dir = std::env::temp_dir().join(format!("genesis-suite-{}", uuid::Uuid::now_v7().simple()));
    let delete_tag = |name: &str| assert!(n8n.chaos_delete_tag(name), "no tag {name}");
    suite::sidecar_commands_drive_n8n(&url, &dir, Some(&delete_tag)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
