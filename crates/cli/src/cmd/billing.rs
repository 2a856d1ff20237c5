//! `genesis billing margins --month YYYY-MM`: the margin report of spec 59.1 through the
//! control plane's API: one row per tenant (revenue, costs, margin), then the fleet's total;
//! `-o json` gives every line of every tenant.

use serde_json::Value;

use super::CliError;
use super::api_client::{Api, ApiArgs};
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis billing ...`
#[derive(Debug, clap::Subcommand)]
pub enum BillingCommand {
    /// Each tenant's revenue, costs and margin for a month, and the fleet's.
    Margins {
        /// The month, as YYYY-MM (this month when absent).
        #[arg(long)]
        month: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Millicents as dollars and cents (rounded down to the cent: the report's table is read by
/// people; `-o json` keeps every millicent).
fn dollars(v: &Value) -> String {
    let m = v.as_i64().unwrap_or(0);
    let sign = if m < 0 { "-" } else { "" };
    let cents = m.abs() / 1000;
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// Runs a billing command.
pub async fn run(cmd: BillingCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    match cmd {
        BillingCommand::Margins { month, api } => {
            if let Some(m) = &month
                && (m.len() != 7 || m.as_bytes().get(4) != Some(&b'-'))
            {
                return Err(CliError::Usage(format!(
                    "--month {m:?}: expected YYYY-MM, such as 2026-11"
                )));
            }
            let api = Api::new(&api, cfg)?;
            let path = match &month {
                Some(m) => format!("/api/v1/billing/margins?month={m}"),
                None => "/api/v1/billing/margins".to_owned(),
            };
            let report = api.ok(reqwest::Method::GET, &path, None).await?;
            let mut rows: Vec<Vec<String>> = report["tenants"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        t["slug"].as_str().unwrap_or("").to_owned(),
                        t["region"].as_str().unwrap_or("").to_owned(),
                        t["droplet_hours"].to_string(),
                        dollars(&t["margin"]["total_revenue"]),
                        dollars(&t["margin"]["total_costs"]),
                        dollars(&t["margin"]["margin"]),
                        t["percent"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            rows.push(vec![
                "TOTAL".into(),
                String::new(),
                String::new(),
                dollars(&report["total_revenue_millicents"]),
                dollars(&report["total_costs_millicents"]),
                dollars(&report["margin_millicents"]),
                report["percent"].as_str().unwrap_or("").to_owned(),
            ]);
            print(
                out,
                &report,
                &[
                    "TENANT", "REGION", "HOURS", "REVENUE", "COSTS", "MARGIN", "%",
                ],
                rows,
            );
            if out == Output::Table {
                for n in report["notes"].as_array().into_iter().flatten() {
                    eprintln!("note: {}", n.as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
    }
}
