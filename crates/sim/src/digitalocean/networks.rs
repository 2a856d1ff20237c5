//! `/v2/vpcs` (each region's default network, from the catalog) and `/v2/firewalls`
//! (Cloud Firewalls, kept with the world).
//!
//! A firewall create is checked the way DigitalOcean documents it: a name of letters,
//! digits, `.`, `-` and `_`; at least one rule; each rule's protocol `tcp`, `udp` or
//! `icmp`; ports a number, a range or `0` for all (and only `0` for ICMP); and every rule
//! naming at least one address, tag or droplet. What the simulator does not do: enforce the rules on traffic.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::droplets::{Paging, paged};
use super::gate::{bad_request, origin, unprocessable};
use super::state::{iso, now_ms};
use super::{Simulator, catalog};

/// `GET /v2/vpcs`: one default VPC per region.
pub async fn vpcs(headers: HeaderMap, Query(q): Query<Paging>) -> Response {
    Json(paged(
        "vpcs",
        &origin(&headers),
        "/v2/vpcs",
        "",
        q.resolve(),
        catalog::REGIONS.iter().enumerate(),
        |(i, r)| {
            json!({
                "id": catalog::default_vpc(r.slug),
                "urn": format!("do:vpc:{}", catalog::default_vpc(r.slug)),
                "name": format!("default-{}", r.slug),
                "description": "",
                "region": r.slug,
                "ip_range": format!("10.{}.0.0/20", 100 + i),
                "default": true,
                "created_at": "2020-03-13T19:20:47.442049222Z",
            })
        },
    ))
    .into_response()
}

/// `GET /v2/firewalls`.
pub async fn firewalls(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(q): Query<Paging>,
) -> Response {
    let all = sim.lock().world.firewalls.clone();
    Json(paged(
        "firewalls",
        &origin(&headers),
        "/v2/firewalls",
        "",
        q.resolve(),
        all.into_iter(),
        |f| f,
    ))
    .into_response()
}

fn valid_ports(protocol: &str, ports: &str) -> bool {
    if protocol == "icmp" {
        return ports == "0" || ports.is_empty();
    }
    if ports == "0" {
        return true;
    }
    let port = |s: &str| s.parse::<u16>().is_ok_and(|p| p > 0);
    match ports.split_once('-') {
        Some((a, b)) => port(a) && port(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
        None => port(ports),
    }
}

/// Why a rule list is refused, if it is.
fn rules_problem(rules: &Value, side: &str) -> Option<String> {
    let rules = match rules {
        Value::Null => return None,
        Value::Array(r) => r,
        _ => return Some(format!("{side} must be an array.")),
    };
    for r in rules {
        let protocol = r["protocol"].as_str().unwrap_or_default();
        if !matches!(protocol, "tcp" | "udp" | "icmp") {
            return Some(format!("{side}: protocol must be tcp, udp or icmp."));
        }
        let ports = r["ports"].as_str().unwrap_or_default();
        if !valid_ports(protocol, ports) {
            return Some(format!(
                "{side}: ports {ports:?} is not valid for {protocol}."
            ));
        }
        let key = if side == "inbound_rules" {
            "sources"
        } else {
            "destinations"
        };
        let target = &r[key];
        let named = |k: &str| target[k].as_array().is_some_and(|a| !a.is_empty());
        if !(named("addresses") || named("tags") || named("droplet_ids")) {
            return Some(format!("{side}: each rule needs {key}."));
        }
    }
    None
}

/// `POST /v2/firewalls`.
pub async fn create_firewall(
    State(sim): State<Simulator>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return bad_request("a firewall create");
    };
    let name = req["name"].as_str().unwrap_or_default();
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        || !name.as_bytes()[0].is_ascii_alphanumeric()
    {
        return unprocessable(
            "name must begin with a letter or digit and hold only letters, digits, '.', '-' and '_'.",
        );
    }
    let inbound = &req["inbound_rules"];
    let outbound = &req["outbound_rules"];
    let empty = |v: &Value| v.as_array().is_none_or(Vec::is_empty);
    if empty(inbound) && empty(outbound) {
        return unprocessable("A firewall needs at least one inbound or outbound rule.");
    }
    if let Some(p) = rules_problem(inbound, "inbound_rules")
        .or_else(|| rules_problem(outbound, "outbound_rules"))
    {
        return unprocessable(p);
    }
    let mut s = sim.lock();
    let n: u128 = rand::Rng::random(&mut s.rng);
    let hex = format!("{n:032x}");
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    );
    let firewall = json!({
        "id": id,
        "name": name,
        "status": "succeeded",
        "created_at": iso(now_ms()),
        "pending_changes": [],
        "inbound_rules": inbound.as_array().cloned().unwrap_or_default(),
        "outbound_rules": outbound.as_array().cloned().unwrap_or_default(),
        "droplet_ids": req["droplet_ids"].as_array().cloned().unwrap_or_default(),
        "tags": req["tags"].as_array().cloned().unwrap_or_default(),
    });
    s.world.firewalls.push(firewall.clone());
    drop(s);
    (StatusCode::ACCEPTED, Json(json!({ "firewall": firewall }))).into_response()
}
