//! Verifies the payment provider's webhook signatures: Stripe's `Stripe-Signature` scheme.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`: `v1` is HMAC-SHA256 of
//! `"{t}.{raw body}"` under the endpoint's `whsec_…` secret, and there is one `v1` per secret
//! while the provider rolls one (we accept any). Other schemes (`v0`, test-only) are ignored.
//! The timestamp is inside the signed payload, so a delivery older than the tolerance cannot
//! be made fresh; a fresh one sent twice is caught by the receiver's memory of signatures
//! ([`crate::app::payments`]).
//!
//! Written here rather than taken from a Stripe SDK: the scheme is twenty lines over `hmac`,
//! and the Rust SDKs bring the whole API's generated types with them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a delivery's signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or not `t=…,v1=…`.
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    /// Older (or further in the future) than the tolerance.
    #[error("the delivery's timestamp is outside the tolerance")]
    Stale,
    /// No `v1` matches the body under our secret.
    #[error("no signature matches the body")]
    Mismatch,
}

impl SignatureError {
    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed",
            SignatureError::Stale => "stale",
            SignatureError::Mismatch => "forged",
        }
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `header` against `body` under `secret` at `now` (unix seconds), allowing
/// `tolerance_s` of clock difference either way. The signed timestamp when it holds.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    tolerance_s: i64,
    now: i64,
) -> Result<i64, SignatureError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" if t.is_none() => {
                t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            "t" => return Err(SignatureError::Malformed),
            "v1" if signatures.len() < 8 => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_s {
        return Err(SignatureError::Stale);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Mismatch)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    for candidate in signatures {
        // verify_slice compares in constant time.
        if let Some(bytes) = unhex(candidate)
            && mac.clone().verify_slice(&bytes).is_ok()
        {
            return Ok(t);
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    /// The signer of the simulated provider, which follows Stripe's documented scheme.
    use genesis_sim::payments::sign;

    #[test]
    fn a_genuine_signature_holds_and_any_change_breaks_it() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(&header, body, SECRET, 300, 1_100), Ok(1_000));
        let swapped = br#"{"id":"evt_1","type":"payment_intent.succeeded "}"#;
        assert_eq!(
            verify(&header, swapped, SECRET, 300, 1_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, body, "whsec_other", 300, 1_100),
            Err(SignatureError::Mismatch)
        );
        // Moving the timestamp without the secret breaks the signature.
        let moved = header.replace("t=1000", "t=1200");
        assert_eq!(
            verify(&moved, body, SECRET, 300, 1_300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_deliveries_are_refused() {
        let body = b"{}";
        assert_eq!(
            verify(&sign(SECRET, 1_000, body), body, SECRET, 300, 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&sign(SECRET, 2_000, body), body, SECRET, 300, 1_000),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_rolled_secret_signs_twice_and_either_matches() {
        let body = b"{}";
        let old = sign("whsec_old", 1_000, body);
        let new = sign(SECRET, 1_000, body);
        let both = format!(
            "{old},v1={},v0=ignored",
            new.split("v1=").nth(1).unwrap_or("")
        );
        assert_eq!(verify(&both, body, SECRET, 300, 1_000), Ok(1_000));
    }

    #[test]
    fn malformed_headers_are_named_as_such() {
        for h in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1000",
            "t=1,t=1,v1=00",
            "garbage",
        ] {
            assert_eq!(
                verify(h, b"{}", SECRET, 300, 1),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
        assert_eq!(
            verify("t=1,v1=zz", b"{}", SECRET, 300, 1),
            Err(SignatureError::Mismatch)
        );
    }
}
