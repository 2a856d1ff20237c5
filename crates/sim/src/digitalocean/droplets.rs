//! `/v2/droplets`, `/v2/droplets/{id}`, `/v2/droplets/{id}/actions` and `/v2/actions/{id}`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::gate::{
    action_accepted, bad_request, maybe_lose, not_found, origin, parse_id, unprocessable,
};
use super::state::{DropletRecord, Effect, Fate, Status, iso, now_ms};
use super::{HaltReason, Simulator, catalog, render};

/// `image` of a create: a slug or a numeric id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ImageArg {
    Id(i64),
    Slug(String),
}

/// The single-droplet create body (fields the simulator acts on).
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    name: String,
    region: Option<String>,
    size: String,
    image: ImageArg,
    user_data: Option<String>,
    tags: Option<Vec<String>>,
    vpc_uuid: Option<String>,
}

/// DigitalOcean's hostname rule: letters, digits, '.' and '-', ending in a letter or digit.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// DigitalOcean's tag rule.
fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 255
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'-')
}

/// `POST /v2/droplets`.
pub async fn create(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Result<Json<CreateRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return bad_request("a Droplet create");
    };
    if !valid_name(&req.name) {
        return unprocessable("Name is invalid: only letters, digits, '.' and '-' are allowed.");
    }
    let region = req.region.unwrap_or_else(|| "nyc3".into());
    if catalog::region(&region).is_none() {
        return unprocessable("You specified an invalid region for Droplet creation.");
    }
    if sim.lock().region_down(&region) {
        return super::drill::region_down();
    }
    let Some(size) = catalog::size(&req.size) else {
        return unprocessable("You specified an invalid size for Droplet creation.");
    };
    if req
        .user_data
        .as_ref()
        .is_some_and(|u| u.len() > catalog::MAX_USER_DATA)
    {
        return unprocessable("user_data is limited to 64 KiB.");
    }
    if req
        .vpc_uuid
        .as_ref()
        .is_some_and(|v| *v != catalog::default_vpc(&region))
    {
        return unprocessable("The VPC you specified does not exist in the Droplet's region.");
    }
    let tags = req.tags.unwrap_or_default();
    if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
        return unprocessable(format!("Tags are invalid: {bad:?}."));
    }
    let (droplet, action) = {
        let mut s = sim.lock();
        let image = match &req.image {
            ImageArg::Slug(slug) => catalog::base_image(Some(slug), None).map(|b| b.id),
            ImageArg::Id(id) => s.world.images.get(id).map(|i| i.id),
        };
        let Some(image_id) = image else {
            return unprocessable("You specified an invalid image for Droplet creation.");
        };
        if !s
            .world
            .images
            .get(&image_id)
            .is_some_and(|i| i.regions.contains(&region))
        {
            return unprocessable(
                "The image you specified is not available in the selected region.",
            );
        }
        let (never, dark) = (s.faults.never_boot_rate, s.faults.dark_rate);
        let fate = if s.chance(never) {
            Fate::NeverBoots
        } else if s.chance(dark) {
            Fate::GoesDark(s.faults.dark_after_ms)
        } else {
            Fate::Healthy
        };
        let id = s.world.take_id();
        let droplet = s.world.add_droplet(DropletRecord {
            id,
            name: req.name,
            status: Status::New,
            tags,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            region: region.clone(),
            size: size.slug.into(),
            image_id,
            created_at: iso(now_ms()),
            user_data: req.user_data,
            vpc_uuid: req.vpc_uuid.or_else(|| Some(catalog::default_vpc(&region))),
            snapshot_ids: vec![],
            fate,
            generation: 0,
        });
        let span = sim.cfg.timings.create;
        let action = s.start_action(
            "create",
            id,
            "droplet",
            &region,
            span,
            Effect::Power(Status::Active),
        );
        s.stats.droplets = s.world.droplets.len() as u64;
        (render::droplet(&s.world, &droplet), action)
    };
    sim.arm(&action);
    let body = json!({
        "droplet": droplet,
        "links": {"actions": [{"id": action.id, "rel": "create", "href": format!("{}/v2/actions/{}", origin(&headers), action.id)}]},
    });
    maybe_lose(&sim, (StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `page` and `per_page` as DigitalOcean reads them (`per_page` at most 200).
#[derive(Debug, Deserialize)]
pub struct Paging {
    page: Option<usize>,
    per_page: Option<usize>,
    tag_name: Option<String>,
}

impl Paging {
    /// (page, per_page), clamped as DigitalOcean clamps them.
    pub fn resolve(&self) -> (usize, usize) {
        (
            self.page.unwrap_or(1).max(1),
            self.per_page.unwrap_or(20).clamp(1, 200),
        )
    }
}

/// Cuts one page out of `items` and renders it with links and total.
pub fn paged<T>(
    key: &str,
    origin: &str,
    path: &str,
    extra_query: &str,
    paging: (usize, usize),
    items: impl ExactSizeIterator<Item = T>,
    render_one: impl Fn(T) -> Value,
) -> Value {
    let (page, per_page) = paging;
    let total = items.len();
    let chunk = items
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(render_one)
        .collect();
    render::page(key, chunk, total, page, per_page, |p| {
        format!("{origin}{path}?page={p}&per_page={per_page}{extra_query}")
    })
}

/// `GET /v2/droplets[?tag_name=]`: by tag through the tag index, never a fleet scan.
pub async fn list(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(q): Query<Paging>,
) -> Response {
    let origin = origin(&headers);
    let s = sim.lock();
    let w = &s.world;
    let body = match &q.tag_name {
        Some(tag) => {
            let ids: Vec<_> = w.tagged(tag).collect();
            paged(
                "droplets",
                &origin,
                "/v2/droplets",
                &format!("&tag_name={tag}"),
                q.resolve(),
                ids.into_iter(),
                |d| render::droplet(w, d),
            )
        }
        None => paged(
            "droplets",
            &origin,
            "/v2/droplets",
            "",
            q.resolve(),
            w.droplets.values(),
            |d| render::droplet(w, d),
        ),
    };
    Json(body).into_response()
}

/// `GET /v2/droplets/{id}`.
pub async fn get_one(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let s = sim.lock();
    match parse_id(&id).and_then(|id| s.world.droplets.get(&id)) {
        Some(d) if s.region_down(&d.region) => super::drill::region_down(),
        Some(d) => Json(json!({"droplet": render::droplet(&s.world, d)})).into_response(),
        None => not_found(),
    }
}

/// `DELETE /v2/droplets/{id}`.
pub async fn delete(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let removed = {
        let mut s = sim.lock();
        if s.world
            .droplets
            .get(&id)
            .is_some_and(|d| s.region_down(&d.region))
        {
            return super::drill::region_down();
        }
        let removed = s.world.remove_droplet(id);
        s.stats.droplets = s.world.droplets.len() as u64;
        removed
    };
    match removed {
        Some(_) => {
            sim.halt(id, HaltReason::Deleted);
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut().insert(
                "content-type",
                axum::http::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
        None => not_found(),
    }
}

/// A droplet action body: `type`, plus `name` for snapshots.
#[derive(Debug, Deserialize)]
pub struct ActionRequest {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
}

/// `POST /v2/droplets/{id}/actions`.
pub async fn action(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Result<Json<ActionRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let Ok(Json(req)) = body else {
        return bad_request("a Droplet action");
    };
    let action = {
        let mut s = sim.lock();
        let Some(d) = s.world.droplets.get(&id) else {
            return not_found();
        };
        if s.region_down(&d.region) {
            return super::drill::region_down();
        }
        let t = sim.cfg.timings;
        let (span, effect) = match req.kind.as_str() {
            "power_on" | "power_cycle" | "reboot" => (t.power, Effect::Power(Status::Active)),
            "power_off" | "shutdown" => (t.power, Effect::Power(Status::Off)),
            "snapshot" => (
                t.snapshot,
                Effect::Snapshot {
                    name: req
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}-{}", d.name, now_ms())),
                    region: d.region.clone(),
                    min_disk_size: catalog::size(&d.size).map(|s| s.disk).unwrap_or(25),
                },
            ),
            _ => return unprocessable("The action type is invalid."),
        };
        let region = d.region.clone();
        s.start_action(&req.kind, id, "droplet", &region, span, effect)
    };
    action_accepted(&sim, &action)
}

/// `GET /v2/actions/{id}`.
pub async fn action_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let s = sim.lock();
    match parse_id(&id).and_then(|id| s.world.actions.get(&id)) {
        Some(a) => Json(json!({"action": render::action(a)})).into_response(),
        None => not_found(),
    }
}
