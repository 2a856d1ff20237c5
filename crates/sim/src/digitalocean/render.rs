//! DigitalOcean's JSON for the simulator's records: every field the OpenAPI contract marks
//! required, with the types it declares (the contract tests hold us to it).

use serde_json::{Value, json};

use super::catalog;
use super::state::{ActionRecord, DropletRecord, ImageRecord, World};

/// `droplet`.
pub fn droplet(w: &World, d: &DropletRecord) -> Value {
    let size = catalog::size(&d.size);
    let region = catalog::region(&d.region);
    json!({
        "id": d.id,
        "name": d.name,
        "memory": size.map(|s| s.memory).unwrap_or(1024),
        "vcpus": size.map(|s| s.vcpus).unwrap_or(1),
        "disk": size.map(|s| s.disk).unwrap_or(25),
        "locked": false,
        "status": d.status,
        "created_at": d.created_at,
        "features": ["metadata"],
        "backup_ids": [],
        "next_backup_window": null,
        "snapshot_ids": d.snapshot_ids,
        "image": w.images.get(&d.image_id).map(image).unwrap_or_else(|| json!({"id": d.image_id})),
        "volume_ids": [],
        "size": size.map(catalog::size_json).unwrap_or_else(|| json!({"slug": d.size})),
        "size_slug": d.size,
        "networks": {
            "v4": [{
                "ip_address": d.ip.to_string(),
                "netmask": "255.192.0.0",
                "gateway": "127.64.0.1",
                "type": "public",
            }],
            "v6": [],
        },
        "region": region.map(catalog::region_json).unwrap_or_else(|| json!({"slug": d.region})),
        "tags": d.tags,
        "vpc_uuid": d.vpc_uuid,
    })
}

/// `image`.
pub fn image(i: &ImageRecord) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "type": i.kind,
        "distribution": "Ubuntu",
        "slug": i.slug,
        "public": i.kind == "base",
        "regions": i.regions,
        "created_at": i.created_at,
        "min_disk_size": i.min_disk_size,
        "size_gigabytes": i.size_gigabytes,
        "description": "",
        "tags": i.tags,
        "status": "available",
    })
}

/// A snapshot as `/v2/snapshots` lists it (string id, like DigitalOcean).
pub fn snapshot(i: &ImageRecord) -> Value {
    json!({
        "id": i.id.to_string(),
        "name": i.name,
        "created_at": i.created_at,
        "regions": i.regions,
        "min_disk_size": i.min_disk_size,
        "size_gigabytes": i.size_gigabytes,
        "resource_id": i.resource_id.map(|r| r.to_string()).unwrap_or_default(),
        "resource_type": "droplet",
        "tags": i.tags,
    })
}

/// A snapshot as `/v2/droplets/{id}/snapshots` lists it (numeric id, with `type`).
pub fn droplet_snapshot(i: &ImageRecord) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "created_at": i.created_at,
        "regions": i.regions,
        "min_disk_size": i.min_disk_size,
        "size_gigabytes": i.size_gigabytes,
        "type": "snapshot",
    })
}

/// `action`.
pub fn action(a: &ActionRecord) -> Value {
    let mut v = json!({
        "id": a.id,
        "status": a.status,
        "type": a.kind,
        "started_at": a.started_at,
        "completed_at": a.completed_at,
        "resource_id": a.resource_id,
        "resource_type": a.resource_type,
        "region_slug": a.region_slug,
    });
    if let (Some(r), Some(obj)) = (catalog::region(&a.region_slug), v.as_object_mut()) {
        obj.insert("region".into(), catalog::region_json(r));
    }
    v
}

/// One page of a collection with DigitalOcean's `links.pages` and `meta.total`.
pub fn page(
    key: &str,
    items: Vec<Value>,
    total: usize,
    page: usize,
    per_page: usize,
    path_and_query: impl Fn(usize) -> String,
) -> Value {
    let last = total.div_ceil(per_page).max(1);
    let mut pages = serde_json::Map::new();
    if page > 1 {
        pages.insert("first".into(), path_and_query(1).into());
        pages.insert("prev".into(), path_and_query(page - 1).into());
    }
    if page < last {
        pages.insert("next".into(), path_and_query(page + 1).into());
        pages.insert("last".into(), path_and_query(last).into());
    }
    json!({key: items, "links": {"pages": pages}, "meta": {"total": total}})
}
