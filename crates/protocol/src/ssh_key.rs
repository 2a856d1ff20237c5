//! One OpenSSH public-key line, checked the same way on both sides of `INSTALL_SSH_KEY`
//! (spec 63.3's Emergency tier): the control plane refuses a bad key before anything is
//! sent or audited, and the sidecar refuses it again before it touches `authorized_keys`.
//!
//! Hand-written: reading `type base64 [comment]` and the type the blob names (RFC 4253
//! §6.6) is a few lines; an SSH crate would bring a whole client for it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// Key types accepted: Ed25519 and ECDSA, and the security-key Ed25519. RSA and DSA are
/// not: nobody needs an old key type for a 15-minute emergency.
pub const TYPES: [&str; 5] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// Why a key line is refused, in words for the person who pasted it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadKey(pub String);

/// A public key that passed [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: String,
    blob_b64: String,
    fingerprint: String,
}

impl PublicKey {
    /// Its type (`ssh-ed25519`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Its blob, base64 as in the line.
    pub fn blob_b64(&self) -> &str {
        &self.blob_b64
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Checks one OpenSSH public-key line (`type base64 [comment]`); the comment is dropped.
pub fn parse(line: &str) -> Result<PublicKey, BadKey> {
    let bad = |m: &str| BadKey(m.to_owned());
    if line.len() > 4096 || line.trim().contains(['\n', '\r']) {
        return Err(bad("the public key must be one line"));
    }
    let mut fields = line.split_whitespace();
    let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
        return Err(bad("the public key must read `type base64 [comment]`"));
    };
    if !TYPES.contains(&kind) {
        return Err(bad(&format!(
            "key type {kind:?} is not accepted: use {}",
            TYPES.join(", ")
        )));
    }
    let blob = STANDARD
        .decode(b64)
        .map_err(|_| bad("the key's body is not base64"))?;
    // The blob starts with its own type, length-prefixed (RFC 4253 §6.6).
    let named = blob
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| blob.get(4..4usize.saturating_add(n)));
    if named != Some(kind.as_bytes()) {
        return Err(bad("the key's body does not match its type"));
    }
    Ok(PublicKey {
        kind: kind.to_owned(),
        blob_b64: b64.to_owned(),
        fingerprint: format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_one_ssh_keygen_prints() {
        // Made and fingerprinted by OpenSSH 9.2's ssh-keygen (`ssh-keygen -l -f k.pub`).
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAqQPlZyXXxRZCvAfySRXtHFvKglaFDTUkrQ4GqkvXMK test@x";
        let key = parse(line).expect("key");
        assert_eq!(
            key.fingerprint(),
            "SHA256:3PJDZ1I4eFNJBtuyWKLilnFIVnEhXxajduUAXNlD+Mc"
        );
        assert_eq!(key.kind(), "ssh-ed25519");
    }

    #[test]
    fn a_key_of_another_type_a_body_that_lies_or_two_lines_are_refused() {
        let good =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAqQPlZyXXxRZCvAfySRXtHFvKglaFDTUkrQ4GqkvXMK";
        for bad in [
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x".to_owned(),
            "ssh-ed25519 not*base64".to_owned(),
            good.replace("ssh-ed25519 ", "ecdsa-sha2-nistp256 "),
            format!("{good}\n{good}"),
            "ssh-ed25519".to_owned(),
            "ssh-ed25519 AAAA/////w==".to_owned(),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
