//! The droplets' network on DigitalOcean: one Cloud Firewall for the whole fleet, applied
//! by the `genesis` tag every droplet carries, and each droplet in its region's default VPC.
//!
//! The firewall lets in HTTPS (443, Caddy), HTTP (80, for ACME's HTTP-01 challenge and
//! Caddy's redirect) and, only from the configured operator ranges, SSH (22). Nothing else
//! reaches a droplet: the sidecar and n8n publish no port and are reached through Caddy.
//! Outbound is open: DigitalOcean drops whatever no rule allows, outbound included, and a
//! droplet must reach its package mirrors, its image registry, the control plane and the
//! tenant's APIs.
//!
//! Both are looked up before they are created, once per process: a firewall create is not
//! idempotent on DigitalOcean, so a second control plane (or a restart) finds the first
//! one's firewall by name instead of making another.

use std::collections::HashMap;

use genesis_cloud::{Cloud, CloudError, Firewall, FirewallTargets, InboundRule, OutboundRule};
use tokio::sync::{Mutex, OnceCell};

/// The tag every droplet carries, which the fleet firewall applies to.
pub const FLEET_TAG: &str = "genesis";

/// The name under `suffix` that spells `ipv4` with dashes (`203-0-113-5.<suffix>`); the
/// droplet's cloud-init computes the same name from its metadata at boot.
pub fn hostname(ipv4: &str, suffix: &str) -> String {
    format!("{}.{suffix}", ipv4.replace('.', "-"))
}

/// How droplets are reached from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropletNetwork {
    /// The Cloud Firewall's name.
    pub firewall_name: String,
    /// Addresses or CIDRs allowed to SSH in (port 22); empty: nobody.
    pub operator_ssh_cidrs: Vec<String>,
    /// Put each droplet in its region's default VPC.
    pub use_vpc: bool,
    /// Domain under which each droplet's hostname is its public address with dashes
    /// (`203-0-113-5.<suffix>`): a wildcard DNS service that answers such names with the
    /// address they spell (`sslip.io`, or the same software on a domain you own). Caddy gets
    /// its certificate for that name, and n8n's webhook URLs use it.
    pub host_suffix: String,
    /// Contact address for the ACME account of each droplet's Caddy (optional).
    pub acme_email: Option<String>,
}

impl Default for DropletNetwork {
    fn default() -> Self {
        Self {
            firewall_name: "genesis-droplets".into(),
            operator_ssh_cidrs: Vec::new(),
            use_vpc: true,
            host_suffix: "sslip.io".into(),
            acme_email: None,
        }
    }
}

impl DropletNetwork {
    /// The public hostname of the droplet at `ipv4`.
    pub fn hostname(&self, ipv4: &str) -> String {
        hostname(ipv4, &self.host_suffix)
    }

    /// The fleet firewall this configuration asks for.
    pub fn firewall(&self) -> Firewall {
        let anywhere = || FirewallTargets {
            addresses: vec!["0.0.0.0/0".into(), "::/0".into()],
            tags: Vec::new(),
        };
        let mut inbound = vec![
            InboundRule {
                protocol: "tcp".into(),
                ports: "443".into(),
                sources: anywhere(),
            },
            InboundRule {
                protocol: "tcp".into(),
                ports: "80".into(),
                sources: anywhere(),
            },
        ];
        if !self.operator_ssh_cidrs.is_empty() {
            inbound.push(InboundRule {
                protocol: "tcp".into(),
                ports: "22".into(),
                sources: FirewallTargets {
                    addresses: self.operator_ssh_cidrs.clone(),
                    tags: Vec::new(),
                },
            });
        }
        let outbound = ["tcp", "udp", "icmp"]
            .into_iter()
            .map(|protocol| OutboundRule {
                protocol: protocol.into(),
                // "0": every port (DigitalOcean's documented spelling).
                ports: "0".into(),
                destinations: anywhere(),
            })
            .collect();
        Firewall {
            id: String::new(),
            name: self.firewall_name.clone(),
            inbound_rules: inbound,
            outbound_rules: outbound,
            tags: vec![FLEET_TAG.into()],
        }
    }
}

/// What this process already knows of the network: the firewall exists, and each region's
/// default VPC.
#[derive(Debug, Default)]
pub struct NetworkCache {
    firewall: OnceCell<String>,
    vpcs: Mutex<HashMap<String, Option<String>>>,
}

impl NetworkCache {
    /// The fleet firewall's id, creating the firewall when the account has none by that name.
    pub async fn ensure_firewall<C: Cloud>(
        &self,
        cloud: &C,
        net: &DropletNetwork,
    ) -> Result<String, CloudError> {
        self.firewall
            .get_or_try_init(|| async {
                let wanted = net.firewall();
                let existing = cloud.firewall_list().await?;
                if let Some(f) = existing.into_iter().find(|f| f.name == wanted.name) {
                    if !f.tags.iter().any(|t| t == FLEET_TAG) {
                        tracing::warn!(
                            firewall = %f.name,
                            "the fleet firewall does not apply to the {FLEET_TAG} tag; droplets are not protected by it"
                        );
                    }
                    return Ok(f.id);
                }
                let created = cloud.firewall_create(&wanted).await?;
                tracing::info!(firewall = %created.name, id = %created.id, "created the fleet firewall");
                Ok(created.id)
            })
            .await
            .cloned()
    }

    /// The default VPC of datacenter `region` (a slug such as `fra1`), if it has one.
    pub async fn region_vpc<C: Cloud>(
        &self,
        cloud: &C,
        region: &str,
    ) -> Result<Option<String>, CloudError> {
        let mut vpcs = self.vpcs.lock().await;
        if let Some(v) = vpcs.get(region) {
            return Ok(v.clone());
        }
        let all = cloud.vpc_list().await?;
        for v in &all {
            if v.default {
                vpcs.insert(v.region.clone(), Some(v.id.clone()));
            }
        }
        Ok(vpcs.entry(region.to_owned()).or_insert(None).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firewall_opens_443_and_80_to_all_and_22_to_operators_only() {
        let mut net = DropletNetwork::default();
        let closed = net.firewall();
        let ports: Vec<&str> = closed
            .inbound_rules
            .iter()
            .map(|r| r.ports.as_str())
            .collect();
        assert_eq!(ports, ["443", "80"], "no SSH without an operator range");
        assert!(!ports.contains(&"8443") && !ports.contains(&"5678"));
        net.operator_ssh_cidrs = vec!["198.51.100.0/24".into()];
        let open = net.firewall();
        let ssh = open
            .inbound_rules
            .iter()
            .find(|r| r.ports == "22")
            .expect("ssh");
        assert_eq!(ssh.sources.addresses, ["198.51.100.0/24"]);
        assert_eq!(open.tags, [FLEET_TAG]);
        assert_eq!(
            open.outbound_rules.len(),
            3,
            "outbound must be allowed explicitly"
        );
    }

    #[test]
    fn hostnames_spell_the_address() {
        let net = DropletNetwork::default();
        assert_eq!(net.hostname("203.0.113.5"), "203-0-113-5.sslip.io");
    }
}
