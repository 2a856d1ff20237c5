//! Saved contexts: named control planes (an API address and its token) that `genesis auth
//! login` writes and `genesis context use` switches between, as `doctl auth init` and
//! `flyctl auth login` do, so that API commands need no configuration file and no database.
//!
//! The file is `$GENESIS_CONTEXTS`, else `$XDG_CONFIG_HOME/genesis/contexts.toml`, else
//! `~/.config/genesis/contexts.toml`. It holds bearer tokens, so it is written whole to a
//! temporary file with mode 0600 and renamed over the old one: a crash never leaves half a
//! file, and no other user can read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the contexts file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ContextsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a contexts file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no home directory to keep contexts in: set GENESIS_CONTEXTS or XDG_CONFIG_HOME")]
    NoHome,
}

/// One control plane as the CLI reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The control plane's base URL, e.g. `https://ops.example.com`.
    pub api_url: String,
    /// The API bearer token.
    pub api_token: String,
}

/// Every saved context and the one in use.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contexts {
    /// The name of the context API commands use when no flag or variable says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

impl Contexts {
    /// Where the contexts live on this machine.
    pub fn default_path() -> Result<PathBuf, ContextsError> {
        if let Some(p) = std::env::var_os("GENESIS_CONTEXTS").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|p| !p.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
            .ok_or(ContextsError::NoHome)?;
        Ok(base.join("genesis").join("contexts.toml"))
    }

    /// The contexts in `path`; none when the file does not exist yet.
    pub fn load(path: &Path) -> Result<Self, ContextsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ContextsError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| ContextsError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Writes every context to `path` (created with its folder if missing), readable by its
    /// owner only.
    pub fn save(&self, path: &Path) -> Result<(), ContextsError> {
        let write_err = |source| ContextsError::Write {
            path: path.to_owned(),
            source,
        };
        let text = toml::to_string_pretty(self)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = path.with_extension("toml.tmp");
        write_private(&tmp, text.as_bytes()).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// The context in use, with its name.
    pub fn current(&self) -> Option<(&str, &Context)> {
        let name = self.current.as_deref()?;
        self.contexts.get(name).map(|c| (name, c))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nested").join("contexts.toml");
        assert_eq!(
            Contexts::load(&path).expect("missing is empty"),
            Contexts::default()
        );
        let mut c = Contexts::default();
        c.contexts.insert(
            "prod".into(),
            Context {
                api_url: "https://ops.example.com".into(),
                api_token: "secret-token".into(),
            },
        );
        c.current = Some("prod".into());
        c.save(&path).expect("save");
        let back = Contexts::load(&path).expect("load");
        assert_eq!(back, c);
        assert_eq!(back.current().map(|(n, _)| n), Some("prod"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_broken_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("contexts.toml");
        std::fs::write(&path, "current = [").expect("write");
        let e = Contexts::load(&path).expect_err("broken");
        assert!(e.to_string().contains("is not a contexts file"), "{e}");
    }
}
