//! Operators' secrets as the control plane keeps them: argon2id password hashes (OWASP's
//! parameters: 19 MiB, two passes) and random bearer tokens, of which only the SHA-256 is
//! stored. God Mode's sessions, the API token and sidecar tokens all use these.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short to be worth hashing.
    #[error("a password needs at least {0} characters")]
    TooShort(usize),
    /// The hasher refused (never expected with fixed parameters).
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// The shortest password `create-operator` accepts.
pub const MIN_PASSWORD: usize = 12;

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordError::TooShort(MIN_PASSWORD));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches `phc`. A malformed stored hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to check passwords against when the address is unknown, so that answer takes
/// as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// A random session token (256 bits), as the cookie carries it.
pub fn new_token() -> String {
    let mut t = [0u8; 32];
    rand::rng().fill_bytes(&mut t);
    URL_SAFE_NO_PAD.encode(t)
}

/// What the database keeps of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` has the shape [`new_token`] gives (43 URL-safe base64 characters):
/// anything else is refused before a lookup.
pub fn token_shaped(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Lower-case hexadecimal, for fingerprints and ids in logs and headers.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort(MIN_PASSWORD))
        ));
        assert_ne!(
            hash_password("correct horse battery").expect("hash"),
            h,
            "a fresh salt each time"
        );
    }
}
