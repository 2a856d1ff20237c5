//! Region-failure drills (issue 26, spec 66.1's "region total failure"): a datacenter can be
//! failed and restored. While it is down:
//! - every API call about a droplet there, or creating one there, answers 503;
//! - its running droplets go dark, and no power cycle brings them back until it recovers;
//! - an image (snapshot) is readable, restorable and transferable only where it was copied
//!   to: its `regions` no longer list the failed datacenter, and one held nowhere else
//!   answers 503, as a snapshot stuck in a dark region would.
//!
//! DigitalOcean has no such switch; this is the simulator's stand-in for an outage, so that
//! the failover can be rehearsed end to end.

use axum::http::StatusCode;
use axum::response::Response;

use super::Simulator;
use super::gate::error;
use super::state::{Fate, ImageRecord, Status};

/// DigitalOcean's answer while a datacenter is down.
pub fn region_down() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        "The region is currently unavailable.",
    )
}

impl Simulator {
    /// Fails datacenter `region`: its droplets go dark for as long as it is down. False
    /// for a datacenter the catalog does not know.
    pub fn fail_region(&self, region: &str) -> bool {
        if super::catalog::region(region).is_none() {
            return false;
        }
        let running: Vec<i64> = {
            let mut s = self.lock();
            let running: Vec<i64> = s
                .world
                .droplets
                .values()
                .filter(|d| d.region == region && d.status == Status::Active)
                .map(|d| d.id)
                .collect();
            s.failed_regions
                .entry(region.to_owned())
                .or_default()
                .extend(running.iter().copied());
            running
        };
        for id in &running {
            let id = *id;
            self.go_dark(id, None);
            self.never_boot_again(id);
        }
        true
    }

    /// Ends the outage of `region`: calls about it work again, and its droplets can be
    /// power-cycled back.
    pub fn restore_region(&self, region: &str) {
        let mut s = self.lock();
        let darkened = s.failed_regions.remove(region).unwrap_or_default();
        for id in darkened {
            if let Some(d) = s.world.droplets.get_mut(&id) {
                d.fate = Fate::Healthy;
            }
        }
    }

    /// The datacenters down now.
    pub fn failed_regions(&self) -> Vec<String> {
        self.lock().failed_regions.keys().cloned().collect()
    }
}

impl super::Inner {
    /// Whether datacenter `region` is down.
    pub(crate) fn region_down(&self, region: &str) -> bool {
        self.failed_regions.contains_key(region)
    }

    /// `image` as it can be seen now: without the datacenters that are down; `None` when
    /// it is held only there.
    pub(crate) fn visible_image(&self, image: &ImageRecord) -> Option<ImageRecord> {
        if image.regions.iter().all(|r| !self.region_down(r)) {
            return Some(image.clone());
        }
        let regions: Vec<String> = image
            .regions
            .iter()
            .filter(|r| !self.region_down(r))
            .cloned()
            .collect();
        (!regions.is_empty()).then(|| ImageRecord {
            regions,
            ..image.clone()
        })
    }
}
