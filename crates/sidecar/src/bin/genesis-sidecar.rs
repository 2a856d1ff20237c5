//! `genesis-sidecar`: the agent on a droplet (see the `genesis_sidecar` crate).

fn main() -> std::process::ExitCode {
    genesis_sidecar::cli::main_with_args(std::env::args_os())
}
