//! The service matrix in effect (spec 57.2): the one the wallet was configured with, or the
//! shipped one where this control plane runs without a wallet (no Redis). The wizard, the
//! gateway and the margin report read it from here, so they never disagree.

use std::sync::{Arc, OnceLock};

use genesis_core::services::ServiceMatrix;

use crate::AppState;

/// The matrix in effect.
pub fn in_effect(state: &AppState) -> Arc<ServiceMatrix> {
    static BUILTIN: OnceLock<Arc<ServiceMatrix>> = OnceLock::new();
    match &state.wallets {
        Some(w) => w.settings().matrix.clone(),
        None => BUILTIN
            .get_or_init(|| Arc::new(ServiceMatrix::builtin().clone()))
            .clone(),
    }
}
