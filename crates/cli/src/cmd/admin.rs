//! `genesis admin create-operator`: the first God Mode operator (and any later one), with
//! its role (spec 63.3: support staff reach a tenant only through a grant); `genesis admin
//! operator-role` changes it.
//!
//! The password comes from standard input (`--password-stdin`, for scripts) or is generated
//! and printed once; it is never taken from the command line, where `ps` and shell history
//! would keep it.

use std::io::Read;

use clap::Subcommand;
use genesis_control::credentials::{MIN_PASSWORD, hash_password, new_token};
use genesis_core::support::OperatorRole;

use super::CliError;
use crate::config::Config;
use crate::output::Output;

/// Operator administration.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a God Mode operator. Prints the password once when it generates one.
    CreateOperator {
        /// The operator's e-mail address (the sign-in name).
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// What the account may do: `support` (a tenant only under a grant), `manager`
        /// (the fleet, and approving grants) or `admin`.
        #[arg(long, default_value = "admin", value_parser = parse_role)]
        role: OperatorRole,
    },
    /// Change an operator's role (audited; takes effect on the operator's next request).
    OperatorRole {
        /// The operator's e-mail address.
        #[arg(long)]
        email: String,
        /// `support`, `manager` or `admin`.
        #[arg(long, value_parser = parse_role)]
        role: OperatorRole,
    },
    /// Enrol (or replace) an operator's second factor (TOTP). Prints, once, the
    /// `otpauth://` URI and the key for an authenticator app; from then on God Mode asks the
    /// operator for a code. Needs the vault's master key (`[vault]`), which seals the secret.
    OperatorTotp {
        /// The operator's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Tenants straight against the database, without a running control plane: create
    /// (with its lead partition), list, get, drop-partition. `genesis tenants` does the
    /// same through the API.
    #[command(subcommand)]
    Tenants(super::workspaces::WorkspacesCommand),
}

/// A role by its code.
fn parse_role(raw: &str) -> Result<OperatorRole, String> {
    OperatorRole::from_code(raw.trim())
        .ok_or_else(|| format!("{raw:?} is not a role: use support, manager or admin"))
}

/// A plausible e-mail address: something@something, no spaces.
fn parse_email(raw: &str) -> Result<String, CliError> {
    let email = raw.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'))
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(CliError::Usage(format!(
            "--email {raw:?} is not an e-mail address"
        )))
    }
}

/// Runs an admin command.
pub async fn run(cmd: AdminCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    match cmd {
        AdminCommand::Tenants(c) => super::workspaces::run(c, cfg, out).await,
        AdminCommand::CreateOperator {
            email,
            password_stdin,
            role,
        } => {
            let email = parse_email(&email)?;
            let (password, generated) = if password_stdin {
                let mut p = String::new();
                std::io::stdin()
                    .read_to_string(&mut p)
                    .map_err(|e| CliError::Usage(format!("reading the password: {e}")))?;
                (p.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (new_token(), true)
            };
            let hash = tokio::task::spawn_blocking(move || {
                hash_password(&password).map(|h| (h, password))
            })
            .await
            .map_err(|e| CliError::Runtime(e.into()))?
            .map_err(|e| {
                CliError::Usage(format!(
                    "{e} (a generated one has 43; at least {MIN_PASSWORD} are needed)"
                ))
            })?;
            let stores = cfg.regional_store()?;
            let op = stores
                .coordinator()
                .operator_create_with_role(&email, &hash.0, role, "cli")
                .await?;
            eprintln!("operator {} created ({})", op.email, op.role);
            if generated {
                outln!("password: {}", hash.1);
                eprintln!("(shown once; it is stored only as an argon2id hash)");
            }
            Ok(())
        }
        AdminCommand::OperatorRole { email, role } => {
            let email = parse_email(&email)?;
            let stores = cfg.regional_store()?;
            let before = stores
                .coordinator()
                .operator_set_role(&email, role, "cli")
                .await
                .map_err(|e| match e {
                    genesis_store::StoreError::NotFound { .. } => {
                        CliError::Usage(format!("no operator {email}"))
                    }
                    other => other.into(),
                })?;
            eprintln!("{email}: {before} → {role}");
            Ok(())
        }
        AdminCommand::OperatorTotp { email } => {
            use genesis_control::second_factor::{base32, new_secret, otpauth_uri};
            let email = parse_email(&email)?;
            let keys = cfg
                .vault
                .required("the second factor's secret is sealed with the vault's master key")?;
            let secret = new_secret();
            let stores = cfg.regional_store()?;
            stores
                .coordinator()
                .operator_totp_enroll(&keys, &email, &secret, "cli")
                .await
                .map_err(|e| match e {
                    genesis_store::StoreError::NotFound { .. } => {
                        CliError::Usage(format!("no operator {email}: create it first"))
                    }
                    other => other.into(),
                })?;
            eprintln!("second factor enrolled for {email}; add it to an authenticator app:");
            outln!("uri: {}", otpauth_uri(&secret, &email));
            outln!("key: {}", base32(&secret));
            eprintln!("(shown once; it is stored only sealed with the vault's master key)");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lower_cased_and_checked() {
        assert_eq!(
            parse_email(" Ops@Example.COM ").expect("valid"),
            "ops@example.com"
        );
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
    }
}
