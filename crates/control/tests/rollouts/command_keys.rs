//! The command-signing key rotated over 200 droplets with their real sidecars, on a
//! compressed clock (spec 65.1, issue 24): the next key reaches every awake sidecar through
//! heartbeat answers and is accepted everywhere before anything is signed with it; a
//! rotation killed mid-way resumes from the database; droplets that never confirm hold the
//! switch back only until the grace period ends, and are reported; the old key is then
//! refused everywhere, and a droplet that slept through it all takes commands again as soon
//! as it wakes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::PowerAction;
use genesis_control::app::command_keys::{CommandKeyPolicy, CommandKeys};
use genesis_control::clock::Clock;
use genesis_core::WorkspaceId;
use genesis_ignition::SidecarClient;
use genesis_ignition::sidecar_client::CommandError;
use genesis_protocol::{Command, CommandKeyRing, CommandSigner};
use genesis_store::{CommandKeyState, MasterKeys, RegionalStore};

use crate::helpers::{Options, World, world};

const URL: &str = "http://{ip}:8443/sidecar/v1/commands";

/// One tenant's droplet, as the test addresses it.
#[derive(Clone)]
struct Target {
    ws: WorkspaceId,
    provider: i64,
    ip: String,
}

async fn health(client: &SidecarClient, t: &Target) -> Result<(), CommandError> {
    client
        .send(&t.ip, t.ws.as_uuid(), t.provider, &Command::HealthCheck)
        .await
        .map(|_| ())
}

/// Sends a health check signed by `signer` to every target; answers those that refused it.
async fn refusing(signer: Arc<CommandSigner>, targets: &[Target]) -> Vec<i64> {
    let client = SidecarClient::new(signer, URL, Duration::from_secs(10)).expect("client");
    let mut refused = Vec::new();
    for t in targets {
        match health(&client, t).await {
            Ok(()) => {}
            Err(CommandError::Refused { status: 401, .. }) => refused.push(t.provider),
            Err(e) => panic!("droplet {}: {e}", t.provider),
        }
    }
    refused
}

/// Droplets whose latest recorded heartbeat reports trusting `kid`.
async fn reporting(w: &World, kid: &str) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT provider_id FROM genesis.droplets
         WHERE state <> 'TERMINATED' AND last_heartbeat->'command_key_ids' ? $1",
    )
    .bind(kid)
    .fetch_all(w.t.db.owner_pool())
    .await
    .expect("query")
    .into_iter()
    .collect()
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_key_rotation_reaches_200_droplets_survives_a_kill_and_retires_the_old_key() {
    let w = world(Options::default()).await;
    let tenants = w.ignite_many("keys", 200).await;
    let mut targets = Vec::new();
    for ws in &tenants {
        let d = w.t.db.droplet_live_for_workspace(*ws).await.expect("rows")[0].clone();
        targets.push(Target {
            ws: *ws,
            provider: d.provider_id.expect("provider"),
            ip: w
                .t
                .db
                .droplet_public_ipv4(d.id)
                .await
                .expect("ip")
                .expect("an address"),
        });
    }

    // The world's ring: the handshake, heartbeat answers and `w.sidecar` all use it.
    let ring = w.sidecar.keys().clone();
    let old = ring.active();
    let vault = Arc::new(
        MasterKeys::new(1, std::collections::BTreeMap::from([(1, [7u8; 32])])).expect("keys"),
    );
    // 90 days and a week of grace, squeezed: the clock is moved by hand.
    let policy = CommandKeyPolicy {
        every: Duration::from_secs(90 * 86_400),
        grace: Duration::from_secs(7 * 86_400),
    };
    let clock = Clock::manual(chrono::Utc::now());
    let stores = RegionalStore::single(w.t.db.clone());
    let rotation = |ring: Arc<CommandKeyRing>| {
        CommandKeys::new(stores.clone(), vault.clone(), ring, policy, clock.clone())
    };
    let leader = rotation(ring.clone());

    // The first pass stores the configuration's key, so that its age counts; nothing is due.
    let p = leader.step("test").await.expect("step");
    assert_eq!(p.active, old.key_id());
    let p = leader.step("test").await.expect("step");
    assert_eq!((p.began, p.next), (None, None), "a fresh key is not due");
    let stored = w.t.db.command_keys().await.expect("keys");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].kid.as_str(), stored[0].state),
        (old.key_id(), CommandKeyState::Active)
    );
    assert!(
        stored[0]
            .sealed
            .ciphertext
            .windows(32)
            .all(|w| w != old.seed()),
        "the key is stored sealed"
    );

    // Three droplets go quiet before the rotation: two are powered off behind our back (the
    // database still thinks them awake), one hibernates.
    let quiet: Vec<Target> = targets[..3].to_vec();
    let awake: Vec<Target> = targets[3..].to_vec();
    for t in &quiet[..2] {
        w.power(t.provider, PowerAction::PowerOff).await;
    }
    w.hibernate_now(quiet[2].ws).await;

    // 90 days later (and an hour, since the key was stored a little after the clock was
    // read) the key is due: a rotation begins with a fresh key.
    clock.advance(policy.every + Duration::from_secs(3600));
    let p = leader.step("test").await.expect("step");
    let next_kid = p.began.clone().expect("a rotation began");
    assert_ne!(next_kid, old.key_id());
    assert_eq!(p.active, old.key_id(), "the old key still signs");
    let next = ring.next().expect("the ring holds the next key");
    assert_eq!(next.key_id(), next_kid);

    // The control plane is killed mid-pass, again and again; a process that starts afresh
    // knows only the configured key until it reads the stored ring, then holds what the
    // killed one held.
    for delay_ms in [0u64, 1, 3, 7, 15] {
        let r = rotation(ring.clone());
        let pass = tokio::spawn(async move { r.step("test").await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        pass.abort();
        let _ = pass.await;
    }
    let reborn = Arc::new(CommandKeyRing::new(old.clone()));
    let restarted = rotation(reborn.clone());
    restarted.load().await.expect("load");
    assert_eq!(reborn.trusted_ids(), ring.trusted_ids());
    assert_eq!(reborn.active().key_id(), old.key_id());
    let keys = w.t.db.command_keys().await.expect("keys");
    assert_eq!(keys.len(), 2, "one rotation, however often it was killed");

    // Every awake sidecar reports the next key within a few heartbeats; the quiet ones do not.
    let awake_ids: BTreeSet<i64> = awake.iter().map(|t| t.provider).collect();
    eventually(
        "every awake sidecar trusts the next key",
        Duration::from_secs(30),
        || async { reporting(&w, &next_kid).await == awake_ids },
    )
    .await;
    // The new key is accepted everywhere awake before anything is signed with it...
    assert_eq!(refusing(next.clone(), &awake).await, Vec::<i64>::new());
    // ...and so is the old one, which still signs.
    assert_eq!(refusing(old.clone(), &awake).await, Vec::<i64>::new());
    // Two droplets the database thinks awake have not confirmed: the switch waits.
    let p = restarted.step("test").await.expect("step");
    assert_eq!(
        (p.awake_behind, p.asleep_behind, p.switched.as_deref()),
        (2, 1, None),
        "{p:?}"
    );
    assert_eq!(reborn.active().key_id(), old.key_id());
    // God Mode's security page shows the rotation in flight and who it waits for.
    let (http, cookie) = w.god_session().await;
    let page = http
        .get(format!("{}/god/security", w.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains(&next_kid) && page.contains("2 awake, 1 asleep not yet confirmed"),
        "{page}"
    );
    assert!(page.contains("id=\"command-key-behind\""), "{page}");

    // A week later the grace period is over: the rotation switches anyway, and says who
    // never confirmed.
    clock.advance(policy.grace);
    let p = restarted.step("test").await.expect("step");
    assert_eq!(p.switched.as_deref(), Some(next_kid.as_str()), "{p:?}");
    assert_eq!(reborn.active().key_id(), next_kid);
    let keys = w.t.db.command_keys().await.expect("keys");
    let retired = keys.iter().find(|k| k.kid == old.key_id()).expect("old");
    assert_eq!(retired.state, CommandKeyState::Retired);
    let active = keys.iter().find(|k| k.kid == next_kid).expect("new");
    assert_eq!(active.state, CommandKeyState::Active);
    let unconfirmed: BTreeSet<i64> = active
        .unconfirmed
        .as_ref()
        .and_then(|u| u.as_array())
        .expect("a report")
        .iter()
        .filter_map(|l| l["provider_id"].as_i64())
        .collect();
    assert_eq!(
        unconfirmed,
        quiet.iter().map(|t| t.provider).collect::<BTreeSet<_>>()
    );
    let audit =
        w.t.db
            .audit_list(None, Some("COMMAND_KEY_ROTATED"), 10)
            .await
            .expect("audit");
    assert_eq!(audit.len(), 1, "one switch");

    // The serving replica picks the switch up from the database (its ring refresh), then
    // signs with the new key and tells sidecars to drop the old one.
    eventually(
        "the serving ring switched",
        Duration::from_secs(20),
        || async { ring.active().key_id() == next_kid && ring.next().is_none() },
    )
    .await;
    eventually(
        "no awake sidecar trusts the old key",
        Duration::from_secs(30),
        || async { reporting(&w, old.key_id()).await.is_disjoint(&awake_ids) },
    )
    .await;
    assert_eq!(
        refusing(old.clone(), &awake).await.len(),
        awake.len(),
        "the retired key is refused everywhere"
    );
    for t in &awake {
        health(&w.sidecar, t)
            .await
            .unwrap_or_else(|e| panic!("droplet {}: {e}", t.provider));
    }

    // A droplet that slept through the rotation wakes, is told at its first heartbeat, and
    // takes commands signed with the new key from then on.
    let woken = &quiet[0];
    w.power(woken.provider, PowerAction::PowerOn).await;
    eventually(
        "the woken droplet takes the new key",
        Duration::from_secs(40),
        || async { health(&w.sidecar, woken).await.is_ok() },
    )
    .await;
    assert_eq!(
        refusing(old.clone(), std::slice::from_ref(woken)).await,
        vec![woken.provider]
    );
    w.finish().await;
}
