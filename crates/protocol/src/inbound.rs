//! Inbound signatures (spec 65.3): every call a tenant's n8n makes to the control plane
//! leaves the droplet through its sidecar's relay, which signs it with a secret only that
//! sidecar holds; the control plane verifies the signature, the timestamp (five minutes) and
//! that the id is new.
//!
//! The signature is Standard Webhooks' (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`; decision 86), not the spec's `X-Genesis-*` names: one scheme for
//! both directions, checked against the official library.
//!
//! # The droplet's secret
//! The control plane derives each droplet's secret from one server key of its own:
//! HMAC-SHA256 over the workspace and the cloud droplet id ([`droplet_secret`]), handed to
//! the sidecar in the handshake's answer. So nothing new is stored, in clear or sealed, and a
//! verification costs two HMACs and no database read: a flood of forged calls is cheap to
//! refuse. The message id names the workspace and the droplet ([`MessageId`]), which is how
//! the verifier knows which secret to derive; a secret works for its own droplet and
//! workspace only.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

pub use crate::webhook::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, TOLERANCE_S};

/// The port the sidecar's relay listens on inside the droplet (not published, and Caddy
/// has no route to it: only the droplet's own containers reach it).
pub const RELAY_PORT: u16 = 8444;

/// Domain separation for the derivation, so the server key can never sign anything else
/// by accident.
const CONTEXT: &[u8] = b"genesis inbound signing v1";

/// The secret (`whsec_...`) of the sidecar of `droplet` (the cloud's id) serving
/// `workspace`, derived from the control plane's `server_key`.
pub fn droplet_secret(server_key: &[u8; 32], workspace: Uuid, droplet: i64) -> String {
    use base64::Engine;
    format!(
        "whsec_{}",
        crate::b64().encode(droplet_key(server_key, workspace, droplet))
    )
}

/// The raw key behind [`droplet_secret`].
pub fn droplet_key(server_key: &[u8; 32], workspace: Uuid, droplet: i64) -> Vec<u8> {
    // A 32-byte key always fits HMAC.
    let mut mac = match Hmac::<Sha256>::new_from_slice(server_key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(CONTEXT);
    mac.update(workspace.as_bytes());
    mac.update(&droplet.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A `webhook-id` as the relay makes them: `<workspace>.<droplet>.<nonce>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    /// The tenant.
    pub workspace: Uuid,
    /// The cloud's droplet id.
    pub droplet: i64,
}

impl MessageId {
    /// A fresh id for a call from `droplet` of `workspace` (16 random bytes of nonce).
    pub fn fresh(workspace: Uuid, droplet: i64) -> String {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        format!("{workspace}.{droplet}.{hex}")
    }

    /// Who an id says sent it; `None` for anything not shaped as [`MessageId::fresh`] makes
    /// them (at most 200 bytes, a nonce of 16 to 64 hex digits).
    pub fn parse(id: &str) -> Option<Self> {
        if id.len() > 200 {
            return None;
        }
        let mut parts = id.splitn(3, '.');
        let workspace = Uuid::parse_str(parts.next()?).ok()?;
        let droplet: i64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?;
        let shaped =
            (16..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        (shaped && droplet > 0).then_some(Self { workspace, droplet })
    }
}

/// Why an inbound call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboundRefusal {
    /// No signature headers, or an id not shaped as the relay makes them.
    #[error("the call is not signed by a droplet's sidecar")]
    Unsigned,
    /// The timestamp is more than five minutes away.
    #[error("the call's timestamp is more than five minutes away")]
    Stale,
    /// No signature matches.
    #[error("the call's signature does not match")]
    Forged,
    /// Signed by another workspace's droplet than the one its token or path names.
    #[error("the call is signed for another workspace")]
    MisScoped,
    /// The id was seen before.
    #[error("the call was received before")]
    Replayed,
}

impl InboundRefusal {
    /// A metric and audit label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::Stale => "stale",
            Self::Forged => "forged",
            Self::MisScoped => "mis_scoped",
            Self::Replayed => "replayed",
        }
    }
}

/// Checks one call's signature headers against `body` at `now` (Unix seconds): who signed
/// it, if the signature is theirs and fresh. Remembers nothing: the caller refuses an id
/// it has seen ([`InboundRefusal::Replayed`]).
pub fn check(
    server_key: &[u8; 32],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<MessageId, InboundRefusal> {
    let who = id
        .and_then(MessageId::parse)
        .ok_or(InboundRefusal::Unsigned)?;
    let key = droplet_key(server_key, who.workspace, who.droplet);
    match crate::webhook::check(&[key], id, timestamp, signature, body, now) {
        Ok(_) => Ok(who),
        Err(crate::webhook::WebhookError::Stale) => Err(InboundRefusal::Stale),
        Err(crate::webhook::WebhookError::BadSignature) => Err(InboundRefusal::Forged),
        Err(_) => Err(InboundRefusal::Unsigned),
    }
}

/// The three headers for one call from the relay holding `secret`.
pub fn sign(
    secret: &str,
    workspace: Uuid,
    droplet: i64,
    body: &[u8],
    now: u64,
) -> Result<[(&'static str, String); 3], crate::webhook::WebhookError> {
    let id = MessageId::fresh(workspace, droplet);
    let signature = crate::WebhookSigner::new(&[secret])?.sign(&id, now, body)?;
    Ok([
        (HEADER_ID, id),
        (HEADER_TIMESTAMP, now.to_string()),
        (HEADER_SIGNATURE, signature),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9; 32];
    const NOW: u64 = 1_800_000_000;

    fn headers(secret: &str, ws: Uuid, droplet: i64, body: &[u8], at: u64) -> [String; 3] {
        sign(secret, ws, droplet, body, at)
            .expect("sign")
            .map(|(_, v)| v)
    }

    fn verify(h: &[String; 3], body: &[u8], now: u64) -> Result<MessageId, InboundRefusal> {
        check(&KEY, Some(&h[0]), Some(&h[1]), Some(&h[2]), body, now)
    }

    #[test]
    fn a_call_signed_by_the_droplets_secret_is_accepted_and_names_its_sender() {
        let ws = Uuid::new_v4();
        let secret = droplet_secret(&KEY, ws, 42);
        let h = headers(&secret, ws, 42, b"{}", NOW);
        assert_eq!(
            verify(&h, b"{}", NOW + TOLERANCE_S),
            Ok(MessageId {
                workspace: ws,
                droplet: 42
            })
        );
        // The official libraries' verifier accepts it as a Standard Webhooks delivery too.
        assert!(
            crate::WebhookVerifier::new(&[&secret])
                .expect("secret")
                .verify(Some(&h[0]), Some(&h[1]), Some(&h[2]), b"{}", NOW)
                .is_ok()
        );
    }

    #[test]
    fn stale_forged_swapped_and_borrowed_signatures_are_refused() {
        let ws = Uuid::new_v4();
        let secret = droplet_secret(&KEY, ws, 42);
        let h = headers(&secret, ws, 42, b"{\"a\":1}", NOW);
        assert_eq!(
            verify(&h, b"{\"a\":1}", NOW + TOLERANCE_S + 1),
            Err(InboundRefusal::Stale)
        );
        assert_eq!(
            verify(&h, b"{\"a\":2}", NOW),
            Err(InboundRefusal::Forged),
            "a swapped body"
        );
        // Another droplet's secret cannot sign as this one, nor this one's as another.
        let other = droplet_secret(&KEY, ws, 43);
        assert_ne!(other, secret);
        let mut borrowed = headers(&other, ws, 43, b"{}", NOW);
        borrowed[0] = borrowed[0].replace(".43.", ".42.");
        assert_eq!(verify(&borrowed, b"{}", NOW), Err(InboundRefusal::Forged));
        // A secret derived from another server key is worthless here.
        let foreign = droplet_secret(&[1; 32], ws, 42);
        let h = headers(&foreign, ws, 42, b"{}", NOW);
        assert_eq!(verify(&h, b"{}", NOW), Err(InboundRefusal::Forged));
        assert_eq!(
            check(&KEY, None, Some("1"), Some("v1,x"), b"", NOW),
            Err(InboundRefusal::Unsigned)
        );
        assert_eq!(
            check(&KEY, Some("msg_123"), Some("1"), Some("v1,x"), b"", NOW),
            Err(InboundRefusal::Unsigned)
        );
    }

    #[test]
    fn ids_are_parsed_strictly() {
        let ws = Uuid::new_v4();
        let fresh = MessageId::fresh(ws, 7);
        assert_eq!(
            MessageId::parse(&fresh),
            Some(MessageId {
                workspace: ws,
                droplet: 7
            })
        );
        assert_ne!(fresh, MessageId::fresh(ws, 7));
        for bad in [
            format!("{ws}.7"),
            format!("{ws}.7.short"),
            format!("{ws}.-7.00112233445566778899aabbccddeeff"),
            format!("{ws}.x.00112233445566778899aabbccddeeff"),
            "not-a-uuid.7.00112233445566778899aabbccddeeff".to_owned(),
            format!("{ws}.7.{}", "a".repeat(300)),
        ] {
            assert_eq!(MessageId::parse(&bad), None, "{bad}");
        }
    }
}
