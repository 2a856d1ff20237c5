//! The service matrix (spec 57.2) as data: each outside service's category, what the tenant
//! does to get it, and how it is billed, with the price the tenant pays and what it costs
//! Genesis.
//!
//! The matrix is versioned configuration (`config/service-matrix.toml`, built in here) and
//! is checked whole before anything uses it: a price below its wholesale cost, a metered
//! service without its transaction type, two services billed under one type, or a BYO
//! service with a price are refused with the service's name, so a bad edit stops the
//! start-up instead of a tenant's bill.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::money::{Direction, Millicents, MoneyParseError, TransferKind};

/// The matrix this build ships with.
pub const BUILTIN: &str = include_str!("../../../config/service-matrix.toml");

/// The matrix format this build reads.
pub const VERSION: u32 = 1;

/// Who runs the integration and who pays (spec 57.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceCategory {
    /// Genesis operates the OAuth app; included.
    ManagedProxy,
    /// Genesis provides the API key; paid from the wallet.
    ManagedWholesale,
    /// The tenant pastes their own key and pays the vendor.
    ByoKey,
    /// The tenant configures the service themselves.
    ByoSetup,
}

impl ServiceCategory {
    /// As spec 57.1 writes it.
    pub fn label(self) -> &'static str {
        match self {
            ServiceCategory::ManagedProxy => "Managed (Proxy)",
            ServiceCategory::ManagedWholesale => "Managed (Wholesale)",
            ServiceCategory::ByoKey => "BYO (Key)",
            ServiceCategory::ByoSetup => "BYO (Setup)",
        }
    }
}

/// How a service is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "model")]
pub enum Billing {
    /// Part of the subscription.
    Included,
    /// The tenant pays the vendor directly.
    UserPaysDirect,
    /// Each operation is charged to the wallet.
    PerCall {
        /// What the tenant pays per operation.
        price: Millicents,
        /// What one operation costs Genesis.
        wholesale: Millicents,
        /// The wallet transaction type it is recorded under.
        transaction: TransferKind,
    },
    /// A flat monthly price.
    Monthly {
        /// What the tenant pays per month.
        price: Millicents,
        /// What it costs Genesis per month at most.
        wholesale: Millicents,
    },
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its name in URLs and reports (`google_cse`).
    pub id: String,
    /// Its name for people.
    pub name: String,
    /// Its category.
    pub category: ServiceCategory,
    /// What the tenant does to get it.
    pub user_action: String,
    /// How it is billed.
    pub billing: Billing,
    /// The onboarding wizard's stage that sets it up, if any.
    pub wizard_stage: Option<String>,
    /// Its limits in the rate-limit registry (spec 59.2).
    pub limits: Limits,
}

/// The onboarding wizard's stages (spec 60.1), in order: what a service's `wizard_stage`
/// may name. The wizard shows each stage's services from the matrix.
pub const WIZARD_STAGES: [&str; 7] = [
    "account", "brand", "email", "ai_keys", "dns", "booking", "ignition",
];

/// A service's limits (spec 59.2), global and per tenant; `None` is no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute, as a token bucket (GCRA), for the whole platform.
    pub rpm_global: Option<u32>,
    /// Requests per minute per tenant.
    pub rpm_per_tenant: Option<u32>,
    /// Calls per UTC day (a hard cap), for the whole platform.
    pub daily_global: Option<u32>,
    /// Calls per UTC day per tenant.
    pub daily_per_tenant: Option<u32>,
    /// Calls in flight at once (slots), for the whole platform.
    pub concurrent_global: Option<u32>,
    /// Calls in flight at once per tenant.
    pub concurrent_per_tenant: Option<u32>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        *self != Limits::default()
    }
}

impl Service {
    /// The per-operation price, wholesale cost and type of a metered service.
    pub fn per_call(&self) -> Option<(Millicents, Millicents, TransferKind)> {
        match self.billing {
            Billing::PerCall {
                price,
                wholesale,
                transaction,
            } => Some((price, wholesale, transaction)),
            _ => None,
        }
    }

    /// What it costs the tenant, for people: "included", "$0.005 a call from your wallet".
    pub fn cost_to_tenant(&self) -> String {
        match self.billing {
            Billing::Included => "included in your plan".into(),
            Billing::UserPaysDirect => "you pay the provider directly, with your own key".into(),
            Billing::PerCall { price, .. } => format!("{price} a call, from your wallet"),
            Billing::Monthly { price, .. } => format!("{price} a month"),
        }
    }
}

/// The whole matrix, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceMatrix {
    /// Its format version.
    pub version: u32,
    /// The services, in the file's order.
    pub services: Vec<Service>,
    /// What the subscriptions cost, and the overhead each tenant bears.
    pub plans: Plans,
}

/// The subscription price per tier, and each tenant's monthly share of the platform's
/// overhead: the margin report's first revenue line and last cost line (spec 59.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Plans {
    /// Monthly subscription prices by tier (a tier not listed costs nothing).
    pub subscriptions: Vec<(crate::Tier, Millicents)>,
    /// Overhead per tenant per month.
    pub overhead_per_tenant: Millicents,
}

impl Plans {
    /// A tier's monthly subscription price.
    pub fn subscription(&self, tier: crate::Tier) -> Millicents {
        self.subscriptions
            .iter()
            .find(|(t, _)| *t == tier)
            .map_or(Millicents::ZERO, |(_, m)| *m)
    }
}

/// Why a matrix was refused; names the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// Not TOML, or a field of the wrong shape.
    #[error("the service matrix is not readable: {0}")]
    Unreadable(String),
    /// A format this build does not read.
    #[error("the service matrix is version {found}; this build reads version {VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// A rule broken by one service.
    #[error("service {service:?}: {problem}")]
    Service {
        /// The service's id.
        service: String,
        /// What is wrong, for people.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    version: u32,
    #[serde(default, rename = "service")]
    services: Vec<RawService>,
    #[serde(default)]
    plans: Option<RawPlans>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlans {
    #[serde(default)]
    subscription: std::collections::BTreeMap<String, String>,
    overhead_per_tenant: Option<String>,
}

impl RawPlans {
    fn check(self) -> Result<Plans, MatrixError> {
        let problem = |p: String| MatrixError::Service {
            service: "plans".into(),
            problem: p,
        };
        let mut subscriptions = Vec::new();
        for (tier, price) in self.subscription {
            let tier = crate::Tier::parse(&tier).map_err(|e| problem(e.to_string()))?;
            let price = Millicents::parse_dollars(&price)
                .map_err(|e| problem(format!("subscription {}: {e}", tier.code())))?;
            subscriptions.push((tier, price));
        }
        let overhead_per_tenant = match self.overhead_per_tenant {
            None => Millicents::ZERO,
            Some(o) => Millicents::parse_dollars(&o)
                .map_err(|e| problem(format!("overhead_per_tenant: {e}")))?,
        };
        Ok(Plans {
            subscriptions,
            overhead_per_tenant,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    name: String,
    category: ServiceCategory,
    user_action: String,
    billing: String,
    price: Option<String>,
    wholesale: Option<String>,
    transaction: Option<TransferKind>,
    wizard_stage: Option<String>,
    #[serde(default)]
    limits: Limits,
}

impl RawService {
    fn check(self) -> Result<Service, MatrixError> {
        let id = self.id.clone();
        let problem = |p: String| MatrixError::Service {
            service: id.clone(),
            problem: p,
        };
        let id_ok = (1..=40).contains(&self.id.len())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            return Err(problem("an id is 1 to 40 of a-z, 0-9 and _".into()));
        }
        if self.name.trim().is_empty() || self.user_action.trim().is_empty() {
            return Err(problem("name and user_action must not be empty".into()));
        }
        if let Some(stage) = &self.wizard_stage
            && !WIZARD_STAGES.contains(&stage.as_str())
        {
            return Err(problem(format!(
                "wizard_stage {stage:?} is not a stage of the wizard ({})",
                WIZARD_STAGES.join(", ")
            )));
        }
        let money = |field: &str, v: &Option<String>| -> Result<Millicents, MatrixError> {
            let text = v
                .as_deref()
                .ok_or_else(|| problem(format!("{} billing needs {field}", self.billing)))?;
            Millicents::parse_dollars(text)
                .map_err(|e: MoneyParseError| problem(format!("{field}: {e}")))
        };
        let unpriced = |what: &str| -> Result<(), MatrixError> {
            if self.price.is_some() || self.wholesale.is_some() || self.transaction.is_some() {
                return Err(problem(format!(
                    "{what} billing takes no price, wholesale or transaction"
                )));
            }
            Ok(())
        };
        let billing = match self.billing.as_str() {
            "included" => {
                unpriced("included")?;
                Billing::Included
            }
            "user_pays_direct" => {
                unpriced("user_pays_direct")?;
                Billing::UserPaysDirect
            }
            "per_call" => {
                let price = money("price", &self.price)?;
                let wholesale = money("wholesale", &self.wholesale)?;
                let transaction = self
                    .transaction
                    .ok_or_else(|| problem("per_call billing needs a transaction type".into()))?;
                if transaction.direction() != Direction::Debit {
                    return Err(problem(format!(
                        "{transaction} credits the wallet; a service is charged with a debit type"
                    )));
                }
                if price.get() == 0 {
                    return Err(problem("a per_call price must be above zero".into()));
                }
                Billing::PerCall {
                    price,
                    wholesale,
                    transaction,
                }
            }
            "monthly" => {
                if self.transaction.is_some() {
                    return Err(problem("monthly billing takes no transaction type".into()));
                }
                Billing::Monthly {
                    price: money("price", &self.price)?,
                    wholesale: money("wholesale", &self.wholesale)?,
                }
            }
            other => {
                return Err(problem(format!(
                    "billing {other:?} is not one of included, user_pays_direct, per_call, monthly"
                )));
            }
        };
        let l = self.limits;
        for (what, global, tenant) in [
            ("rpm", l.rpm_global, l.rpm_per_tenant),
            ("daily", l.daily_global, l.daily_per_tenant),
            ("concurrent", l.concurrent_global, l.concurrent_per_tenant),
        ] {
            if global == Some(0) || tenant == Some(0) {
                return Err(problem(format!(
                    "a {what} limit of 0 would refuse every call; leave it out for no limit"
                )));
            }
            if let (Some(g), Some(t)) = (global, tenant)
                && t > g
            {
                return Err(problem(format!(
                    "its {what} limit per tenant ({t}) is above its global one ({g})"
                )));
            }
        }
        if let Billing::PerCall {
            price, wholesale, ..
        }
        | Billing::Monthly { price, wholesale } = billing
            && price < wholesale
        {
            return Err(problem(format!(
                "its price {price} is below its wholesale cost {wholesale}"
            )));
        }
        let fits = match self.category {
            ServiceCategory::ManagedProxy => matches!(billing, Billing::Included),
            ServiceCategory::ManagedWholesale => {
                matches!(billing, Billing::PerCall { .. } | Billing::Monthly { .. })
            }
            ServiceCategory::ByoKey | ServiceCategory::ByoSetup => {
                matches!(billing, Billing::UserPaysDirect)
            }
        };
        if !fits {
            return Err(problem(format!(
                "a {} service cannot be billed {}",
                self.category.label(),
                self.billing
            )));
        }
        Ok(Service {
            id: self.id,
            name: self.name,
            category: self.category,
            user_action: self.user_action,
            billing,
            wizard_stage: self.wizard_stage,
            limits: self.limits,
        })
    }
}

impl ServiceMatrix {
    /// Reads and checks a matrix.
    pub fn parse(text: &str) -> Result<Self, MatrixError> {
        let raw: RawMatrix =
            toml::from_str(text).map_err(|e| MatrixError::Unreadable(e.message().to_owned()))?;
        if raw.version != VERSION {
            return Err(MatrixError::Version { found: raw.version });
        }
        let mut ids = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        let mut services = Vec::with_capacity(raw.services.len());
        for raw in raw.services {
            let service = raw.check()?;
            let clash = |problem: String| MatrixError::Service {
                service: service.id.clone(),
                problem,
            };
            if !ids.insert(service.id.clone()) {
                return Err(clash("listed twice".into()));
            }
            if let Some((_, _, kind)) = service.per_call()
                && !kinds.insert(kind)
            {
                return Err(clash(format!("another service is billed as {kind}")));
            }
            services.push(service);
        }
        if services.is_empty() {
            return Err(MatrixError::Unreadable("it lists no service".into()));
        }
        let plans = match raw.plans {
            Some(p) => p.check()?,
            None => Plans::default(),
        };
        Ok(Self {
            version: raw.version,
            services,
            plans,
        })
    }

    /// The matrix this build ships with.
    pub fn builtin() -> &'static ServiceMatrix {
        static MATRIX: OnceLock<ServiceMatrix> = OnceLock::new();
        MATRIX.get_or_init(|| match ServiceMatrix::parse(BUILTIN) {
            Ok(m) => m,
            // A unit test parses the shipped file, so no build reaches this.
            Err(e) => panic!("the built-in service matrix is broken: {e}"),
        })
    }

    /// The service called `id`.
    pub fn get(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The services billed per call: what the gateway may sell.
    pub fn metered(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| s.per_call().is_some())
    }

    /// The service billed as `kind`.
    pub fn by_transaction(&self, kind: TransferKind) -> Option<&Service> {
        self.metered()
            .find(|s| s.per_call().is_some_and(|(_, _, k)| k == kind))
    }

    /// The services no wizard stage sets up, which the tenant gets without doing anything
    /// (the managed ones), in the matrix's order.
    pub fn automatic(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| s.wizard_stage.is_none())
    }

    /// The services a wizard stage sets up.
    pub fn for_stage<'a>(&'a self, stage: &'a str) -> impl Iterator<Item = &'a Service> {
        self.services
            .iter()
            .filter(move |s| s.wizard_stage.as_deref() == Some(stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_matrix_is_spec_57_2() {
        let m = ServiceMatrix::builtin();
        assert_eq!(m.services.len(), 12);
        let cse = m.get("google_cse").expect("cse");
        assert_eq!(cse.category, ServiceCategory::ManagedWholesale);
        assert_eq!(
            cse.per_call(),
            Some((Millicents(500), Millicents(400), TransferKind::CseSearch))
        );
        assert_eq!(
            m.by_transaction(TransferKind::EmailVerify)
                .map(|s| s.id.as_str()),
            Some("email_verify")
        );
        assert_eq!(m.metered().count(), 4);
        assert_eq!(
            m.for_stage("ai_keys")
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["openai", "anthropic", "relevance_ai"]
        );
        assert_eq!(m.get("gmail").map(|s| s.billing), Some(Billing::Included));
        assert_eq!(
            m.for_stage("email")
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["gmail", "google_sheets"]
        );
        assert_eq!(
            cse.cost_to_tenant(),
            "$0.005 a call, from your wallet",
            "the wizard's words"
        );
    }

    fn one(service: &str) -> Result<ServiceMatrix, MatrixError> {
        ServiceMatrix::parse(&format!("version = 1\n[[service]]\n{service}"))
    }

    fn refused(service: &str, needle: &str) {
        let err = one(service).expect_err(service).to_string();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }

    const BASE: &str = "id = \"x\"\nname = \"X\"\nuser_action = \"Automatic\"\n";

    #[test]
    fn refuses_what_would_bill_wrongly() {
        refused(
            &format!(
                "{BASE}category = \"managed_wholesale\"\nbilling = \"per_call\"\nprice = \"0.001\"\nwholesale = \"0.002\"\ntransaction = \"CSE_SEARCH\""
            ),
            "below its wholesale cost",
        );
        refused(
            &format!(
                "{BASE}category = \"managed_wholesale\"\nbilling = \"per_call\"\nprice = \"0.002\"\nwholesale = \"0.001\""
            ),
            "needs a transaction type",
        );
        refused(
            &format!(
                "{BASE}category = \"managed_wholesale\"\nbilling = \"per_call\"\nprice = \"0.002\"\nwholesale = \"0.001\"\ntransaction = \"REFUND\""
            ),
            "credits the wallet",
        );
        refused(
            &format!("{BASE}category = \"byo_key\"\nbilling = \"user_pays_direct\"\nprice = \"1\""),
            "takes no price",
        );
        refused(
            &format!(
                "{BASE}category = \"managed_proxy\"\nbilling = \"included\"\nwizard_stage = \"gmail\""
            ),
            "not a stage of the wizard",
        );
        refused(
            &format!("{BASE}category = \"byo_key\"\nbilling = \"included\""),
            "cannot be billed",
        );
        refused(
            &format!(
                "{BASE}category = \"managed_wholesale\"\nbilling = \"per_call\"\nprice = \"0.0000001\"\nwholesale = \"0\"\ntransaction = \"CSE_SEARCH\""
            ),
            "finer than a thousandth",
        );
        refused(
            &format!("{BASE}category = \"managed_proxy\"\nbilling = \"free\""),
            "is not one of",
        );
        let err = ServiceMatrix::parse("version = 2\n").expect_err("v2");
        assert_eq!(err, MatrixError::Version { found: 2 });
        assert!(matches!(
            ServiceMatrix::parse("version = 1\n[[service]]\nid = 3\n"),
            Err(MatrixError::Unreadable(_))
        ));
    }

    #[test]
    fn refuses_two_services_under_one_name_or_type() {
        let cse = |id: &str| {
            format!(
                "[[service]]\nid = \"{id}\"\nname = \"X\"\nuser_action = \"A\"\ncategory = \"managed_wholesale\"\nbilling = \"per_call\"\nprice = \"0.005\"\nwholesale = \"0.004\"\ntransaction = \"CSE_SEARCH\"\n"
            )
        };
        let twice = ServiceMatrix::parse(&format!("version = 1\n{}{}", cse("a"), cse("a")));
        assert!(twice.expect_err("dup").to_string().contains("listed twice"));
        let same_kind = ServiceMatrix::parse(&format!("version = 1\n{}{}", cse("a"), cse("b")));
        assert!(
            same_kind
                .expect_err("kind")
                .to_string()
                .contains("another service is billed as CSE_SEARCH")
        );
    }
}
