//! The wizard's third parties together (spec 60.1 stages 3 to 5): the fake Google, the fake
//! AI vendors, and a real Knot DNS server behind the Entri-like provider, on one router, as
//! `genesis sim-cloud` serves them beside the DigitalOcean API.

use std::path::Path;
use std::sync::Arc;

use axum::Router;

use crate::ai_providers::FakeAiProviders;
use crate::dns::{DnsSimError, FakeEntri, Knot};
use crate::google_oauth::FakeGoogleOAuth;

/// The fakes, and the DNS server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WizardFakes {
    /// Google's OAuth endpoints.
    pub google: FakeGoogleOAuth,
    /// OpenAI, Anthropic and Relevance AI.
    pub ai: FakeAiProviders,
    /// The authoritative DNS server of tenants' domains.
    pub knot: Arc<Knot>,
}

impl WizardFakes {
    /// Starts Knot with its files under `dns_dir`; the others need nothing.
    pub async fn start(dns_dir: &Path) -> Result<Self, DnsSimError> {
        Ok(Self {
            google: FakeGoogleOAuth::new(),
            ai: FakeAiProviders::new(),
            knot: Knot::start(dns_dir).await?,
        })
    }

    /// Google at the root, the AI vendors under their prefixes, the provider at `/entri`.
    pub fn router(&self) -> Router {
        self.google
            .router()
            .merge(self.ai.router())
            .merge(FakeEntri::new(self.knot.clone()).router())
    }
}
