//! Telling people what happened: each notification of the outbox rendered from its
//! template and sent to each of its addressees, with retries, dead letters and their
//! replay, and the one-click unsubscribe from advisory notices (RFC 8058).
//!
//! Nothing is lost and nothing is sent twice:
//! - a row is claimed for a lease ([`genesis_store::Database::notification_claim`]), so a
//!   sender that dies mid-send leaves it to come due again, and never to two senders;
//! - each addressee the server took is recorded at once, and a later attempt leaves them
//!   out, so a notification to two owners where one server call failed is retried for
//!   the other only;
//! - the `Message-ID` is the same on every attempt, so the one case left (the server took
//!   the message and we died before writing it down) reads as one message in any client.

use std::time::Duration;

use genesis_core::Region;
use genesis_store::{Database, DeadNotification, OutboxCounts, Outgoing, StoreError};

use crate::credentials::{hex, new_token, token_digest, token_shaped};
use crate::mail::smtp::{Envelope, Mailer, SendError, SmtpSettings};
use crate::mail::templates::{self, Context};
use crate::{AppState, Problem};

/// Waits after each failed attempt: a server down for a few hours loses nothing; one down
/// for longer than the sum (about 10 hours) dead-letters the notice, for an operator.
pub const DEFAULT_RETRIES: [Duration; 6] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
];

/// How e-mail is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The server and the sender.
    pub smtp: SmtpSettings,
    /// The control plane's public address: links back to the dashboard and unsubscribe
    /// links start with it.
    pub public_url: String,
    /// The wait after the first, second… failed attempt; a failure after the last is final.
    pub retries: Vec<Duration>,
    /// How long a claimed notification is held before another pass may take it.
    pub lease: Duration,
}

impl MailSettings {
    /// Settings with the default schedule.
    pub fn new(smtp: SmtpSettings, public_url: impl Into<String>) -> Self {
        Self {
            smtp,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            retries: DEFAULT_RETRIES.to_vec(),
            lease: Duration::from_secs(120),
        }
    }
}

/// The sender: the mailer and its settings.
#[derive(Debug, Clone)]
pub struct Outbox {
    mailer: Mailer,
    settings: MailSettings,
}

/// What became of one notification this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Everyone it was for has it now (`sent` messages went out this attempt; the rest
    /// had it already or opted out).
    Delivered {
        /// Messages sent this attempt.
        sent: usize,
    },
    /// It failed this time and will be tried again.
    Retrying,
    /// It failed for good: a dead letter.
    Dead,
}

impl Outbox {
    /// A sender with `settings`.
    pub fn new(settings: MailSettings) -> Result<Self, SendError> {
        Ok(Self {
            mailer: Mailer::new(&settings.smtp)?,
            settings,
        })
    }

    /// How long a claim holds.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// Sends `n` (claimed from `db`, which holds `region`'s data) to each of its addressees
    /// it has not reached yet, and records the outcome.
    pub async fn deliver(
        &self,
        db: &Database,
        region: Region,
        n: &Outgoing,
    ) -> Result<Delivery, StoreError> {
        if n.to.is_empty() {
            db.notification_dead(
                n.id,
                "there is no one to write to: the workspace has no owner",
            )
            .await?;
            return Ok(Delivery::Dead);
        }
        let advisory = templates::is_advisory(&n.kind);
        let mut sent = 0;
        let mut refused: Vec<String> = Vec::new();
        let mut failed: Option<String> = None;
        for to in &n.to {
            if n.already_sent.contains(to) || (advisory && n.opted_out.contains(to)) {
                continue;
            }
            let unsubscribe = if advisory {
                Some(self.unsubscribe_link(db, region, to, &n.kind).await?)
            } else {
                None
            };
            let content = match templates::render(&Context {
                kind: &n.kind,
                subject: &n.subject,
                body: &n.body,
                workspace: n.workspace_name.as_deref(),
                dashboard: &self.settings.public_url,
                unsubscribe: unsubscribe.as_deref(),
            }) {
                Ok(c) => c,
                Err(e) => {
                    db.notification_dead(n.id, &e.to_string()).await?;
                    metrics::counter!("genesis_mail_dead_total", "kind" => n.kind.clone())
                        .increment(1);
                    return Ok(Delivery::Dead);
                }
            };
            let envelope = Envelope {
                to,
                content: &content,
                message_id: message_id(region, n.id, to, self.settings.smtp.from.email.domain()),
                unsubscribe: unsubscribe.as_deref(),
            };
            match self.mailer.send(&envelope).await {
                Ok(()) => {
                    db.notification_sent_to(n.id, to).await?;
                    metrics::counter!("genesis_mail_sent_total", "kind" => n.kind.clone())
                        .increment(1);
                    sent += 1;
                }
                Err(SendError::Permanent(why)) => refused.push(format!("{to}: {why}")),
                Err(SendError::Transient(why)) => {
                    // The server is the same for every addressee: the rest wait too.
                    failed = Some(why);
                    break;
                }
            }
        }
        if let Some(why) = failed {
            let attempt = usize::try_from(n.attempt).unwrap_or(usize::MAX);
            return match self.settings.retries.get(attempt.saturating_sub(1)) {
                Some(wait) => {
                    db.notification_retry(n.id, &why, *wait).await?;
                    metrics::counter!("genesis_mail_retried_total").increment(1);
                    Ok(Delivery::Retrying)
                }
                None => {
                    let why = format!("gave up after {} attempts: {why}", n.attempt);
                    db.notification_dead(n.id, &why).await?;
                    metrics::counter!("genesis_mail_dead_total", "kind" => n.kind.clone())
                        .increment(1);
                    Ok(Delivery::Dead)
                }
            };
        }
        if !refused.is_empty() {
            db.notification_dead(n.id, &refused.join("; ")).await?;
            metrics::counter!("genesis_mail_dead_total", "kind" => n.kind.clone()).increment(1);
            return Ok(Delivery::Dead);
        }
        db.notification_sent(n.id).await?;
        Ok(Delivery::Delivered { sent })
    }

    async fn unsubscribe_link(
        &self,
        db: &Database,
        region: Region,
        email: &str,
        kind: &str,
    ) -> Result<String, StoreError> {
        let token = new_token();
        db.notification_unsubscribe_link(&token_digest(&token), email, kind)
            .await?;
        Ok(format!(
            "{}{UNSUBSCRIBE_PATH}?r={}&t={token}",
            self.settings.public_url,
            region.code()
        ))
    }
}

/// Where unsubscribe links point.
pub const UNSUBSCRIBE_PATH: &str = "/notifications/unsubscribe";

/// The same on every attempt for one notification and addressee.
fn message_id(region: Region, id: i64, to: &str, domain: &str) -> String {
    let who = &hex(&token_digest(to))[..12];
    format!("<notification-{id}.{who}.{}@{domain}>", region.code())
}

/// What an unsubscribe link is for: shown before the person confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The address.
    pub email: String,
    /// What it stops, in words.
    pub what: &'static str,
}

fn describe(kind: &str) -> &'static str {
    match kind {
        "HIBERNATION_NOTICE" => "notices that an idle workspace will hibernate",
        "WALLET_LOW" => "low-balance warnings",
        "CAMPAIGN_ERROR" => "notices that a workflow stopped",
        _ => "these notices",
    }
}

fn link_db<'a>(state: &'a AppState, region: &str) -> Result<&'a Database, Problem> {
    let region = Region::parse(region).map_err(|_| Problem::not_found("unsubscribe link"))?;
    Ok(state.stores.for_region(region))
}

fn parse_token(token: &str) -> Result<[u8; 32], Problem> {
    if !token_shaped(token) {
        return Err(Problem::not_found("unsubscribe link"));
    }
    Ok(token_digest(token))
}

/// What the link in `region`'s database with `token` stops, and, when `follow`, stops it
/// (idempotent). 404 for a link no message carried.
pub async fn unsubscribe(
    state: &AppState,
    region: &str,
    token: &str,
    follow: bool,
) -> Result<Unsubscribe, Problem> {
    let db = link_db(state, region)?;
    let token = parse_token(token)?;
    let found = if follow {
        db.notification_unsubscribe(&token).await?
    } else {
        db.notification_unsubscribe_target(&token).await?
    };
    let (email, kind) = found.ok_or_else(|| Problem::not_found("unsubscribe link"))?;
    if follow {
        metrics::counter!("genesis_mail_unsubscribed_total", "kind" => kind.clone()).increment(1);
    }
    Ok(Unsubscribe {
        email,
        what: describe(&kind),
    })
}

/// A dead letter, and the database it is in.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Which database (`us-east+us-west`…), for the replay.
    pub shard: String,
    /// The letter.
    pub letter: DeadNotification,
}

/// Every database's dead letters, newest first, and the outbox's counts summed.
pub async fn dead_letters(
    state: &AppState,
    limit: i64,
) -> Result<(Vec<DeadLetter>, OutboxCounts), Problem> {
    let mut all = Vec::new();
    let mut counts = OutboxCounts::default();
    for shard in state.stores.shards() {
        let c = shard.db.notification_counts().await?;
        counts.pending += c.pending;
        counts.retrying += c.retrying;
        counts.dead += c.dead;
        counts.delivered_24h += c.delivered_24h;
        for letter in shard.db.notification_dead_letters(limit).await? {
            all.push(DeadLetter {
                shard: shard.label(),
                letter,
            });
        }
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.letter.dead_at));
    all.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((all, counts))
}

/// Sends dead letter `id` of `shard` again, audited as `actor`.
pub async fn replay(state: &AppState, shard: &str, id: i64, actor: &str) -> Result<(), Problem> {
    let db = state
        .stores
        .shard_labelled(shard)
        .ok_or_else(|| Problem::not_found("database"))?
        .db;
    if db.notification_replay(id, actor).await? {
        // Sent at the sender's next pass; the bell only makes that sooner.
        if let Err(e) = state
            .stores
            .coordinator()
            .reconciler_wake(crate::workers::mail::NAME)
            .await
        {
            tracing::debug!(error = %e, "could not wake the mail sender; it sends at its next pass");
        }
        Ok(())
    } else {
        Err(Problem::conflict(
            "not a dead letter",
            "this notification is not a dead letter (it was delivered, or already replayed)",
        ))
    }
}
