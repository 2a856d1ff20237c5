//! The API against its own OpenAPI document, by schemathesis (from PyPI): every operation,
//! with generated valid and invalid requests, over a control plane with a simulated cloud
//! and one ignited tenant. No answer may be a 5xx, and every status, content type, header
//! and body must be one the document describes.

use std::time::Duration;

use super::helpers::{Options, TOKEN, credentials, world};

/// Where `scripts/schemathesis-install.sh` put the command (`make test` sets it).
fn schemathesis() -> std::path::PathBuf {
    let bin = std::env::var_os("GENESIS_SCHEMATHESIS").unwrap_or_else(|| {
        panic!(
            "GENESIS_SCHEMATHESIS is not set: run `make test`, or export \
             GENESIS_SCHEMATHESIS=$(scripts/schemathesis-install.sh)"
        )
    });
    std::path::PathBuf::from(bin)
}

/// The checks of the issue: no server error; statuses, content types, headers and bodies as
/// documented; and invalid input refused.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_headers_conformance,response_schema_conformance,negative_data_rejection";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_its_openapi_document_says() {
    let w = world(Options::default()).await;
    // Something real to list and find: an ignited tenant with its droplet.
    let ws = w.create_workspace("contract").await;
    let (status, body) = w
        .post(&format!("/api/v1/workspaces/{ws}/ignite"), credentials())
        .await;
    assert_eq!(status, 202, "{body}");
    let done = w.wait_finished(ws, Duration::from_secs(60)).await;
    assert_eq!(done["ignition"]["phase"], "DONE", "{done:#}");

    let report = w.root.join("schemathesis");
    let out = tokio::process::Command::new(schemathesis())
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", w.base))
        .args(["--url", &w.base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", CHECKS])
        // One worker: with two, hypothesis parses lambda sources from two threads at once,
        // and CPython 3.11 before 3.11.8 can fail that with "AST constructor recursion
        // depth mismatch" (python/cpython#106905), an error in the tool, not in the API.
        .args(["--max-examples", "100", "--seed", "19", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--request-timeout",
            "30",
            "--no-color",
            "--output-truncate",
            "false",
        ])
        // No example database: it would be written into the crate's directory, and the
        // fixed seed makes the run repeatable without it.
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(&report)
        .args(["--report", "junit"])
        .env("SCHEMATHESIS_HOOKS", "")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found the API and its document disagreeing:\n{stdout}\n{stderr}"
    );
    // It did test every operation the document lists.
    let operations: usize = genesis_control::api::openapi()
        .paths
        .paths
        .values()
        .map(|item| {
            [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .iter()
                .filter(|op| op.is_some())
                .count()
        })
        .sum();
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert_eq!(tested, Some(operations), "{stdout}");
    w.finish().await;
}
