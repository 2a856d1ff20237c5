//! `[mail]`: where the notifications outbox is sent (issue 24). Without an SMTP address,
//! notifications wait in the outbox and the dashboard still shows them. `[webhooks]`: how
//! tenants' outbound webhooks may be sent.

use std::sync::Arc;
use std::time::Duration;

use genesis_control::app::notifications::{MailSettings, Outbox};
use genesis_control::mail::smtp::SmtpSettings;
use serde::{Deserialize, Serialize};

use crate::cmd::CliError;

/// `[mail]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server: `smtp://host:port` (STARTTLS when offered), `smtp+starttls://…`
    /// (STARTTLS or nothing) or `smtps://…` (TLS), with `user:password@` if it wants them.
    #[serde(default)]
    pub smtp_url: Option<String>,
    /// The sender.
    #[serde(default = "default_from")]
    pub from: String,
    /// The control plane's public address, which links in messages start with. Default:
    /// `http://` and `server.listen`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long one SMTP command may take, seconds.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp", &self.smtp_url.as_ref().map(|_| "…"))
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .field("timeout_s", &self.timeout_s)
            .finish()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: default_from(),
            public_url: None,
            timeout_s: default_timeout_s(),
        }
    }
}

fn default_from() -> String {
    "Genesis <notices@genesis.localhost>".into()
}

fn default_timeout_s() -> u64 {
    20
}

impl MailConfig {
    /// The sender, if an SMTP server is configured; `listen` is the server's address.
    pub fn outbox(&self, listen: &str) -> Result<Option<Arc<Outbox>>, CliError> {
        let Some(url) = self.smtp_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !(1..=300).contains(&self.timeout_s) {
            return Err(CliError::Usage(
                "mail.timeout_s must be between 1 and 300".into(),
            ));
        }
        let smtp = SmtpSettings::parse(url, &self.from, Duration::from_secs(self.timeout_s))
            .map_err(|e| CliError::Usage(format!("mail: {e}")))?;
        let public = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        let outbox = Outbox::new(MailSettings::new(smtp, public))
            .map_err(|e| CliError::Usage(format!("mail: {e}")))?;
        Ok(Some(Arc::new(outbox)))
    }
}

/// `[webhooks]`: tenants' outbound webhooks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Let endpoints be on private and loopback addresses, over plain http: a demo or test
    /// machine only. In production this is off, and our servers call public https only.
    #[serde(default)]
    pub allow_private_endpoints: bool,
}

impl WebhooksConfig {
    /// The sender's settings.
    pub fn settings(&self) -> genesis_control::app::outbound_webhooks::WebhookSettings {
        genesis_control::app::outbound_webhooks::WebhookSettings {
            allow_private: self.allow_private_endpoints,
            ..Default::default()
        }
    }
}
