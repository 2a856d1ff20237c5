//! A fake of Apify's API for the one call the managed-service gateway forwards: run an Actor
//! synchronously and get its dataset's items,
//! `POST /v2/acts/{actorId}/run-sync-get-dataset-items`.
//!
//! As the real one:
//! - the token comes as `Authorization: Bearer …` or `?token=`; without it, or with a wrong
//!   one, 401 `user-or-token-not-found`;
//! - `actorId` is `username~actor-name` (or an id); an unknown Actor is 404
//!   `record-not-found`;
//! - the POST body is the Actor's input, a JSON object; anything else, or an input its schema
//!   refuses, is 400 `invalid-input`;
//! - `timeout` (seconds) bounds the run; a run that outlives it fails, 400 `run-failed`;
//! - the answer is **201** with the items as a JSON array and the `X-Apify-Pagination-*`
//!   headers; `offset`, `limit`, `desc` and `fields` shape the items.
//!
//! Errors use Apify's envelope, `{"error": {"type", "message"}}`. Two Actors exist, enough
//! for lead work: `apify~google-search-scraper` (input `queries`, one per line) and
//! `apify~website-content-crawler` (input `startUrls`). Each run takes the fake's configured
//! run time (none by default), so concurrency limits can be tested against runs in flight.
//! Only `format=json` is served: the fake refuses the other formats rather than pretend.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::managed::FakeWholesale;

/// Genesis's wholesale Apify token, as the fake accepts it.
pub const APIFY_TOKEN: &str = "apify_api_FakeGenesisWholesaleToken000000";

/// The Actors the fake knows.
pub const ACTORS: [&str; 2] = [
    "apify~google-search-scraper",
    "apify~website-content-crawler",
];

fn apify_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "type": kind, "message": message } })),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct RunQuery {
    token: Option<String>,
    timeout: Option<String>,
    format: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
    desc: Option<String>,
    fields: Option<String>,
}

/// `POST /apify/v2/acts/{actorId}/run-sync-get-dataset-items`.
pub(crate) async fn run_sync_get_dataset_items(
    State(f): State<FakeWholesale>,
    Path(actor): Path<String>,
    Query(q): Query<RunQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = f.enter("apify") {
        return r;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.or(q.token.as_deref()) != Some(APIFY_TOKEN) {
        return apify_error(
            StatusCode::UNAUTHORIZED,
            "user-or-token-not-found",
            "User was not found or authentication token is not valid",
        );
    }
    if !ACTORS.contains(&actor.as_str()) {
        return apify_error(
            StatusCode::NOT_FOUND,
            "record-not-found",
            "Actor was not found",
        );
    }
    let bad = |m: &str| apify_error(StatusCode::BAD_REQUEST, "invalid-parameter", m);
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return bad("the fake serves format=json only");
    }
    // A parameter that is not a number names itself.
    let number = |v: &Option<String>, what: &'static str| -> Result<Option<u64>, &'static str> {
        v.as_deref()
            .map(|s| s.parse::<u64>().map_err(|_| what))
            .transpose()
    };
    let (timeout, offset, limit) = match (
        number(&q.timeout, "timeout"),
        number(&q.offset, "offset"),
        number(&q.limit, "limit"),
    ) {
        (Ok(t), Ok(o), Ok(l)) => (t, o.unwrap_or(0), l),
        (Err(what), _, _) | (_, Err(what), _) | (_, _, Err(what)) => {
            return bad(&format!("Parameter '{what}' must be a number"));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let input: Value = if body.is_empty() {
        json!({})
    } else if !content_type.starts_with("application/json") {
        return apify_error(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "Input is not valid: the Actor expects a JSON object (Content-Type: application/json)",
        );
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return apify_error(
                    StatusCode::BAD_REQUEST,
                    "invalid-input",
                    "Input is not valid: it must be a JSON object",
                );
            }
        }
    };
    let items = match actor.as_str() {
        "apify~google-search-scraper" => search_items(&input),
        _ => crawl_items(&input),
    };
    let mut items = match items {
        Ok(items) => items,
        Err(m) => {
            return apify_error(
                StatusCode::BAD_REQUEST,
                "invalid-input",
                &format!("Input is not valid: {m}"),
            );
        }
    };
    let run_time = f.run_time();
    if let Some(t) = timeout
        && run_time > std::time::Duration::from_secs(t)
    {
        tokio::time::sleep(std::time::Duration::from_secs(t)).await;
        return apify_error(
            StatusCode::BAD_REQUEST,
            "run-failed",
            "Actor run did not succeed (run ID: FakeRun0000000001, status: TIMED-OUT)",
        );
    }
    tokio::time::sleep(run_time).await;
    let total = items.len();
    if q.desc.as_deref() == Some("1") || q.desc.as_deref() == Some("true") {
        items.reverse();
    }
    let mut page: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
        .collect();
    if let Some(fields) = q.fields.as_deref().filter(|f| !f.is_empty()) {
        let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
        for item in &mut page {
            if let Value::Object(m) = item {
                m.retain(|k, _| keep.contains(&k.as_str()));
            }
        }
    }
    let count = page.len();
    let mut resp = (StatusCode::CREATED, Json(Value::Array(page))).into_response();
    let h = resp.headers_mut();
    h.insert("x-apify-pagination-offset", offset.into());
    h.insert(
        "x-apify-pagination-limit",
        limit.unwrap_or(total as u64).into(),
    );
    h.insert("x-apify-pagination-count", count.into());
    h.insert("x-apify-pagination-total", total.into());
    resp
}

/// `apify~google-search-scraper`: one item per query (`queries`, one a line, required).
fn search_items(input: &Value) -> Result<Vec<Value>, String> {
    let queries = input
        .get("queries")
        .ok_or("Field input.queries is required")?
        .as_str()
        .ok_or("Field input.queries must be string")?;
    let per_page = match input.get("resultsPerPage") {
        None => 10,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=100).contains(n))
            .ok_or("Field input.resultsPerPage must be an integer from 1 to 100")?,
    };
    let terms: Vec<&str> = queries
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if terms.is_empty() {
        return Err("Field input.queries must not be empty".into());
    }
    Ok(terms
        .into_iter()
        .map(|term| {
            let slug = crate::managed::slug(term);
            let results: Vec<Value> = (1..=per_page)
                .map(|i| {
                    json!({
                        "title": format!("{term} — result {i}"),
                        "url": format!("https://example-{i}.com/{slug}"),
                        "description": format!("A page about {term}."),
                        "position": i,
                    })
                })
                .collect();
            json!({
                "searchQuery": { "term": term, "page": 1, "type": "SEARCH", "resultsPerPage": per_page },
                "url": format!("https://www.google.com/search?q={slug}"),
                "organicResults": results,
            })
        })
        .collect())
}

/// `apify~website-content-crawler`: one item per start URL (`startUrls`, required).
fn crawl_items(input: &Value) -> Result<Vec<Value>, String> {
    let starts = input
        .get("startUrls")
        .ok_or("Field input.startUrls is required")?
        .as_array()
        .ok_or("Field input.startUrls must be array")?;
    starts
        .iter()
        .map(|s| {
            let url = s
                .get("url")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or("Field input.startUrls must hold objects with an http(s) url")?;
            Ok(json!({
                "url": url,
                "crawl": { "loadedUrl": url, "httpStatusCode": 200, "depth": 0 },
                "metadata": { "title": format!("Page at {url}"), "languageCode": "en" },
                "text": format!("The text of {url}."),
            }))
        })
        .collect()
}
