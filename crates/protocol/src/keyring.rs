//! The control plane's command keys in memory (spec 65.1, "the command-signing key"): the
//! active key, which signs every command, and during a rotation the next key, which sidecars
//! are told to trust before anything is signed with it.
//!
//! One ring is shared by everything in a process that signs commands or answers sidecars
//! (the handshake, heartbeats, every `SidecarClient`), so a switch is seen by all of them at
//! once. The ring is a cache: the stored ring in the database is the truth, and the
//! control plane reloads it into this one (`genesis_control::app::command_keys`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::jwt::CommandSigner;

#[derive(Clone)]
struct Keys {
    active: Arc<CommandSigner>,
    next: Option<Arc<CommandSigner>>,
}

/// The active command key and, during a rotation, the next one.
pub struct CommandKeyRing {
    keys: RwLock<Keys>,
    /// Whether the ring has been loaded from the stored one: until then it holds only the
    /// configuration's key, which may have been retired since, so it must not tell any
    /// sidecar what to trust.
    settled: AtomicBool,
}

impl std::fmt::Debug for CommandKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = self.snapshot();
        f.debug_struct("CommandKeyRing")
            .field("active", &k.active.key_id())
            .field("next", &k.next.as_ref().map(|n| n.key_id().to_owned()))
            .finish()
    }
}

impl CommandKeyRing {
    /// A ring whose only key is `active`.
    pub fn new(active: Arc<CommandSigner>) -> Self {
        Self {
            keys: RwLock::new(Keys { active, next: None }),
            settled: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Keys {
        match self.keys.read() {
            Ok(k) => k.clone(),
            // A writer panicked mid-assignment of two `Arc`s: the value is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs commands now.
    pub fn active(&self) -> Arc<CommandSigner> {
        self.snapshot().active
    }

    /// The key a rotation is distributing, if one is under way.
    pub fn next(&self) -> Option<Arc<CommandSigner>> {
        self.snapshot().next
    }

    /// Replaces both keys with what the stored ring says now; from then on the ring
    /// speaks for the control plane ([`Self::settled`]).
    pub fn set(&self, active: Arc<CommandSigner>, next: Option<Arc<CommandSigner>>) {
        let fresh = Keys { active, next };
        match self.keys.write() {
            Ok(mut k) => *k = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.settled.store(true, Ordering::Release);
    }

    /// Whether the ring holds what the stored ring says (it was [`Self::set`] at least
    /// once). An unsettled ring still signs, with the configuration's key, but tells no
    /// sidecar which keys to trust.
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// The public keys (base64) every sidecar should trust now: the active key, then the
    /// next one.
    pub fn trusted(&self) -> Vec<String> {
        let k = self.snapshot();
        let mut out = vec![k.active.public_key_b64()];
        out.extend(k.next.map(|n| n.public_key_b64()));
        out
    }

    /// The ids of [`Self::trusted`], sorted: compared with what a sidecar reports.
    pub fn trusted_ids(&self) -> Vec<String> {
        let k = self.snapshot();
        let mut out = vec![k.active.key_id().to_owned()];
        out.extend(k.next.map(|n| n.key_id().to_owned()));
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_set_is_the_active_key_then_the_next() {
        let a = Arc::new(CommandSigner::from_seed(&[1; 32]).expect("key"));
        let b = Arc::new(CommandSigner::from_seed(&[2; 32]).expect("key"));
        let ring = CommandKeyRing::new(a.clone());
        assert!(
            !ring.settled(),
            "the configuration's key alone speaks for nothing"
        );
        assert_eq!(ring.trusted(), vec![a.public_key_b64()]);
        assert_eq!(ring.trusted_ids(), vec![a.key_id().to_owned()]);
        ring.set(a.clone(), Some(b.clone()));
        assert!(ring.settled());
        assert_eq!(ring.trusted(), vec![a.public_key_b64(), b.public_key_b64()]);
        let mut ids = vec![a.key_id().to_owned(), b.key_id().to_owned()];
        ids.sort();
        assert_eq!(ring.trusted_ids(), ids);
        assert_eq!(ring.active().key_id(), a.key_id());
        ring.set(b.clone(), None);
        assert_eq!(ring.active().key_id(), b.key_id());
        assert!(ring.next().is_none());
        assert_eq!(ring.trusted(), vec![b.public_key_b64()]);
    }
}
