//! Short-lived SSH keys for spec 63.3's Emergency support tier: `INSTALL_SSH_KEY` writes a
//! key to the droplet's `authorized_keys`, `REMOVE_SSH_KEY` and the expiry sweep take it
//! out.
//!
//! Three locks on one door, so that a key never outlives its grant:
//! - the line carries OpenSSH's own `expiry-time`, so sshd refuses the key after it even if
//!   the sidecar is dead;
//! - the sidecar removes expired lines of ours on every heartbeat ([`SshKeys::sweep`]);
//! - the control plane sends `REMOVE_SSH_KEY` when the grant ends early.
//!
//! Only lines the sidecar wrote (comment `genesis-support-<grant>`) are ever touched; a key
//! the image was built with stays. A key is refused unless it is one line of a modern type
//! whose blob names that type, and unless it expires within [`MAX_LIFETIME_S`]: a
//! long-lived key cannot be slipped in through this command, whoever signed it. The file is
//! rewritten whole and renamed into place (mode 0600), so sshd never reads half a file.
//!
//! Written here rather than with an SSH crate: editing a text file is all it takes, and no
//! crate on the registry does the `authorized_keys` editing.

use std::path::PathBuf;

use genesis_protocol::ssh_key::PublicKey;

/// The longest a key may live from the moment it is installed: the Emergency tier's 15
/// minutes, and one minute of clock skew.
pub const MAX_LIFETIME_S: i64 = 16 * 60;

/// What the sidecar marks its lines with.
const MARK: &str = "genesis-support-";

/// Why a key was not installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum SshKeyError {
    /// This sidecar was started without `--authorized-keys`.
    #[error("this droplet takes no support SSH keys (the sidecar has no authorized_keys file)")]
    Disabled,
    /// The key, the grant or the expiry is not acceptable.
    #[error("{0}")]
    Bad(String),
    /// The file could not be read or written.
    #[error("the authorized_keys file: {0}")]
    Io(#[from] std::io::Error),
}

/// The droplet's `authorized_keys`, as far as support keys go.
#[derive(Debug, Clone)]
pub struct SshKeys {
    path: Option<PathBuf>,
}

/// Checks one public-key line (see [`genesis_protocol::ssh_key::parse`]).
pub fn parse(line: &str) -> Result<PublicKey, SshKeyError> {
    genesis_protocol::ssh_key::parse(line).map_err(|e| SshKeyError::Bad(e.0))
}

/// A grant id as it may appear in the file: a UUID, nothing else.
fn grant_mark(grant: &str) -> Result<String, SshKeyError> {
    uuid::Uuid::parse_str(grant)
        .map(|g| format!("{MARK}{g}"))
        .map_err(|_| SshKeyError::Bad("the grant is not a grant id".into()))
}

/// OpenSSH's `expiry-time` for Unix second `at`, in UTC.
fn expiry_time(at: i64) -> Result<String, SshKeyError> {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y%m%d%H%M%SZ").to_string())
        .ok_or_else(|| SshKeyError::Bad("the expiry is not a time".into()))
}

/// When one of our lines expires, read back from its `expiry-time` (`None` for a line
/// that is not ours or that has none).
fn expiry_of(line: &str) -> Option<i64> {
    if !line.contains(MARK) {
        return None;
    }
    let at = line.find("expiry-time=\"")? + "expiry-time=\"".len();
    let stamp = line.get(at..at + 15)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

impl SshKeys {
    /// Over the file at `path`; `None` refuses every key.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    fn path(&self) -> Result<&PathBuf, SshKeyError> {
        self.path.as_ref().ok_or(SshKeyError::Disabled)
    }

    fn read(&self) -> Result<Vec<String>, SshKeyError> {
        match std::fs::read_to_string(self.path()?) {
            Ok(s) => Ok(s.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, lines: &[String]) -> Result<(), SshKeyError> {
        let path = self.path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
            set_mode(dir, 0o700)?;
        }
        let tmp = path.with_extension("genesis-tmp");
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(&tmp, text)?;
        set_mode(&tmp, 0o600)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Lets `public_key` in until `expires_at` for `grant`, replacing that grant's earlier
    /// key; expired lines of ours go at the same time.
    pub fn install(
        &self,
        grant: &str,
        public_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<PublicKey, SshKeyError> {
        let mark = grant_mark(grant)?;
        let key = parse(public_key)?;
        if expires_at <= now {
            return Err(SshKeyError::Bad("the key's expiry has passed".into()));
        }
        if expires_at - now > MAX_LIFETIME_S {
            return Err(SshKeyError::Bad(format!(
                "a support key lives at most {} minutes",
                MAX_LIFETIME_S / 60
            )));
        }
        let mut lines: Vec<String> = self
            .read()?
            .into_iter()
            .filter(|l| !l.ends_with(&mark) && expiry_of(l).is_none_or(|e| e > now))
            .collect();
        lines.push(format!(
            "restrict,pty,expiry-time=\"{}\" {} {} {mark}",
            expiry_time(expires_at)?,
            key.kind(),
            key.blob_b64()
        ));
        self.write(&lines)?;
        Ok(key)
    }

    /// Removes `grant`'s keys; how many lines went.
    pub fn remove(&self, grant: &str) -> Result<u32, SshKeyError> {
        let mark = grant_mark(grant)?;
        self.retain(|l| !l.ends_with(&mark))
    }

    /// Removes our lines whose expiry is past; how many went. Nothing when the sidecar
    /// takes no keys.
    pub fn sweep(&self, now: i64) -> Result<u32, SshKeyError> {
        if self.path.is_none() {
            return Ok(0);
        }
        self.retain(|l| expiry_of(l).is_none_or(|e| e > now))
    }

    /// Keeps the lines `keep` accepts, rewriting the file only when one goes; how many
    /// went.
    fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<u32, SshKeyError> {
        let lines = self.read()?;
        let kept: Vec<String> = lines.iter().filter(|l| keep(l)).cloned().collect();
        let removed = u32::try_from(lines.len() - kept.len()).unwrap_or(u32::MAX);
        if removed > 0 {
            self.write(&kept)?;
        }
        Ok(removed)
    }
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &std::path::Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// A well-formed Ed25519 public key line (the blob names its type; the 32 key bytes
    /// are arbitrary).
    fn ed25519(seed: u8) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[seed; 32]);
        format!("ssh-ed25519 {} someone@laptop", STANDARD.encode(blob))
    }

    const GRANT: &str = "0193a1d2-7b3c-7def-8123-456789abcdef";
    const OTHER: &str = "0193a1d2-7b3c-7def-8123-000000000000";

    fn keys() -> (tempfile::TempDir, SshKeys, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".ssh/authorized_keys");
        (dir, SshKeys::new(Some(path.clone())), path)
    }

    #[test]
    fn a_key_is_written_with_its_expiry_beside_keys_that_are_not_ours_and_removed_alone() {
        let (_dir, keys, path) = keys();
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, format!("{}\n", ed25519(1))).expect("image key");
        let now = 1_800_000_000;
        let k = keys
            .install(GRANT, &ed25519(2), now + 900, now)
            .expect("install");
        assert!(k.fingerprint().starts_with("SHA256:"));
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], ed25519(1), "the image's own key stays as it was");
        assert!(
            lines[1].starts_with(r#"restrict,pty,expiry-time="20270115"#),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(&format!("genesis-support-{GRANT}")));
        assert!(
            !lines[1].contains("someone@laptop"),
            "the key's own comment is dropped"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // The same grant again replaces its key; another grant's key is its own line.
        keys.install(GRANT, &ed25519(3), now + 900, now)
            .expect("again");
        keys.install(OTHER, &ed25519(4), now + 600, now)
            .expect("other");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(keys.remove(GRANT).expect("remove"), 1);
        assert_eq!(keys.remove(GRANT).expect("again"), 0);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(&ed25519(1)) && text.contains(OTHER) && !text.contains(GRANT));

        // The sweep takes what has expired, and only that.
        assert_eq!(keys.sweep(now + 599).expect("sweep"), 0);
        assert_eq!(keys.sweep(now + 600).expect("sweep"), 1);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{}\n", ed25519(1)));
    }

    #[test]
    fn bad_keys_grants_and_lifetimes_are_refused_and_nothing_is_written() {
        let (_dir, keys, path) = keys();
        let now = 1_800_000_000;
        let mismatched = ed25519(1).replace("ssh-ed25519 ", "ecdsa-sha2-nistp256 ");
        for (key, grant, expires) in [
            (
                "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x".to_owned(),
                GRANT,
                now + 60,
            ),
            ("ssh-ed25519 not*base64".to_owned(), GRANT, now + 60),
            (mismatched, GRANT, now + 60),
            (format!("{}\nssh-ed25519 AAAA", ed25519(1)), GRANT, now + 60),
            ("ssh-ed25519".to_owned(), GRANT, now + 60),
            (ed25519(1), "../../etc/passwd", now + 60),
            (ed25519(1), GRANT, now),
            (ed25519(1), GRANT, now + MAX_LIFETIME_S + 1),
        ] {
            let e = keys.install(grant, &key, expires, now);
            assert!(
                matches!(e, Err(SshKeyError::Bad(_))),
                "{key:?} {grant} {expires}: {e:?}"
            );
        }
        assert!(!path.exists(), "nothing written");
        let off = SshKeys::new(None);
        assert!(matches!(
            off.install(GRANT, &ed25519(1), now + 60, now),
            Err(SshKeyError::Disabled)
        ));
        assert_eq!(off.sweep(now).expect("nothing to sweep"), 0);
    }
}
