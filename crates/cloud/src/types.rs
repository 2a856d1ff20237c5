//! DigitalOcean's JSON, as far as the fleet reads it (field names as in the OpenAPI subset).
//! Only this crate knows these shapes.

use serde::{Deserialize, Serialize};

/// `droplet.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropletStatus {
    /// Being created.
    New,
    /// Running.
    Active,
    /// Powered off.
    Off,
    /// Archived (destroyed, record kept).
    Archive,
}

impl DropletStatus {
    /// The vendor-neutral fact `core`'s lifecycle reasons about.
    pub fn power(self) -> genesis_core::CloudPower {
        use genesis_core::CloudPower as P;
        match self {
            DropletStatus::New => P::Provisioning,
            DropletStatus::Active => P::Running,
            DropletStatus::Off => P::Off,
            DropletStatus::Archive => P::Gone,
        }
    }
}

/// A droplet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Droplet {
    /// DigitalOcean's id.
    pub id: i64,
    /// Hostname.
    pub name: String,
    /// Status.
    pub status: DropletStatus,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Addresses.
    pub networks: Networks,
    /// Region.
    pub region: RegionRef,
    /// Size slug.
    pub size_slug: String,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// Snapshots taken of it.
    #[serde(default)]
    pub snapshot_ids: Vec<i64>,
    /// The VPC network it is in.
    #[serde(default)]
    pub vpc_uuid: Option<String>,
}

impl Droplet {
    /// The public IPv4 address, once assigned.
    pub fn public_ipv4(&self) -> Option<&str> {
        self.networks
            .v4
            .iter()
            .find(|n| n.kind == "public")
            .map(|n| n.ip_address.as_str())
    }
}

/// `droplet.networks`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Networks {
    /// IPv4 interfaces.
    #[serde(default)]
    pub v4: Vec<NetworkV4>,
    /// IPv6 interfaces (unused by the fleet).
    #[serde(default)]
    pub v6: Vec<serde_json::Value>,
}

/// One IPv4 interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkV4 {
    /// Address.
    pub ip_address: String,
    /// Netmask.
    pub netmask: String,
    /// Gateway (absent for private interfaces).
    pub gateway: Option<String>,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `droplet.region` (only the slug is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRef {
    /// Datacenter slug, e.g. `fra1`.
    pub slug: String,
}

/// `action.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    /// Still running.
    InProgress,
    /// Done.
    Completed,
    /// Failed.
    Errored,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Action id.
    pub id: i64,
    /// Status.
    pub status: ActionStatus,
    /// `create`, `power_on`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Droplet id it applies to.
    pub resource_id: Option<i64>,
    /// `droplet`, `image`, ...
    pub resource_type: String,
    /// Start time.
    pub started_at: String,
    /// End time.
    pub completed_at: Option<String>,
    /// Datacenter slug.
    pub region_slug: Option<String>,
}

/// `POST /v2/droplets` body (single create).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateDroplet {
    /// Hostname (DigitalOcean's pattern: letters, digits, '.', '-').
    pub name: String,
    /// Datacenter slug.
    pub region: String,
    /// Size slug, e.g. `s-1vcpu-1gb`.
    pub size: String,
    /// Base image slug, or the id of a snapshot to restore.
    pub image: ImageRef,
    /// Cloud-init document (at most 64 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Tags; the client adds `genesis` and the workspace tag.
    #[serde(default)]
    pub tags: Vec<String>,
    /// SSH key ids or fingerprints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
    /// VPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_uuid: Option<String>,
}

/// `image` of a create: DigitalOcean takes a public image's slug or any image's numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageRef {
    /// A snapshot or image id (hibernation restores from one, spec 55).
    Id(i64),
    /// A public image slug, e.g. `ubuntu-22-04-x64`.
    Slug(String),
}

impl From<&str> for ImageRef {
    fn from(slug: &str) -> Self {
        ImageRef::Slug(slug.to_owned())
    }
}

/// Droplet power actions the fleet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    /// Power on.
    PowerOn,
    /// Hard power off.
    PowerOff,
    /// Graceful shutdown (only issued; follow with `PowerOff` if needed).
    Shutdown,
    /// Hard power cycle (zombie recovery, spec 54.4).
    PowerCycle,
    /// Graceful reboot.
    Reboot,
}

impl PowerAction {
    /// The `type` string of the request body.
    pub fn code(self) -> &'static str {
        match self {
            PowerAction::PowerOn => "power_on",
            PowerAction::PowerOff => "power_off",
            PowerAction::Shutdown => "shutdown",
            PowerAction::PowerCycle => "power_cycle",
            PowerAction::Reboot => "reboot",
        }
    }
}

/// `{"droplet": ...}`
#[derive(Debug, Deserialize, Serialize)]
pub struct DropletEnvelope {
    /// The droplet.
    pub droplet: Droplet,
    /// `links.actions` on a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<ActionLinks>,
}

/// `links` of a create response.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ActionLinks {
    /// The create action.
    #[serde(default)]
    pub actions: Vec<ActionLink>,
}

/// One action link.
#[derive(Debug, Deserialize, Serialize)]
pub struct ActionLink {
    /// Action id.
    pub id: i64,
    /// `create`.
    pub rel: String,
    /// URL of the action.
    pub href: String,
}

/// `{"action": ...}`
#[derive(Debug, Deserialize, Serialize)]
pub struct ActionEnvelope {
    /// The action.
    pub action: Action,
}

/// DigitalOcean's error body.
#[derive(Debug, Deserialize, Serialize)]
pub struct ApiErrorBody {
    /// Short id, e.g. `not_found`, `unprocessable_entity`.
    pub id: String,
    /// Human message.
    pub message: String,
    /// Optional request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Deserializes an id DigitalOcean writes as a number in some places and as a string in
/// others (`/v2/snapshots` uses strings, `/v2/droplets/{id}/snapshots` numbers).
fn id_either<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Num(i64),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Num(n) => Ok(n),
        Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

/// A droplet snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Id (usable as a create's `image`).
    #[serde(deserialize_with = "id_either")]
    pub id: i64,
    /// Name.
    pub name: String,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// Datacenters it can be restored in.
    pub regions: Vec<String>,
    /// Smallest disk that can hold it, GB.
    pub min_disk_size: u64,
    /// Billable size, GB.
    pub size_gigabytes: f64,
    /// The droplet it was taken of: `/v2/snapshots` gives the id as a string (absent from
    /// a droplet's own snapshot list).
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Its tags (`/v2/snapshots` only).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An image (base image or snapshot) as `/v2/images/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `base`, `snapshot`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Public slug, for base images.
    pub slug: Option<String>,
    /// Datacenters it is available in.
    pub regions: Vec<String>,
}

/// A datacenter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Slug, e.g. `fra1`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Whether new droplets can be created there.
    pub available: bool,
    /// Sizes offered there.
    pub sizes: Vec<String>,
    /// Features, e.g. `metadata`, `image_transfer`.
    pub features: Vec<String>,
}

/// A droplet size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Size {
    /// Slug, e.g. `s-1vcpu-1gb`.
    pub slug: String,
    /// Memory, MiB.
    pub memory: u64,
    /// Virtual CPUs.
    pub vcpus: u64,
    /// Disk, GB.
    pub disk: u64,
    /// US dollars per month.
    pub price_monthly: f64,
    /// US dollars per hour.
    pub price_hourly: f64,
    /// Datacenters offering it.
    pub regions: Vec<String>,
    /// Whether it can be ordered.
    pub available: bool,
}

/// Where a firewall rule lets traffic come from (inbound) or go to (outbound).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallTargets {
    /// IPv4/IPv6 addresses and CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Droplets by tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// One inbound rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRule {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// One port, a range (`8000-9000`), or `0` for all.
    pub ports: String,
    /// Who may connect.
    pub sources: FirewallTargets,
}

/// One outbound rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRule {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// One port, a range, or `0` for all.
    pub ports: String,
    /// Where to.
    pub destinations: FirewallTargets,
}

/// A Cloud Firewall as the fleet asks for it (`POST /v2/firewalls`) and reads it back.
/// DigitalOcean drops whatever no rule allows, outbound included: a firewall with inbound
/// rules only would cut droplets off from their package mirrors and the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// Its id (empty in a create).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Name (letters, digits, `.`, `-`, `_`).
    pub name: String,
    /// What may come in.
    #[serde(default)]
    pub inbound_rules: Vec<InboundRule>,
    /// What may go out.
    #[serde(default)]
    pub outbound_rules: Vec<OutboundRule>,
    /// Droplets it applies to by tag.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A VPC network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// Its UUID (a droplet create's `vpc_uuid`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Region slug (`nyc1`, `fra1`, ...).
    pub region: String,
    /// Private range, e.g. `10.116.0.0/20`.
    #[serde(default)]
    pub ip_range: String,
    /// The region's default network.
    #[serde(default)]
    pub default: bool,
}
