//! The operators' second factor: TOTP (RFC 6238; SHA-1, 6 digits, 30-second steps, one
//! step of clock skew either way), the parameters every authenticator app uses.
//!
//! The arithmetic is `totp-rs`'s; what is ours is the policy: a 160-bit secret (RFC 4226's
//! recommendation), sealed with the vault's master key in the database
//! (`genesis_store::operators::totp_aad`), shown to the operator once as an `otpauth://`
//! URI, and each step's code accepted once ([`genesis_store::Database::operator_totp_use`]).

use totp_rs::{Algorithm, Builder, Totp};

/// Bytes of a new secret.
pub const SECRET_BYTES: usize = 20;

/// The issuer authenticator apps show.
pub const ISSUER: &str = "Genesis God Mode";

/// Why a code was not checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecondFactorError {
    /// The stored secret is not a usable TOTP secret (it was not made by [`new_secret`]).
    #[error("the enrolled second factor is unusable: {0}")]
    BadSecret(String),
}

/// A fresh random secret.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    let mut s = [0u8; SECRET_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut s);
    s
}

fn totp(secret: &[u8]) -> Result<Totp, SecondFactorError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .map_err(|e| SecondFactorError::BadSecret(e.to_string()))
}

/// The time step `code` is valid for at Unix time `now` (within one step either way), or
/// `None` for a wrong code. Anything but six digits is wrong without a check.
pub fn check(secret: &[u8], code: &str, now: u64) -> Result<Option<u64>, SecondFactorError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp(secret)?.check(code, now))
}

/// The code for Unix time `now` (tests and the CLI's self-check).
pub fn code_at(secret: &[u8], now: u64) -> Result<String, SecondFactorError> {
    Ok(totp(secret)?.generate(now).to_string())
}

/// The secret in base32 (what an app's "enter a key" screen takes).
pub fn base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// The `otpauth://` URI authenticator apps import (as a QR code or a link).
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    let label: String = form_urlencoded::byte_serialize(format!("{ISSUER}:{account}").as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let issuer = form_urlencoded::byte_serialize(ISSUER.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!(
        "otpauth://totp/{label}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret and vectors (the last six digits).
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(RFC_SECRET, t).expect("code"), code, "t = {t}");
            assert_eq!(check(RFC_SECRET, code, t).expect("check"), Some(t / 30));
        }
    }

    #[test]
    fn one_step_of_skew_is_accepted_and_no_more() {
        let s = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&s, now).expect("code");
        assert!(check(&s, &code, now + 30).expect("check").is_some());
        assert!(check(&s, &code, now - 30).expect("check").is_some());
        assert_eq!(check(&s, &code, now + 90).expect("check"), None);
        assert_eq!(check(&s, "12345", now).expect("check"), None);
        assert_eq!(check(&s, "12a456", now).expect("check"), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_account() {
        let uri = otpauth_uri(RFC_SECRET, "ops@genesis.test");
        assert!(uri.starts_with("otpauth://totp/Genesis%20God%20Mode%3Aops%40genesis.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Genesis%20God%20Mode"), "{uri}");
    }
}
