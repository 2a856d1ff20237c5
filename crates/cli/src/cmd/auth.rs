//! `genesis auth` and `genesis context`: saved control planes, so that API commands need
//! only `genesis auth login` once (see [`crate::contexts`]).

use std::io::IsTerminal;

use serde_json::json;

use super::CliError;
use super::api_client::Api;
use crate::contexts::{Context, Contexts};
use crate::output::{Output, print};

/// `genesis auth ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Save a control plane's address and API token as a context and use it. The address
    /// is checked to be a Genesis control plane and the token to open its API first.
    #[command(after_help = "Examples:\n  \
        genesis auth login --api-url https://ops.example.com            (asks for the token)\n  \
        pass show genesis/prod | genesis auth login --api-url https://ops.example.com \\\n    \
        --name prod --token-stdin")]
    Login {
        /// The control plane's base URL.
        #[arg(long, env = "GENESIS_API_URL")]
        api_url: String,
        /// The context's name (default: the URL's host).
        #[arg(long)]
        name: Option<String>,
        /// Read the token from standard input (else it is asked for, or taken from
        /// GENESIS_API_TOKEN).
        #[arg(long)]
        token_stdin: bool,
    },
    /// Forget a saved context (the one in use by default).
    Logout {
        /// The context to forget.
        name: Option<String>,
    },
    /// Which control plane API commands reach, and whether its token still opens it.
    Status,
}

/// `genesis context ...`
#[derive(Debug, clap::Subcommand)]
pub enum ContextCommand {
    /// The saved contexts; `*` marks the one in use.
    List,
    /// Use a saved context for the API commands that follow.
    Use {
        /// The context's name (see `genesis context list`).
        name: String,
    },
}

fn contexts() -> Result<(std::path::PathBuf, Contexts), CliError> {
    let path = Contexts::default_path().map_err(|e| CliError::Usage(e.to_string()))?;
    let c = Contexts::load(&path).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok((path, c))
}

fn save(path: &std::path::Path, c: &Contexts) -> Result<(), CliError> {
    c.save(path).map_err(|e| CliError::Runtime(e.into()))
}

/// The token: standard input when asked, else the environment, else a prompt.
fn read_token(from_stdin: bool) -> Result<String, CliError> {
    if !from_stdin && let Ok(t) = std::env::var("GENESIS_API_TOKEN") {
        return Ok(t);
    }
    let prompt = if from_stdin {
        None
    } else if std::io::stdin().is_terminal() {
        Some("API token: ")
    } else {
        return Err(CliError::Usage(
            "no token: pass --token-stdin, set GENESIS_API_TOKEN, or run this in a terminal".into(),
        ));
    };
    let token = super::read_line(prompt, "the token")?;
    if token.is_empty() {
        return Err(CliError::Usage("the token is empty".into()));
    }
    Ok(token)
}

/// Runs an auth command.
pub async fn run(cmd: AuthCommand, out: Output) -> Result<(), CliError> {
    match cmd {
        AuthCommand::Login {
            api_url,
            name,
            token_stdin,
        } => {
            let token = read_token(token_stdin)?;
            let api = Api::at(&api_url, &token)?;
            let version = api.identify().await?;
            let name = match name {
                Some(n) => n,
                None => reqwest::Url::parse(api.base())
                    .ok()
                    .and_then(|u| {
                        let host = u.host_str()?.to_owned();
                        Some(match u.port() {
                            Some(p) => format!("{host}:{p}"),
                            None => host,
                        })
                    })
                    .unwrap_or_else(|| "default".into()),
            };
            let (path, mut c) = contexts()?;
            c.contexts.insert(
                name.clone(),
                Context {
                    api_url: api.base().to_owned(),
                    api_token: token,
                },
            );
            c.current = Some(name.clone());
            save(&path, &c)?;
            eprintln!(
                "logged in to {} (Genesis {version}) as context {name:?}; saved in {}",
                api.base(),
                path.display()
            );
            Ok(())
        }
        AuthCommand::Logout { name } => {
            let (path, mut c) = contexts()?;
            let name = name.or_else(|| c.current.clone()).ok_or_else(|| {
                CliError::Usage("no context is in use; name the one to forget".into())
            })?;
            if c.contexts.remove(&name).is_none() {
                return Err(no_such_context(&name, &c));
            }
            if c.current.as_deref() == Some(name.as_str()) {
                c.current = None;
            }
            save(&path, &c)?;
            eprintln!("forgot context {name:?}");
            Ok(())
        }
        AuthCommand::Status => {
            let (_, c) = contexts()?;
            let Some((name, ctx)) = c.current() else {
                return Err(CliError::Usage(
                    "no context is in use: `genesis auth login --api-url URL`".into(),
                ));
            };
            let api = Api::at(&ctx.api_url, &ctx.api_token)?;
            let version = api.identify().await?;
            print(
                out,
                &json!({"context": name, "api_url": ctx.api_url, "version": version}),
                &["CONTEXT", "API URL", "VERSION"],
                vec![vec![name.to_owned(), ctx.api_url.clone(), version]],
            );
            Ok(())
        }
    }
}

fn no_such_context(name: &str, c: &Contexts) -> CliError {
    let known: Vec<&str> = c.contexts.keys().map(String::as_str).collect();
    CliError::Usage(if known.is_empty() {
        format!("no context {name:?}: none is saved yet (`genesis auth login`)")
    } else {
        format!("no context {name:?}; saved: {}", known.join(", "))
    })
}

/// Runs a context command.
pub fn run_context(cmd: ContextCommand, out: Output) -> Result<(), CliError> {
    let (path, mut c) = contexts()?;
    match cmd {
        ContextCommand::List => {
            let rows = c
                .contexts
                .iter()
                .map(|(n, ctx)| {
                    let mark = if c.current.as_deref() == Some(n.as_str()) {
                        "*"
                    } else {
                        ""
                    };
                    vec![mark.to_owned(), n.clone(), ctx.api_url.clone()]
                })
                .collect();
            let value: Vec<_> = c
                .contexts
                .iter()
                .map(|(n, ctx)| {
                    json!({
                        "name": n,
                        "api_url": ctx.api_url,
                        "current": c.current.as_deref() == Some(n.as_str()),
                    })
                })
                .collect();
            print(out, &value, &["", "NAME", "API URL"], rows);
            Ok(())
        }
        ContextCommand::Use { name } => {
            if !c.contexts.contains_key(&name) {
                return Err(no_such_context(&name, &c));
            }
            c.current = Some(name.clone());
            save(&path, &c)?;
            eprintln!("using context {name:?}");
            Ok(())
        }
    }
}
