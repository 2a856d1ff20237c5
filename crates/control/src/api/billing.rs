//! `GET /api/v1/billing/margins`: the margin report of spec 59.1 for a month
//! ([`crate::app::margins`]), as `genesis billing margins` and God Mode's Financial page show
//! it.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::app::margins::{self, MarginReport};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// Which month.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM`; this month when absent.
    pub month: Option<String>,
}

/// Each tenant's revenue, costs and margin for a month, and the fleet's.
#[utoipa::path(
    get,
    path = "/billing/margins",
    tag = "billing",
    params(MonthQuery),
    responses((status = 200, description = "The month's report.", body = MarginReport))
)]
pub async fn margins(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<MarginReport>, Problem> {
    let month = q.month.unwrap_or_else(margins::this_month);
    Ok(Json(margins::report(&state, &month).await?))
}
