//! `genesis command-key status|rotate`: the key that signs commands to sidecars (spec
//! 65.1).
//!
//! A running control plane rotates it every 90 days by itself; `rotate` begins a rotation
//! now (after a suspected leak, say). Either way the next key reaches every sidecar in
//! heartbeat answers, and the control plane switches to it once every awake droplet has
//! confirmed it, or after a week; `status` shows which droplets it still waits for.

use std::sync::Arc;

use genesis_control::app::command_keys::{self, CommandKeys};
use genesis_protocol::{CommandKeyRing, CommandSigner};

use super::CliError;
use crate::config::Config;
use crate::output::{Output, print};

/// `genesis command-key ...`
#[derive(Debug, clap::Subcommand)]
pub enum CommandKeyCommand {
    /// The stored keys, and the droplets a rotation in flight waits for.
    Status,
    /// Begin a rotation now (the running control plane delivers and switches).
    Rotate,
}

fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(anyhow::anyhow!("{e}"))
}

/// Runs a command-key command.
pub async fn run(cmd: CommandKeyCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    let stores = cfg.regional_store()?;
    match cmd {
        CommandKeyCommand::Status => {
            let s = command_keys::status(&stores).await.map_err(runtime)?;
            let rows = s
                .keys
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        format!("{:?}", k.state).to_uppercase(),
                        k.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        k.activated_at
                            .map(|a| a.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                        k.unconfirmed.to_string(),
                    ]
                })
                .collect();
            print(
                out,
                &serde_json::to_value(&s).map_err(runtime)?,
                &["KEY", "STATE", "CREATED", "ACTIVE SINCE", "UNCONFIRMED"],
                rows,
            );
            if !s.behind.is_empty() {
                eprintln!(
                    "{} droplets have not confirmed the next key ({} of them awake)",
                    s.behind.len(),
                    s.behind.iter().filter(|l| l.awake()).count()
                );
            }
        }
        CommandKeyCommand::Rotate => {
            let vault = cfg
                .vault
                .required("command keys are stored sealed under the vault")?;
            let stored = stores.coordinator().command_keys().await.map_err(runtime)?;
            let active_stored = stored
                .iter()
                .any(|k| k.state == genesis_store::CommandKeyState::Active);
            // The key in use must be stored beside the next one; this process can only know
            // it from the configuration.
            let configured = match cfg.server.command_key.as_deref() {
                Some(b64) => {
                    CommandSigner::from_seed(&super::serve::key_32(b64, "server.command_key")?)
                        .map_err(runtime)?
                }
                None if active_stored => CommandSigner::generate().map_err(runtime)?,
                None => {
                    return Err(CliError::Usage(
                        "the key in use is not stored yet and server.command_key is not set: \
                         start the control plane once with the vault configured (it stores \
                         its key), or set server.command_key"
                            .into(),
                    ));
                }
            };
            let keys = CommandKeys::new(
                stores,
                Arc::new(vault),
                Arc::new(CommandKeyRing::new(Arc::new(configured))),
                Default::default(),
                Default::default(),
            );
            match keys
                .begin("cli:command-key-rotate")
                .await
                .map_err(runtime)?
            {
                Some(kid) => {
                    print(
                        out,
                        &serde_json::json!({ "next": kid }),
                        &["NEXT KEY"],
                        vec![vec![kid.clone()]],
                    );
                    eprintln!(
                        "rotation begun: sidecars learn key {kid} at their next heartbeat; \
                         `genesis command-key status` shows who has not yet"
                    );
                }
                None => {
                    return Err(runtime(
                        "a rotation is already under way: see `genesis command-key status`",
                    ));
                }
            }
        }
    }
    Ok(())
}
