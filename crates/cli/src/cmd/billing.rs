//! `genesis billing margins --month YYYY-MM`: the margin report of spec 59.1 through the
//! control plane's API: one row per tenant (revenue, costs, margin), then the fleet's total;
//! `-o json` gives every line of every tenant. `genesis billing limits`: a workspace's
//! per-tenant limits of spec 59.2, shown, set and reset.

use serde_json::Value;

use super::CliError;
use super::api_client::{Api, ApiArgs, path_segment};
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
    /// A workspace's per-tenant limits per metered service: show, set, reset.
    #[command(subcommand)]
    Limits(LimitsCommand),
}

/// `genesis billing limits ...`
#[derive(Debug, clap::Subcommand)]
pub enum LimitsCommand {
    /// Each metered service's per-tenant limits as they apply to the workspace.
    Show {
        /// The workspace's id or slug.
        workspace: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give the workspace its own per-tenant limits for a service (the others keep the
    /// matrix's).
    Set {
        /// The workspace's id or slug.
        workspace: String,
        /// The service's id in the matrix (`google_cse`).
        service: String,
        /// Calls per day (UTC).
        #[arg(long)]
        daily: Option<u32>,
        /// Calls in flight.
        #[arg(long)]
        concurrent: Option<u32>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Give the workspace the matrix's per-tenant limits for a service again.
    Reset {
        /// The workspace's id or slug.
        workspace: String,
        /// The service's id in the matrix.
        service: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// A limit for people: the number, or "-" for none.
fn limit(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn limit_row(s: &Value) -> Vec<String> {
    vec![
        s["service"].as_str().unwrap_or("").to_owned(),
        limit(&s["daily_per_tenant"]),
        limit(&s["concurrent_per_tenant"]),
        limit(&s["rpm_per_tenant"]),
        if s["overridden"].as_bool() == Some(true) {
            format!("own: {}", s["reason"].as_str().unwrap_or(""))
        } else {
            "matrix".to_owned()
        },
    ]
}

const LIMIT_HEADERS: [&str; 5] = ["SERVICE", "DAILY", "CONCURRENT", "RPM", "FROM"];

async fn limits(cmd: LimitsCommand, cfg: Option<&Config>, out: Output) -> Result<(), CliError> {
    match cmd {
        LimitsCommand::Show { workspace, api } => {
            let api = Api::new(&api, cfg)?;
            let v = api
                .ok(
                    reqwest::Method::GET,
                    &format!("/api/v1/workspaces/{}/limits", path_segment(&workspace)),
                    None,
                )
                .await?;
            let rows = v.as_array().into_iter().flatten().map(limit_row).collect();
            print(out, &v, &LIMIT_HEADERS, rows);
        }
        LimitsCommand::Set {
            workspace,
            service,
            daily,
            concurrent,
            rpm,
            reason,
            api,
        } => {
            if daily.is_none() && concurrent.is_none() && rpm.is_none() {
                return Err(CliError::Usage(
                    "give at least one of --daily, --concurrent, --rpm (or use `billing limits reset`)"
                        .into(),
                ));
            }
            let api = Api::new(&api, cfg)?;
            let body = serde_json::json!({
                "daily_per_tenant": daily,
                "concurrent_per_tenant": concurrent,
                "rpm_per_tenant": rpm,
                "reason": reason,
            });
            let v = api
                .ok(
                    reqwest::Method::PUT,
                    &format!(
                        "/api/v1/workspaces/{}/limits/{}",
                        path_segment(&workspace),
                        path_segment(&service)
                    ),
                    Some(&body),
                )
                .await?;
            print(out, &v, &LIMIT_HEADERS, vec![limit_row(&v)]);
        }
        LimitsCommand::Reset {
            workspace,
            service,
            api,
        } => {
            let api = Api::new(&api, cfg)?;
            api.ok(
                reqwest::Method::DELETE,
                &format!(
                    "/api/v1/workspaces/{}/limits/{}",
                    path_segment(&workspace),
                    path_segment(&service)
                ),
                None,
            )
            .await?;
            eprintln!("{workspace}: {service} has the matrix's limits again");
        }
    }
    Ok(())
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
        BillingCommand::Limits(cmd) => limits(cmd, cfg, out).await,
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
