//! Secrets sealed to a sidecar's X25519 key (DESIGN §3.4): the control plane encrypts
//! credential data with the sidecar's public key from the handshake; only that sidecar can
//! open it, so command logs, queues and proxies only ever hold ciphertext.
//!
//! libsodium's sealed box (`crypto_box_seal`: ephemeral X25519 + XSalsa20-Poly1305) through
//! RustCrypto's `crypto_box`, so any libsodium binding can interoperate.

use base64::Engine;
use crypto_box::{PublicKey, SecretKey, aead::OsRng};
use serde::{Deserialize, Serialize};

/// Ciphertext on the wire (base64). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The public key is not base64 of 32 bytes.
    #[error("an X25519 public key is 32 bytes in base64")]
    PublicKey,
    /// The secret key is not 32 bytes.
    #[error("an X25519 secret key is 32 bytes")]
    SecretKey,
    /// Encryption failed.
    #[error("sealing failed")]
    Seal,
    /// Not sealed to this key, or tampered with.
    #[error("cannot open: not sealed to this key, or altered")]
    Open,
}

impl SealedSecret {
    /// Seals `plaintext` to the holder of `public_key_b64`.
    pub fn seal(public_key_b64: &str, plaintext: &[u8]) -> Result<Self, SealError> {
        let raw = crate::b64()
            .decode(public_key_b64.trim())
            .map_err(|_| SealError::PublicKey)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| SealError::PublicKey)?;
        let sealed = PublicKey::from(raw)
            .seal(&mut OsRng, plaintext)
            .map_err(|_| SealError::Seal)?;
        Ok(Self(crate::b64().encode(sealed)))
    }
}

/// A sidecar's X25519 key pair. `Debug` shows only the public half.
pub struct SealingKey(SecretKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey(public {})", self.public_key_b64())
    }
}

impl SealingKey {
    /// A fresh key pair.
    pub fn generate() -> Self {
        Self(SecretKey::generate(&mut OsRng))
    }

    /// The key stored at `bytes` (32 bytes, kept 0600 on the droplet).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| SealError::SecretKey)?;
        Ok(Self(SecretKey::from(raw)))
    }

    /// The secret bytes, for storing.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key (base64), sent in the handshake.
    pub fn public_key_b64(&self) -> String {
        crate::b64().encode(self.0.public_key().as_bytes())
    }

    /// Opens a secret sealed to this key.
    pub fn open(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SealError> {
        let raw = crate::b64()
            .decode(&sealed.0)
            .map_err(|_| SealError::Open)?;
        self.0.unseal(&raw).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_addressee_opens_and_tampering_is_caught() {
        let sidecar = SealingKey::generate();
        let other = SealingKey::generate();
        let secret = br#"{"apiKey":"sk-live-123"}"#;
        let sealed = SealedSecret::seal(&sidecar.public_key_b64(), secret).expect("seal");
        assert!(!format!("{sealed:?}").contains("sk-live"));
        assert_eq!(sidecar.open(&sealed).expect("open"), secret);
        assert_eq!(other.open(&sealed), Err(SealError::Open));
        let mut raw = crate::b64().decode(&sealed.0).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = SealedSecret(crate::b64().encode(raw));
        assert_eq!(sidecar.open(&tampered), Err(SealError::Open));
        let restored = SealingKey::from_bytes(&sidecar.to_bytes()).expect("restore");
        assert_eq!(restored.open(&sealed).expect("open"), secret);
        assert_eq!(SealedSecret::seal("short", b"x"), Err(SealError::PublicKey));
    }
}
