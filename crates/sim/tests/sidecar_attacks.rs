//! The attacks of issue 18 (finding 3), each against a simulated droplet running the real
//! sidecar, over HTTP, from another address than the control plane's:
//! - a flood of unsigned commands must not silence the droplet's heartbeats (they once grew
//!   with every refusal until the control plane refused them, and the droplet was declared a
//!   zombie and rebooted);
//! - a token used before a restart must stay spent after it;
//! - a genuine token must not carry another body than the one it was signed for.
//!
//! The handshake's attestation is the control plane's, and is tested there
//! (`crates/control/tests/ignition`).

mod standin;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use genesis_cloud::{Cloud, PowerAction};
use genesis_protocol::{Command, RefusalReason};
use standin::{World, send, send_bytes, wait_for};

/// An HTTP client whose requests leave from `ip` (another machine than the control plane).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unsigned_commands_does_not_silence_the_droplet() {
    let w = World::boot().await;
    let url = w.command_url();
    let attacker = client_from(Ipv4Addr::new(127, 99, 0, 7));
    // About what pushed heartbeats past 2 MiB at the default interval: 36,000 unsigned
    // POSTs in a few seconds.
    const FLOOD: usize = 36_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (http, url, sent, limited) =
            (attacker.clone(), url.clone(), sent.clone(), limited.clone());
        tasks.push(tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::Relaxed) < FLOOD {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(r#"{"action":"HEALTH_CHECK"}"#)
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status() == 429
                {
                    limited.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("flood task");
    }
    assert!(
        limited.load(Ordering::Relaxed) > FLOOD / 2,
        "one source is held to its quota before any token is read ({} of {FLOOD} were 429)",
        limited.load(Ordering::Relaxed)
    );
    // The droplet keeps reporting, in heartbeats of bounded size that count every refusal.
    let before = w.heartbeats();
    wait_for("two heartbeats after the flood", || {
        w.heartbeats() >= before + 2
    })
    .await;
    {
        let seen = w.dashboard.seen.lock().expect("lock");
        assert_eq!(
            seen.oversized, 0,
            "no heartbeat was too large to be accepted"
        );
        let counted: u64 = seen
            .heartbeats
            .iter()
            .flat_map(|h| h.refusal_counts.values())
            .sum();
        assert!(
            counted >= FLOOD as u64,
            "every refusal is counted ({counted} of {FLOOD})"
        );
        assert!(
            seen.heartbeats
                .iter()
                .all(|h| h.refused_commands.len() <= genesis_sidecar::guard::REPORTED_REFUSALS)
        );
        let rate_limited: u64 = seen
            .heartbeats
            .iter()
            .filter_map(|h| h.refusal_counts.get(&RefusalReason::RateLimited))
            .sum();
        assert!(rate_limited > 0);
    }
    // The control plane, from its own address, is not held up by the attacker's quota.
    let (status, body) = send(
        &reqwest::Client::new(),
        &url,
        &w.token(&Command::HealthCheck),
        &Command::HealthCheck,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_before_a_restart_stays_spent_after_it() {
    let w = World::boot().await;
    let url = w.command_url();
    let http = reqwest::Client::new();
    let once = w.token(&Command::HealthCheck);
    assert_eq!(send(&http, &url, &once, &Command::HealthCheck).await.0, 200);
    let (status, body) = send(&http, &url, &once, &Command::HealthCheck).await;
    assert_eq!((status, body["refused"].as_str()), (403, Some("replayed")));

    // Reboot: the sidecar process starts afresh with an empty memory.
    let before = w.heartbeats();
    let reboot = w
        .cloud
        .droplet_action(w.droplet.id, PowerAction::Reboot)
        .await
        .expect("reboot");
    w.cloud
        .action_wait(reboot.id, Duration::from_secs(5))
        .await
        .expect("rebooted");
    wait_for("heartbeats after the reboot", || {
        w.heartbeats() > before + 1
    })
    .await;
    let (status, body) = send(&http, &url, &once, &Command::HealthCheck).await;
    assert_eq!(
        (status, body["refused"].as_str()),
        (403, Some("replayed")),
        "the token is still spent: {body}"
    );
    // A fresh token works.
    let (status, _) = send(
        &http,
        &url,
        &w.token(&Command::HealthCheck),
        &Command::HealthCheck,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_carry_another_body() {
    let w = World::boot().await;
    let url = w.command_url();
    let http = reqwest::Client::new();
    let n8n = w.hook.n8n(w.droplet.id).expect("the droplet's n8n");
    let keep = n8n.chaos_add_workflow("Keep me", false);
    let victim = n8n.chaos_add_workflow("Delete me", false);
    let signed = Command::DeleteWorkflow {
        workflow_id: victim.clone(),
    };
    let token = w.token(&signed);
    // The same token, with another workflow's id in the body.
    for other in [
        Command::DeleteWorkflow {
            workflow_id: keep.clone(),
        },
        Command::DeactivateWorkflow {
            workflow_id: keep.clone(),
        },
    ] {
        let (status, body) = send(&http, &url, &token, &other).await;
        assert_eq!(status, 403, "{body}");
        let expected = if other.name() == signed.name() {
            "body_mismatch"
        } else {
            "wrong_action"
        };
        assert_eq!(body["refused"], expected);
    }
    // The signed bytes with one space more are other bytes.
    let mut padded = serde_json::to_vec(&signed).expect("json");
    padded.push(b' ');
    let (status, body) = send_bytes(&http, &url, &token, padded).await;
    assert_eq!(
        (status, body["refused"].as_str()),
        (403, Some("body_mismatch"))
    );
    assert!(
        n8n.workflow_summary().iter().any(|(id, _, _)| *id == keep),
        "the workflow the token was not for is still there"
    );
    // The token does what it was signed for.
    let (status, body) = send(&http, &url, &token, &signed).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !n8n.workflow_summary()
            .iter()
            .any(|(id, _, _)| *id == victim)
    );
}
