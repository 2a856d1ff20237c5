//! Spec 65.3 from outside: a call with a workspace's ingest token must be signed by that
//! workspace's droplet. Unsigned, stale, forged, body-swapped, mis-scoped and replayed calls
//! are refused with a 401 that names no detail, counted, and audited within a budget.

use genesis_core::{Region, WorkspaceId};
use genesis_protocol::inbound;
use serde_json::json;

use super::{App, INBOUND_KEY, spawn_app, workspace_with_ingest_token};

/// A workspace with its partition, and its n8n's ingest token.
async fn tenant(app: &App) -> (WorkspaceId, String) {
    workspace_with_ingest_token(&app.t.db, "inbound", Region::UsEast).await
}

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// Signature headers, as the relay adds them.
type Signed = Vec<(&'static str, String)>;

/// The headers the relay of droplet 7 serving `ws` would add to `body` at `at`.
fn signed_as(ws: WorkspaceId, body: &[u8], at: u64) -> Signed {
    let secret = inbound::droplet_secret(&INBOUND_KEY, ws.as_uuid(), 7);
    inbound::sign(&secret, ws.as_uuid(), 7, body, at)
        .expect("sign")
        .to_vec()
}

async fn reply(
    app: &App,
    path_ws: WorkspaceId,
    token: &str,
    body: &[u8],
    headers: &[(&'static str, String)],
) -> u16 {
    let mut req = app
        .http
        .post(format!("{}/api/v1/workspaces/{path_ws}/replies", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.expect("call").status().as_u16()
}

#[tokio::test]
async fn only_calls_signed_by_the_workspaces_droplet_get_through_and_refusals_are_budgeted() {
    let app = spawn_app().await;
    let (ws, token) = tenant(&app).await;
    let (other, other_token) = tenant(&app).await;
    let body = serde_json::to_vec(&json!({"from": "nobody@lead.example", "label": "interested"}))
        .expect("json");

    // Signed by the droplet: through (the reply names no lead of ours, which is an answer).
    let genuine = signed_as(ws, &body, now());
    assert_eq!(reply(&app, ws, &token, &body, &genuine).await, 200);

    // Each way of getting it wrong is a 401.
    let stale = signed_as(ws, &body, now() - inbound::TOLERANCE_S - 5);
    let swapped = br#"{"from": "lin@lead.example", "label": "unsubscribe"}"#;
    let mut forged = signed_as(ws, &body, now());
    forged[2].1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let cases: Vec<(&str, WorkspaceId, &str, &[u8], Signed)> = vec![
        ("unsigned", ws, &token, &body, Vec::new()),
        ("stale", ws, &token, &body, stale),
        (
            "body swapped",
            ws,
            &token,
            swapped,
            signed_as(ws, &body, now()),
        ),
        ("forged", ws, &token, &body, forged),
        ("replayed", ws, &token, &body, genuine),
        // Another tenant's droplet signing for this workspace, with this one's token.
        (
            "mis-scoped",
            ws,
            &token,
            &body,
            signed_as(other, &body, now()),
        ),
        // Its own droplet's signature, with its own token, on this workspace's path.
        (
            "another's path",
            ws,
            &other_token,
            &body,
            signed_as(other, &body, now()),
        ),
    ];
    for (what, path_ws, tok, b, headers) in &cases {
        assert_eq!(
            reply(&app, *path_ws, tok, b, headers).await,
            401,
            "{what} is refused"
        );
    }

    // A refusal costs at most one audit row per source per ten seconds: seven refusals
    // from this address, one row, which says why.
    let rows = app
        .t
        .db
        .audit_list(None, Some("INBOUND_REFUSED"), 50)
        .await
        .expect("audit");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].details["reason"], "unsigned", "{rows:?}");
    assert_eq!(rows[0].workspace_id, Some(ws.as_uuid()));

    // The operators' token needs no droplet.
    let r = app
        .http
        .get(format!("{}/api/v1/workspaces/{ws}/leads", app.base))
        .bearer_auth(super::TOKEN)
        .send()
        .await
        .expect("call");
    assert_eq!(r.status(), 200);
    // A signed GET with the workspace's token, and an empty body, goes through.
    let mut req = app
        .http
        .get(format!("{}/api/v1/workspaces/{ws}/leads", app.base))
        .bearer_auth(&token);
    for (k, v) in signed_as(ws, b"", now()) {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.expect("call").status(), 200);
}
