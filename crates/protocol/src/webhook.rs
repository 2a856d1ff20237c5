//! Webhooks we send and receive (spec 65.3, DESIGN §3.5), signed per Standard Webhooks:
//! `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")), several signatures
//! separated by spaces while a secret rotates, carried in the standard `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers. The official libraries read those
//! names only: a tenant's receiver built on one of them refuses anything else (the
//! `X-Genesis-*` names we used first). The interop test checks both directions against the
//! official Python library.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Header with the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Header with the Unix timestamp.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header with the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Oldest (and furthest in the future) a timestamp may be, seconds.
pub const TOLERANCE_S: u64 = 300;

/// Why a webhook secret or delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A secret is not `whsec_` + base64.
    #[error("a webhook secret is whsec_ followed by base64")]
    Secret,
    /// Headers missing or unreadable.
    #[error("missing or malformed signature headers")]
    Malformed,
    /// No signature matches any current secret (401).
    #[error("signature mismatch")]
    BadSignature,
    /// Timestamp outside ±5 minutes (a replay or a broken clock).
    #[error("timestamp outside the tolerance")]
    Stale,
    /// This id was delivered before.
    #[error("request id seen before")]
    Replayed,
}

/// Secrets are base64 with or without padding: other Standard Webhooks senders issue them
/// unpadded, and the official libraries accept both.
const SECRET_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let b64 = secret
        .trim()
        .strip_prefix("whsec_")
        .unwrap_or(secret.trim());
    let key = SECRET_B64.decode(b64).map_err(|_| WebhookError::Secret)?;
    if key.is_empty() {
        return Err(WebhookError::Secret);
    }
    Ok(key)
}

/// A fresh secret: `whsec_` and 32 random bytes in base64 (the spec asks 24 to 64 bytes).
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", crate::b64().encode(key))
}

/// The HMAC over `{id}.{timestamp}.{body}`, ready to finalize (sign) or compare (verify,
/// in constant time).
fn mac(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> Result<Hmac<Sha256>, WebhookError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WebhookError::Secret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// Signs deliveries with every current secret (newest first).
#[derive(Clone)]
pub struct WebhookSigner {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSigner({} secrets)", self.keys.len())
    }
}

impl WebhookSigner {
    /// A signer for `secrets` (`whsec_...`); more than one while rotating.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, WebhookError> {
        let keys = secrets
            .iter()
            .map(|s| decode_secret(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(WebhookError::Secret);
        }
        Ok(Self { keys })
    }

    /// The `webhook-signature` value for one delivery.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> Result<String, WebhookError> {
        let parts = self
            .keys
            .iter()
            .map(|k| {
                mac(k, id, timestamp, body)
                    .map(|m| format!("v1,{}", crate::b64().encode(m.finalize().into_bytes())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(" "))
    }
}

/// Verifies deliveries: signature by any current secret, timestamp within five minutes, id
/// never seen (ids are kept as long as their timestamp could still pass).
pub struct WebhookVerifier {
    keys: Vec<Vec<u8>>,
    seen: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookVerifier({} secrets)", self.keys.len())
    }
}

impl WebhookVerifier {
    /// A verifier for `secrets`.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, WebhookError> {
        Ok(Self {
            keys: WebhookSigner::new(secrets)?.keys,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Checks one delivery at `now` (Unix seconds) and spends its id.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), WebhookError> {
        let (id, ts) = check(&self.keys, id, timestamp, signatures, body, now)?;
        let mut seen = self.seen.lock().map_err(|_| WebhookError::Replayed)?;
        seen.retain(|_, t| now.abs_diff(*t) <= TOLERANCE_S);
        if seen.contains_key(id) {
            return Err(WebhookError::Replayed);
        }
        seen.insert(id.to_owned(), ts);
        Ok(())
    }
}

/// The stateless half of a verification: headers present, timestamp within
/// [`TOLERANCE_S`] of `now`, and some `v1` signature made by one of `keys` (compared in
/// constant time). Answers the id and the timestamp, for the caller's memory of ids: this
/// one remembers nothing, so a replay passes it.
pub fn check<'a>(
    keys: &[Vec<u8>],
    id: Option<&'a str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(&'a str, u64), WebhookError> {
    let (Some(id), Some(ts), Some(sigs)) = (id, timestamp, signatures) else {
        return Err(WebhookError::Malformed);
    };
    let ts: u64 = ts.trim().parse().map_err(|_| WebhookError::Malformed)?;
    if now.abs_diff(ts) > TOLERANCE_S {
        return Err(WebhookError::Stale);
    }
    let genuine = sigs
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| crate::b64().decode(s).ok())
        .any(|sig| {
            keys.iter().any(|k| {
                mac(k, id, ts, body)
                    .map(|m| m.verify_slice(&sig).is_ok())
                    .unwrap_or(false)
            })
        });
    if !genuine {
        return Err(WebhookError::BadSignature);
    }
    Ok((id, ts))
}

/// The key bytes of a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    decode_secret(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: u64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn the_standard_webhooks_test_vector() {
        let s = WebhookSigner::new(&[SECRET]).expect("secret");
        assert_eq!(
            s.sign(ID, TS, BODY).expect("sign"),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_are_whsec_base64_padded_or_not_and_never_empty() {
        let padded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA==";
        let unpadded = padded.trim_end_matches('=');
        let sign = |s: &str| WebhookSigner::new(&[s]).and_then(|w| w.sign(ID, TS, BODY));
        assert_eq!(sign(padded), sign(unpadded));
        assert!(sign(padded).is_ok());
        assert_eq!(sign("whsec_").err(), Some(WebhookError::Secret));
        assert_eq!(sign("whsec_not base64!").err(), Some(WebhookError::Secret));
        let fresh = new_secret();
        assert!(fresh.starts_with("whsec_") && sign(&fresh).is_ok());
        assert_ne!(fresh, new_secret());
    }

    #[test]
    fn forgeries_stale_and_replayed_deliveries_are_refused() {
        let v = WebhookVerifier::new(&[SECRET]).expect("secret");
        let sig = WebhookSigner::new(&[SECRET])
            .expect("secret")
            .sign(ID, TS, BODY)
            .expect("sign");
        let ts = TS.to_string();
        let check = |id: &str, ts: &str, sig: &str, body: &[u8], now: u64| {
            v.verify(Some(id), Some(ts), Some(sig), body, now)
        };
        assert_eq!(
            check(ID, &ts, &sig, br#"{"email":"x"}"#, TS),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            check(ID, &ts, &sig, BODY, TS + TOLERANCE_S + 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            v.verify(None, Some(&ts), Some(&sig), BODY, TS),
            Err(WebhookError::Malformed)
        );
        assert_eq!(check(ID, &ts, &sig, BODY, TS + 10), Ok(()));
        assert_eq!(
            check(ID, &ts, &sig, BODY, TS + 11),
            Err(WebhookError::Replayed)
        );
        // During rotation a delivery carries two signatures; either secret verifies it.
        let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let both = WebhookSigner::new(&[new, SECRET])
            .expect("secrets")
            .sign("msg_2", TS, BODY)
            .expect("sign");
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(check("msg_2", &ts, &both, BODY, TS), Ok(()));
        let only_new = WebhookVerifier::new(&[new]).expect("secret");
        assert_eq!(
            only_new.verify(Some("msg_2"), Some(&ts), Some(&both), BODY, TS),
            Ok(())
        );
        assert_eq!(
            only_new.verify(Some(ID), Some(&ts), Some(&sig), BODY, TS),
            Err(WebhookError::BadSignature),
            "a retired secret no longer verifies"
        );
    }
}
