//! Disaster recovery's vocabulary (spec 66): the snapshot schedule of 66.2, the backup
//! regions of 66.3 and the price of keeping a snapshot (66.5).
//!
//! # How the schedule maps onto DigitalOcean
//! A droplet gets one snapshot a day. It is a **weekly** one when the droplet has none from
//! the last 7 days (kept 30 days), else a **daily** one (kept 7 days), so a droplet holds
//! about 7 dailies and 4 weeklies, and never two snapshots for one day. Each day's snapshot
//! is then transferred to the backup datacenter: the **cross-region** copy. DigitalOcean
//! adds the region to the same image (it has no way to drop one region of an image), so the
//! copy lives as long as its snapshot: 7 days for a daily, as 66.2 asks, and 30 for a
//! weekly, more than it asks. **Pre-update** snapshots (48 h) are taken before an image
//! rollout or a swap.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Region;

/// Why a snapshot was taken, which decides how long it is kept (spec 66.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// The day's snapshot: kept 7 days.
    Daily,
    /// The week's: kept 30 days.
    Weekly,
    /// Before an image rollout or a swap: kept 48 hours.
    PreUpdate,
}

impl SnapshotKind {
    /// Every kind.
    pub const ALL: [SnapshotKind; 3] = [Self::Daily, Self::Weekly, Self::PreUpdate];

    /// Its name in the database and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::PreUpdate => "pre_update",
        }
    }

    /// The kind named `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// How long a snapshot of this kind is kept after it is taken.
    pub fn retention(self) -> Duration {
        match self {
            Self::Daily => DAY * 7,
            Self::Weekly => DAY * 30,
            Self::PreUpdate => Duration::from_secs(48 * 3600),
        }
    }
}

/// One day.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
/// A droplet is due for its snapshot this long after its last one (spec 66.2: daily).
pub const SNAPSHOT_EVERY: Duration = DAY;
/// A weekly snapshot is taken when the last one is this old.
pub const WEEKLY_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
/// A cross-region transfer not finished after this is orphaned (spec 66.5): its image is
/// deleted.
pub const ORPHANED_TRANSFER_AFTER: Duration = DAY;
/// A droplet whose snapshot failed is tried again after this (and the failed one deleted,
/// spec 66.5's "delete after retry").
pub const FAILED_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// After a failover, a replaced droplet's snapshots are kept whole this long (spec 66.5:
/// "day 7"), for a failback or a look at what was lost; from then on each goes when its
/// retention ends ("delete daily").
pub const POST_FAILOVER_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// After a failover, whatever is left of a replaced droplet's snapshots goes this long after
/// its tenant was restored (spec 66.5: "day 30 final cleanup").
pub const POST_FAILOVER_FINAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// What keeping one snapshot costs a month (spec 66.5: 105,000 snapshots for $26,250).
pub const SNAPSHOT_MONTH_CENTS: i64 = 25;

impl Region {
    /// The region that holds this one's cross-region copies and takes its tenants in a
    /// failover (spec 66.3).
    pub fn backup(self) -> Region {
        match self {
            Region::UsEast => Region::UsWest,
            Region::UsWest => Region::UsEast,
            Region::EuWest => Region::EuNorth,
            Region::EuNorth => Region::EuWest,
            Region::Apac => Region::UsWest,
        }
    }
}

/// How many tenant restores a failover runs at once (spec 66.4: "batch create droplets from
/// backups, 100 concurrent").
pub const RESTORES_AT_ONCE: i64 = 100;

impl Region {
    /// Whether the region is in the European Union's residency area, whose tenants' data
    /// may not leave it (spec 62.2's GDPR compliance).
    pub fn is_eu(self) -> bool {
        matches!(self, Region::EuWest | Region::EuNorth)
    }

    /// Whether a tenant whose data lives in `self` may run in `target` without an
    /// operator's override: an EU tenant only inside the EU. Spec 66.3 sends Singapore's
    /// tenants to San Francisco, so only the EU's area is enforced.
    pub fn may_run_in(self, target: Region) -> bool {
        !self.is_eu() || target.is_eu()
    }
}

/// Where a regional failover stands (spec 66.4's phases; assessment happens when it starts,
/// in the same transaction that writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverPhase {
    /// Phase 2: tenants' restores are started, [`RESTORES_AT_ONCE`] at a time, and run.
    Provisioning,
    /// Phase 3: every restore finished; the new droplets' heartbeats are awaited.
    Verifying,
    /// Phase 3 is done: every tenant that could be restored runs in the target.
    Restored,
    /// Phase 4 is done: the failed datacenter's droplets are deleted.
    Closed,
}

/// What a failover does with one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestorePlan {
    /// From its newest snapshot copied to the target datacenter.
    Restore,
    /// It has no usable backup: a fresh droplet from the vault and the templates; what its
    /// droplet held is lost, and the operator is told.
    Reignite,
    /// Not moved: the target is outside its residency area and no override was given.
    Held,
    /// A planned move (a failback): from a snapshot taken for the move and copied to the
    /// target, so that what it wrote until then comes along.
    Migrate,
}

/// Where one tenant's restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreState {
    /// Not started yet (waiting for a slot among the [`RESTORES_AT_ONCE`]).
    Waiting,
    /// Its restore saga runs.
    Restoring,
    /// Its saga finished: the new droplet hand-shook, holds its credentials and runs its
    /// workflows.
    Restored,
    /// The new droplet's first heartbeat arrived (spec 66.4 phase 3).
    Verified,
    /// Its saga rolled back; the operator is told why.
    Failed,
    /// See [`RestorePlan::Held`].
    Held,
}

macro_rules! codes {
    ($ty:ty { $($v:ident => $c:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$v),+];
            /// Its name in the database and the API.
            pub fn code(self) -> &'static str {
                match self { $(<$ty>::$v => $c),+ }
            }
            /// The value named `code`.
            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }
        }
    };
}
codes!(FailoverPhase { Provisioning => "provisioning", Verifying => "verifying",
    Restored => "restored", Closed => "closed" });
codes!(RestorePlan { Restore => "restore", Reignite => "reignite", Held => "held",
    Migrate => "migrate" });
codes!(RestoreState { Waiting => "waiting", Restoring => "restoring", Restored => "restored",
    Verified => "verified", Failed => "failed", Held => "held" });

impl RestoreState {
    /// Whether nothing more will happen to this tenant in this failover.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Verified | Self::Failed | Self::Held)
    }
}

/// The datacenter a snapshot taken in `datacenter` is copied to (spec 66.3: nyc1↔sfo1,
/// fra1→lon1, lon1→fra1, sgp1→sfo1; nyc3 and sfo3, where droplets are created first, pair
/// with each other the same way). `None` for a datacenter the platform does not use.
pub fn backup_datacenter(datacenter: &str) -> Option<&'static str> {
    Some(match datacenter {
        "nyc1" => "sfo1",
        "sfo1" => "nyc1",
        "nyc3" => "sfo3",
        "sfo3" => "nyc3",
        "fra1" => "lon1",
        "lon1" => "fra1",
        "sgp1" => "sfo1",
        _ => return None,
    })
}

/// The region a datacenter belongs to.
pub fn region_of_datacenter(datacenter: &str) -> Option<Region> {
    Region::ALL
        .into_iter()
        .find(|r| r.datacenters().contains(&datacenter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datacenter_backs_up_to_its_regions_backup() {
        for r in Region::ALL {
            for dc in r.datacenters() {
                let backup = backup_datacenter(dc).expect("every datacenter has a backup");
                assert_eq!(region_of_datacenter(backup), Some(r.backup()), "{dc}");
                assert_ne!(region_of_datacenter(backup), Some(r), "{dc}");
            }
        }
        assert_eq!(backup_datacenter("ams3"), None);
    }

    #[test]
    fn only_the_eu_is_fenced_and_its_backups_stay_inside() {
        for r in Region::ALL {
            assert!(r.may_run_in(r));
            if r.is_eu() {
                assert!(r.backup().is_eu(), "{r}: 66.3 keeps EU backups in the EU");
                assert!(!r.may_run_in(Region::UsEast));
            }
        }
        assert!(
            Region::Apac.may_run_in(Region::UsWest),
            "66.3: sgp1 -> sfo1"
        );
    }

    #[test]
    fn failover_codes_round_trip() {
        for p in FailoverPhase::ALL {
            assert_eq!(FailoverPhase::from_code(p.code()), Some(*p));
        }
        for p in RestorePlan::ALL {
            assert_eq!(RestorePlan::from_code(p.code()), Some(*p));
        }
        for s in RestoreState::ALL {
            assert_eq!(RestoreState::from_code(s.code()), Some(*s));
        }
        assert_eq!(RestoreState::from_code("nope"), None);
    }

    #[test]
    fn kinds_round_trip_and_keep_66_2s_times() {
        for k in SnapshotKind::ALL {
            assert_eq!(SnapshotKind::from_code(k.code()), Some(k));
        }
        assert_eq!(SnapshotKind::Daily.retention(), DAY * 7);
        assert_eq!(SnapshotKind::Weekly.retention(), DAY * 30);
        assert_eq!(SnapshotKind::PreUpdate.retention().as_secs(), 48 * 3600);
    }
}
