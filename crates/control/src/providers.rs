//! The third parties the wizard talks to for a tenant (spec 60.1 stages 3 and 4): Google's
//! OAuth endpoints and the platform's Google client, and the AI vendors' APIs. Their
//! addresses are configuration, so the simulator stands in for them in tests and the demo.

use std::time::Duration;

/// Google's endpoints and the platform's OAuth client ("Genesis" in Google's consent page).
#[derive(Clone)]
pub struct GoogleApp {
    /// The OAuth client's id.
    pub client_id: String,
    /// Its secret (never logged: `Debug` hides it).
    pub client_secret: String,
    /// The authorization endpoint (`https://accounts.google.com/o/oauth2/v2/auth`).
    pub auth_url: String,
    /// The token endpoint (`https://oauth2.googleapis.com/token`).
    pub token_url: String,
    /// OpenID's userinfo (`https://openidconnect.googleapis.com/v1/userinfo`).
    pub userinfo_url: String,
}

impl std::fmt::Debug for GoogleApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleApp")
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("userinfo_url", &self.userinfo_url)
            .finish_non_exhaustive()
    }
}

impl GoogleApp {
    /// The platform's client at Google's real endpoints.
    pub fn at_google(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
        }
    }

    /// The platform's client at a simulator's address (`genesis sim-cloud` serves Google's
    /// paths at its root).
    pub fn at(base: &str, client_id: &str, client_secret: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            auth_url: format!("{base}/o/oauth2/v2/auth"),
            token_url: format!("{base}/token"),
            userinfo_url: format!("{base}/v1/userinfo"),
        }
    }
}

/// Where the wizard's third parties are, and the client that calls them.
#[derive(Debug, Clone)]
pub struct Providers {
    /// Google; `None` when the platform has no OAuth client (the email stage says so).
    pub google: Option<GoogleApp>,
    /// OpenAI's API base (`https://api.openai.com`).
    pub openai_url: String,
    /// Anthropic's API base (`https://api.anthropic.com`).
    pub anthropic_url: String,
    /// Relevance AI's API base, with `{region}` for the project's region
    /// (`https://api-{region}.stack.tryrelevance.com`).
    pub relevance_url: String,
    /// The name server DNS checks ask (`None`: the system's resolvers).
    pub dns_server: Option<std::net::SocketAddr>,
    /// Adds DNS records to tenants' zones (`None`: tenants add them by hand).
    pub dns_provider: Option<crate::app::dns::SharedProvider>,
    /// The wholesale services behind the managed-service gateway.
    pub managed: crate::app::managed::Upstreams,
    /// The payment provider behind wallet top-ups; `None`: top-ups are not offered.
    pub payments: Option<crate::app::payments::PaymentProvider>,
    /// Calls them, each call bounded.
    pub http: reqwest::Client,
}

/// How long one call to a provider may take.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PROVIDER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl Default for Providers {
    /// The real vendors; no Google client.
    fn default() -> Self {
        Self {
            google: None,
            openai_url: "https://api.openai.com".into(),
            anthropic_url: "https://api.anthropic.com".into(),
            relevance_url: "https://api-{region}.stack.tryrelevance.com".into(),
            dns_server: None,
            dns_provider: None,
            managed: crate::app::managed::Upstreams::real(),
            payments: None,
            http: client(),
        }
    }
}

impl Providers {
    /// Every vendor at a simulator's address (`genesis sim-cloud`): Google at its root, the
    /// AI vendors under `/openai`, `/anthropic` and `/relevance/{region}`, the Entri-like
    /// DNS provider under `/entri`; DNS checks ask `dns_server`.
    pub fn simulated(
        base: &str,
        google_client: Option<(&str, &str)>,
        dns_server: Option<std::net::SocketAddr>,
    ) -> Self {
        let base = base.trim_end_matches('/');
        let http = client();
        Self {
            google: google_client.map(|(id, secret)| GoogleApp::at(base, id, secret)),
            openai_url: format!("{base}/openai"),
            anthropic_url: format!("{base}/anthropic"),
            relevance_url: format!("{base}/relevance/{{region}}"),
            dns_server,
            dns_provider: dns_server.map(|_| {
                std::sync::Arc::new(crate::app::dns::EntriApi {
                    url: base.to_owned(),
                    application_id: "genesis".into(),
                    http: http.clone(),
                }) as crate::app::dns::SharedProvider
            }),
            managed: crate::app::managed::Upstreams::at(base),
            payments: None,
            http,
        }
    }
}
