//! Snapshots, images, image transfer, regions and sizes.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::droplets::{Paging, paged};
use super::gate::{
    action_accepted, bad_request, error, not_found, origin, parse_id, unprocessable,
};
use super::state::{Effect, ImageRecord};
use super::{Simulator, catalog, render};

fn not_a_snapshot() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the resource is not a snapshot",
    )
}

/// `GET /v2/droplets/{id}/snapshots`.
pub async fn droplet_snapshots(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<Paging>,
) -> Response {
    let s = sim.lock();
    let Some(d) = parse_id(&id).and_then(|id| s.world.droplets.get(&id)) else {
        return not_found();
    };
    if s.region_down(&d.region) {
        return super::drill::region_down();
    }
    let snaps: Vec<ImageRecord> = d
        .snapshot_ids
        .iter()
        .filter_map(|i| s.world.images.get(i))
        .filter_map(|i| s.visible_image(i))
        .collect();
    let path = format!("/v2/droplets/{}/snapshots", d.id);
    Json(paged(
        "snapshots",
        &origin(&headers),
        &path,
        "",
        q.resolve(),
        snaps.iter(),
        render::droplet_snapshot,
    ))
    .into_response()
}

/// `GET /v2/snapshots`: every droplet snapshot of the account.
pub async fn snapshots(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(q): Query<Paging>,
) -> Response {
    let s = sim.lock();
    let snaps: Vec<ImageRecord> = s
        .world
        .images
        .values()
        .filter(|i| i.kind == "snapshot")
        .filter_map(|i| s.visible_image(i))
        .collect();
    Json(paged(
        "snapshots",
        &origin(&headers),
        "/v2/snapshots",
        "",
        q.resolve(),
        snaps.iter(),
        render::snapshot,
    ))
    .into_response()
}

/// `GET /v2/snapshots/{id}`.
pub async fn snapshot_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let s = sim.lock();
    match parse_id(&id).and_then(|id| s.world.images.get(&id)) {
        Some(i) if i.kind == "snapshot" => match s.visible_image(i) {
            Some(i) => Json(json!({"snapshot": render::snapshot(&i)})).into_response(),
            None => super::drill::region_down(),
        },
        Some(_) => not_a_snapshot(),
        None => not_found(),
    }
}

/// `DELETE /v2/snapshots/{id}`.
pub async fn snapshot_delete(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let mut s = sim.lock();
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match s.world.images.get(&id) {
        Some(i) if i.kind == "snapshot" && s.visible_image(i).is_none() => {
            super::drill::region_down()
        }
        Some(i) if i.kind == "snapshot" => {
            let owner = i.resource_id;
            s.world.images.remove(&id);
            if let Some(d) = owner.and_then(|o| s.world.droplets.get_mut(&o)) {
                d.snapshot_ids.retain(|x| *x != id);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => not_a_snapshot(),
        None => not_found(),
    }
}

/// `GET /v2/images/{id}` (numeric id or public slug).
pub async fn image_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let s = sim.lock();
    let id = parse_id(&id).or_else(|| catalog::base_image(Some(&id), None).map(|b| b.id));
    match id.and_then(|id| s.world.images.get(&id)) {
        Some(i) => match s.visible_image(i) {
            Some(i) => Json(json!({"image": render::image(&i)})).into_response(),
            None => super::drill::region_down(),
        },
        None => not_found(),
    }
}

/// An image action body.
#[derive(Debug, Deserialize)]
pub struct ImageActionRequest {
    #[serde(rename = "type")]
    kind: String,
    region: Option<String>,
}

/// `POST /v2/images/{id}/actions`: `transfer` copies an image to another region.
pub async fn image_action(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Result<Json<ImageActionRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    let Ok(Json(req)) = body else {
        return bad_request("an image action");
    };
    let action = {
        let mut s = sim.lock();
        let Some(image) = s.world.images.get(&id) else {
            return not_found();
        };
        if req.kind != "transfer" {
            return unprocessable("The action type is invalid.");
        }
        let Some(region) = req.region.filter(|r| catalog::region(r).is_some()) else {
            return unprocessable("You specified an invalid region for the image transfer.");
        };
        if image.regions.contains(&region) {
            return unprocessable("The image is already available in that region.");
        }
        if s.visible_image(image).is_none() || s.region_down(&region) {
            return super::drill::region_down();
        }
        let span = sim.cfg.timings.transfer;
        s.start_action(
            "transfer",
            id,
            "image",
            &region.clone(),
            span,
            Effect::Transfer { region },
        )
    };
    action_accepted(&sim, &action)
}

/// `GET /v2/images/{id}/actions/{action_id}`.
pub async fn image_action_get(
    State(sim): State<Simulator>,
    Path((id, action_id)): Path<(String, String)>,
) -> Response {
    let s = sim.lock();
    let found = parse_id(&action_id)
        .and_then(|a| s.world.actions.get(&a))
        .filter(|a| a.resource_type == "image" && Some(a.resource_id) == parse_id(&id));
    match found {
        Some(a) => Json(json!({"action": render::action(a)})).into_response(),
        None => not_found(),
    }
}

/// `GET /v2/regions`.
pub async fn regions(headers: HeaderMap, Query(q): Query<Paging>) -> Response {
    Json(paged(
        "regions",
        &origin(&headers),
        "/v2/regions",
        "",
        q.resolve(),
        catalog::REGIONS.iter(),
        catalog::region_json,
    ))
    .into_response()
}

/// `GET /v2/sizes`.
pub async fn sizes(headers: HeaderMap, Query(q): Query<Paging>) -> Response {
    Json(paged(
        "sizes",
        &origin(&headers),
        "/v2/sizes",
        "",
        q.resolve(),
        catalog::SIZES.iter(),
        catalog::size_json,
    ))
    .into_response()
}
