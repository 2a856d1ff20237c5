//! Rotating the command-signing key (spec 65.1, issue 24): a new Ed25519 key reaches every
//! sidecar before anything is signed with it, and the old one is retired with a report of
//! the droplets that never confirmed.
//!
//! # How a rotation goes
//! 1. **Begin** (every 90 days, or `genesis command-key rotate`): a fresh key is stored as
//!    NEXT, sealed under the vault. The first time, the key the configuration gave is stored
//!    as ACTIVE in the same transaction, so a restart finds the ring whole.
//! 2. **Deliver.** Every heartbeat reports the key ids its sidecar trusts; the answer to one
//!    that differs from the ring names the keys to trust, exactly (active and next). The
//!    channel is the one the handshake gave the first key over: the sidecar's own TLS call
//!    to the control plane, authenticated by its token. Nothing is signed with NEXT yet.
//! 3. **Switch** once every awake droplet has reported NEXT, or when the grace period (7
//!    days) is over: one transaction makes NEXT active and retires the old key, keeping the
//!    droplets that had not confirmed. From then on heartbeat answers name the new key
//!    alone, so sidecars drop the old one; a droplet that slept through the rotation is told
//!    at its first heartbeat after waking, and takes commands again from then on.
//!
//! # Crash safety
//! Each step is one transaction in the coordinator database, and the in-memory ring
//! ([`CommandKeyRing`]) is only a cache of it, reloaded at every pass and at startup. A
//! control plane killed anywhere resumes from what is stored; a step taken twice (two
//! replicas, or a retry) is refused by the database's one-ACTIVE/one-NEXT rule. No droplet
//! is ever left without a valid key: the key that signs is always one every awake sidecar
//! has confirmed, and a sidecar refuses a trust set with no usable key in it.

use std::sync::Arc;
use std::time::Duration;

use genesis_protocol::{CommandKeyRing, CommandSigner};
use genesis_store::command_keys::command_key_aad;
use genesis_store::{
    CommandKeyState, KeyLaggard, MasterKeys, NewCommandKey, RegionalStore, StoreError,
    StoredCommandKey,
};
use serde::Serialize;

use crate::clock::Clock;

/// When keys rotate.
#[derive(Debug, Clone, Copy)]
pub struct CommandKeyPolicy {
    /// The age at which the active key is rotated (spec 65.1: 90 days).
    pub every: Duration,
    /// How long a rotation waits for droplets that do not confirm before switching anyway.
    pub grace: Duration,
}

impl Default for CommandKeyPolicy {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(90 * 86_400),
            grace: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Why a step could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CommandKeyError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key does not open, or is not the key it claims to be.
    #[error("the stored command key {kid} cannot be used: {why}")]
    Unusable {
        /// Its id.
        kid: String,
        /// Why.
        why: String,
    },
    /// A key could not be made.
    #[error("cannot make a command key: {0}")]
    Key(#[from] genesis_protocol::jwt::KeyError),
}

/// What one step did, and where the rotation stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyProgress {
    /// The key that signs now.
    pub active: String,
    /// The key being delivered, if a rotation is under way.
    pub next: Option<String>,
    /// A rotation began in this step (its key id).
    pub began: Option<String>,
    /// This step switched to the key with this id.
    pub switched: Option<String>,
    /// Awake droplets that have not confirmed the next key: they hold the switch back.
    pub awake_behind: usize,
    /// Sleeping droplets that have not confirmed it: reported, and told when they wake.
    pub asleep_behind: usize,
}

/// The rotation, over the regional databases (keys in the coordinator, droplets in each).
pub struct CommandKeys {
    stores: RegionalStore,
    vault: Arc<MasterKeys>,
    ring: Arc<CommandKeyRing>,
    policy: CommandKeyPolicy,
    clock: Clock,
}

impl CommandKeys {
    /// The rotation of `ring`'s keys, sealed with `vault`, on `clock`.
    pub fn new(
        stores: RegionalStore,
        vault: Arc<MasterKeys>,
        ring: Arc<CommandKeyRing>,
        policy: CommandKeyPolicy,
        clock: Clock,
    ) -> Self {
        Self {
            stores,
            vault,
            ring,
            policy,
            clock,
        }
    }

    /// The ring this rotation keeps.
    pub fn ring(&self) -> &Arc<CommandKeyRing> {
        &self.ring
    }

    fn open(&self, row: &StoredCommandKey) -> Result<Arc<CommandSigner>, CommandKeyError> {
        let unusable = |why: String| CommandKeyError::Unusable {
            kid: row.kid.clone(),
            why,
        };
        let seed = self
            .vault
            .open(&row.sealed, &command_key_aad(&row.kid))
            .map_err(|e| unusable(e.to_string()))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| unusable("the secret is not 32 bytes".into()))?;
        let signer = CommandSigner::from_seed(&seed).map_err(|e| unusable(e.to_string()))?;
        if signer.key_id() != row.kid {
            return Err(unusable("it opens as another key".into()));
        }
        Ok(Arc::new(signer))
    }

    fn seal(&self, signer: &CommandSigner) -> Result<NewCommandKey, CommandKeyError> {
        let kid = signer.key_id().to_owned();
        Ok(NewCommandKey {
            sealed: self.vault.seal(signer.seed(), &command_key_aad(&kid))?,
            public_key: signer.public_key_b64(),
            kid,
        })
    }

    /// Reloads the ring from the stored keys (at startup, and at every pass on every
    /// replica). With nothing stored, the configuration's key stays active.
    pub async fn load(&self) -> Result<Vec<StoredCommandKey>, CommandKeyError> {
        let rows = self.stores.coordinator().command_keys().await?;
        let find = |s: CommandKeyState| rows.iter().find(|r| r.state == s);
        let current = self.ring.active();
        let active = match find(CommandKeyState::Active) {
            Some(r) if r.kid == current.key_id() => current,
            Some(r) => {
                tracing::info!(kid = %r.kid, "command key loaded from the stored ring");
                self.open(r)?
            }
            None => current,
        };
        let next = match (find(CommandKeyState::Next), self.ring.next()) {
            (Some(r), Some(n)) if n.key_id() == r.kid => Some(n),
            (Some(r), _) => Some(self.open(r)?),
            (None, _) => None,
        };
        self.ring.set(active, next);
        Ok(rows)
    }

    /// Begins a rotation now; answers the next key's id, or `None` when one is already
    /// under way.
    pub async fn begin(&self, actor: &str) -> Result<Option<String>, CommandKeyError> {
        let rows = self.load().await?;
        if rows.iter().any(|r| r.state == CommandKeyState::Next) {
            return Ok(None);
        }
        let adopt = if rows.iter().any(|r| r.state == CommandKeyState::Active) {
            None
        } else {
            Some(self.seal(&self.ring.active())?)
        };
        let next = CommandSigner::generate()?;
        let sealed = self.seal(&next)?;
        let began = self
            .stores
            .coordinator()
            .command_key_begin(adopt.as_ref(), &sealed, self.clock.now(), actor)
            .await?;
        self.load().await?;
        if began {
            tracing::info!(kid = %sealed.kid, "command key rotation begun");
        }
        Ok(began.then_some(sealed.kid))
    }

    /// The droplets of every region that have not reported `kid`.
    async fn laggards(&self, kid: &str) -> Result<Vec<KeyLaggard>, CommandKeyError> {
        let mut all = Vec::new();
        for db in self.stores.distinct() {
            all.extend(db.command_key_laggards(kid).await?);
        }
        Ok(all)
    }

    /// One step of the schedule: stores the configuration's key the first time, begins a
    /// rotation when the active key is due, and switches when the next key is everywhere
    /// it can be (or the grace period is over).
    pub async fn step(&self, actor: &str) -> Result<KeyProgress, CommandKeyError> {
        let rows = self.load().await?;
        let now = self.clock.now();
        let mut progress = KeyProgress {
            active: self.ring.active().key_id().to_owned(),
            ..Default::default()
        };
        let Some(active) = rows.iter().find(|r| r.state == CommandKeyState::Active) else {
            // The configuration's key, stored so its age counts and a restart finds it.
            let key = self.seal(&self.ring.active())?;
            self.stores
                .coordinator()
                .command_key_adopt(&key, now, actor)
                .await?;
            return Ok(progress);
        };
        let Some(next) = rows.iter().find(|r| r.state == CommandKeyState::Next) else {
            let since = active.activated_at.unwrap_or(active.created_at);
            if since
                + chrono::Duration::from_std(self.policy.every).unwrap_or(chrono::Duration::MAX)
                <= now
            {
                progress.began = self.begin(actor).await?;
                progress.next = progress.began.clone();
            }
            return Ok(progress);
        };
        progress.next = Some(next.kid.clone());
        let laggards = self.laggards(&next.kid).await?;
        let awake = laggards.iter().filter(|l| l.awake()).count();
        progress.awake_behind = awake;
        progress.asleep_behind = laggards.len() - awake;
        let grace_over = next.created_at
            + chrono::Duration::from_std(self.policy.grace).unwrap_or(chrono::Duration::MAX)
            <= now;
        if awake == 0 || grace_over {
            if self
                .stores
                .coordinator()
                .command_key_switch(&next.kid, &laggards, now, actor)
                .await?
            {
                tracing::info!(
                    kid = %next.kid,
                    unconfirmed = laggards.len(),
                    grace_over,
                    "command key switched; the old key is retired"
                );
                progress.switched = Some(next.kid.clone());
            }
            self.load().await?;
            progress.active = self.ring.active().key_id().to_owned();
            progress.next = self.ring.next().map(|n| n.key_id().to_owned());
        }
        Ok(progress)
    }
}

/// Where the command key stands, for God Mode's security page and `genesis command-key
/// status`.
#[derive(Debug, Clone, Serialize)]
pub struct CommandKeyStatus {
    /// The stored keys, newest first (empty until the first pass stores the configured one).
    pub keys: Vec<KeyRow>,
    /// Droplets that have not confirmed the next key, when a rotation is under way.
    pub behind: Vec<KeyLaggard>,
}

/// One key, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    /// Its id.
    pub kid: String,
    /// Its state.
    pub state: CommandKeyState,
    /// When its rotation began.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it began to sign.
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it stopped.
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How many droplets had not confirmed it at its switch.
    pub unconfirmed: usize,
}

/// Reads where the command key stands (no vault needed: nothing is opened).
pub async fn status(stores: &RegionalStore) -> Result<CommandKeyStatus, StoreError> {
    let rows = stores.coordinator().command_keys().await?;
    let mut behind = Vec::new();
    if let Some(next) = rows.iter().find(|r| r.state == CommandKeyState::Next) {
        for db in stores.distinct() {
            behind.extend(db.command_key_laggards(&next.kid).await?);
        }
    }
    Ok(CommandKeyStatus {
        keys: rows
            .into_iter()
            .map(|r| KeyRow {
                unconfirmed: r
                    .unconfirmed
                    .as_ref()
                    .and_then(|u| u.as_array())
                    .map_or(0, Vec::len),
                kid: r.kid,
                state: r.state,
                created_at: r.created_at,
                activated_at: r.activated_at,
                retired_at: r.retired_at,
            })
            .collect(),
        behind,
    })
}
