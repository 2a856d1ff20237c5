//! Command JWTs (spec 51.3, DESIGN §3.4): EdDSA-signed by the control plane, verified by the
//! sidecar against everything that scopes them to one command for one droplet for five
//! minutes, once.
//!
//! `jsonwebtoken` checks the signature and the algorithm; the claims are checked here against
//! an explicit `now`, so every refusal has its own reason code and tests can move the clock.
//! The header is read before anything else, and only `EdDSA` is accepted: `alg: none` and
//! HS256 tokens keyed with the public key are refused as `bad_algorithm`.
//!
//! A token also names the exact body it was signed for: `bh` is the SHA-256 of the request
//! body, base64url. A genuine token for `DELETE_WORKFLOW` cannot be replayed with another
//! workflow's id in the body: the sidecar hashes what it received and refuses a mismatch as
//! `body_mismatch`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::CommandName;

/// `iss` of every command.
pub const ISSUER: &str = "genesis-control";
/// `aud` of every command.
pub const AUDIENCE: &str = "sidecar";
/// Seconds a command is valid (spec 51.3: five minutes).
pub const LIFETIME_S: u64 = 300;
/// Clock skew tolerated between control plane and droplet, seconds.
pub const LEEWAY_S: u64 = 30;

/// The claims of a command JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The workspace the command is for.
    pub sub: Uuid,
    /// The droplet the command is for.
    pub droplet_id: i64,
    /// The one command it permits.
    pub action: CommandName,
    /// SHA-256 of the exact request body it permits, base64url without padding.
    pub bh: String,
    /// Unique id (UUID v7): a command runs at most once.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Expires (Unix seconds).
    pub exp: u64,
}

/// `bh` of a body: SHA-256, base64url without padding.
pub fn body_hash(body: &[u8]) -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(body))
}

impl CommandClaims {
    /// Claims for `action` with exactly `body` on one droplet, valid from `now` for five
    /// minutes.
    pub fn new(
        workspace: Uuid,
        droplet_id: i64,
        action: CommandName,
        body: &[u8],
        now: u64,
    ) -> Self {
        Self {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: workspace,
            droplet_id,
            action,
            bh: body_hash(body),
            jti: Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + LIFETIME_S,
        }
    }
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of 32 bytes.
    #[error("an Ed25519 public key is 32 bytes in base64")]
    PublicKey,
    /// Could not encode the private key.
    #[error("cannot encode the signing key: {0}")]
    SigningKey(String),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// A trust set with no key would leave the sidecar unable to take any command.
    #[error("a sidecar must trust at least one command key")]
    NoKey,
}

/// Decodes and checks an Ed25519 public key given in base64.
pub fn parse_public_key(public_key_b64: &str) -> Result<[u8; 32], KeyError> {
    let raw = crate::b64()
        .decode(public_key_b64.trim())
        .map_err(|_| KeyError::PublicKey)?;
    let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::PublicKey)?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::PublicKey)?;
    Ok(raw)
}

/// The key id of an Ed25519 public key: the first 8 bytes of its SHA-256, in hex. Carried in
/// every command JWT's `kid` header so a sidecar that trusts several keys (a rotation's
/// overlap) knows which one to check, and refuses a token from a key it does not trust.
pub fn key_id(public: &[u8; 32]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(public)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The control plane's signing key.
pub struct CommandSigner {
    key: EncodingKey,
    seed: [u8; 32],
    public: [u8; 32],
    kid: String,
}

impl std::fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSigner")
            .field("public", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl CommandSigner {
    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_seed(&seed)
    }

    /// The key whose 32-byte secret is `seed` (as stored in the vault).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        let sk = ed25519_dalek::SigningKey::from_bytes(seed);
        let der = sk
            .to_pkcs8_der()
            .map_err(|e| KeyError::SigningKey(e.to_string()))?;
        let public = sk.verifying_key().to_bytes();
        Ok(Self {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            seed: *seed,
            kid: key_id(&public),
            public,
        })
    }

    /// The 32-byte secret, for sealing into the vault when the key joins the stored ring
    /// (a rotation). Nothing else should read it.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// This key's id (the `kid` of every token it signs).
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The public key, base64: what the handshake hands the sidecar.
    pub fn public_key_b64(&self) -> String {
        crate::b64().encode(self.public)
    }

    /// A token for `action` with exactly `body` on one droplet, valid from `now` (Unix
    /// seconds).
    pub fn sign(
        &self,
        workspace: Uuid,
        droplet_id: i64,
        action: CommandName,
        body: &[u8],
        now: u64,
    ) -> Result<String, KeyError> {
        self.sign_claims(&CommandClaims::new(
            workspace, droplet_id, action, body, now,
        ))
    }

    /// A token for arbitrary claims (tests build bad ones with it).
    pub fn sign_claims(&self, claims: &CommandClaims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// Why a command was refused. Stable codes: they are reported in heartbeats and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No bearer token.
    Missing,
    /// Not a JWT, or claims of the wrong shape.
    Malformed,
    /// Any algorithm but EdDSA (`none`, HS256, ...).
    BadAlgorithm,
    /// Not signed by the control plane's key.
    BadSignature,
    /// Past `exp`.
    Expired,
    /// Before `nbf`/`iat`.
    NotYetValid,
    /// Valid for longer than five minutes.
    LifetimeTooLong,
    /// `iss` is not the control plane.
    WrongIssuer,
    /// `aud` is not `sidecar`.
    WrongAudience,
    /// `sub` is another workspace.
    WrongWorkspace,
    /// `droplet_id` is another droplet.
    WrongDroplet,
    /// `action` is not the command in the body.
    WrongAction,
    /// `jti` was used before.
    Replayed,
    /// `bh` is not the hash of the body received: a genuine token carried another body.
    BodyMismatch,
    /// Too many requests from one source: refused before any token was read.
    RateLimited,
}

impl RefusalReason {
    /// 401 when the token proves nothing; 403 when it is genuine but not for this.
    pub fn http_status(self) -> u16 {
        use RefusalReason as R;
        match self {
            R::Missing
            | R::Malformed
            | R::BadAlgorithm
            | R::BadSignature
            | R::Expired
            | R::NotYetValid
            | R::LifetimeTooLong => 401,
            R::WrongIssuer
            | R::WrongAudience
            | R::WrongWorkspace
            | R::WrongDroplet
            | R::WrongAction
            | R::Replayed
            | R::BodyMismatch => 403,
            R::RateLimited => 429,
        }
    }
}

/// A refused command, as reported to the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// The command the body asked for.
    pub action: Option<CommandName>,
    /// The token's id, when it could be read.
    pub jti: Option<String>,
    /// When (Unix seconds).
    pub at: u64,
}

#[derive(Deserialize)]
struct BareHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// The sidecar's side: verifies commands for one workspace and droplet, remembers every
/// `jti` until its token expires, and counts refusals by reason.
pub struct CommandVerifier {
    /// Trusted keys by id; the first signs tokens without a `kid`. Replaced whole when the
    /// control plane rotates its key.
    keys: RwLock<Vec<(String, DecodingKey)>>,
    workspace: Uuid,
    droplet_id: i64,
    seen: Mutex<HashMap<String, u64>>,
    refusals: Mutex<BTreeMap<RefusalReason, u64>>,
}

impl std::fmt::Debug for CommandVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandVerifier")
            .field("workspace", &self.workspace)
            .field("droplet_id", &self.droplet_id)
            .finish_non_exhaustive()
    }
}

impl CommandVerifier {
    /// A verifier trusting `public_key_b64` (from the handshake) for this workspace and droplet.
    pub fn new(public_key_b64: &str, workspace: Uuid, droplet_id: i64) -> Result<Self, KeyError> {
        let raw = parse_public_key(public_key_b64)?;
        Ok(Self {
            keys: RwLock::new(vec![(key_id(&raw), DecodingKey::from_ed_der(&raw))]),
            workspace,
            droplet_id,
            seen: Mutex::new(HashMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
        })
    }

    /// Also trusts `public_key_b64`: during a key rotation the sidecar accepts tokens from
    /// the old and the new key, each recognised by its `kid`.
    pub fn trust(&self, public_key_b64: &str) -> Result<(), KeyError> {
        let raw = parse_public_key(public_key_b64)?;
        let kid = key_id(&raw);
        let mut keys = self.keys.write().map_err(|_| KeyError::PublicKey)?;
        if !keys.iter().any(|(id, _)| *id == kid) {
            keys.push((kid, DecodingKey::from_ed_der(&raw)));
        }
        Ok(())
    }

    /// Trusts exactly `public_keys` (base64) from now on: what the control plane says in a
    /// heartbeat's answer during a key rotation. Every key is checked before anything
    /// changes, and an empty set is refused, so a bad answer never leaves the sidecar
    /// trusting nothing. Answers whether the set changed.
    pub fn trust_exactly(&self, public_keys: &[String]) -> Result<bool, KeyError> {
        let mut fresh = Vec::with_capacity(public_keys.len());
        for k in public_keys {
            let raw = parse_public_key(k)?;
            let kid = key_id(&raw);
            if !fresh
                .iter()
                .any(|(id, _): &(String, DecodingKey)| *id == kid)
            {
                fresh.push((kid, DecodingKey::from_ed_der(&raw)));
            }
        }
        if fresh.is_empty() {
            return Err(KeyError::NoKey);
        }
        let mut keys = self.keys.write().map_err(|_| KeyError::PublicKey)?;
        let ids = |v: &[(String, DecodingKey)]| {
            let mut ids: Vec<String> = v.iter().map(|(id, _)| id.clone()).collect();
            ids.sort();
            ids
        };
        if ids(&keys) == ids(&fresh) {
            return Ok(false);
        }
        *keys = fresh;
        Ok(true)
    }

    /// The ids of the keys trusted now, sorted: reported in every heartbeat, so the control
    /// plane knows who has its next key.
    pub fn trusted_key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .keys
            .read()
            .map(|k| k.iter().map(|(id, _)| id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Refusals so far, by reason.
    pub fn refusal_counts(&self) -> BTreeMap<RefusalReason, u64> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Counts a refusal decided before any token was read (a rate limit).
    pub fn count_refusal(&self, reason: RefusalReason) {
        if let Ok(mut r) = self.refusals.lock() {
            *r.entry(reason).or_default() += 1;
        }
    }

    /// Remembers `jti` as used until its token expires at `exp`: a sidecar that restarts
    /// reloads the ids it accepted, so a token used before the restart stays spent.
    pub fn remember(&self, jti: &str, exp: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(jti.to_owned(), exp);
        }
    }

    /// Checks `token` (None when the request had no bearer token) for the command `action`
    /// found in `body`, the exact bytes received, at `now` (Unix seconds). On success the
    /// `jti` is spent.
    pub fn verify(
        &self,
        token: Option<&str>,
        action: CommandName,
        body: &[u8],
        now: u64,
    ) -> Result<CommandClaims, Refusal> {
        let mut jti = None;
        let outcome = self.check(token, action, body, now, &mut jti);
        outcome.map_err(|reason| {
            if let Ok(mut r) = self.refusals.lock() {
                *r.entry(reason).or_default() += 1;
            }
            Refusal {
                reason,
                action: Some(action),
                jti,
                at: now,
            }
        })
    }

    fn check(
        &self,
        token: Option<&str>,
        action: CommandName,
        body: &[u8],
        now: u64,
        jti_out: &mut Option<String>,
    ) -> Result<CommandClaims, RefusalReason> {
        use RefusalReason as R;
        let token = token.ok_or(R::Missing)?;
        let header_b64 = token.split('.').next().ok_or(R::Malformed)?;
        let header: BareHeader = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(R::Malformed)?;
        if header.alg.as_deref() != Some("EdDSA") {
            return Err(R::BadAlgorithm);
        }
        // A token names its key; one from a key this sidecar does not trust proves nothing.
        let key = {
            let keys = self.keys.read().map_err(|_| R::BadSignature)?;
            match header.kid.as_deref() {
                Some(kid) => keys.iter().find(|(id, _)| id == kid),
                None => keys.first(),
            }
            .ok_or(R::BadSignature)?
            .1
            .clone()
        };
        let key = &key;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, key, &v).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => R::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => R::BadAlgorithm,
                    _ => R::Malformed,
                }
            })?;
        *jti_out = data
            .claims
            .get("jti")
            .and_then(|j| j.as_str())
            .map(str::to_owned);
        let c: CommandClaims = serde_json::from_value(data.claims).map_err(|_| R::Malformed)?;
        if c.iss != ISSUER {
            return Err(R::WrongIssuer);
        }
        if c.aud != AUDIENCE {
            return Err(R::WrongAudience);
        }
        if now >= c.exp.saturating_add(LEEWAY_S) {
            return Err(R::Expired);
        }
        if c.nbf.max(c.iat) > now.saturating_add(LEEWAY_S) {
            return Err(R::NotYetValid);
        }
        if c.exp.saturating_sub(c.iat) > LIFETIME_S {
            return Err(R::LifetimeTooLong);
        }
        if c.sub != self.workspace {
            return Err(R::WrongWorkspace);
        }
        if c.droplet_id != self.droplet_id {
            return Err(R::WrongDroplet);
        }
        if c.action != action {
            return Err(R::WrongAction);
        }
        if c.bh != body_hash(body) {
            return Err(R::BodyMismatch);
        }
        let mut seen = self.seen.lock().map_err(|_| R::Replayed)?;
        // Forget ids whose tokens can no longer be presented anyway.
        seen.retain(|_, exp| now < exp.saturating_add(LEEWAY_S));
        if seen.contains_key(&c.jti) {
            return Err(R::Replayed);
        }
        seen.insert(c.jti.clone(), c.exp);
        Ok(c)
    }
}
