//! The Genesis Gateway wizard (spec 60.1): seven stages from sign-up to ignition, with
//! progress saved per stage in the workspace's database so a tenant resumes from any
//! device. Stage 1 (account, with the region of 62.2) is the sign-up itself; stages 2 (brand,
//! 61.1), 6 (booking link, 61.3) and 7 (Start Engine) are here, 3 in [`super::gmail`], 4
//! in [`super::ai_keys`] and 5 in [`super::dns`]. Start Engine waits for every other stage.

use genesis_store::Database;
use genesis_store::onboarding::{Confirmation, SavedStage};

use std::collections::BTreeMap;

use genesis_core::WorkspaceStatus;
use genesis_store::onboarding::SecretKind;
use serde_json::json;

use super::brand::{Brand, MAX_PRODUCTS};
use super::ignition::{IgniteAnswer, IgniteRequest};
use super::tenant_access::Access;
use crate::{AppState, Problem};

/// The stages, in order, as the wizard names them (the codes are the service matrix's
/// [`genesis_core::services::WIZARD_STAGES`]).
pub const STAGES: [(&str, &str); 7] = [
    ("account", "Account"),
    ("brand", "Brand"),
    ("email", "Email (connect Gmail)"),
    ("ai_keys", "AI keys"),
    ("dns", "DNS"),
    ("booking", "Booking link"),
    ("ignition", "Start Engine"),
];

/// Where a stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// Confirmed.
    Done,
    /// Still to do.
    ToDo,
}

/// The wizard's state for one workspace.
#[derive(Debug, Clone)]
pub struct Wizard {
    /// Each stage's code, label and state, in order.
    pub stages: Vec<(&'static str, &'static str, StageState)>,
    /// The brand as confirmed, if it was.
    pub brand: Option<Brand>,
    /// The booking link as confirmed, if it was.
    pub booking: Option<String>,
    /// The Gmail address that sends, and the sender's name, once connected.
    pub email: Option<(String, String)>,
    /// The AI keys as saved (masked), once checked.
    pub ai_keys: Option<serde_json::Value>,
    /// The sending domain and its DKIM key, once chosen (confirmed or not).
    pub dns: Option<super::dns::DnsPlan>,
    /// The brand's website, as confirmed (the DNS stage suggests its domain).
    pub website: Option<String>,
    /// The service matrix in effect: which services each stage sets up, and what each
    /// costs the tenant (spec 57.2).
    pub services: std::sync::Arc<genesis_core::services::ServiceMatrix>,
}

impl Wizard {
    /// Whether stage `code` is done.
    pub fn done(&self, code: &str) -> bool {
        self.stages
            .iter()
            .any(|(c, _, s)| *c == code && *s == StageState::Done)
    }

    /// The first stage Start Engine still waits for, if any: `(code, label)`.
    pub fn missing_before_start(&self) -> Option<(&'static str, &'static str)> {
        self.stages
            .iter()
            .find(|(c, _, s)| *c != "ignition" && *s == StageState::ToDo)
            .map(|(c, l, _)| (*c, *l))
    }
}

/// The vault's keys, which the wizard's secrets are sealed with, or 503 (logged).
pub(crate) fn vault(state: &AppState) -> Result<&genesis_store::MasterKeys, Problem> {
    state.vault.as_deref().ok_or_else(|| {
        tracing::error!("the vault has no master key: wizard secrets cannot be kept");
        Problem::unavailable("secrets cannot be kept on this server yet; ask its operator")
    })
}

/// Where `access`'s workspace stands in the wizard.
pub async fn wizard(state: &AppState, db: &Database, access: &Access) -> Result<Wizard, Problem> {
    let progress = db.onboarding_progress(access.workspace.id).await?;
    let brand = progress
        .brand
        .and_then(|b| serde_json::from_value::<Brand>(b).ok());
    let stages = STAGES
        .iter()
        .map(|(code, label)| {
            let state = match *code {
                "account" => StageState::Done,
                "brand" if progress.brand_confirmed_at.is_some() => StageState::Done,
                "booking" if progress.booking_confirmed_at.is_some() => StageState::Done,
                "email" if progress.email_confirmed_at.is_some() => StageState::Done,
                "ai_keys" if progress.ai_keys_confirmed_at.is_some() => StageState::Done,
                "dns" if progress.dns_confirmed_at.is_some() => StageState::Done,
                "ignition" if access.workspace.status == WorkspaceStatus::Active => {
                    StageState::Done
                }
                _ => StageState::ToDo,
            };
            (*code, *label, state)
        })
        .collect();
    let booking = progress
        .booking
        .and_then(|b| b["url"].as_str().map(str::to_owned));
    let email = progress.email.and_then(|e| {
        Some((
            e["address"].as_str()?.to_owned(),
            e["name"].as_str()?.to_owned(),
        ))
    });
    let website = brand.as_ref().and_then(|b| b.website.clone());
    Ok(Wizard {
        stages,
        brand,
        booking,
        email,
        ai_keys: progress.ai_keys,
        dns: progress.dns.and_then(|d| serde_json::from_value(d).ok()),
        website,
        services: super::service_matrix::in_effect(state),
    })
}

/// The brand form as typed (products one per line).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct BrandForm {
    /// The company's website.
    #[serde(default)]
    pub website: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its logo's address.
    #[serde(default)]
    pub logo: String,
    /// About it.
    #[serde(default)]
    pub description: String,
    /// Products, one per line.
    #[serde(default)]
    pub products: String,
}

impl BrandForm {
    /// The form filled from a draft (a scrape), keeping the website typed.
    pub fn from_brand(website: &str, b: &Brand) -> Self {
        Self {
            website: b.website.clone().unwrap_or_else(|| website.to_owned()),
            name: b.name.clone().unwrap_or_default(),
            logo: b.logo.clone().unwrap_or_default(),
            description: b.description.clone().unwrap_or_default(),
            products: b.products.join("\n"),
        }
    }

    /// Checks every field; the first wrong one is named.
    pub fn parse(&self) -> Result<Brand, Problem> {
        let text = |field: &str, v: &str, max: usize| -> Result<Option<String>, Problem> {
            let v = v.trim();
            if v.chars().count() > max {
                return Err(Problem::invalid_field(
                    field,
                    format!("use at most {max} characters"),
                ));
            }
            if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
                return Err(Problem::invalid_field(
                    field,
                    "remove the control characters",
                ));
            }
            Ok((!v.is_empty()).then(|| v.to_owned()))
        };
        let name = text("name", &self.name, 100)?
            .ok_or_else(|| Problem::invalid_field("name", "enter your company's name"))?;
        if name.contains(['\n', '\r']) {
            return Err(Problem::invalid_field("name", "use a single line"));
        }
        let url = |field: &str, v: &str| -> Result<Option<String>, Problem> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            crate::outbound::parse_url(v)
                .map(|u| Some(u.to_string()))
                .map_err(|e| Problem::invalid_field(field, e))
        };
        let products: Vec<String> = self
            .products
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if products.len() > MAX_PRODUCTS {
            return Err(Problem::invalid_field(
                "products",
                format!("list at most {MAX_PRODUCTS} products"),
            ));
        }
        if let Some(long) = products.iter().find(|p| p.chars().count() > 100) {
            return Err(Problem::invalid_field(
                "products",
                format!(
                    "\"{}…\" is longer than 100 characters",
                    long.chars().take(30).collect::<String>()
                ),
            ));
        }
        Ok(Brand {
            name: Some(name),
            website: url("website", &self.website)?,
            logo: url("logo", &self.logo)?,
            description: text("description", &self.description, 500)?,
            products,
        })
    }
}

/// Confirms the brand stage (owners): the fields as the tenant corrected them.
pub async fn confirm_brand(
    db: &Database,
    access: &Access,
    form: &BrandForm,
) -> Result<Brand, Problem> {
    access.owner("set the workspace up")?;
    let brand = form.parse()?;
    let json = serde_json::to_value(&brand).map_err(|_| Problem::internal())?;
    db.onboarding_confirm(
        access.workspace.id,
        &Confirmation {
            stage: SavedStage::Brand,
            value: &json,
            template: &[("company_name", brand.name.as_deref().unwrap_or_default())],
            secrets: &[],
            keys: None,
        },
        &access.actor,
    )
    .await?;
    Ok(brand)
}

/// Confirms the booking stage (owners) with a checked link; its warnings were shown and
/// accepted. The link becomes the Golden Template's `YOUR_CALENDLY_LINK_1`.
pub async fn confirm_booking(
    db: &Database,
    access: &Access,
    check: &super::booking::BookingCheck,
) -> Result<(), Problem> {
    access.owner("set the workspace up")?;
    let json = serde_json::to_value(check).map_err(|_| Problem::internal())?;
    db.onboarding_confirm(
        access.workspace.id,
        &Confirmation {
            stage: SavedStage::Booking,
            value: &json,
            template: &[("calendly_link_1", &check.url)],
            secrets: &[],
            keys: None,
        },
        &access.actor,
    )
    .await?;
    Ok(())
}

/// "Start Engine" (owners): ignites the workspace with what the stages saved. Answers the
/// ignition; a second press while one runs, or once the engine runs, is refused and changes
/// nothing.
pub async fn start_engine(
    state: &AppState,
    db: &Database,
    access: &Access,
) -> Result<IgniteAnswer, Problem> {
    access.owner("start the engine")?;
    match access.workspace.status {
        WorkspaceStatus::Pending | WorkspaceStatus::RollbackComplete => {}
        WorkspaceStatus::Provisioning => {
            return Err(Problem::conflict(
                "ignition",
                "Start Engine was already pressed: your engine is starting",
            ));
        }
        WorkspaceStatus::Active => {
            return Err(Problem::conflict(
                "ignition",
                "your engine is already running",
            ));
        }
        other => {
            return Err(Problem::conflict(
                "ignition",
                format!("this workspace cannot be started now (it is {other})"),
            ));
        }
    }
    let w = wizard(state, db, access).await?;
    if let Some((code, label)) = w.missing_before_start() {
        return Err(Problem::invalid_field(
            code,
            format!("finish the \"{label}\" step first"),
        ));
    }
    let keys = vault(state)?;
    let google = super::gmail::google(state)?;
    let secret = |kind: SecretKind, stage: &'static str| async move {
        let raw = db
            .onboarding_secret(keys, access.workspace.id, kind)
            .await?
            .ok_or_else(|| Problem::invalid_field(stage, "this step must be done again"))?;
        serde_json::from_slice::<serde_json::Value>(&raw).map_err(|_| {
            tracing::error!(kind = kind.code(), "a wizard secret is not JSON");
            Problem::internal()
        })
    };
    let gmail = secret(SecretKind::Gmail, "email").await?;
    let openai = secret(SecretKind::OpenAi, "ai_keys").await?;
    let credentials = BTreeMap::from([
        (
            "gmail".to_owned(),
            json!({
                "clientId": google.client_id,
                "clientSecret": google.client_secret,
                "oauthTokenData": gmail,
            }),
        ),
        ("openai".to_owned(), json!({"apiKey": openai["apiKey"]})),
    ]);
    let (new, answer) =
        super::ignition::ignite(state, access.workspace.id, &IgniteRequest { credentials }).await?;
    if !new {
        return Err(Problem::conflict(
            "ignition",
            "Start Engine was already pressed: your engine is starting",
        ));
    }
    Ok(answer)
}

/// One ignition step as the tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepProgress {
    /// Its code (`DROPLET_PROVISIONING`).
    pub code: &'static str,
    /// What it does, in the tenant's words.
    pub label: &'static str,
    /// `pending`, `running`, `done`, `failed`, `undoing`, `undone`.
    pub status: &'static str,
}

/// Where Start Engine stands, as the live page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineProgress {
    /// `RUNNING`, `UNWINDING`, `DONE`, `ROLLED_BACK`.
    pub phase: genesis_core::SagaPhase,
    /// The six steps.
    pub steps: Vec<StepProgress>,
    /// The step that failed, in words (a rollback).
    pub failed: Option<&'static str>,
    /// What to do about it, in words (a rollback).
    pub advice: Vec<&'static str>,
    /// Nothing more will change.
    pub finished: bool,
}

/// A step in the tenant's words.
pub fn step_in_words(step: genesis_core::IgnitionStep) -> &'static str {
    use genesis_core::IgnitionStep as S;
    match step {
        S::PartitionCreating => "Preparing your lead database",
        S::DropletProvisioning => "Starting your private server",
        S::HandshakePending => "Connecting to your server",
        S::CredentialsInjecting => "Installing your Gmail and AI keys",
        S::WorkflowsDeploying => "Installing your campaigns",
        S::Activating => "Switching your campaigns on",
    }
}

/// The latest Start Engine of `access`'s workspace, if it was ever pressed.
pub async fn engine_progress(
    db: &Database,
    access: &Access,
) -> Result<Option<EngineProgress>, Problem> {
    let Some(ig) = db.ignition_latest(access.workspace.id).await? else {
        return Ok(None);
    };
    let view = super::ignition::view(db, &ig).await?;
    let rolled_back = ig.phase == genesis_core::SagaPhase::RolledBack;
    Ok(Some(EngineProgress {
        phase: ig.phase,
        steps: view
            .steps
            .iter()
            .map(|s| StepProgress {
                code: s.step.code(),
                label: step_in_words(s.step),
                status: s.status,
            })
            .collect(),
        failed: ig.failed_step.map(step_in_words),
        advice: if rolled_back || ig.phase == genesis_core::SagaPhase::Unwinding {
            genesis_ignition::executor::troubleshooting(ig.failed_step)
        } else {
            Vec::new()
        },
        finished: ig.phase.is_final(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wizard_has_the_stages_the_matrix_may_name() {
        assert_eq!(
            STAGES.map(|(code, _)| code),
            genesis_core::services::WIZARD_STAGES
        );
    }

    #[test]
    fn the_brand_form_names_the_field_at_fault() {
        let ok = BrandForm {
            website: "acme.test".into(),
            name: " Acme ".into(),
            products: "Rockets\n\n  Fuel \n".into(),
            ..BrandForm::default()
        };
        let b = ok.parse().expect("valid");
        assert_eq!(b.name.as_deref(), Some("Acme"));
        assert_eq!(b.website.as_deref(), Some("https://acme.test/"));
        assert_eq!(b.products, ["Rockets", "Fuel"]);
        for (form, field) in [
            (
                BrandForm {
                    name: "".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                BrandForm {
                    name: "a\nb".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                BrandForm {
                    logo: "ftp://x".into(),
                    ..ok.clone()
                },
                "logo",
            ),
            (
                BrandForm {
                    description: "x".repeat(501),
                    ..ok.clone()
                },
                "description",
            ),
            (
                BrandForm {
                    products: "p\n".repeat(21),
                    ..ok.clone()
                },
                "products",
            ),
        ] {
            assert_eq!(
                form.parse().err().and_then(|p| p.field),
                Some(field.to_owned())
            );
        }
    }
}
