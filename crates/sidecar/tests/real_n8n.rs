//! The sidecar command suite against a real n8n 2.8.4: `make test-n8n` installs and starts
//! one and runs this with `GENESIS_REAL_N8N_URL` set. Not part of `make test` (it needs an
//! npm install of n8n, minutes and a gigabyte).

mod suite;

#[tokio::test]
#[ignore = "needs a real n8n: run `make test-n8n`"]
async fn sidecar_commands_drive_a_real_n8n() {
    let url = std::env::var("GENESIS_REAL_N8N_URL")
        .expect("GENESIS_REAL_N8N_URL (make test-n8n sets it)");
    let dir = std::env::temp_dir().join(format!(
        "genesis-real-n8n-{}",
        uuid::Uuid::now_v7().simple()
    ));
    suite::sidecar_commands_drive_n8n(&url, &dir, None).await;
    let _ = std::fs::remove_dir_all(&dir);
}
