//! Template rollouts end to end (spec 56.3): 200 virtual droplets with their real sidecars
//! and fake n8n, updated batch by batch through signed commands. Injected per-droplet failure
//! rates of 2 %, 5 % and 12 % make the rollout continue, pause, and abort, exactly as spec
//! 56.3 describes; a resume continues where the pause stopped; no droplet is updated twice.
//! The same fleet also carries the command-key rotation ([`command_keys`]).

#[path = "../ignition/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the ignition tests; not every helper is used here"
)]
mod helpers;

mod command_keys;

use std::collections::BTreeMap;
use std::time::Duration;

use genesis_control::workers::reconciler::Reconciler as _;
use genesis_control::workers::rollouts::RolloutConductor;
use genesis_core::{DropletId, WorkspaceId};
use genesis_sim::n8n::FakeN8n;
use helpers::{Options, World, credentials, world};
use serde_json::{Value, json};
use uuid::Uuid;

/// Each droplet's fake n8n.
struct Fleet {
    n8n: BTreeMap<DropletId, FakeN8n>,
}

impl Fleet {
    fn writes(&self) -> BTreeMap<DropletId, u64> {
        self.n8n
            .iter()
            .map(|(d, n)| (*d, n.workflow_writes()))
            .collect()
    }

    fn refuse(&self, droplets: &[DropletId], on: bool) {
        for d in droplets {
            self.n8n[d].chaos_refuse_writes(on);
        }
    }
}

/// Runs the conductor until the rollout stops moving on its own (paused or final).
async fn drive(w: &World, conductor: &RolloutConductor, id: Uuid) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        conductor.reconcile().await.expect("pass");
        let (status, r) = w.get(&format!("/api/v1/rollouts/{id}")).await;
        assert_eq!(status, 200, "{r}");
        if r["status"] != "RUNNING" {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rollout never stopped: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn batch(w: &World, id: Uuid, n: i32) -> Vec<DropletId> {
    w.t.db
        .rollout_batch_targets(id, n)
        .await
        .expect("targets")
        .into_iter()
        .map(|t| t.droplet)
        .collect()
}

async fn start(w: &World, body: Value) -> Uuid {
    let (status, r) = w.post("/api/v1/rollouts", body).await;
    assert_eq!(status, 201, "{r}");
    Uuid::parse_str(r["id"].as_str().expect("id")).expect("uuid")
}

/// Asserts that `ws`'s droplet has its available pre-update snapshot for `rollout`, kept
/// 48 hours and never copied.
async fn pre_update_snapshot_of(w: &World, ws: WorkspaceId, rollout: Uuid) {
    let d = w.t.db.droplet_live_for_workspace(ws).await.expect("rows")[0].clone();
    let name = genesis_control::workers::pre_update::snapshot_name(d.id.as_uuid(), rollout);
    let s =
        w.t.db
            .snapshot_named(&name)
            .await
            .expect("snapshot")
            .unwrap_or_else(|| panic!("no pre-update snapshot of {ws}"));
    assert_eq!(
        (s.kind.as_str(), s.state.as_str()),
        ("pre_update", "available"),
        "{s:?}"
    );
    assert_eq!(s.expires_at - s.requested_at, chrono::Duration::hours(48));
    assert!(s.image_id.is_some() && s.transfer_state.is_none(), "{s:?}");
}

fn changed(
    before: &BTreeMap<DropletId, u64>,
    after: &BTreeMap<DropletId, u64>,
    d: &DropletId,
) -> u64 {
    after[d] - before[d]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_rates_of_2_5_and_12_percent_continue_pause_and_abort() {
    let w = world(Options::default()).await;
    let tenants: Vec<WorkspaceId> = w.ignite_many("roll", 200).await;
    let mut fleet = Fleet {
        n8n: BTreeMap::new(),
    };
    for ws in &tenants {
        let d = w.t.db.droplet_live_for_workspace(*ws).await.expect("rows")[0].clone();
        let n8n = w
            .hook
            .n8n(d.provider_id.expect("provider"))
            .expect("its n8n");
        fleet.n8n.insert(d.id, n8n);
    }
    let conductor = RolloutConductor::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
    );

    // Bad requests are refused, naming the field.
    let (status, r) = w
        .post("/api/v1/rollouts", json!({"scenario": "yolo"}))
        .await;
    assert_eq!(
        (status, r["field"].as_str()),
        (422, Some("scenario")),
        "{r}"
    );
    let (status, r) = w
        .post(
            "/api/v1/rollouts",
            json!({"scenario": "bug_fix", "target_version": "1999.1.1"}),
        )
        .await;
    assert_eq!(status, 422, "{r}");
    let (status, r) = w
        .post(
            "/api/v1/rollouts",
            json!({"scenario": "bug_fix", "pause_at_percent": 150}),
        )
        .await;
    assert_eq!(status, 422, "{r}");

    // 2 %: two failures in each batch of 100. Both batches continue; the rollout completes.
    let one = start(&w, json!({"scenario": "bug_fix", "pause_between_s": 1})).await;
    let (b0, b1) = (batch(&w, one, 0).await, batch(&w, one, 1).await);
    assert_eq!((b0.len(), b1.len()), (100, 100), "spec 56.3's batch size");
    let broken: Vec<DropletId> = b0[..2].iter().chain(&b1[..2]).copied().collect();
    fleet.refuse(&broken, true);
    let before = fleet.writes();
    let r = drive(&w, &conductor, one).await;
    assert_eq!(r["status"], "COMPLETED", "{r:#}");
    assert_eq!(
        (r["totals"]["done"].as_i64(), r["totals"]["failed"].as_i64()),
        (Some(196), Some(4))
    );
    assert_eq!(r["failures"].as_array().map(Vec::len), Some(4), "{r:#}");
    let after = fleet.writes();
    for d in fleet.n8n.keys() {
        let want = if broken.contains(d) { 0 } else { 3 };
        assert_eq!(
            changed(&before, &after, d),
            want,
            "{d}: three workflows updated once"
        );
    }
    fleet.refuse(&broken, false);

    // 5 %: five failures in the first batch. The rollout pauses after it, and the second
    // batch is untouched until a person resumes; then it continues with that batch only.
    let two = start(&w, json!({"scenario": "bug_fix", "pause_between_s": 0})).await;
    let (b0, b1) = (batch(&w, two, 0).await, batch(&w, two, 1).await);
    fleet.refuse(&b0[..5], true);
    let before = fleet.writes();
    let r = drive(&w, &conductor, two).await;
    assert_eq!(r["status"], "PAUSED", "{r:#}");
    assert!(
        r["reason"].as_str().is_some_and(|m| m.contains("5 of 100")),
        "{r:#}"
    );
    assert_eq!(r["per_batch"][1]["pending"], 100, "{r:#}");
    let at_pause = fleet.writes();
    assert!(b1.iter().all(|d| changed(&before, &at_pause, d) == 0));
    let (status, _) = w
        .post("/api/v1/rollouts", json!({"scenario": "bug_fix"}))
        .await;
    assert_eq!(status, 409, "one rollout in flight at a time");
    let (status, _) = w
        .post(&format!("/api/v1/rollouts/{two}/pause"), json!({}))
        .await;
    assert_eq!(status, 409, "a paused rollout cannot pause");
    fleet.refuse(&b0[..5], false);
    let (status, r) = w
        .post(&format!("/api/v1/rollouts/{two}/resume"), json!({}))
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("RUNNING")),
        "{r}"
    );
    let r = drive(&w, &conductor, two).await;
    assert_eq!(r["status"], "COMPLETED", "{r:#}");
    assert_eq!(
        (r["totals"]["done"].as_i64(), r["totals"]["failed"].as_i64()),
        (Some(195), Some(5))
    );
    let end = fleet.writes();
    assert!(
        b0.iter().all(|d| changed(&at_pause, &end, d) == 0),
        "the first batch is not sent again after the resume"
    );
    assert!(b1.iter().all(|d| changed(&at_pause, &end, d) == 3));

    // 12 %: twelve failures in the first batch, at or above 10 % overall: abort; the second
    // batch is cancelled and never sent.
    let three = start(&w, json!({"scenario": "bug_fix", "pause_between_s": 0})).await;
    let (b0, b1) = (batch(&w, three, 0).await, batch(&w, three, 1).await);
    fleet.refuse(&b0[..12], true);
    let before = fleet.writes();
    let r = drive(&w, &conductor, three).await;
    assert_eq!(r["status"], "ABORTED", "{r:#}");
    assert!(
        r["reason"].as_str().is_some_and(|m| m.contains("abort")),
        "{r:#}"
    );
    assert_eq!(r["per_batch"][1]["cancelled"], 100, "{r:#}");
    let end = fleet.writes();
    assert!(b1.iter().all(|d| changed(&before, &end, d) == 0));
    let (status, _) = w
        .post(&format!("/api/v1/rollouts/{three}/resume"), json!({}))
        .await;
    assert_eq!(status, 409, "an aborted rollout stays aborted");
    fleet.refuse(&b0[..12], false);

    // An n8n image rollout (spec 56.2): a good image swaps; a broken one fails its health
    // check, the sidecar rolls back, and a security patch accepts the failures.
    let (status, r) = w
        .post(
            "/api/v1/rollouts",
            json!({"scenario": "security_patch", "n8n_image": "latest please"}),
        )
        .await;
    assert_eq!(
        (status, r["field"].as_str()),
        (422, Some("n8n_image")),
        "{r}"
    );
    let good: Vec<String> = tenants[..3].iter().map(ToString::to_string).collect();
    let four = start(
        &w,
        json!({"scenario": "security_patch", "n8n_image": "n8nio/n8n:2.8.5",
               "scope": {"kind": "workspaces", "ids": good}}),
    )
    .await;
    let r = drive(&w, &conductor, four).await;
    assert_eq!(r["status"], "COMPLETED", "{r:#}");
    assert_eq!(r["totals"]["done"], 3, "{r:#}");
    // Each droplet was snapshotted before its swap (spec 66.2), kept 48 hours.
    for ws in &tenants[..3] {
        pre_update_snapshot_of(&w, *ws, four).await;
    }
    // No snapshot, no swap: a snapshot that errors at the cloud fails the droplet's update.
    w.sim.set_faults(genesis_sim::digitalocean::Faults {
        action_error_rate: 1.0,
        ..Default::default()
    });
    let unsafe_swap = start(
        &w,
        json!({"scenario": "security_patch", "n8n_image": "n8nio/n8n:2.8.5",
               "scope": {"kind": "workspaces", "ids": [tenants[6].to_string()]}}),
    )
    .await;
    let r = drive(&w, &conductor, unsafe_swap).await;
    w.sim.set_faults(Default::default());
    assert_eq!(r["totals"]["failed"], 1, "{r:#}");
    let error = r["failures"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("was not swapped in") && error.contains("pre-update snapshot"),
        "{r:#}"
    );
    let bad: Vec<String> = tenants[3..6].iter().map(ToString::to_string).collect();
    let five = start(
        &w,
        json!({"scenario": "security_patch", "n8n_image": "n8nio/n8n:broken",
               "scope": {"kind": "workspaces", "ids": bad}}),
    )
    .await;
    let r = drive(&w, &conductor, five).await;
    assert_eq!(
        r["status"], "COMPLETED",
        "a security patch accepts failures: {r:#}"
    );
    assert_eq!(r["totals"]["failed"], 3, "{r:#}");
    assert!(
        r["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["error"]
                .as_str()
                .is_some_and(|e| e.contains("rolled back"))),
        "{r:#}"
    );

    // A hibernating droplet is deferred to its wake, not counted as a failure.
    {
        let ws = tenants[10];
        let d = w.hibernate_now(ws).await;
        let before = fleet.writes();
        let ids: Vec<String> = [ws, tenants[11]].iter().map(ToString::to_string).collect();
        let six = start(
            &w,
            json!({"scenario": "bug_fix", "scope": {"kind": "workspaces", "ids": ids}}),
        )
        .await;
        let r = drive(&w, &conductor, six).await;
        assert_eq!(r["status"], "COMPLETED", "{r:#}");
        assert_eq!(
            (
                r["totals"]["done"].as_i64(),
                r["totals"]["deferred"].as_i64()
            ),
            (Some(1), Some(1)),
            "{r:#}"
        );
        assert_eq!(
            changed(&before, &fleet.writes(), &d.id),
            0,
            "nothing is sent to a powered-off droplet"
        );

        // An image rollout defers it too, and the conductor swaps it once it is awake.
        let seven = start(
            &w,
            json!({"scenario": "security_patch", "n8n_image": "n8nio/n8n:2.8.5",
                   "scope": {"kind": "workspaces", "ids": [ws.to_string()]}}),
        )
        .await;
        let r = drive(&w, &conductor, seven).await;
        assert_eq!(r["totals"]["deferred"], 1, "{r:#}");
        assert_eq!(
            conductor.reconcile().await.expect("pass").woken_swaps,
            0,
            "nothing is swapped while it sleeps"
        );
        let (status, _) = w
            .post(&format!("/api/v1/workspaces/{ws}/wake"), json!({}))
            .await;
        assert_eq!(status, 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while w.t.db.droplet_get(d.id).await.expect("droplet").state
            != genesis_core::DropletState::ActiveHealthy
        {
            assert!(tokio::time::Instant::now() < deadline, "never woke");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(conductor.reconcile().await.expect("pass").woken_swaps, 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, r) = w.get(&format!("/api/v1/rollouts/{seven}")).await;
            if r["totals"]["deferred"] == 0 {
                assert_eq!(
                    (r["totals"]["done"].as_i64(), r["status"].as_str()),
                    (Some(1), Some("COMPLETED")),
                    "{r:#}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the deferred swap never settled: {r:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            conductor.reconcile().await.expect("pass").woken_swaps,
            0,
            "swapped once"
        );
        // Snapshotted once awake, before the swap.
        pre_update_snapshot_of(&w, ws, seven).await;
    }

    // Progress went out on the queue's event stream; every move was audited.
    let events = w.bus.events("rollout_status", 10).await.expect("events");
    let statuses: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get("status").map(String::as_str))
        .collect();
    assert_eq!(
        statuses,
        [
            "COMPLETED",
            "PAUSED",
            "COMPLETED",
            "ABORTED",
            "COMPLETED",
            "COMPLETED",
            "COMPLETED",
            "COMPLETED",
            "COMPLETED"
        ]
    );
    assert!(
        !w.bus
            .events("rollout_batch", 5)
            .await
            .expect("events")
            .is_empty()
    );
    for (action, n) in [
        ("ROLLOUT_STARTED", 8),
        ("ROLLOUT_PAUSED", 1),
        ("ROLLOUT_RESUMED", 1),
        ("ROLLOUT_COMPLETED", 7),
        ("ROLLOUT_ABORTED", 1),
    ] {
        let got =
            w.t.db
                .audit_list(None, Some(action), 10)
                .await
                .expect("audit")
                .len();
        assert_eq!(got, n, "{action}");
    }
    w.finish().await;
}

/// The text of every server-sent event of `resp` until `end` (or `within` runs out), as
/// (event, data) pairs.
async fn read_events(mut resp: reqwest::Response, within: Duration) -> Vec<(String, String)> {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if buf.contains("event: end") {
            break;
        }
    }
    buf.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            event.map(|e| (e, data))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_starts_a_rollout_in_god_mode_and_watches_it_finish() {
    use reqwest::header::{COOKIE, LOCATION};
    let w = world(Options::default()).await;
    const TENANTS: usize = 6;
    let mut tenants = Vec::new();
    for i in 0..TENANTS {
        let ws = w.create_workspace(&format!("god_{i}")).await;
        w.post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
            .await;
        tenants.push(ws);
    }
    for ws in &tenants {
        let got = w.wait_finished(*ws, Duration::from_secs(120)).await;
        assert_eq!(got["ignition"]["phase"], "DONE", "{got:#}");
    }
    let (http, cookie) = w.god_session().await;
    let form = |pairs: &[(&str, &str)]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let post = |path: &str, body: String, cookie: Option<&str>| {
        let mut r = http
            .post(format!("{}{path}", w.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            r = r.header(COOKIE, c);
        }
        r.send()
    };
    let get = |path: String| {
        http.get(format!("{}{path}", w.base))
            .header(COOKIE, &cookie)
            .send()
    };
    let page = get("/god/rollouts".into())
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let at = page.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
    let csrf = page[at..].split('"').next().expect("token").to_owned();

    // Start from the form: bug_fix, batches of 2, no pause between them.
    let r = post(
        "/god/rollouts",
        form(&[
            ("csrf", &csrf),
            ("scenario", "bug_fix"),
            ("batch_size", "2"),
            ("pause_between_s", "0"),
        ]),
        Some(&cookie),
    )
    .await
    .expect("start");
    assert_eq!(r.status(), 303);
    let location = r.headers()[LOCATION].to_str().expect("ascii").to_owned();
    let id = Uuid::parse_str(location.trim_start_matches("/god/rollouts/")).expect("uuid");
    let rollout = w.t.db.rollout_get(id).await.expect("rollout");
    assert_eq!(
        rollout.created_by, "operator:ops@genesis.test",
        "audited by name"
    );
    assert_eq!(rollout.batches, 3);

    // Watch it live while the conductor works.
    let stream = get(format!("/god/api/rollouts/{id}/events"))
        .await
        .expect("events");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let watching = tokio::spawn(read_events(stream, Duration::from_secs(120)));
    let conductor = RolloutConductor::new(
        genesis_store::RegionalStore::single(w.t.db.clone()),
        w.bus.clone(),
    );
    let end = drive(&w, &conductor, id).await;
    assert_eq!(end["status"], "COMPLETED", "{end:#}");
    let events = watching.await.expect("join");
    assert_eq!(
        events.last().map(|e| e.0.as_str()),
        Some("end"),
        "{events:?}"
    );
    let progress: Vec<Value> = events
        .iter()
        .filter(|(e, _)| e == "progress")
        .map(|(_, d)| serde_json::from_str(d).expect("json"))
        .collect();
    assert!(progress.len() >= 2, "{progress:?}");
    let last = progress.last().expect("a progress event");
    assert_eq!(last["status"], "COMPLETED");
    assert_eq!(last["totals"]["done"], TENANTS as i64);
    assert_eq!(last["totals"]["pending"], 0);
    assert_eq!(last["per_batch"].as_array().map(Vec::len), Some(3));

    // The page says so too; pausing a finished rollout is refused with the reason, as a page.
    let html = get(format!("/god/rollouts/{id}"))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains(r#"<b id="status">COMPLETED</b>"#), "{html}");
    assert!(html.contains(r#"<span id="percent">100</span>"#));
    let r = post(
        &format!("/god/rollouts/{id}/pause"),
        form(&[("csrf", &csrf)]),
        Some(&cookie),
    )
    .await
    .expect("pause");
    assert_eq!(r.status(), 409);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    // A forged form changes nothing.
    let r = post(
        &format!("/god/rollouts/{id}/abort"),
        form(&[("csrf", "forged")]),
        Some(&cookie),
    )
    .await
    .expect("abort");
    assert_eq!(r.status(), 403);
    assert_eq!(
        w.t.db.rollout_get(id).await.expect("rollout").status.code(),
        "COMPLETED"
    );

    // A droplet's page lists the commands it was sent and how they went: its ignition's
    // deploys, then the rollout's.
    let droplet = batch(&w, id, 0).await[0];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let html = loop {
        let html = get(format!("/god/droplets/{droplet}"))
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        if html.matches("<code>UPDATE_WORKFLOW</code>").count() >= 3
            || tokio::time::Instant::now() > deadline
        {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The rollout updates the workflows by the ids their ignition recorded.
    assert_eq!(
        (
            html.matches("<code>DEPLOY_WORKFLOW</code>").count(),
            html.matches("<code>UPDATE_WORKFLOW</code>").count()
        ),
        (3, 3),
        "three deploys at ignition, three updates in the rollout: {html}"
    );
    assert!(html.contains(r#"<tr data-outcome="ok">"#));
    assert!(!html.contains(r#"data-outcome="failed""#));
    let (status, api) = w.get(&format!("/api/v1/droplets/{droplet}")).await;
    assert_eq!(status, 200);
    assert_eq!(api["commands"][0]["outcome"], "ok", "{api}");
    w.finish().await;
}
