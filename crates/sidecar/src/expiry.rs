//! When the OAuth tokens the sidecar injected expire: the credential half of the inventory a
//! heartbeat carries (spec 43.1: "credential valid?" is the watchdog's question).
//!
//! n8n never gives a credential's data back through its API, so the sidecar notes each OAuth
//! token's expiry when it injects or rotates the credential (the only moment it sees the
//! data) and keeps the notes in a small file in its state directory, so a restart does not
//! forget them. Only the expiry instant is kept, never the token.
//!
//! The expiry is read from the credential's `oauthTokenData` as the token endpoint answered
//! it: Google's client libraries' absolute `expiry_date` (milliseconds) when present, else
//! RFC 6749's relative `expires_in` (seconds), counted from the injection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;

/// The expiry (Unix seconds) of the OAuth token in a credential's data, if it holds one.
pub fn expiry_of(data: &Value, now: i64) -> Option<i64> {
    let token = data.get("oauthTokenData")?;
    if let Some(ms) = token.get("expiry_date").and_then(Value::as_i64) {
        return Some(ms / 1000);
    }
    token
        .get("expires_in")
        .and_then(Value::as_i64)
        .map(|s| now.saturating_add(s))
}

/// The notes: credential id → expiry, optionally kept in a file.
#[derive(Debug, Default)]
pub struct CredentialExpiry {
    file: Option<PathBuf>,
    /// Flush the file to the disk on each change (a real droplet).
    sync: bool,
    notes: Mutex<BTreeMap<String, i64>>,
}

impl CredentialExpiry {
    /// Notes kept in `file` (read now; an unreadable or missing file starts empty, because a
    /// lost note only means one credential reports no expiry until its next rotation).
    pub fn load(file: PathBuf) -> Self {
        Self::load_with(file, true)
    }

    /// [`Self::load`], flushing each change to the disk only when `sync`.
    pub fn load_with(file: PathBuf, sync: bool) -> Self {
        let notes = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            file: Some(file),
            sync,
            notes: Mutex::new(notes),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, i64>> {
        self.notes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes what `data` (just written to credential `id`) says; a credential without an
    /// OAuth token loses any earlier note.
    pub fn record(&self, id: &str, data: &Value, now: i64) {
        let mut notes = self.lock();
        let changed = match expiry_of(data, now) {
            Some(at) => notes.insert(id.to_owned(), at) != Some(at),
            None => notes.remove(id).is_some(),
        };
        // Most credentials (API keys, header tokens) carry no expiry: nothing to write.
        if let (true, Some(file)) = (changed, &self.file) {
            let bytes = serde_json::to_vec(&*notes).unwrap_or_default();
            if let Err(e) = genesis_n8n::secret_file::write_private_with(file, &bytes, self.sync) {
                tracing::warn!(error = %e, "cannot save credential expiry notes");
            }
        }
    }

    /// When credential `id`'s token expires, if noted.
    pub fn get(&self, id: &str) -> Option<i64> {
        self.lock().get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_absolute_then_relative_expiry() {
        let google =
            json!({"oauthTokenData": {"expiry_date": 1_800_000_000_123i64, "expires_in": 5}});
        assert_eq!(expiry_of(&google, 100), Some(1_800_000_000));
        let rfc = json!({"oauthTokenData": {"access_token": "x", "expires_in": 3599}});
        assert_eq!(expiry_of(&rfc, 1_000), Some(4_599));
        assert_eq!(expiry_of(&json!({"apiKey": "sk"}), 1_000), None);
        assert_eq!(expiry_of(&json!({"oauthTokenData": {}}), 1_000), None);
    }

    #[test]
    fn notes_survive_a_restart_and_follow_rotations() {
        let dir = std::env::temp_dir().join(format!("expiry-{}", std::process::id()));
        let file = dir.join("credential-expiry.json");
        let notes = CredentialExpiry::load(file.clone());
        notes.record("k", &json!({"apiKey": "sk"}), 1_000);
        assert!(!file.exists(), "a credential without expiry writes nothing");
        notes.record("c1", &json!({"oauthTokenData": {"expires_in": 60}}), 1_000);
        notes.record("c2", &json!({"apiKey": "sk"}), 1_000);
        let again = CredentialExpiry::load(file.clone());
        assert_eq!((again.get("c1"), again.get("c2")), (Some(1_060), None));
        again.record("c1", &json!({"clientId": "id"}), 2_000);
        assert_eq!(CredentialExpiry::load(file).get("c1"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
