//! The contract checker itself: it must catch what it exists to catch, or the contract-kept
//! assertions of the other tests mean nothing.

use genesis_sim::contract::Contract;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

fn limit_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for k in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        h.insert(k, HeaderValue::from_static("1"));
    }
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

fn action(status: &str) -> Vec<u8> {
    json!({"action": {"id": 1, "status": status, "type": "power_on", "started_at": "2026-01-01T00:00:00Z",
        "completed_at": null, "resource_id": 5, "resource_type": "droplet", "region_slug": "fra1"}})
    .to_string()
    .into_bytes()
}

#[test]
fn good_messages_pass_and_bad_ones_are_named() {
    let c = Contract::digitalocean().expect("loads");
    let h = limit_headers();

    c.check_response("GET", "/v2/actions/1", 200, &h, &action("completed"))
        .expect("a valid action");
    let bad = c
        .check_response("GET", "/v2/actions/1", 200, &h, &action("finished"))
        .expect_err("an unknown status");
    assert_eq!(bad.operation, "GET /v2/actions/{action_id}");
    assert!(
        bad.problems.iter().any(|p| p.contains("/action/status")),
        "{bad:?}"
    );

    let mut no_limits = h.clone();
    no_limits.remove("ratelimit-remaining");
    let bad = c
        .check_response(
            "GET",
            "/v2/actions/1",
            200,
            &no_limits,
            &action("completed"),
        )
        .expect_err("a missing rate-limit header");
    assert!(
        bad.problems
            .iter()
            .any(|p| p.contains("ratelimit-remaining"))
    );

    let err = json!({"message": "no id"}).to_string();
    assert!(
        c.check_response("GET", "/v2/droplets/7", 404, &h, err.as_bytes())
            .is_err(),
        "DigitalOcean's error body requires an id"
    );
    let ok = json!({"id": "not_found", "message": "gone"}).to_string();
    c.check_response("GET", "/v2/droplets/7", 404, &h, ok.as_bytes())
        .expect("a proper 404");

    c.check_request("POST", "/v2/droplets/7/actions", br#"{"type":"power_on"}"#)
        .expect("a power action");
    assert!(
        c.check_request("POST", "/v2/droplets/7/actions", br#"{"type":5}"#)
            .is_err()
    );
    assert!(
        c.check_request("POST", "/v2/droplets/7/actions", b"not json")
            .is_err()
    );
    assert!(
        c.check_request("GET", "/v2/droplets/7", b"{}").is_err(),
        "a GET takes no body"
    );
    assert!(
        c.check_request("PATCH", "/v2/nowhere", b"").is_err(),
        "unknown operations are violations"
    );
    // Nullable fields: a droplet's next_backup_window may be null, its name may not.
    let droplet = |name: serde_json::Value| {
        json!({"droplet": {"id": 1, "name": name, "memory": 1024, "vcpus": 1, "disk": 25,
            "locked": false, "status": "active", "created_at": "2026-01-01T00:00:00Z",
            "features": [], "backup_ids": [], "next_backup_window": null, "snapshot_ids": [],
            "image": {}, "volume_ids": [], "size": {"slug": "s", "memory": 1024, "vcpus": 1,
            "disk": 25, "transfer": 1.0, "price_monthly": 6.0, "price_hourly": 0.01,
            "regions": [], "available": true, "description": "Basic"}, "size_slug": "s",
            "networks": {"v4": [], "v6": []}, "region": {"name": "F", "slug": "fra1",
            "features": [], "available": true, "sizes": []}, "tags": []}})
        .to_string()
    };
    c.check_response(
        "GET",
        "/v2/droplets/1",
        200,
        &h,
        droplet(json!("a")).as_bytes(),
    )
    .expect("a full droplet");
    assert!(
        c.check_response(
            "GET",
            "/v2/droplets/1",
            200,
            &h,
            droplet(json!(null)).as_bytes()
        )
        .is_err()
    );
}
