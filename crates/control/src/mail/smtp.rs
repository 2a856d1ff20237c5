//! The SMTP side: where mail goes, and one message handed to the server.
//!
//! `smtp://` uses STARTTLS whenever the server offers it (and plain SMTP when it does not,
//! as a local catcher or a relay on the same host); `smtp+starttls://` insists on it and
//! refuses to send in clear; `smtps://` speaks TLS from the first byte. Certificates are
//! checked against the platform's roots.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use super::templates::Rendered;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS when the server offers it (`smtp://`).
    Opportunistic,
    /// STARTTLS or nothing is sent (`smtp+starttls://`).
    RequireStartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

/// Where mail goes and as whom.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The server's host name (also the name its certificate is checked against).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// User name and password, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// The sender, e.g. `Genesis <notices@genesis.example>`.
    pub from: Mailbox,
    /// How long one SMTP command may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A setting that cannot be used, in words for whoever wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Not a URL, or not one of ours.
    #[error(
        "the SMTP address must look like smtp://host:port, smtp+starttls://host:port or smtps://host:port ({0})"
    )]
    Url(String),
    /// Not an address.
    #[error("the sender `{0}` is not an e-mail address (write `Name <address@example.com>`)")]
    From(String),
}

impl SmtpSettings {
    /// Reads `url` (`smtp://user:password@host:port`) and `from`.
    pub fn parse(url: &str, from: &str, timeout: Duration) -> Result<Self, SettingsError> {
        let parsed = Url::parse(url).map_err(|e| SettingsError::Url(e.to_string()))?;
        let (security, default_port) = match parsed.scheme() {
            "smtp" => (Security::Opportunistic, 25),
            "smtp+starttls" => (Security::RequireStartTls, 587),
            "smtps" => (Security::Tls, 465),
            other => return Err(SettingsError::Url(format!("unknown scheme `{other}`"))),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SettingsError::Url("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let credentials = (!parsed.username().is_empty()).then(|| {
            (
                percent_decode(parsed.username()),
                percent_decode(parsed.password().unwrap_or("")),
            )
        });
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| SettingsError::From(from.to_owned()))?;
        Ok(Self {
            host,
            port: parsed.port().unwrap_or(default_port),
            security,
            credentials,
            from,
            timeout,
        })
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Why a message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: the server is down, slow, or said 4xx.
    #[error("{0}")]
    Transient(String),
    /// Another try would fail the same way: the server said 5xx, or the message cannot be
    /// built (a malformed address).
    #[error("{0}")]
    Permanent(String),
}

/// One message: to whom, what, and the headers that go with it.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The addressee.
    pub to: &'a str,
    /// The content.
    pub content: &'a Rendered,
    /// `Message-ID`, stable across retries so that a copy sent twice reads as one.
    pub message_id: String,
    /// The one-click unsubscribe link (RFC 8058), for advisory kinds.
    pub unsubscribe: Option<&'a str>,
}

/// Hands messages to the SMTP server, over a small pool of connections.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings` (connects on first use).
    pub fn new(settings: &SmtpSettings) -> Result<Self, SendError> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| SendError::Permanent(format!("TLS settings: {e}")))
        };
        let tls = match settings.security {
            Security::Opportunistic => Tls::Opportunistic(tls(&settings.host)?),
            Security::RequireStartTls => Tls::Required(tls(&settings.host)?),
            Security::Tls => Tls::Wrapper(tls(&settings.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from: settings.from.clone(),
        })
    }

    /// Sends one message; `Ok` once the server has taken it.
    pub async fn send(&self, envelope: &Envelope<'_>) -> Result<(), SendError> {
        let to = envelope
            .to
            .parse::<Mailbox>()
            .map_err(|_| SendError::Permanent(format!("`{}` is not an address", envelope.to)))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(envelope.content.subject.clone())
            .message_id(Some(envelope.message_id.clone()));
        if let Some(url) = envelope.unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                envelope.content.text.clone(),
                envelope.content.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                "the mail server refused the message: {e}"
            ))),
            Err(e) if e.is_timeout() => Err(SendError::Transient(
                "the mail server did not answer in time".into(),
            )),
            Err(e) => Err(SendError::Transient(format!(
                "the mail server could not be reached or refused for now: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_chooses_the_protection_and_the_port() {
        let t = Duration::from_secs(10);
        let s = SmtpSettings::parse("smtp://127.0.0.1:1025", "Genesis <n@genesis.test>", t)
            .expect("ok");
        assert_eq!(
            (s.security, s.port, s.credentials.clone()),
            (Security::Opportunistic, 1025, None)
        );
        let s = SmtpSettings::parse(
            "smtp+starttls://mailer:p%40ss@mail.example.com",
            "n@genesis.test",
            t,
        )
        .expect("ok");
        assert_eq!(s.security, Security::RequireStartTls);
        assert_eq!(s.port, 587);
        assert_eq!(s.credentials, Some(("mailer".into(), "p@ss".into())));
        let s = SmtpSettings::parse("smtps://mail.example.com", "n@genesis.test", t).expect("ok");
        assert_eq!((s.security, s.port), (Security::Tls, 465));
    }

    #[test]
    fn bad_settings_say_what_to_write() {
        let t = Duration::from_secs(10);
        let e = SmtpSettings::parse("http://mail", "n@genesis.test", t).expect_err("scheme");
        assert!(e.to_string().contains("smtp://host:port"), "{e}");
        let e = SmtpSettings::parse("smtp://mail", "not an address", t).expect_err("from");
        assert!(e.to_string().contains("Name <address@example.com>"), "{e}");
        let s = SmtpSettings::parse("smtp://u:secret@mail", "n@genesis.test", t).expect("ok");
        assert!(!format!("{s:?}").contains("secret"));
    }
}
