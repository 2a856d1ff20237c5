//! The droplet's documents checked with the real tools (issue 18 finding 2): the user-data
//! with `cloud-init schema` (Debian's cloud-init), the Caddyfile with `caddy adapt` and
//! `caddy validate` (Debian's Caddy), and the compose file against the Compose
//! Specification's own JSON schema (vendored in `vendor/compose-spec`).
//!
//! `make test` installs cloud-init and Caddy with apt; without them these tests fail and say
//! what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use genesis_ignition::cloud_init::{
    CADDY_ADDRESS, CADDYFILE_PATH, COMPOSE_PATH, ENV_PATH, IgnitionEnv, Images, render,
};
use genesis_ignition::network::DropletNetwork;
use serde_json::{Value, json};

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is needed: sudo apt-get install -y {name} (scripts/test.sh does this as root)");
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("genesis-docs-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn rendered() -> (String, Value) {
    let d = "@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let text = render(
        &IgnitionEnv {
            dashboard_url: "https://cp.example.com".into(),
            workspace_id: uuid::Uuid::nil(),
            provisioning_token: "pt-123".into(),
            region: "eu-west".into(),
        },
        &Images {
            caddy: format!("caddy:2.8{d}"),
            n8n: format!("n8nio/n8n:2.8.4{d}"),
            sidecar: format!("ghcr.io/genesis/sidecar:0.1.0{d}"),
        },
        &DropletNetwork {
            operator_ssh_cidrs: vec!["198.51.100.0/24".into()],
            acme_email: Some("ops@example.com".into()),
            ..DropletNetwork::default()
        },
        true,
    )
    .expect("renders");
    let doc: Value = serde_norway::from_str(&text).expect("yaml");
    (text, doc)
}

fn file<'a>(doc: &'a Value, path: &str) -> &'a str {
    doc["write_files"]
        .as_array()
        .expect("write_files")
        .iter()
        .find(|f| f["path"] == path)
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("no {path}"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("the tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_user_data_passes_cloud_inits_own_schema_check() {
    let (text, doc) = rendered();
    let dir = scratch();
    let good = dir.join("user-data");
    std::fs::write(&good, &text).expect("write");
    let (ok, out) = run(Command::new(tool("cloud-init"))
        .args(["schema", "--config-file"])
        .arg(&good));
    assert!(
        ok,
        "cloud-init schema refused the user-data:\n{out}\n{text}"
    );

    // The same check refuses a broken document: it is not a check that passes everything.
    let mut broken = doc.clone();
    broken["packages"] = json!("docker.io");
    broken["write_files"][0]["permissions"] = json!(600);
    let bad = dir.join("broken");
    std::fs::write(
        &bad,
        format!(
            "#cloud-config\n{}",
            serde_norway::to_string(&broken).expect("yaml")
        ),
    )
    .expect("write");
    let (ok, out) = run(Command::new(tool("cloud-init"))
        .args(["schema", "--config-file"])
        .arg(&bad));
    assert!(!ok, "a broken document passed: {out}");

    // What the document must do on a fresh ubuntu-24-04-x64: install Docker, then start.
    assert_eq!(doc["packages"], json!(["docker.io", "docker-compose-v2"]));
    let files: Vec<&str> = doc["write_files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(files, [ENV_PATH, COMPOSE_PATH, CADDYFILE_PATH]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_caddyfile_adapts_and_validates_with_caddy() {
    let (_, doc) = rendered();
    let dir = scratch();
    let path = dir.join("Caddyfile");
    std::fs::write(&path, file(&doc, CADDYFILE_PATH)).expect("write");
    let caddy = |args: &[&str]| {
        let mut c = Command::new(tool("caddy"));
        c.args(args)
            .arg("--config")
            .arg(&path)
            .args(["--adapter", "caddyfile"])
            .env("GENESIS_PUBLIC_HOST", "203-0-113-5.sslip.io")
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"));
        run(&mut c)
    };
    let (ok, out) = caddy(&["validate"]);
    assert!(ok, "caddy validate: {out}");
    let (ok, json_text) = caddy(&["adapt"]);
    assert!(ok, "caddy adapt: {json_text}");
    let start = json_text.find('{').expect("json");
    let cfg: Value = serde_json::from_str(&json_text[start..]).expect("caddy's JSON");

    // The admin API: a Unix socket in the volume only the sidecar shares, and it refuses
    // other origins.
    let admin = &cfg["admin"];
    assert_eq!(
        admin["listen"], "unix//run/caddy-admin/admin.sock",
        "{cfg:#}"
    );
    assert_eq!(admin["enforce_origin"], true);
    assert_eq!(admin["origins"], json!(["localhost:2019"]));

    // One HTTPS site for the droplet's name; its certificate comes from ACME with our email.
    let servers = cfg["apps"]["http"]["servers"].as_object().expect("servers");
    assert_eq!(servers.len(), 1, "{cfg:#}");
    let server = servers.values().next().expect("server");
    assert_eq!(server["listen"], json!([":443"]));
    let text = server.to_string();
    assert!(text.contains("203-0-113-5.sslip.io"), "{text}");
    assert!(text.contains("sidecar:8443") && text.contains("n8n:5678"));
    assert!(text.contains("/webhook/*") && text.contains("/sidecar/*"));
    assert!(
        text.contains(r#""status_code":404"#),
        "everything else is a 404: {text}"
    );
    assert!(
        !text.contains("/webhook-test/"),
        "test webhooks stay private"
    );
    assert_eq!(
        cfg["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["email"], "ops@example.com",
        "{cfg:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_compose_file_matches_the_compose_specification() {
    let (_, doc) = rendered();
    let compose: Value = serde_norway::from_str(file(&doc, COMPOSE_PATH)).expect("yaml");
    let schema: Value = serde_json::from_str(include_str!(
        "../../../vendor/compose-spec/compose-spec.json"
    ))
    .expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&compose)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{compose:#}");

    // The schema is strict: a misspelt key is refused, so the check above means something.
    let mut typo = compose.clone();
    typo["services"]["n8n"]["mem_limits"] = json!("512m");
    assert!(!validator.is_valid(&typo));

    // Only Caddy publishes ports, only 80 and 443; the sidecar trusts Caddy's fixed address.
    let services = compose["services"].as_object().expect("services");
    for (name, s) in services {
        if name == "caddy" {
            assert_eq!(s["ports"], json!(["80:80", "443:443"]));
        } else {
            assert!(s.get("ports").is_none(), "{name} publishes ports");
        }
    }
    assert_eq!(
        compose["services"]["caddy"]["networks"]["genesis"]["ipv4_address"],
        CADDY_ADDRESS
    );
}
