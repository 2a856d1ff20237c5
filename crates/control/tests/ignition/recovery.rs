//! Idempotency and crash safety (HOUSE_STYLE: Omicron's two saga helpers): every action and
//! every undo action run twice changes nothing the second time; a control plane that dies
//! between an action and its record resumes on restart without duplicating anything.

use std::time::Duration;

use genesis_core::{IgnitionStep, Region, WorkspaceId};
use genesis_ignition::{Act, StepError};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Options, Residue, World, credentials, n8n_counts, world};

/// Runs `step`'s action until it completes (waiting as it asks), recording nothing.
async fn run_to_done(w: &World, id: Uuid, step: IgnitionStep) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match w
            .igniter
            .run_action_once(Region::EuWest, id, step)
            .await
            .expect("store")
        {
            Ok(Act::Done(out)) => return out,
            Ok(Act::Wait(d)) => tokio::time::sleep(d).await,
            Err(StepError::Transient(e)) => {
                tracing::info!(%step, error = %e, "transient");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(StepError::Fail(e)) => panic!("{step} failed: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{step} never completed"
        );
    }
}

async fn record(w: &World, id: Uuid, out: &Value) {
    let ig = w.t.db.ignition_get(id).await.expect("saga");
    w.t.db
        .ignition_step_done(&ig, out, "test")
        .await
        .expect("record");
}

async fn started(w: &World, slug: &str) -> (WorkspaceId, Uuid) {
    let ws = w.create_workspace(slug).await;
    let (status, ig) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202, "{ig}");
    let id = Uuid::parse_str(ig["id"].as_str().expect("id")).expect("uuid");
    (ws, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_action_and_every_undo_run_twice_changes_nothing_the_second_time() {
    let w = world(Options {
        worker: false,
        ..Options::default()
    })
    .await;
    let (ws, id) = started(&w, "twice").await;
    for step in IgnitionStep::ALL {
        let first = run_to_done(&w, id, step).await;
        let second = run_to_done(&w, id, step).await;
        match step {
            // The second run finds the partition the first made.
            IgnitionStep::PartitionCreating => {
                assert_eq!(first["partition"], "Created");
                assert_eq!(second["partition"], "Existing");
            }
            // Same droplet, same credential ids, same workflow ids.
            _ => assert_eq!(first, second, "{step} is not idempotent"),
        }
        record(&w, id, &second).await;
    }
    let ig = w.t.db.ignition_get(id).await.expect("saga");
    assert_eq!(ig.phase, genesis_core::SagaPhase::Done);
    let provider = ig
        .output(IgnitionStep::DropletProvisioning)
        .expect("droplet")["provider_id"]
        .as_i64()
        .expect("provider id");
    assert_eq!(n8n_counts(&w, provider), (4, 3, 3));
    assert_eq!(w.residue(ws).await, Residue::IGNITED);

    // Undo, each twice, in reverse: the second run finds nothing left to do.
    for step in IgnitionStep::ALL.into_iter().rev() {
        for run in 0..2 {
            w.igniter
                .run_undo_once(Region::EuWest, id, step)
                .await
                .expect("store")
                .unwrap_or_else(|e| panic!("undo of {step} (run {run}) failed: {e}"));
        }
    }
    assert_eq!(w.residue(ws).await, Residue::default());
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_any_action_and_its_record_resumes_without_duplicates() {
    let mut w = world(Options {
        worker: false,
        ..Options::default()
    })
    .await;
    let mut sagas = Vec::new();
    for (i, crash_at) in IgnitionStep::ALL.into_iter().enumerate() {
        let (ws, id) = started(&w, &format!("crash_{i}")).await;
        for step in IgnitionStep::ALL {
            let out = run_to_done(&w, id, step).await;
            if step == crash_at {
                // The action's effects happened; its record did not: the process died here.
                break;
            }
            record(&w, id, &out).await;
        }
        let ig = w.t.db.ignition_get(id).await.expect("saga");
        assert_eq!(ig.step, Some(crash_at));
        sagas.push((ws, id));
    }
    // The restarted control plane: recovery queues every unfinished saga; the worker resumes.
    let resumed = w.igniter.recover().await.expect("recover");
    assert_eq!(resumed, sagas.len());
    w.start_worker();
    for (ws, id) in &sagas {
        let got = w.wait_finished(*ws, Duration::from_secs(60)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
        let ig = w.t.db.ignition_get(*id).await.expect("saga");
        let provider = ig
            .output(IgnitionStep::DropletProvisioning)
            .expect("droplet")["provider_id"]
            .as_i64()
            .expect("provider id");
        assert_eq!(n8n_counts(&w, provider), (4, 3, 3), "saga {id}");
        assert_eq!(w.residue(*ws).await.cloud_droplets, 1, "saga {id}");
    }
    // Recovery again, with nothing unfinished, does nothing.
    assert_eq!(w.igniter.recover().await.expect("recover"), 0);
    w.kill_worker().await;
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reaper_deletes_droplets_no_workspace_owns_and_keeps_the_rest() {
    use genesis_cloud::{Cloud, CreateDroplet, ImageRef};
    let w = world(Options::default()).await;
    let ws = w.create_workspace("owner").await;
    w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    let got = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(got["ignition"]["phase"], "DONE");
    let stray = |tag: String, name: &str| CreateDroplet {
        name: name.into(),
        region: "fra1".into(),
        size: "s-1vcpu-1gb".into(),
        image: ImageRef::Slug("ubuntu-22-04-x64".into()),
        user_data: None,
        tags: vec!["genesis".into(), tag],
        ssh_keys: vec![],
        vpc_uuid: None,
    };
    // A droplet for a workspace that does not exist, and a second one for a live workspace
    // that the database does not know (a create whose outcome was lost).
    let ghost = WorkspaceId::new();
    let (a, _) = w
        .cloud
        .droplet_create(&stray(format!("ws-{}", ghost.as_uuid()), "ghost"))
        .await
        .expect("create");
    let (b, _) = w
        .cloud
        .droplet_create(&stray(format!("ws-{}", ws.as_uuid()), "lost-create"))
        .await
        .expect("create");
    let report = w.igniter.reap_orphans().await.expect("reap");
    let mut deleted = report.deleted.clone();
    deleted.sort_unstable();
    let mut want = vec![a.id, b.id];
    want.sort_unstable();
    assert_eq!(deleted, want);
    assert_eq!(report.examined, 3);
    assert_eq!(
        w.cloud_droplets(ws).await,
        1,
        "the tenant's own droplet stays"
    );
    let audited =
        w.t.db
            .audit_list(None, Some("ORPHAN_DROPLET_REAPED"), 10)
            .await
            .expect("audit");
    assert_eq!(audited.len(), 2);
    // A second pass finds nothing more.
    assert!(
        w.igniter
            .reap_orphans()
            .await
            .expect("reap")
            .deleted
            .is_empty()
    );
    w.finish().await;
}
