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
    /// Image slug or id.
    pub image: String,
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

/// `{"droplets": [...], "links": ..., "meta": {"total": n}}`
#[derive(Debug, Deserialize, Serialize)]
pub struct DropletPage {
    /// This page.
    pub droplets: Vec<Droplet>,
    /// Paging links.
    #[serde(default)]
    pub links: serde_json::Value,
    /// Totals.
    pub meta: Meta,
}

/// `meta`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Meta {
    /// Items across all pages.
    pub total: u64,
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
