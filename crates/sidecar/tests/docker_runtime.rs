//! The Docker runtime against the fake Docker Engine over a unix socket: status, pull,
//! restart, swap and rollback, logs.

use genesis_sidecar::docker::DockerRuntime;
use genesis_sidecar::runtime::ContainerRuntime;
use genesis_sim::docker::{FakeDocker, serve_unix};

#[tokio::test]
async fn swap_and_rollback_through_the_engine_api() {
    let dir =
        std::env::temp_dir().join(format!("genesis-docker-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("docker.sock");
    let engine = FakeDocker::with_container("n8n", "n8nio/n8n:2.8.4");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    tokio::spawn(serve_unix(listener, engine.clone(), std::future::pending()));
    let rt = DockerRuntime::new(&socket, "n8n");

    let s = rt.status().await;
    assert!(s.running && s.pid.is_some());
    assert_eq!(s.image, "n8nio/n8n:2.8.4");
    let pid = rt.restart().await.expect("restart");
    assert!(pid.is_some() && pid != s.pid, "a new process");

    assert!(
        rt.pull("n8nio/n8n:missing").await.is_err(),
        "an error mid-stream fails the pull"
    );
    assert!(
        rt.swap("n8nio/n8n:2.9.0").await.is_err(),
        "an image never pulled cannot run"
    );
    assert_eq!(
        rt.status().await.image,
        "n8nio/n8n:2.8.4",
        "a failed swap leaves the old one"
    );
    assert!(rt.status().await.running);

    rt.pull("n8nio/n8n:2.9.0").await.expect("pull");
    rt.swap("n8nio/n8n:2.9.0").await.expect("swap");
    assert_eq!(rt.status().await.image, "n8nio/n8n:2.9.0");
    let mut c = engine.containers();
    c.sort();
    assert_eq!(
        c,
        vec![
            ("n8n".into(), "n8nio/n8n:2.9.0".into(), true),
            ("n8n-previous".into(), "n8nio/n8n:2.8.4".into(), false),
        ]
    );
    rt.rollback().await.expect("rollback");
    assert_eq!(rt.status().await.image, "n8nio/n8n:2.8.4");
    assert_eq!(
        engine.containers(),
        vec![("n8n".into(), "n8nio/n8n:2.8.4".into(), true)]
    );
    assert!(rt.rollback().await.is_err(), "nothing left to roll back to");

    let logs = rt.logs(10).await;
    assert!(logs.iter().any(|l| l.contains("SIGTERM")), "{logs:?}");
    assert!(logs.last().is_some_and(|l| l.contains("2.8.4")), "{logs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
