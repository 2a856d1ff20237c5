//! Virtual droplets boot through the boot hook from their cloud-init, answer on their own
//! metadata endpoint, and fail in the ways the fault injector is told to.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, create_active, create_req};
use genesis_cloud::{Cloud, CloudError, DropletStatus, PowerAction};
use genesis_sim::digitalocean::{
    BootContext, Faults, HaltReason, HookEvent, RecordingHook, SimConfig, Simulator, Span, Timings,
};

const WAIT: Duration = Duration::from_secs(5);

fn hooked(hook: &Arc<RecordingHook>) -> Simulator {
    Simulator::new(SimConfig {
        timings: Timings {
            boot: Span::fixed(Duration::from_millis(20)),
            ..Timings::INSTANT
        },
        ..SimConfig::default()
    })
    .with_boot_hook(hook.clone())
}

fn boots_of(events: &[HookEvent], id: i64) -> Vec<BootContext> {
    events
        .iter()
        .filter_map(|e| match e {
            HookEvent::Booted(c) if c.droplet_id == id => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn halts_of(events: &[HookEvent], id: i64) -> Vec<HaltReason> {
    events
        .iter()
        .filter_map(|e| match e {
            HookEvent::Halted { droplet_id, reason } if *droplet_id == id => Some(*reason),
            _ => None,
        })
        .collect()
}

const USER_DATA: &str = "#cloud-config\nwrite_files:\n  - path: /opt/genesis/.env\n    permissions: '0600'\n    content: |\n      GENESIS_WORKSPACE_ID=7d1c1c1e-0000-4000-8000-000000000001\n      GENESIS_REGION=eu-west\nruncmd:\n  - [docker, compose, up, -d]\n";

async fn metadata(ctx: &BootContext, from: IpAddr, field: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .expect("client");
    let url = format!(
        "{}/metadata/v1/{field}",
        ctx.metadata_url.as_deref().expect("metadata served")
    );
    let r = client.get(url).send().await.expect("metadata");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test]
async fn a_droplet_boots_from_its_cloud_init_and_knows_itself() {
    let hook = RecordingHook::new();
    let h = Harness::serve(hooked(&hook)).await;
    let c = h.client();
    let mut req = create_req("boot-me", "boot");
    req.user_data = Some(USER_DATA.into());
    let d = create_active(&c, &req).await;
    assert!(
        hook.wait_until(WAIT, |e| boots_of(e, d.id).len() == 1)
            .await
    );
    let ctx = boots_of(&hook.events(), d.id).remove(0);
    let d = c.droplet_get(d.id).await.expect("get");
    assert_eq!(Some(ctx.public_ipv4.to_string().as_str()), d.public_ipv4());
    assert_eq!(ctx.region, "fra1");
    let env = ctx
        .cloud_config
        .env_file("/opt/genesis/.env")
        .expect("the env file cloud-init writes");
    assert_eq!(
        env.get("GENESIS_WORKSPACE_ID").map(String::as_str),
        Some("7d1c1c1e-0000-4000-8000-000000000001")
    );

    // The metadata service answers the droplet, recognised by its own address.
    let me = IpAddr::V4(ctx.public_ipv4);
    assert_eq!(metadata(&ctx, me, "id").await, (200, d.id.to_string()));
    assert_eq!(metadata(&ctx, me, "region").await, (200, "fra1".into()));
    assert_eq!(
        metadata(&ctx, me, "user-data").await,
        (200, USER_DATA.into())
    );
    let (status, _) = metadata(&ctx, "127.0.0.1".parse().expect("ip"), "id").await;
    assert_eq!(status, 404, "the host is not a droplet");

    // Power transitions reach the hook: off halts, on boots again, reboot does both.
    for (act, halts, boots) in [
        (PowerAction::PowerOff, 1, 1),
        (PowerAction::PowerOn, 1, 2),
        (PowerAction::Reboot, 2, 3),
    ] {
        let a = c.droplet_action(d.id, act).await.expect("action");
        c.action_wait(a.id, WAIT).await.expect("done");
        assert!(
            hook.wait_until(WAIT, |e| halts_of(e, d.id).len() == halts
                && boots_of(e, d.id).len() == boots)
                .await,
            "{act:?}: {:?}",
            hook.events()
        );
    }
    assert_eq!(
        halts_of(&hook.events(), d.id),
        vec![HaltReason::PowerOff, HaltReason::Restart]
    );
    let gens: Vec<u64> = boots_of(&hook.events(), d.id)
        .iter()
        .map(|b| b.generation)
        .collect();
    assert!(gens.windows(2).all(|w| w[0] < w[1]), "{gens:?}");

    c.droplet_delete(d.id).await.expect("delete");
    assert!(
        hook.wait_until(WAIT, |e| halts_of(e, d.id).last()
            == Some(&HaltReason::Deleted))
            .await
    );
    assert_eq!(h.stats().await.boots, 3);
    h.assert_contract_kept();
}

#[tokio::test]
async fn droplets_that_never_boot_go_dark_or_carry_broken_cloud_init() {
    let hook = RecordingHook::new();
    let h = Harness::serve(hooked(&hook)).await;
    let c = h.client();

    h.set_faults(&Faults {
        never_boot_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let silent = create_active(&c, &create_req("silent", "f1")).await;

    h.set_faults(&Faults {
        dark_rate: 1.0,
        dark_after_ms: 50,
        ..Faults::default()
    })
    .await;
    let doomed = create_active(&c, &create_req("doomed", "f2")).await;
    assert!(
        hook.wait_until(WAIT, |e| halts_of(e, doomed.id) == vec![HaltReason::Dark])
            .await
    );
    assert_eq!(boots_of(&hook.events(), doomed.id).len(), 1);
    assert_eq!(
        c.droplet_get(doomed.id).await.expect("get").status,
        DropletStatus::Active,
        "a dark droplet still looks fine to the API: a zombie"
    );
    // A power cycle brings it back for good.
    h.set_faults(&Faults::default()).await;
    let a = c
        .droplet_action(doomed.id, PowerAction::PowerCycle)
        .await
        .expect("cycle");
    c.action_wait(a.id, WAIT).await.expect("cycled");
    assert!(
        hook.wait_until(WAIT, |e| boots_of(e, doomed.id).len() == 2)
            .await
    );

    let mut broken = create_req("broken", "f3");
    broken.user_data = Some("#!/bin/bash\necho not cloud-config".into());
    let broken = create_active(&c, &broken).await;

    // The admin API darkens one droplet on demand.
    let target = create_active(&c, &create_req("target", "f4")).await;
    assert!(
        hook.wait_until(WAIT, |e| boots_of(e, target.id).len() == 1)
            .await
    );
    let r = reqwest::Client::new()
        .post(format!("{}/sim/v1/droplets/{}/go-dark", h.base, target.id))
        .send()
        .await
        .expect("go dark");
    assert_eq!(r.status(), 204);
    assert!(
        hook.wait_until(WAIT, |e| halts_of(e, target.id) == vec![HaltReason::Dark])
            .await
    );

    // Give the silent and broken droplets time to have booted, had they been able to.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = hook.events();
    assert!(boots_of(&events, silent.id).is_empty());
    assert!(boots_of(&events, broken.id).is_empty());
    let s = h.stats().await;
    assert_eq!(
        (s.never_booted, s.cloud_init_failed, s.went_dark),
        (1, 1, 2),
        "{s:?}"
    );
    assert_eq!(
        halts_of(&hook.events(), doomed.id),
        vec![HaltReason::Dark, HaltReason::Restart],
        "it went dark once only"
    );
    h.assert_contract_kept();
}

#[tokio::test]
async fn slow_and_errored_actions_and_failing_endpoints() {
    let h = Harness::start(SimConfig::default()).await;
    let c = h.client();
    let d = create_active(&c, &create_req("slowpoke", "s1")).await;

    h.set_faults(&Faults {
        slow_action_rate: 1.0,
        slow_action_ms: 400,
        ..Faults::default()
    })
    .await;
    let slow = c
        .droplet_action(d.id, PowerAction::PowerOff)
        .await
        .expect("power off");
    assert!(matches!(
        c.action_wait(slow.id, Duration::from_millis(50)).await,
        Err(CloudError::ActionDeadline { .. })
    ));
    c.action_wait(slow.id, WAIT)
        .await
        .expect("a slow action still completes");

    h.set_faults(&Faults {
        action_error_rate: 1.0,
        endpoint_error_rates: [("GET /v2/regions".to_string(), 1.0)].into(),
        ..Faults::default()
    })
    .await;
    let doomed = c
        .droplet_action(d.id, PowerAction::PowerOn)
        .await
        .expect("power on");
    assert!(matches!(
        c.action_wait(doomed.id, WAIT).await,
        Err(CloudError::ActionErrored { .. })
    ));
    assert_eq!(
        c.droplet_get(d.id).await.expect("get").status,
        DropletStatus::Off,
        "an errored action changes nothing"
    );
    assert!(matches!(
        c.regions().await,
        Err(CloudError::Unavailable { status: 500, .. })
    ));
    c.sizes().await.expect("other endpoints are unaffected");
    h.assert_contract_kept();
}

#[tokio::test]
async fn state_saved_on_shutdown_is_there_after_a_restart() {
    let first = Harness::start(SimConfig::default()).await;
    let c = first.client();
    let mut ids = Vec::new();
    for i in 0..3 {
        let d = create_active(&c, &create_req(&format!("keep-{i}"), "keep")).await;
        ids.push(d.id);
    }
    let snap = c.droplet_snapshot(ids[0], "kept").await.expect("snapshot");
    c.action_wait(snap.id, WAIT).await.expect("snapshot done");
    let before = c.droplet_list_by_tag("ws-keep").await.expect("list");

    let path = std::env::temp_dir().join(format!(
        "genesis-sim-state-{}-{}.json",
        std::process::id(),
        ids[0]
    ));
    first.sim.save(&path).expect("save");
    let second =
        Harness::serve(Simulator::restore(SimConfig::default(), &path).expect("restore")).await;
    let _ = std::fs::remove_file(&path);
    let c2 = second.client();
    let after = c2.droplet_list_by_tag("ws-keep").await.expect("list");
    assert_eq!(after, before, "same droplets, statuses and addresses");
    assert_eq!(c2.snapshot_list().await.expect("snapshots").len(), 1);

    let (fresh, _) = c2
        .droplet_create(&create_req("fresh", "fresh"))
        .await
        .expect("create after restore");
    assert!(!ids.contains(&fresh.id), "ids do not repeat");
    assert!(
        before
            .iter()
            .all(|d| d.public_ipv4() != fresh.public_ipv4()),
        "addresses do not repeat"
    );
    assert!(
        Simulator::restore(
            SimConfig::default(),
            std::path::Path::new("/nonexistent/x.json")
        )
        .is_err()
    );
    second.assert_contract_kept();
}
