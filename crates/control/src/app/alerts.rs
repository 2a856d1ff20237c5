//! What operators do with alerts: count the open ones (God Mode's navigation badge), and
//! acknowledge or resolve one. An alert is named by its droplet and kind, the pair the
//! database keeps unique among open alerts, so the same words work against any regional
//! database (alert ids are per database).

use genesis_store::{Alert, AlertAction, StoreError};

use super::droplets::locate;
use crate::{AppState, Problem};

/// Open alerts over every regional database.
pub async fn open_count(state: &AppState) -> Result<i64, Problem> {
    let mut n = 0;
    for db in state.stores.distinct() {
        n += db.alert_open_count().await?;
    }
    Ok(n)
}

/// The action a route names (`acknowledge`, `resolve`).
pub fn parse_action(raw: &str) -> Result<AlertAction, Problem> {
    match raw {
        "acknowledge" => Ok(AlertAction::Acknowledge),
        "resolve" => Ok(AlertAction::Resolve),
        _ => Err(Problem::not_found("alert action")),
    }
}

/// Acknowledges or resolves droplet `raw_droplet`'s open alert of `kind`, audited as
/// `actor`. 404 when the droplet has no such open alert (already resolved, or never
/// raised).
pub async fn act(
    state: &AppState,
    raw_droplet: &str,
    kind: &str,
    action: AlertAction,
    actor: &str,
) -> Result<Alert, Problem> {
    let (db, droplet) = locate(state, raw_droplet).await?;
    match db.alert_act(droplet.id, kind, action, actor).await {
        Ok(a) => Ok(a),
        Err(StoreError::NotFound { .. }) => Err(Problem::not_found("open alert")),
        Err(e) => Err(e.into()),
    }
}
