//! Tenants' accounts: signing up, proving the address, signing in and out (spec 60.1 stage
//! 1, with the region choice of 62.2).
//!
//! Unauthenticated work is bounded exactly as God Mode's sign-in is (issue 19): the source's
//! quota first, then the password workers' saturation, and only then a database read or an
//! argon2id hash, which runs on the same bounded, low-priority pool
//! ([`crate::sign_in_guard`]). A sign-up for an address that already has an account looks
//! exactly like a fresh one ("we sent you a link"), so the form does not reveal who has an
//! account; the address's owner gets a link either way only if they have not verified yet.
//!
//! Every token a person holds (session cookie, e-mail link, API token) names the region of
//! the database that knows it ([`RegionToken`]), so it is looked up in one place.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use genesis_core::Region;
use genesis_store::accounts::{NewAccount, NewLink};
use genesis_store::{Account, Database, StoreError};
use sha2::{Digest, Sha256};

use crate::app::operators::Refusal;
use crate::credentials::{decoy_hash, new_token, token_digest};
use crate::{AppState, Problem};

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long an invitation works.
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most one fresh verification link per account this often (sign-ins of an unverified
/// account resend one).
pub const RESEND_QUIET: Duration = Duration::from_secs(5 * 60);
/// The weakest password accepted, on zxcvbn's 0–4 scale ("safely unguessable").
pub const MIN_STRENGTH: u8 = 3;
/// How much of a password the strength estimate reads.
const ESTIMATED_CHARS: usize = 64;

/// A secret a person holds, prefixed by the region whose database knows it:
/// `eu-west.<43 characters>`. The prefix is not a secret; the digest covers the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionToken {
    /// Where it is known.
    pub region: Region,
    /// The whole token, as its holder presents it.
    pub token: String,
}

impl RegionToken {
    /// A fresh random token for `region`.
    pub fn new(region: Region) -> Self {
        Self {
            region,
            token: format!("{}.{}", region.code(), new_token()),
        }
    }

    /// Reads a presented token; `None` for anything not shaped like one (callers treat it
    /// as unknown, like a wrong one).
    pub fn parse(raw: &str) -> Option<Self> {
        let (region, secret) = raw.split_once('.')?;
        if secret.len() != 43 {
            return None;
        }
        Some(Self {
            region: Region::parse(region).ok()?,
            token: raw.to_owned(),
        })
    }

    /// What the database keeps.
    pub fn digest(&self) -> [u8; 32] {
        token_digest(&self.token)
    }
}

/// The sign-up form, as typed.
#[derive(Debug, Clone)]
pub struct SignUp<'a> {
    /// Where it came from.
    pub source: IpAddr,
    /// The address.
    pub email: &'a str,
    /// The password.
    pub password: String,
    /// "Where should your data be stored?" (a region code).
    pub region: &'a str,
    /// The origin links are built on (`https://app.example.com`).
    pub origin: &'a str,
}

/// Why a sign-up changed nothing, field by field where a field is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUpRefusal {
    /// A field is wrong: (field, what to do).
    Invalid(&'static str, String),
    /// Throttled or busy, as a sign-in would be.
    Limited(Refusal),
}

/// The SHA-256 of a normalised address: what the coordinating database keeps of it.
fn email_digest(email: &str) -> [u8; 32] {
    Sha256::digest(email.as_bytes()).into()
}

fn normalise_email(raw: &str) -> Result<String, SignUpRefusal> {
    genesis_core::Email::parse(raw)
        .map(|e| e.as_str().to_owned())
        .map_err(|_| {
            SignUpRefusal::Invalid(
                "email",
                "enter an e-mail address like ada@example.com".into(),
            )
        })
}

/// Why `password` is too weak for `email`, if it is: at least 12 characters, and not
/// guessable (zxcvbn's estimate, which knows common passwords, words, dates, keyboard
/// patterns and the address itself).
pub fn password_weakness(password: &str, email: &str) -> Option<String> {
    let min = crate::credentials::MIN_PASSWORD;
    if password.chars().count() < min {
        return Some(format!("use at least {min} characters"));
    }
    if password.chars().count() > 256 {
        return Some("use at most 256 characters".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    // zxcvbn's matching grows faster than linearly with length, and this runs before any
    // password worker is involved: the estimate reads the first 64 characters, which decide
    // the score of every password a person would choose (a weak start is a weak password).
    let head: String = password.chars().take(ESTIMATED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&head, &[email, local]);
    (u8::from(estimate.score()) < MIN_STRENGTH).then(|| {
        estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .filter(|w| !w.is_empty())
            .map_or_else(
                || {
                    "choose a password that is harder to guess: a few unrelated words work well"
                        .into()
                },
                |w| {
                    format!(
                        "{w} Choose one that is harder to guess: a few unrelated words work well."
                    )
                },
            )
    })
}

fn expiry(ttl: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1))
}

/// The link a verification token is used through.
fn verify_url(origin: &str, token: &RegionToken) -> String {
    format!("{origin}/app/verify?token={}", token.token)
}

/// Signs up: validates every field, then creates the account in the chosen region with a
/// verification link in the outbox. `Ok(())` says "check your mail" whether or not the
/// address already had an account.
pub async fn sign_up(
    state: &AppState,
    form: SignUp<'_>,
) -> Result<Result<(), SignUpRefusal>, Problem> {
    let guard = &state.sign_ins;
    if !guard.admit(form.source) {
        metrics::counter!("genesis_sign_ups_total", "outcome" => "throttled").increment(1);
        guard.delay_refusal().await;
        return Ok(Err(SignUpRefusal::Limited(Refusal::Throttled)));
    }
    let email = match normalise_email(form.email) {
        Ok(e) => e,
        Err(r) => return Ok(Err(r)),
    };
    let Ok(region) = Region::parse(form.region) else {
        return Ok(Err(SignUpRefusal::Invalid(
            "region",
            "choose where your data will be stored".into(),
        )));
    };
    if let Some(why) = password_weakness(&form.password, &email) {
        return Ok(Err(SignUpRefusal::Invalid("password", why)));
    }
    if guard.saturated() {
        guard.delay_refusal().await;
        return Ok(Err(SignUpRefusal::Limited(Refusal::Busy(
            crate::sign_in_guard::Busy::Saturated,
        ))));
    }
    // The hash is made before the address is looked at, so a known address costs the same.
    let hash = match guard.hash_password(form.password).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Ok(Err(SignUpRefusal::Invalid("password", e.to_string()))),
        Err(busy) => return Ok(Err(SignUpRefusal::Limited(Refusal::Busy(busy)))),
    };
    let digest = email_digest(&email);
    let coordinator = state.stores.coordinator();
    if !coordinator.account_claim(&digest, region).await? {
        metrics::counter!("genesis_sign_ups_total", "outcome" => "known_address").increment(1);
        resend_if_unverified(state, &email, form.origin).await?;
        return Ok(Ok(()));
    }
    let token = RegionToken::new(region);
    let url = verify_url(form.origin, &token);
    let created = state
        .stores
        .for_region(region)
        .account_create(
            &NewAccount {
                id: uuid::Uuid::now_v7(),
                email: &email,
                password_hash: &hash,
                region,
            },
            &NewLink {
                token_sha256: &token.digest(),
                expires_at: expiry(VERIFY_TTL),
                url: &url,
            },
        )
        .await;
    if let Err(e) = created {
        if let Err(release) = coordinator.account_claim_release(&digest).await {
            tracing::warn!(error = %release, "an address claim could not be given back");
        }
        return Err(e.into());
    }
    metrics::counter!("genesis_sign_ups_total", "outcome" => "created").increment(1);
    Ok(Ok(()))
}

/// The database holding the account of `email`, if there is one.
async fn home_of<'s>(state: &'s AppState, email: &str) -> Result<Option<&'s Database>, StoreError> {
    Ok(state
        .stores
        .coordinator()
        .account_claim_region(&email_digest(email))
        .await?
        .map(|r| state.stores.for_region(r)))
}

/// Sends a fresh link to an account not verified yet (quietly rate-limited).
async fn resend_if_unverified(state: &AppState, email: &str, origin: &str) -> Result<(), Problem> {
    let Some(db) = home_of(state, email).await? else {
        return Ok(());
    };
    let Some(creds) = db.account_credentials(email).await? else {
        return Ok(());
    };
    resend(db, &creds.account, origin).await
}

async fn resend(db: &Database, account: &Account, origin: &str) -> Result<(), Problem> {
    if account.verified_at.is_some() {
        return Ok(());
    }
    let region = Region::parse(&account.region).map_err(|_| Problem::internal())?;
    let token = RegionToken::new(region);
    let url = verify_url(origin, &token);
    db.account_verification_resend(
        account,
        &NewLink {
            token_sha256: &token.digest(),
            expires_at: expiry(VERIFY_TTL),
            url: &url,
        },
        RESEND_QUIET,
    )
    .await?;
    Ok(())
}

/// Uses a verification link. `None`: unknown, expired or used (one answer for all).
pub async fn verify(state: &AppState, raw: &str) -> Result<Option<Account>, Problem> {
    let Some(token) = RegionToken::parse(raw) else {
        return Ok(None);
    };
    Ok(state
        .stores
        .for_region(token.region)
        .account_verify(&token.digest())
        .await?)
}

/// Why a tenant's sign-in was refused, beyond God Mode's reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRefusal {
    /// As for an operator (throttled, busy, locked, wrong).
    Like(Refusal),
    /// The password is right but the address is not verified; a new link was sent.
    Unverified,
}

impl AccountRefusal {
    /// What the page says.
    pub fn message(&self) -> String {
        match self {
            AccountRefusal::Like(Refusal::Wrong) => "Wrong e-mail or password.".into(),
            AccountRefusal::Like(r) => r.message(),
            AccountRefusal::Unverified => "Confirm your e-mail address first: we have sent you a \
                 link (it can take a minute to arrive)."
                .into(),
        }
    }

    /// The page's status.
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            AccountRefusal::Like(r) => r.status(),
            AccountRefusal::Unverified => axum::http::StatusCode::FORBIDDEN,
        }
    }
}

/// The lockout key of an address in the coordinating database: a digest, not the address
/// (which stays in its region).
fn failure_key(email: &str) -> String {
    let d = email_digest(email);
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("account:{hex}")
}

/// Checks a tenant's sign-in and opens a session: `Ok(token)` is the cookie's value.
pub async fn sign_in(
    state: &AppState,
    source: IpAddr,
    email: &str,
    password: String,
    origin: &str,
) -> Result<Result<RegionToken, AccountRefusal>, Problem> {
    let guard = &state.sign_ins;
    let settings = &state.god;
    let counted = |outcome: &'static str| {
        metrics::counter!("genesis_tenant_sign_ins_total", "outcome" => outcome).increment(1);
    };
    let refused = |r: Refusal| Ok(Err(AccountRefusal::Like(r)));
    if !guard.admit(source) {
        counted("throttled");
        guard.delay_refusal().await;
        return refused(Refusal::Throttled);
    }
    if guard.saturated() {
        counted("busy");
        guard.delay_refusal().await;
        return refused(Refusal::Busy(crate::sign_in_guard::Busy::Saturated));
    }
    let email = email.trim().to_lowercase();
    let client = source.to_string();
    let key = failure_key(&email);
    let coordinator = state.stores.coordinator();
    if coordinator
        .sign_in_failures(&key, &client, settings.failure_window)
        .await?
        >= settings.max_failures
    {
        counted("locked");
        return refused(Refusal::Locked {
            retry_after_s: settings.failure_window.as_secs(),
        });
    }
    let db = home_of(state, &email).await?;
    let creds = match db {
        Some(db) => db.account_credentials(&email).await?,
        None => None,
    };
    let hash = creds
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |c| c.password_hash.clone());
    let matches = match guard.check_password(password, hash).await {
        Ok(m) => m,
        Err(busy) => {
            counted("busy");
            guard.delay_refusal().await;
            return refused(Refusal::Busy(busy));
        }
    };
    let (Some(db), Some(creds)) = (db, creds.filter(|c| matches && !c.disabled)) else {
        counted("wrong");
        coordinator
            .sign_in_failure_note(&key, &client, settings.failure_window)
            .await?;
        return refused(Refusal::Wrong);
    };
    coordinator.sign_in_failures_clear(&key, &client).await?;
    if creds.account.verified_at.is_none() {
        counted("unverified");
        resend(db, &creds.account, origin).await?;
        return Ok(Err(AccountRefusal::Unverified));
    }
    counted("ok");
    let region = Region::parse(&creds.account.region).map_err(|_| Problem::internal())?;
    let token = RegionToken::new(region);
    db.account_session_open(
        &creds.account,
        &token.digest(),
        expiry(settings.session_ttl),
        &client,
    )
    .await?;
    note_sign_in(state, &creds.account).await;
    Ok(Ok(token))
}

/// A dashboard sign-in is login activity for each of the account's workspaces, and wakes
/// those that sleep (spec 55.3) without the tenant asking: the activity is recorded first
/// (the hibernation pass wakes every tenant with activity since it went to sleep), then the
/// reconciler is rung. A failure here never fails the sign-in; the next pass catches up.
async fn note_sign_in(state: &AppState, account: &Account) {
    let now = Utc::now();
    for db in state.stores.distinct() {
        let memberships = match db.account_memberships(account.id).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "sign-in activity not recorded");
                continue;
            }
        };
        for m in memberships {
            if let Err(e) = db
                .activity_touch(m.workspace_id, genesis_store::ActivityKind::Login, now)
                .await
            {
                tracing::warn!(workspace = %m.workspace_id, error = %e, "sign-in activity not recorded");
                continue;
            }
            crate::app::hibernation::ring_if_asleep(state, db, m.workspace_id).await;
        }
    }
}

/// The account of a session cookie's value, if the session is live.
pub async fn session(state: &AppState, raw: &str) -> Result<Option<Account>, Problem> {
    let Some(token) = RegionToken::parse(raw) else {
        return Ok(None);
    };
    Ok(state
        .stores
        .for_region(token.region)
        .account_session(&token.digest())
        .await?)
}

/// Ends this session, or every session of the account (`everywhere`).
pub async fn sign_out(
    state: &AppState,
    account: &Account,
    raw: &str,
    everywhere: bool,
) -> Result<u64, Problem> {
    let Some(token) = RegionToken::parse(raw) else {
        return Ok(0);
    };
    Ok(state
        .stores
        .for_region(token.region)
        .account_session_revoke(account, &token.digest(), everywhere)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_tokens_name_their_region_and_refuse_other_shapes() {
        let t = RegionToken::new(Region::EuWest);
        assert!(t.token.starts_with("eu-west."));
        assert_eq!(RegionToken::parse(&t.token), Some(t.clone()));
        for bad in ["", "eu-west", "mars.abc", "eu-west.short", &t.token[1..]] {
            assert_eq!(RegionToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let email = "ada@example.com";
        assert!(password_weakness("short", email).is_some_and(|w| w.contains("12")));
        for weak in [
            "password1234",
            "ada@example.com",
            "qwertyuiopas",
            "111111111111",
        ] {
            assert!(password_weakness(weak, email).is_some(), "{weak}");
        }
        assert_eq!(password_weakness("staple orbit velvet canyon", email), None);
        // A long password is estimated by its start: a long run of one character is weak.
        assert!(password_weakness(&"a".repeat(200), email).is_some());
    }
}
