//! The env file cloud-init writes for the sidecar (DESIGN §3.1, `/opt/genesis/.env`): one
//! `KEY=VALUE` per line, blank lines and `#` comments skipped, one pair of surrounding quotes
//! removed, as docker compose reads an env file. One parser, used by the sidecar that reads the
//! file and by the simulator that boots droplets from the same document.

use std::collections::BTreeMap;

/// The variables of an env file.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), unquoted.to_owned())
        })
        .collect()
}

/// Names of the variables the control plane puts in the file.
pub mod keys {
    /// Where the control plane listens (handshake, heartbeats).
    pub const DASHBOARD_URL: &str = "GENESIS_DASHBOARD_URL";
    /// The tenant.
    pub const WORKSPACE_ID: &str = "GENESIS_WORKSPACE_ID";
    /// The one-time handshake token.
    pub const PROVISIONING_TOKEN: &str = "GENESIS_PROVISIONING_TOKEN";
    /// The tenant's region (spec 62).
    pub const REGION: &str = "GENESIS_REGION";
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_what_compose_reads() {
        let env = super::parse("# comment\nA=1\n\nB=\"two words\"\nC='x=y'\nnot a pair\n");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("two words"));
        assert_eq!(env.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(env.len(), 3);
    }
}
