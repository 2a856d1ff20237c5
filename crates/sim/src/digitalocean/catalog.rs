//! What the simulated account can buy: datacenters, sizes and public base images, rendered in
//! DigitalOcean's JSON. A fixed catalog keeps runs reproducible; the slugs are DigitalOcean's
//! own so configuration written against the simulator works unchanged against the real API.

use serde_json::{Value, json};

/// One datacenter.
#[derive(Debug, Clone, Copy)]
pub struct RegionSpec {
    /// Slug, e.g. `fra1`.
    pub slug: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// One droplet size.
#[derive(Debug, Clone, Copy)]
pub struct SizeSpec {
    /// Slug, e.g. `s-1vcpu-1gb`.
    pub slug: &'static str,
    /// Memory in MiB.
    pub memory: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Disk in GB.
    pub disk: u32,
    /// Monthly price in US dollars.
    pub price_monthly: f64,
}

/// One public base image.
#[derive(Debug, Clone, Copy)]
pub struct BaseImage {
    /// Numeric id (DigitalOcean's ids for public images are stable numbers too).
    pub id: i64,
    /// Slug, e.g. `ubuntu-22-04-x64`.
    pub slug: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// Datacenters for spec 62.1's regions (us-east, us-west, eu-west, eu-north, apac).
pub const REGIONS: [RegionSpec; 7] = [
    RegionSpec {
        slug: "nyc1",
        name: "New York 1",
    },
    RegionSpec {
        slug: "nyc3",
        name: "New York 3",
    },
    RegionSpec {
        slug: "sfo1",
        name: "San Francisco 1",
    },
    RegionSpec {
        slug: "sfo3",
        name: "San Francisco 3",
    },
    RegionSpec {
        slug: "fra1",
        name: "Frankfurt 1",
    },
    RegionSpec {
        slug: "lon1",
        name: "London 1",
    },
    RegionSpec {
        slug: "sgp1",
        name: "Singapore 1",
    },
];

/// Sizes the fleet uses (spec 50.3).
pub const SIZES: [SizeSpec; 3] = [
    SizeSpec {
        slug: "s-1vcpu-1gb",
        memory: 1024,
        vcpus: 1,
        disk: 25,
        price_monthly: 6.0,
    },
    SizeSpec {
        slug: "s-1vcpu-2gb",
        memory: 2048,
        vcpus: 1,
        disk: 50,
        price_monthly: 12.0,
    },
    SizeSpec {
        slug: "s-2vcpu-4gb",
        memory: 4096,
        vcpus: 2,
        disk: 80,
        price_monthly: 24.0,
    },
];

/// Public images.
pub const IMAGES: [BaseImage; 3] = [
    BaseImage {
        id: 129_211_873,
        slug: "ubuntu-22-04-x64",
        name: "22.04 (LTS) x64",
    },
    BaseImage {
        id: 160_832_621,
        slug: "ubuntu-24-04-x64",
        name: "24.04 (LTS) x64",
    },
    BaseImage {
        id: 112_929_454,
        slug: "docker-20-04",
        name: "Docker on Ubuntu 20.04",
    },
];

/// DigitalOcean's cap on `user_data`.
pub const MAX_USER_DATA: usize = 64 * 1024;

/// Hours DigitalOcean bills in a month (its hourly price is monthly / 672).
const HOURS_PER_MONTH: f64 = 672.0;

/// A region by slug.
pub fn region(slug: &str) -> Option<&'static RegionSpec> {
    REGIONS.iter().find(|r| r.slug == slug)
}

/// A size by slug.
pub fn size(slug: &str) -> Option<&'static SizeSpec> {
    SIZES.iter().find(|s| s.slug == slug)
}

/// A base image by slug or numeric id.
pub fn base_image(slug: Option<&str>, id: Option<i64>) -> Option<&'static BaseImage> {
    IMAGES
        .iter()
        .find(|i| slug.is_some_and(|s| s == i.slug) || id.is_some_and(|n| n == i.id))
}

/// The region's default VPC, which DigitalOcean assigns when a create names none: a stable
/// UUID derived from the region's position in the catalog.
pub fn default_vpc(region: &str) -> String {
    let n = REGIONS.iter().position(|r| r.slug == region).unwrap_or(0);
    format!("5a4981aa-0000-4000-8000-{:012x}", n + 1)
}

/// `region` as DigitalOcean renders it.
pub fn region_json(r: &RegionSpec) -> Value {
    json!({
        "name": r.name,
        "slug": r.slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "image_transfer"],
        "available": true,
        "sizes": SIZES.iter().map(|s| s.slug).collect::<Vec<_>>(),
    })
}

/// `size` as DigitalOcean renders it.
pub fn size_json(s: &SizeSpec) -> Value {
    json!({
        "slug": s.slug,
        "memory": s.memory,
        "vcpus": s.vcpus,
        "disk": s.disk,
        "transfer": 1.0,
        "price_monthly": s.price_monthly,
        "price_hourly": s.price_monthly / HOURS_PER_MONTH,
        "regions": REGIONS.iter().map(|r| r.slug).collect::<Vec<_>>(),
        "available": true,
        "description": "Basic",
    })
}
