//! Reading a cloud-init `#cloud-config` document the way a droplet's cloud-init would, so the
//! simulator boots virtual droplets from the very `user_data` the control plane sends
//! (DESIGN §3.1): the files it writes and the commands it runs.
//!
//! Only the modules the fleet uses are read (`write_files`, `runcmd`); others are ignored, as
//! cloud-init ignores modules it does not run.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Why a document cannot boot a droplet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudInitError {
    /// cloud-init only treats a document as cloud-config when its first line says so.
    #[error("user_data does not start with #cloud-config")]
    NotCloudConfig,
    /// The YAML does not parse or has the wrong shape.
    #[error("cloud-config is not valid: {0}")]
    Invalid(String),
    /// `write_files` with an encoding we do not decode.
    #[error("write_files entry {path}: unsupported encoding {encoding:?}")]
    UnsupportedEncoding {
        /// The file.
        path: String,
        /// Its `encoding`.
        encoding: String,
    },
}

/// One `write_files` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WriteFile {
    /// Absolute path.
    pub path: String,
    /// Contents (plain text).
    #[serde(default)]
    pub content: String,
    /// Octal mode, e.g. `'0600'`.
    #[serde(default)]
    pub permissions: Option<String>,
    /// `user:group`.
    #[serde(default)]
    pub owner: Option<String>,
    /// `text/plain` when absent.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// One `runcmd` entry: a shell line or an argv list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Command {
    /// Run by `sh -c`.
    Shell(String),
    /// Run directly.
    Argv(Vec<String>),
}

/// The parts of a cloud-config document the fleet uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CloudConfig {
    /// Files to write before commands run.
    #[serde(default)]
    pub write_files: Vec<WriteFile>,
    /// Commands to run, in order, at first boot.
    #[serde(default)]
    pub runcmd: Vec<Command>,
    /// Packages to install before the commands run (names, or `[name, version]`).
    #[serde(default)]
    pub packages: Vec<serde_norway::Value>,
}

impl CloudConfig {
    /// Parses `user_data`.
    pub fn parse(user_data: &str) -> Result<Self, CloudInitError> {
        let first = user_data.lines().next().unwrap_or_default().trim_end();
        if first != "#cloud-config" {
            return Err(CloudInitError::NotCloudConfig);
        }
        let body = &user_data[user_data.find('\n').map_or(user_data.len(), |i| i + 1)..];
        let cfg: CloudConfig = if body.trim().is_empty() {
            CloudConfig::default()
        } else {
            serde_norway::from_str(body).map_err(|e| CloudInitError::Invalid(e.to_string()))?
        };
        if let Some(f) = cfg.write_files.iter().find(|f| {
            f.encoding
                .as_deref()
                .is_some_and(|e| !matches!(e, "text/plain" | "text"))
        }) {
            return Err(CloudInitError::UnsupportedEncoding {
                path: f.path.clone(),
                encoding: f.encoding.clone().unwrap_or_default(),
            });
        }
        Ok(cfg)
    }

    /// Whether `packages` installs a Docker engine and its compose plugin (Ubuntu's
    /// `docker.io` + `docker-compose-v2`, or Docker's `docker-ce` + `docker-compose-plugin`).
    pub fn installs_docker(&self) -> bool {
        let names: Vec<&str> = self
            .packages
            .iter()
            .filter_map(|p| match p {
                serde_norway::Value::String(s) => Some(s.as_str()),
                serde_norway::Value::Sequence(v) => v.first().and_then(|n| n.as_str()),
                _ => None,
            })
            .collect();
        let has = |n: &str| names.contains(&n);
        (has("docker.io") && has("docker-compose-v2"))
            || (has("docker-ce") && has("docker-compose-plugin"))
    }

    /// Whether a command runs `docker`.
    pub fn runs_docker(&self) -> bool {
        self.runcmd.iter().any(|c| match c {
            Command::Argv(a) => a.first().is_some_and(|p| p == "docker"),
            Command::Shell(s) => s.split_whitespace().any(|w| w == "docker"),
        })
    }

    /// The file written at `path`, if any.
    pub fn file(&self, path: &str) -> Option<&WriteFile> {
        self.write_files.iter().find(|f| f.path == path)
    }

    /// The variables of the env file written at `path` (parsed as the sidecar parses it).
    pub fn env_file(&self, path: &str) -> Option<BTreeMap<String, String>> {
        Some(genesis_protocol::envfile::parse(&self.file(path)?.content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "#cloud-config\nwrite_files:\n  - path: /opt/genesis/.env\n    permissions: '0600'\n    content: |\n      # written by ignition\n      GENESIS_WORKSPACE_ID=3f0c\n      GENESIS_REGION=\"eu-west\"\n\n  - path: /opt/genesis/docker-compose.yml\n    content: 'services: {}'\nruncmd:\n  - [docker, compose, up, -d]\n  - echo done\n";

    #[test]
    fn reads_files_env_and_commands() {
        let c = CloudConfig::parse(DOC).expect("parses");
        assert_eq!(c.write_files.len(), 2);
        assert_eq!(
            c.file("/opt/genesis/.env")
                .and_then(|f| f.permissions.as_deref()),
            Some("0600")
        );
        let env = c.env_file("/opt/genesis/.env").expect("env file");
        assert_eq!(
            env.get("GENESIS_WORKSPACE_ID").map(String::as_str),
            Some("3f0c")
        );
        assert_eq!(
            env.get("GENESIS_REGION").map(String::as_str),
            Some("eu-west")
        );
        assert_eq!(env.len(), 2, "comments and blank lines are skipped");
        assert_eq!(
            c.runcmd,
            vec![
                Command::Argv(vec![
                    "docker".into(),
                    "compose".into(),
                    "up".into(),
                    "-d".into()
                ]),
                Command::Shell("echo done".into()),
            ]
        );
        assert!(c.env_file("/nope").is_none());
    }

    #[test]
    fn refuses_what_cloud_init_would_not_run() {
        assert_eq!(
            CloudConfig::parse("#!/bin/sh\necho hi"),
            Err(CloudInitError::NotCloudConfig)
        );
        assert!(matches!(
            CloudConfig::parse("#cloud-config\nwrite_files: 12\n"),
            Err(CloudInitError::Invalid(_))
        ));
        assert!(matches!(
            CloudConfig::parse(
                "#cloud-config\nwrite_files:\n  - path: /a\n    encoding: b64\n    content: aGk=\n"
            ),
            Err(CloudInitError::UnsupportedEncoding { .. })
        ));
        assert_eq!(
            CloudConfig::parse("#cloud-config\n"),
            Ok(CloudConfig::default())
        );
    }

    #[test]
    fn docker_comes_from_the_image_or_from_packages() {
        let bare = CloudConfig::parse("#cloud-config\nruncmd:\n  - [docker, compose, up, -d]\n")
            .expect("parses");
        assert!(bare.runs_docker() && !bare.installs_docker());
        let ubuntu = CloudConfig::parse(
            "#cloud-config\npackages: [docker.io, docker-compose-v2]\nruncmd:\n  - docker compose up -d\n",
        )
        .expect("parses");
        assert!(ubuntu.runs_docker() && ubuntu.installs_docker());
        let no_compose =
            CloudConfig::parse("#cloud-config\npackages: [docker.io]\n").expect("parses");
        assert!(
            !no_compose.installs_docker(),
            "compose v2 is a package of its own"
        );
        let pinned = CloudConfig::parse(
            "#cloud-config\npackages: [[docker-ce, '5:27.0'], docker-compose-plugin]\n",
        )
        .expect("parses");
        assert!(pinned.installs_docker());
    }
}
