//! The API's OpenAPI document: served, browsable, and the same as the copy in the
//! repository (`docs/api/openapi.json`), so that every change to the contract shows in a
//! review as a change to that file.

use serde_json::Value;

use super::{TOKEN, spawn_app_with};

/// The committed copy; `GENESIS_BLESS=1` rewrites it from the code.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/openapi.json");

fn generated() -> String {
    let doc = genesis_control::api::openapi();
    let mut text = serde_json::to_string_pretty(&doc).expect("the document serializes");
    text.push('\n');
    text
}

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let now = generated();
    if std::env::var_os("GENESIS_BLESS").is_some() {
        std::fs::write(COMMITTED, &now).expect("write docs/api/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == now,
        "docs/api/openapi.json is not what the code generates; review the change and run \
         `GENESIS_BLESS=1 cargo nextest run -p genesis-control --test api openapi` to update it"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_every_operation_is_secured_and_answers_problems() {
    let doc: Value = serde_json::from_str(&generated()).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().map_or(0, |ops| ops.len()))
        .sum();
    assert!(operations >= 22, "only {operations} operations");
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            for status in ["401", "422", "500"] {
                let r = &responses[status];
                assert!(
                    r["content"]["application/problem+json"].is_object(),
                    "{method} {path} does not document {status} as a problem"
                );
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
        }
    }
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
}

#[tokio::test]
async fn the_document_and_its_docs_page_are_served_without_a_token() {
    let app = spawn_app_with(Some(TOKEN)).await;
    let resp = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let served: Value = resp.json().await.expect("json");
    let expected: Value = serde_json::from_str(&generated()).expect("json");
    assert_eq!(served, expected);

    let page = app
        .http
        .get(format!("{}/api/v1/docs/", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.expect("body");
    assert!(html.contains("swagger"), "{html}");
}
