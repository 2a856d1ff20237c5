//! The simulator's records and the rules that move them: droplets, images (base and
//! snapshots), actions and their effects. Time-driven changes settle lazily from timestamps,
//! so an idle fleet costs only its records; the boot hook, when present, gets a timer per
//! transition instead (see `boot`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::catalog;

/// `droplet.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    New,
    /// Running.
    Active,
    /// Powered off.
    Off,
    /// Archived.
    Archive,
}

/// `action.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    /// Running.
    InProgress,
    /// Done.
    Completed,
    /// Failed.
    Errored,
}

/// What a droplet will do once it is up, drawn at create time from the faults in force, so
/// a seeded run replays the same failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fate {
    /// Boots and keeps running.
    Healthy,
    /// Reaches `active` at the API but never runs its cloud-init (nothing boots inside).
    NeverBoots,
    /// Boots, then stops answering after this many milliseconds while the API still says
    /// `active`: the zombie of spec 54.
    GoesDark(u64),
}

/// A virtual droplet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropletRecord {
    pub id: i64,
    pub name: String,
    pub status: Status,
    pub tags: Vec<String>,
    pub ip: Ipv4Addr,
    pub region: String,
    pub size: String,
    pub image_id: i64,
    pub created_at: String,
    pub user_data: Option<String>,
    pub vpc_uuid: Option<String>,
    pub snapshot_ids: Vec<i64>,
    pub fate: Fate,
    /// Bumped on every power transition so a timer armed for an earlier boot does nothing.
    pub generation: u64,
}

/// A base image or a snapshot (DigitalOcean keeps both in one id space).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: i64,
    pub name: String,
    /// `base` or `snapshot`.
    pub kind: String,
    pub slug: Option<String>,
    pub regions: Vec<String>,
    pub created_at: String,
    pub min_disk_size: u32,
    pub size_gigabytes: f64,
    /// The droplet a snapshot was taken of.
    pub resource_id: Option<i64>,
    pub tags: Vec<String>,
}

/// What an action changes when it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Effect {
    /// The droplet's status becomes this.
    Power(Status),
    /// A snapshot of the droplet appears.
    Snapshot {
        name: String,
        region: String,
        min_disk_size: u32,
    },
    /// The image becomes available in one more region.
    Transfer { region: String },
}

/// An action and its scheduled outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: i64,
    pub kind: String,
    pub status: ActionStatus,
    pub resource_id: i64,
    /// `droplet` or `image`.
    pub resource_type: String,
    pub started_at: String,
    pub completed_at: Option<String>,
    pub region_slug: String,
    /// Unix milliseconds at which it settles.
    pub done_at_ms: u64,
    pub outcome: ActionStatus,
    pub effect: Effect,
}

/// A droplet whose power changed as an action settled; the boot hook hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerChange {
    /// It came up (create, power on, reboot, power cycle).
    Up { droplet: i64, generation: u64 },
    /// It went down; `restart` when it comes straight back up (reboot, power cycle).
    Down { droplet: i64, restart: bool },
}

/// Everything the simulator knows; persisted as a whole by `persist`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct World {
    pub droplets: BTreeMap<i64, DropletRecord>,
    pub images: BTreeMap<i64, ImageRecord>,
    pub actions: BTreeMap<i64, ActionRecord>,
    pub next_id: i64,
    pub next_ip: u32,
    /// Cloud Firewalls, as rendered.
    #[serde(default)]
    pub firewalls: Vec<serde_json::Value>,
    #[serde(skip)]
    pub pending: Vec<i64>,
    #[serde(skip)]
    pub by_tag: HashMap<String, BTreeSet<i64>>,
    #[serde(skip)]
    pub by_ip: HashMap<Ipv4Addr, i64>,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// ISO 8601 UTC, second precision, as DigitalOcean writes timestamps.
pub fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Where the virtual fleet's public addresses start: 127.64.0.0/10, all of it on loopback.
pub const FLEET_NET: Ipv4Addr = Ipv4Addr::new(127, 64, 0, 0);

impl World {
    /// An empty world holding the public base images.
    pub fn new() -> Self {
        let mut w = World {
            next_id: 100_000_000,
            // Each simulator starts at a random /24 of the /10, so that two of them on one
            // machine (parallel test processes, a benchmark beside a demo) do not hand out
            // the same addresses, whose sidecar and n8n ports would then clash. 14,000 blocks
            // leave room for ~600,000 droplets above the last start.
            next_ip: 1 + 256 * rand::random_range(0..14_000u32),
            ..World::default()
        };
        for b in catalog::IMAGES {
            w.images.insert(
                b.id,
                ImageRecord {
                    id: b.id,
                    name: b.name.into(),
                    kind: "base".into(),
                    slug: Some(b.slug.into()),
                    regions: catalog::REGIONS.iter().map(|r| r.slug.into()).collect(),
                    created_at: iso(0),
                    min_disk_size: 15,
                    size_gigabytes: 2.36,
                    resource_id: None,
                    tags: vec![],
                },
            );
        }
        w
    }

    /// Rebuilds the indexes a loaded world does not carry.
    pub fn reindex(&mut self) {
        self.by_tag.clear();
        self.by_ip.clear();
        let rows: Vec<(i64, Ipv4Addr, Vec<String>)> = self
            .droplets
            .values()
            .map(|d| (d.id, d.ip, d.tags.clone()))
            .collect();
        for (id, ip, tags) in rows {
            self.index(id, ip, &tags);
        }
        self.pending = self
            .actions
            .values()
            .filter(|a| a.status == ActionStatus::InProgress)
            .map(|a| a.id)
            .collect();
    }

    fn index(&mut self, id: i64, ip: Ipv4Addr, tags: &[String]) {
        self.by_ip.insert(ip, id);
        for t in tags {
            self.by_tag.entry(t.clone()).or_default().insert(id);
        }
    }

    /// A fresh id (droplets, images and actions share DigitalOcean's numeric space here).
    pub fn take_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a droplet with the next loopback address.
    pub fn add_droplet(&mut self, mut d: DropletRecord) -> DropletRecord {
        d.ip = Ipv4Addr::from(u32::from(FLEET_NET) + self.next_ip);
        self.next_ip += 1;
        self.index(d.id, d.ip, &d.tags.clone());
        self.droplets.insert(d.id, d.clone());
        d
    }

    /// Removes a droplet and its index entries.
    pub fn remove_droplet(&mut self, id: i64) -> Option<DropletRecord> {
        let d = self.droplets.remove(&id)?;
        self.by_ip.remove(&d.ip);
        for t in &d.tags {
            if let Some(set) = self.by_tag.get_mut(t) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_tag.remove(t);
                }
            }
        }
        Some(d)
    }

    /// Droplets carrying `tag`, in id order, without scanning the fleet.
    pub fn tagged(&self, tag: &str) -> impl Iterator<Item = &DropletRecord> {
        self.by_tag
            .get(tag)
            .into_iter()
            .flatten()
            .filter_map(|id| self.droplets.get(id))
    }

    /// Records a new action that settles after `delay`.
    pub fn add_action(&mut self, mut a: ActionRecord, delay: Duration) -> ActionRecord {
        a.done_at_ms = now_ms() + delay.as_millis() as u64;
        self.pending.push(a.id);
        self.actions.insert(a.id, a.clone());
        a
    }

    /// Applies every action whose time has come; returns the power changes for the boot hook.
    pub fn settle(&mut self) -> Vec<PowerChange> {
        let now = now_ms();
        let mut changes = Vec::new();
        let mut still = Vec::with_capacity(self.pending.len());
        for id in std::mem::take(&mut self.pending) {
            let Some(a) = self.actions.get_mut(&id) else {
                continue;
            };
            if a.done_at_ms > now {
                still.push(id);
                continue;
            }
            a.status = a.outcome;
            a.completed_at = Some(iso(now));
            if a.outcome != ActionStatus::Completed {
                continue;
            }
            let (rid, effect, kind) = (a.resource_id, a.effect.clone(), a.kind.clone());
            self.apply(rid, &kind, effect, now, &mut changes);
        }
        self.pending = still;
        changes
    }

    fn apply(
        &mut self,
        resource: i64,
        kind: &str,
        effect: Effect,
        now: u64,
        changes: &mut Vec<PowerChange>,
    ) {
        match effect {
            Effect::Power(status) => {
                let Some(d) = self.droplets.get_mut(&resource) else {
                    return;
                };
                let was_up = d.status == Status::Active;
                d.status = status;
                let restart = matches!(kind, "reboot" | "power_cycle");
                if was_up && (status == Status::Off || restart) {
                    d.generation += 1;
                    changes.push(PowerChange::Down {
                        droplet: d.id,
                        restart,
                    });
                }
                if status == Status::Active && (!was_up || restart) {
                    d.generation += 1;
                    changes.push(PowerChange::Up {
                        droplet: d.id,
                        generation: d.generation,
                    });
                }
            }
            Effect::Snapshot {
                name,
                region,
                min_disk_size,
            } => {
                let id = self.take_id();
                self.images.insert(
                    id,
                    ImageRecord {
                        id,
                        name,
                        kind: "snapshot".into(),
                        slug: None,
                        regions: vec![region],
                        created_at: iso(now),
                        min_disk_size,
                        size_gigabytes: 2.36,
                        resource_id: Some(resource),
                        tags: vec![],
                    },
                );
                if let Some(d) = self.droplets.get_mut(&resource) {
                    d.snapshot_ids.push(id);
                }
            }
            Effect::Transfer { region } => {
                if let Some(i) = self.images.get_mut(&resource)
                    && !i.regions.contains(&region)
                {
                    i.regions.push(region);
                }
            }
        }
    }
}
