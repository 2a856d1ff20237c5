//! `genesis db check`: the server's settings against spec 40.2.

use clap::Subcommand;
use genesis_store::SettingLevel;

use super::CliError;
use crate::{
    config::Config,
    output::{Output, print},
};

/// Database commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Report server settings against spec 40.2; exit 3 when a required one is off.
    Check,
}

/// Runs a db command.
pub async fn run(cmd: DbCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    match cmd {
        DbCommand::Check => {
            let stores = cfg.regional_store()?;
            let mut failed = 0;
            for db in stores.distinct() {
                let checks = db.settings_check().await.map_err(|e| {
                    CliError::Runtime(anyhow::anyhow!(
                        "cannot read settings (has `genesis migrate` run?): {e}"
                    ))
                })?;
                failed += checks
                    .iter()
                    .filter(|c| !c.ok && c.level == SettingLevel::Required)
                    .count();
                let rows = checks
                    .iter()
                    .map(|c| {
                        vec![
                            c.setting.clone(),
                            c.value.clone(),
                            c.required.clone(),
                            match (c.ok, c.level) {
                                (true, _) => "ok".into(),
                                (false, SettingLevel::Required) => "NOT OK".into(),
                                (false, SettingLevel::Recommended) => "low (recommended)".into(),
                            },
                            c.why.to_string(),
                        ]
                    })
                    .collect();
                if out == Output::Table {
                    outln!(
                        "database {}",
                        db.options().admin.get_database().unwrap_or("(default)")
                    );
                }
                print(
                    out,
                    &checks,
                    &["setting", "value", "required", "status", "why it matters"],
                    rows,
                );
            }
            if failed > 0 {
                Err(CliError::CheckFailed(format!(
                    "{failed} required setting(s) are off (see the rows marked NOT OK)"
                )))
            } else {
                Ok(())
            }
        }
    }
}
