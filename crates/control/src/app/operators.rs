//! Operators signing in to God Mode and out of it.
//!
//! A sign-in is the one operation anybody may attempt without credentials, so its order of
//! work is the policy: the source's quota first (no database, no hashing), then the
//! hashers' saturation, then this address's recent failures from this source, and only then
//! the argon2id check, against a decoy hash when the address is unknown so that a refusal
//! takes as long either way. The second factor is asked only once the password is right. A
//! refusal says as little as a refusal can ("wrong e-mail, password or code"), is counted
//! against the address *from this source*, and is audited within the audit budget.

use std::net::IpAddr;

use axum::http::StatusCode;

use crate::credentials::{decoy_hash, new_token, token_digest};
use crate::sign_in_guard::Busy;
use crate::{AppState, Problem};

/// Why a sign-in was refused, as the person signing in may learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many attempts from this source: nothing was checked.
    Throttled,
    /// The password checkers are saturated or the queue for them is full.
    Busy(Busy),
    /// Too many recent failures for this address from this source.
    Locked {
        /// Seconds until the failures age out.
        retry_after_s: u64,
    },
    /// Wrong address, password or code (which one is not said).
    Wrong,
    /// The password is right, but this control plane requires a second factor and the
    /// account has none.
    SecondFactorRequired,
    /// The account has a second factor, but no vault key is configured to read it.
    SecondFactorUnavailable,
}

impl Refusal {
    /// The HTTP status of the page that says so.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Throttled | Refusal::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Wrong | Refusal::SecondFactorRequired | Refusal::SecondFactorUnavailable => {
                StatusCode::UNAUTHORIZED
            }
        }
    }

    /// When to try again, in seconds, if waiting helps.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Refusal::Throttled => Some(60),
            Refusal::Busy(_) => Some(5),
            Refusal::Locked { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// What the sign-in page says.
    pub fn message(&self) -> String {
        match self {
            Refusal::Throttled => {
                "Too many sign-in attempts from your address. Wait a minute and try again.".into()
            }
            Refusal::Busy(busy) => format!("{}.", capitalise(&busy.to_string())),
            Refusal::Locked { .. } => {
                "Too many failed sign-ins for this address. Wait a few minutes and try again."
                    .into()
            }
            Refusal::Wrong => "Wrong e-mail, password or code.".into(),
            Refusal::SecondFactorRequired => {
                "This account has no second factor yet, and this control plane requires one. \
                 Enrol one with `genesis admin operator-totp`."
                    .into()
            }
            Refusal::SecondFactorUnavailable => {
                "The second factor cannot be checked: this control plane has no vault key. Ask \
                 whoever runs it."
                    .into()
            }
        }
    }
}

/// `s` with its first letter in upper case (error messages start lower case, sentences not).
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One attempt to sign in.
#[derive(Debug)]
pub struct SignInAttempt<'a> {
    /// Where it came from (the peer, or the client a trusted proxy names).
    pub source: IpAddr,
    /// The address as typed (trimmed and lower-cased here).
    pub email: &'a str,
    /// The password (moved to a checker thread, never logged).
    pub password: String,
    /// The second factor's code, if the form carried one.
    pub code: Option<&'a str>,
}

/// Checks `attempt` and, when it passes, opens a session: `Ok(token)` is the new session's
/// token (only its digest is stored), `Err(refusal)` what to tell the person.
pub async fn sign_in(
    state: &AppState,
    attempt: SignInAttempt<'_>,
) -> Result<Result<String, Refusal>, Problem> {
    let guard = &state.sign_ins;
    let settings = &state.god;
    let source = attempt.source;
    let client = source.to_string();
    let email = attempt.email.trim().to_lowercase();
    let db = state.stores.coordinator().clone();
    let counted = |outcome: &'static str| {
        metrics::counter!("genesis_sign_ins_total", "outcome" => outcome).increment(1);
    };
    if !guard.admit(source) {
        counted("throttled");
        if let Some(held_back) = guard.throttled_audit.slot(source) {
            db.operator_login_failed(&email, Some(&client), "throttled", held_back)
                .await?;
        }
        guard.delay_refusal().await;
        return Ok(Err(Refusal::Throttled));
    }
    // Nothing more (no database read) is spent on an attempt that could not be checked.
    if guard.saturated() {
        counted("busy");
        guard.delay_refusal().await;
        return Ok(Err(Refusal::Busy(Busy::Saturated)));
    }
    let audit_refusal = |reason: &'static str| {
        let db = db.clone();
        let (email, client) = (email.clone(), client.clone());
        async move {
            match guard.failures_audit.slot(source) {
                Some(held_back) => {
                    db.operator_login_failed(&email, Some(&client), reason, held_back)
                        .await
                }
                None => Ok(()),
            }
        }
    };
    if db
        .sign_in_failures(&email, &client, settings.failure_window)
        .await?
        >= settings.max_failures
    {
        counted("locked");
        audit_refusal("too_many_failures").await?;
        return Ok(Err(Refusal::Locked {
            retry_after_s: settings.failure_window.as_secs(),
        }));
    }
    let account = db.operator_credentials(&email).await?;
    let hash = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone());
    let matches = match guard.check_password(attempt.password, hash).await {
        Ok(m) => m,
        Err(busy) => {
            counted("busy");
            guard.delay_refusal().await;
            return Ok(Err(Refusal::Busy(busy)));
        }
    };
    let mut refusal = match &account {
        None => Some("unknown_operator"),
        Some(a) if a.disabled => Some("disabled"),
        _ if !matches => Some("wrong_password"),
        _ => None,
    };
    // The second factor, only once the password is right (a wrong password learns nothing
    // about whether the account has one).
    if let (None, Some(a)) = (refusal, &account) {
        refusal = second_factor_refusal(state, &db, a, attempt.code).await?;
    }
    let Some(account) = account.filter(|_| refusal.is_none()) else {
        let reason = refusal.unwrap_or("refused");
        counted(reason);
        db.sign_in_failure_note(&email, &client, settings.failure_window)
            .await?;
        audit_refusal(reason).await?;
        tracing::warn!(email = %email, %source, reason, "God Mode sign-in refused");
        return Ok(Err(match reason {
            "second_factor_required" => Refusal::SecondFactorRequired,
            "second_factor_unavailable" => Refusal::SecondFactorUnavailable,
            _ => Refusal::Wrong,
        }));
    };
    counted("ok");
    db.sign_in_failures_clear(&email, &client).await?;
    let token = new_token();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(settings.session_ttl).unwrap_or(chrono::Duration::hours(1));
    db.operator_session_open(
        genesis_store::NewSession {
            token_sha256: &token_digest(&token),
            operator: account.operator.id,
            expires_at,
            client: Some(&client),
        },
        &email,
    )
    .await?;
    Ok(Ok(token))
}

/// Why an operator whose password was right is still refused, if they are: a missing,
/// wrong or replayed second-factor code, or none enrolled where one is required.
async fn second_factor_refusal(
    state: &AppState,
    db: &genesis_store::Database,
    account: &genesis_store::OperatorCredentials,
    code: Option<&str>,
) -> Result<Option<&'static str>, Problem> {
    let Some(sealed) = &account.totp else {
        return Ok(state
            .god
            .require_second_factor
            .then_some("second_factor_required"));
    };
    let Some(keys) = &state.vault else {
        tracing::error!("an operator has a second factor but the vault has no master key");
        return Ok(Some("second_factor_unavailable"));
    };
    let secret = keys
        .open(
            sealed,
            &genesis_store::operators::totp_aad(account.operator.id),
        )
        .map_err(Problem::from)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let step = crate::second_factor::check(&secret, code.unwrap_or_default(), now)
        .map_err(|e| {
            tracing::error!(operator = %account.operator.email, error = %e, "second factor unusable");
            Problem::internal()
        })?;
    let Some(step) = step else {
        return Ok(Some("wrong_code"));
    };
    let fresh = db
        .operator_totp_use(account.operator.id, i64::try_from(step).unwrap_or(i64::MAX))
        .await?;
    Ok((!fresh).then_some("replayed_code"))
}

/// Ends the session whose token has this digest (audited LOGOUT).
pub async fn sign_out(state: &AppState, token_sha256: &[u8; 32]) -> Result<(), Problem> {
    state
        .stores
        .coordinator()
        .operator_session_revoke(token_sha256)
        .await?;
    Ok(())
}
