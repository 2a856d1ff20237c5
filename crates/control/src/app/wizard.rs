//! The Genesis Gateway wizard (spec 60.1): seven stages from sign-up to ignition, with
//! progress saved per stage in the workspace's database so a tenant resumes from any
//! device. Stage 1 (account, with the region of 62.2) is the sign-up itself; stages 2 (brand,
//! 61.1) and 6 (booking link, 61.3) are here; the others follow in later increments and are
//! shown as not yet available.

use genesis_store::Database;
use genesis_store::onboarding::SavedStage;

use super::brand::{Brand, MAX_PRODUCTS};
use super::tenant_access::Access;
use crate::Problem;

/// The stages, in order, as the wizard names them.
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
    /// The next one to do.
    ToDo,
    /// Not built in this release: shown, not offered.
    NotYetAvailable,
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
}

/// Where `access`'s workspace stands in the wizard.
pub async fn wizard(db: &Database, access: &Access) -> Result<Wizard, Problem> {
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
                "brand" | "booking" => StageState::ToDo,
                _ => StageState::NotYetAvailable,
            };
            (*code, *label, state)
        })
        .collect();
    let booking = progress
        .booking
        .and_then(|b| b["url"].as_str().map(str::to_owned));
    Ok(Wizard {
        stages,
        brand,
        booking,
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
        SavedStage::Brand,
        &json,
        ("company_name", brand.name.as_deref().unwrap_or_default()),
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
        SavedStage::Booking,
        &json,
        ("calendly_link_1", &check.url),
        &access.actor,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
