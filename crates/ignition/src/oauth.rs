//! Refreshing a tenant's OAuth tokens (spec 43.3: `credential_expired` is healed by
//! "trigger OAuth refresh flow").
//!
//! The control plane holds each OAuth credential as n8n takes it (`clientId`,
//! `clientSecret`, `oauthTokenData` with the `refresh_token`) in the vault. A refresh is
//! RFC 6749 §6: `POST` the provider's token endpoint, form-encoded, with
//! `grant_type=refresh_token`. The answer's access token replaces the old one; its
//! `expires_in` is turned into Google's absolute `expiry_date` (milliseconds) so the
//! sidecar, which notes expiries at injection, reads the same instant however late the
//! credential reaches it. A provider that sends no new refresh token keeps the old one.
//!
//! Google is the only provider the Golden Template uses (`gmailOAuth2`); its endpoint is
//! configuration, so the simulator's `/token` stands in for `oauth2.googleapis.com`.

use std::time::Duration;

use serde_json::{Map, Value};

/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Why a refresh did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The credential type has no provider we know.
    #[error("no OAuth provider for credential type {0}")]
    UnknownProvider(String),
    /// The stored data lacks what a refresh needs (names the field).
    #[error("the stored credential has no {0}")]
    Incomplete(&'static str),
    /// The provider refused (`invalid_grant`: revoked or expired refresh token; a person must
    /// sign in again).
    #[error("the provider refused the refresh: {error}: {description}")]
    Refused {
        /// OAuth's error code.
        error: String,
        /// Its description.
        description: String,
    },
    /// The provider could not be reached or answered nonsense; try later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

impl OAuthError {
    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        matches!(self, OAuthError::Unavailable(_))
    }
}

/// Talks to OAuth providers' token endpoints.
#[derive(Debug, Clone)]
pub struct OAuthRefresher {
    http: reqwest::Client,
    google_token_url: String,
}

impl OAuthRefresher {
    /// A refresher that sends Google's refreshes to `google_token_url`.
    pub fn new(google_token_url: &str) -> Result<Self, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        Ok(Self {
            http,
            google_token_url: google_token_url.to_owned(),
        })
    }

    fn token_url(&self, kind: &str) -> Option<&str> {
        (kind.starts_with("gmail") || kind.starts_with("google"))
            .then_some(self.google_token_url.as_str())
    }

    /// Refreshes credential data `data` of n8n type `kind` at `now_ms`; answers the new data.
    pub async fn refresh(
        &self,
        kind: &str,
        data: &Value,
        now_ms: i64,
    ) -> Result<Value, OAuthError> {
        let url = self
            .token_url(kind)
            .ok_or_else(|| OAuthError::UnknownProvider(kind.to_owned()))?;
        let field = |name: &'static str, v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or(OAuthError::Incomplete(name))
        };
        let client_id = field("clientId", data.get("clientId"))?;
        let client_secret = field("clientSecret", data.get("clientSecret"))?;
        let token = data.get("oauthTokenData");
        let refresh_token = field(
            "oauthTokenData.refresh_token",
            token.and_then(|t| t.get("refresh_token")),
        )?;
        let resp = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
            ])
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| OAuthError::Unavailable(format!("unreadable answer: {e}")))?;
        if !status.is_success() {
            let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                OAuthError::Unavailable(format!("{status}"))
            } else {
                OAuthError::Refused {
                    error: text("error"),
                    description: text("error_description"),
                }
            });
        }
        if body.get("access_token").and_then(Value::as_str).is_none() {
            return Err(OAuthError::Unavailable(
                "no access_token in the answer".into(),
            ));
        }
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        let mut merged: Map<String, Value> = token
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in body.as_object().into_iter().flatten() {
            merged.insert(k.clone(), v.clone());
        }
        merged.insert(
            "expiry_date".into(),
            Value::from(now_ms.saturating_add(expires_in.saturating_mul(1000))),
        );
        let mut out = data.clone();
        out["oauthTokenData"] = Value::Object(merged);
        Ok(out)
    }
}
