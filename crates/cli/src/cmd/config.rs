//! `genesis config check`.

use std::path::Path;

use clap::Subcommand;

use super::CliError;
use crate::{
    config::Config,
    output::{Output, print},
};

/// Configuration commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the file and environment, and explain every problem found.
    Check,
}

/// Runs a config command.
pub async fn run(cmd: ConfigCommand, path: Option<&Path>, out: Output) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Check => {
            let file = Config::path(path);
            match Config::load(file.as_deref()) {
                Ok(cfg) => {
                    let regions = cfg
                        .regional_store()
                        .map(|s| s.distinct().len())
                        .unwrap_or(0);
                    let summary = serde_json::json!({
                        "ok": true,
                        "file": file.as_ref().map(|p| p.display().to_string()),
                        "listen": cfg.server.listen,
                        "databases": regions,
                        "api_enabled": cfg.server.api_token.is_some(),
                        "ohio": cfg.ohio.is_some(),
                    });
                    print(
                        out,
                        &summary,
                        &["check", "result"],
                        vec![
                            vec![
                                "file".into(),
                                file.map(|p| p.display().to_string())
                                    .unwrap_or_else(|| "(none: defaults + environment)".into()),
                            ],
                            vec!["listen".into(), cfg.server.listen.clone()],
                            vec!["distinct databases".into(), regions.to_string()],
                            vec![
                                "api".into(),
                                if cfg.server.api_token.is_some() {
                                    "enabled".into()
                                } else {
                                    "disabled (no server.api_token)".into()
                                },
                            ],
                            vec!["result".into(), "ok".into()],
                        ],
                    );
                    Ok(())
                }
                Err(e) => {
                    let rows =
                        e.0.iter()
                            .map(|p| vec![p.field.clone(), p.message.clone()])
                            .collect();
                    print(
                        out,
                        &serde_json::json!({"ok": false, "problems": e.0}),
                        &["field", "problem"],
                        rows,
                    );
                    Err(CliError::CheckFailed(format!(
                        "{} configuration problem(s)",
                        e.0.len()
                    )))
                }
            }
        }
    }
}
