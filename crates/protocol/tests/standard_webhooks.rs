//! Our Standard Webhooks signer and verifier against the official Python library
//! (`standardwebhooks` from PyPI, issue 24): a tenant's receiver built on an official
//! library accepts what we send, and we accept what such a library signs.
//!
//! Needs `GENESIS_STANDARDWEBHOOKS_PYTHON`: the `python` of a virtualenv with the library,
//! as `scripts/standardwebhooks-install.sh` prints it (`make test` sets it).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use genesis_protocol::webhook::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookError, WebhookSigner, WebhookVerifier,
    new_secret,
};
use serde_json::{Value, json};

/// Runs one request through the official library: `verify` (secret, headers, body) answers
/// `{"ok": bool, "error": …}`, `sign` (secret, id, timestamp, body) answers `{"signature": …}`.
const HELPER: &str = r#"
import json, sys
from datetime import datetime, timezone
from standardwebhooks import Webhook
req = json.load(sys.stdin)
wh = Webhook(req["secret"])
if req["op"] == "verify":
    try:
        wh.verify(req["body"].encode(), req["headers"])
        print(json.dumps({"ok": True}))
    except Exception as e:
        print(json.dumps({"ok": False, "error": repr(e)}))
else:
    ts = datetime.fromtimestamp(req["timestamp"], tz=timezone.utc)
    print(json.dumps({"signature": wh.sign(req["id"], ts, req["body"])}))
"#;

fn official(request: Value) -> Value {
    let python = std::env::var_os("GENESIS_STANDARDWEBHOOKS_PYTHON").unwrap_or_else(|| {
        panic!(
            "GENESIS_STANDARDWEBHOOKS_PYTHON is not set: run `make test`, or export \
             GENESIS_STANDARDWEBHOOKS_PYTHON=$(scripts/standardwebhooks-install.sh)"
        )
    });
    let mut child = Command::new(python)
        .args(["-c", HELPER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the official library's python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("request written");
    let out = child.wait_with_output().expect("helper done");
    assert!(out.status.success(), "the helper failed");
    serde_json::from_slice(&out.stdout).expect("the helper answers JSON")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn official_verifies(secret: &str, id: &str, ts: u64, signature: &str, body: &str) -> Value {
    official(json!({
        "op": "verify",
        "secret": secret,
        "headers": {HEADER_ID: id, HEADER_TIMESTAMP: ts.to_string(), HEADER_SIGNATURE: signature},
        "body": body,
    }))
}

#[test]
fn what_we_sign_the_official_library_verifies_under_our_header_names() {
    let (secret, ts) = (new_secret(), now());
    let body = r#"{"type":"lead.created","data":{"email":"ada@example.com"}}"#;
    let sig = WebhookSigner::new(&[&secret])
        .expect("secret")
        .sign("msg_1", ts, body.as_bytes())
        .expect("signed");
    assert_eq!(
        official_verifies(&secret, "msg_1", ts, &sig, body)["ok"],
        true
    );
    // The library does refuse: another body, or another secret.
    let tampered = official_verifies(&secret, "msg_1", ts, &sig, &body.replace("ada", "eve"));
    assert_eq!(tampered["ok"], false, "{tampered}");
    let stranger = official_verifies(&new_secret(), "msg_1", ts, &sig, body);
    assert_eq!(stranger["ok"], false, "{stranger}");
    // While a secret rotates, both sign; a receiver holding either one verifies.
    let next = new_secret();
    let both = WebhookSigner::new(&[&next, &secret])
        .expect("secrets")
        .sign("msg_2", ts, body.as_bytes())
        .expect("signed");
    for held in [&secret, &next] {
        assert_eq!(
            official_verifies(held, "msg_2", ts, &both, body)["ok"],
            true
        );
    }
}

#[test]
fn what_the_official_library_signs_we_verify_once() {
    // Unpadded, as other senders issue them.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (ts, body) = (now(), r#"{"type":"tenant.active"}"#);
    let signed = official(json!({
        "op": "sign", "secret": secret, "id": "msg_p1", "timestamp": ts, "body": body,
    }));
    let sig = signed["signature"].as_str().expect("a signature");
    let v = WebhookVerifier::new(&[secret]).expect("secret");
    let check = |sig: &str, body: &str| {
        v.verify(
            Some("msg_p1"),
            Some(&ts.to_string()),
            Some(sig),
            body.as_bytes(),
            now(),
        )
    };
    assert_eq!(
        check(sig, r#"{"type":"tenant.hibernated"}"#),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(check(sig, body), Ok(()));
    assert_eq!(check(sig, body), Err(WebhookError::Replayed));
    let other = WebhookVerifier::new(&[new_secret()]).expect("secret");
    assert_eq!(
        other.verify(
            Some("msg_p1"),
            Some(&ts.to_string()),
            Some(sig),
            body.as_bytes(),
            now()
        ),
        Err(WebhookError::BadSignature)
    );
}
