//! Real Caddy (Debian's `caddy`) in front of a virtual droplet, on its loopback address,
//! running the Caddyfile the droplet's own cloud-init wrote (issue 18: Caddy on the command
//! path).
//!
//! What differs from a droplet, and why:
//! - Compose's service names do not resolve here: `sidecar:8443` and `n8n:5678` become the
//!   droplet's address with those ports.
//! - Certificates come from one internal CA that the control plane is told to trust (made
//!   once with `openssl`, given to every droplet's Caddy as its `local` CA root), not from
//!   ACME: there is no public name to prove. Each Caddy still issues its own certificate, for
//!   the droplet's IP address.
//! - Caddy listens on the droplet's address only (`default_bind`), at [`HTTPS_PORT`] since
//!   every droplet shares the host's ports; the admin API's socket moves from the volume it
//!   shares with the sidecar to the droplet's directory ([`admin_socket`]), keeping its
//!   origin check; no HTTP→HTTPS redirect listener.
//!
//! Everything else (routes, the 404 for other paths, headers) is the droplet's file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The port Caddy serves HTTPS on in the simulator (443 on a droplet).
pub const HTTPS_PORT: u16 = 9443;

/// Where the droplet's cloud-init writes Caddy's configuration.
pub const CADDYFILE: &str = "/opt/genesis/Caddyfile";

/// One internal CA for every simulated droplet's Caddy.
#[derive(Debug, Clone)]
pub struct CaddyFront {
    bin: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
}

impl CaddyFront {
    /// Finds `caddy` and makes the CA under `dir` (kept across runs when already there).
    pub fn prepare(dir: &Path) -> Result<Self, String> {
        let bin = ["/usr/bin/caddy", "/usr/local/bin/caddy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or("caddy is not installed (sudo apt-get install -y caddy)")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ca_cert = dir.join("sim-ca.crt");
        let ca_key = dir.join("sim-ca.key");
        if !(ca_cert.exists() && ca_key.exists()) {
            let out = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .arg("ec_paramgen_curve:P-256")
                .args([
                    "-nodes",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=Genesis simulator CA",
                ])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert)
                .output()
                .map_err(|e| format!("openssl: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "openssl could not make the CA: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(Self {
            bin,
            ca_cert,
            ca_key,
        })
    }

    /// The CA's certificate (PEM): what the control plane must trust.
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// The droplet's Caddyfile rewritten to run at `ip`, its files under `dir` (see the
    /// module doc).
    pub fn adapt(&self, caddyfile: &str, ip: IpAddr, dir: &Path) -> Result<String, String> {
        let storage = dir.join("caddy-data");
        let Some(open) = caddyfile.find("{\n") else {
            return Err("the Caddyfile has no global options block".into());
        };
        if !caddyfile.trim_start().starts_with('{') {
            return Err("the Caddyfile does not start with its global options".into());
        }
        let globals = format!(
            "\tdefault_bind {ip}\n\tlocal_certs\n\tskip_install_trust\n\tauto_https disable_redirects\n\tstorage file_system {storage}\n\tpki {{\n\t\tca local {{\n\t\t\troot {{\n\t\t\t\tformat pem_file\n\t\t\t\tcert {cert}\n\t\t\t\tkey {key}\n\t\t\t}}\n\t\t}}\n\t}}\n",
            storage = storage.display(),
            cert = self.ca_cert.display(),
            key = self.ca_key.display(),
        );
        let mut text = String::with_capacity(caddyfile.len() + globals.len());
        text.push_str(&caddyfile[..open + 2]);
        text.push_str(&globals);
        text.push_str(&caddyfile[open + 2..]);
        let socket = admin_socket(dir);
        Ok(text
            .replace(
                &format!("unix/{}", genesis_protocol::front::CADDY_ADMIN_SOCKET),
                &format!("unix/{}", socket.display()),
            )
            .replace("sidecar:8443", &format!("{ip}:8443"))
            .replace("n8n:5678", &format!("{ip}:5678")))
    }

    /// Starts Caddy for the droplet at `ip` with `caddyfile` (the droplet's own), its files
    /// under `dir`; returns once it accepts connections. The process dies with the handle.
    pub async fn start(
        &self,
        caddyfile: &str,
        ip: IpAddr,
        dir: &Path,
    ) -> Result<tokio::process::Child, String> {
        let storage = dir.join("caddy-data");
        std::fs::create_dir_all(&storage).map_err(|e| format!("{}: {e}", storage.display()))?;
        let socket = admin_socket(dir);
        // A Unix socket's path holds at most 107 bytes.
        if socket.as_os_str().len() > 100 {
            return Err(format!(
                "{} is too long a path for Caddy's admin socket",
                socket.display()
            ));
        }
        let _ = std::fs::remove_file(&socket);
        let path = dir.join("Caddyfile");
        std::fs::write(&path, self.adapt(caddyfile, ip, dir)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let log = std::fs::File::create(dir.join("caddy.log")).map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(&self.bin)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("GENESIS_PUBLIC_HOST", format!("https://{ip}:{HTTPS_PORT}"))
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("caddy: {e}"))?;
        let addr = SocketAddr::new(ip, HTTPS_PORT);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("caddy.log")).unwrap_or_default();
                return Err(format!("caddy exited ({status}): {}", tail(&log)));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("caddy did not listen on {addr} within 15 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Where the Caddy of the droplet whose Caddy files are under `dir` has its admin socket:
/// what that droplet's sidecar is given as `caddy_admin`.
pub fn admin_socket(dir: &Path) -> PathBuf {
    dir.join("admin.sock")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_droplets_file_is_moved_onto_the_droplets_address() {
        let front = CaddyFront {
            bin: "/usr/bin/caddy".into(),
            ca_cert: "/ca/root.crt".into(),
            ca_key: "/ca/root.key".into(),
        };
        let file = "{\n\tadmin unix//run/caddy-admin/admin.sock {\n\t\torigins localhost:2019\n\t\tenforce_origin\n\t}\n}\n\n{$GENESIS_PUBLIC_HOST} {\n\thandle /sidecar/* {\n\t\treverse_proxy sidecar:8443\n\t}\n}\n";
        let ip: IpAddr = "127.64.0.9".parse().expect("ip");
        let out = front.adapt(file, ip, Path::new("/s")).expect("adapts");
        assert!(out.starts_with("{\n\tdefault_bind 127.64.0.9\n"), "{out}");
        assert!(out.contains("admin unix//s/admin.sock") && out.contains("origins localhost:2019"));
        assert!(out.contains("enforce_origin") && out.contains("reverse_proxy 127.64.0.9:8443"));
        assert!(out.contains("cert /ca/root.crt"));
        assert!(
            front
                .adapt("example.com {\n}\n", ip, Path::new("/s"))
                .is_err()
        );
    }
}
