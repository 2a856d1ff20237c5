//! The refusal matrix of spec 51.3: every way a command token can be wrong is refused with
//! its own reason and counted; a good token works once.

use std::collections::BTreeMap;

use base64::Engine;
use genesis_protocol::jwt::{CommandClaims, LIFETIME_S};
use genesis_protocol::{CommandName, CommandSigner, CommandVerifier, RefusalReason};
use uuid::Uuid;

const NOW: u64 = 1_800_000_000;
const DROPLET: i64 = 4242;
/// The body a token is signed for.
const BODY: &[u8] = br#"{"action":"DELETE_WORKFLOW","payload":{"workflow_id":"a1"}}"#;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The EdDSA key whose seed is `seed`, as `jsonwebtoken` signs with it (for hand-made
/// tokens).
fn signer_key(seed: &[u8; 32]) -> jsonwebtoken::EncodingKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let der = ed25519_dalek::SigningKey::from_bytes(seed)
        .to_pkcs8_der()
        .expect("der");
    jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
}

#[test]
fn every_bad_token_is_refused_for_its_own_reason_and_counted() {
    let ws = Uuid::now_v7();
    let seed = [9u8; 32];
    let signer = CommandSigner::from_seed(&seed).expect("key");
    let impostor = CommandSigner::generate().expect("key");
    let v = CommandVerifier::new(&signer.public_key_b64(), ws, DROPLET).expect("verifier");
    let act = CommandName::DeleteWorkflow;
    let good = || CommandClaims::new(ws, DROPLET, act, BODY, NOW);
    let sign = |c: &CommandClaims| signer.sign_claims(c).expect("sign");

    let token = sign(&good());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged_claims = good();
    forged_claims.droplet_id = 1;
    parts[1] = b64url(&serde_json::to_vec(&forged_claims).expect("json"));
    let tampered = parts.join(".");

    let none_token = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(&serde_json::to_vec(&good()).expect("json"))
    );
    let pubkey = signer.public_key_b64();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good(),
        &jsonwebtoken::EncodingKey::from_secret(pubkey.as_bytes()),
    )
    .expect("hs256");
    let hs256_raw = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good(),
        &jsonwebtoken::EncodingKey::from_secret(
            &base64::engine::general_purpose::STANDARD
                .decode(&pubkey)
                .expect("raw key"),
        ),
    )
    .expect("hs256");

    let with = |f: &dyn Fn(&mut CommandClaims)| {
        let mut c = good();
        f(&mut c);
        sign(&c)
    };
    let cases: Vec<(&str, Option<String>, CommandName, u64, RefusalReason)> = vec![
        ("no token", None, act, NOW, RefusalReason::Missing),
        (
            "garbage",
            Some("not.a.jwt".into()),
            act,
            NOW,
            RefusalReason::Malformed,
        ),
        (
            "tampered payload",
            Some(tampered),
            act,
            NOW,
            RefusalReason::BadSignature,
        ),
        (
            "signed by another key",
            Some(impostor.sign_claims(&good()).expect("sign")),
            act,
            NOW,
            RefusalReason::BadSignature,
        ),
        (
            "alg none",
            Some(none_token),
            act,
            NOW,
            RefusalReason::BadAlgorithm,
        ),
        (
            "HS256 keyed with the public key (base64)",
            Some(hs256),
            act,
            NOW,
            RefusalReason::BadAlgorithm,
        ),
        (
            "HS256 keyed with the public key (raw)",
            Some(hs256_raw),
            act,
            NOW,
            RefusalReason::BadAlgorithm,
        ),
        (
            "expired",
            Some(sign(&good())),
            act,
            NOW + LIFETIME_S + 31,
            RefusalReason::Expired,
        ),
        (
            "not yet valid",
            Some(with(&|c| {
                c.iat = NOW + 120;
                c.nbf = NOW + 120;
                c.exp = NOW + 120 + LIFETIME_S;
            })),
            act,
            NOW,
            RefusalReason::NotYetValid,
        ),
        (
            "valid for a day",
            Some(with(&|c| c.exp = NOW + 86_400)),
            act,
            NOW,
            RefusalReason::LifetimeTooLong,
        ),
        (
            "wrong issuer",
            Some(with(&|c| c.iss = "someone-else".into())),
            act,
            NOW,
            RefusalReason::WrongIssuer,
        ),
        (
            "wrong audience",
            Some(with(&|c| c.aud = "dashboard".into())),
            act,
            NOW,
            RefusalReason::WrongAudience,
        ),
        (
            "another workspace",
            Some(with(&|c| c.sub = Uuid::now_v7())),
            act,
            NOW,
            RefusalReason::WrongWorkspace,
        ),
        (
            "another droplet",
            Some(with(&|c| c.droplet_id = DROPLET + 1)),
            act,
            NOW,
            RefusalReason::WrongDroplet,
        ),
        (
            "token for another command",
            Some(sign(&good())),
            CommandName::DeactivateWorkflow,
            NOW,
            RefusalReason::WrongAction,
        ),
    ];
    let mut want: BTreeMap<RefusalReason, u64> = BTreeMap::new();
    for (name, token, body_action, now, reason) in &cases {
        let r = v
            .verify(token.as_deref(), *body_action, BODY, *now)
            .expect_err(name);
        assert_eq!(r.reason, *reason, "{name}");
        assert_eq!(r.action, Some(*body_action), "{name}");
        *want.entry(*reason).or_default() += 1;
    }

    // A genuine token carried with another body (another workflow to delete) is refused.
    let swapped = v
        .verify(
            Some(&sign(&good())),
            act,
            br#"{"action":"DELETE_WORKFLOW","payload":{"workflow_id":"b2"}}"#,
            NOW,
        )
        .expect_err("body swapped");
    assert_eq!(swapped.reason, RefusalReason::BodyMismatch);
    *want.entry(RefusalReason::BodyMismatch).or_default() += 1;
    // A token that names no body at all is not a command token.
    let mut no_bh = serde_json::to_value(good()).expect("json");
    no_bh.as_object_mut().map(|c| c.remove("bh"));
    let unbound = jsonwebtoken::encode(
        &{
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            h.kid = Some(signer.key_id().to_owned());
            h
        },
        &no_bh,
        &signer_key(&seed),
    )
    .expect("sign");
    let r = v.verify(Some(&unbound), act, BODY, NOW).expect_err("no bh");
    assert_eq!(r.reason, RefusalReason::Malformed);
    *want.entry(RefusalReason::Malformed).or_default() += 1;

    // A good token works once, within the leeway, and never again.
    let once = sign(&good());
    let claims = v.verify(Some(&once), act, BODY, NOW + 10).expect("valid");
    assert_eq!((claims.sub, claims.droplet_id), (ws, DROPLET));
    let replay = v
        .verify(Some(&once), act, BODY, NOW + 20)
        .expect_err("replayed");
    assert_eq!(replay.reason, RefusalReason::Replayed);
    assert_eq!(replay.jti.as_deref(), Some(claims.jti.as_str()));
    *want.entry(RefusalReason::Replayed).or_default() += 1;

    assert_eq!(v.refusal_counts(), want);
    assert_eq!(RefusalReason::BadSignature.http_status(), 401);
    assert_eq!(RefusalReason::WrongWorkspace.http_status(), 403);
}

#[test]
fn tokens_name_their_key_and_a_rotation_trusts_both_keys() {
    let ws = Uuid::now_v7();
    let old = CommandSigner::generate().expect("key");
    let new = CommandSigner::generate().expect("key");
    assert_ne!(old.key_id(), new.key_id());
    let act = CommandName::HealthCheck;
    let claims = || CommandClaims::new(ws, DROPLET, act, BODY, NOW);
    let token = new.sign_claims(&claims()).expect("sign");
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], new.key_id());

    let v = CommandVerifier::new(&old.public_key_b64(), ws, DROPLET).expect("verifier");
    let refused = v
        .verify(Some(&token), act, BODY, NOW)
        .expect_err("unknown key");
    assert_eq!(refused.reason, RefusalReason::BadSignature);
    v.trust(&new.public_key_b64()).expect("trust");
    v.verify(Some(&token), act, BODY, NOW)
        .expect("the new key is trusted");
    let from_old = old.sign_claims(&claims()).expect("sign");
    v.verify(Some(&from_old), act, BODY, NOW)
        .expect("the old key still is, during the overlap");

    // The rotation ends: the control plane says "trust only the new key".
    let mut ids = vec![old.key_id().to_owned(), new.key_id().to_owned()];
    ids.sort();
    assert_eq!(v.trusted_key_ids(), ids);
    // A set with nothing in it, or with a key that is not one, changes nothing.
    assert!(v.trust_exactly(&[]).is_err());
    assert!(
        v.trust_exactly(&[new.public_key_b64(), "AAAA".into()])
            .is_err()
    );
    assert_eq!(v.trusted_key_ids(), ids, "a refused set leaves the old one");
    assert!(v.trust_exactly(&[new.public_key_b64()]).expect("set"));
    assert!(
        !v.trust_exactly(&[new.public_key_b64()]).expect("set"),
        "the same set again is no change"
    );
    assert_eq!(v.trusted_key_ids(), vec![new.key_id().to_owned()]);
    let late_old = old.sign_claims(&claims()).expect("sign");
    assert_eq!(
        v.verify(Some(&late_old), act, BODY, NOW)
            .expect_err("retired")
            .reason,
        RefusalReason::BadSignature
    );
    let late_new = new.sign_claims(&claims()).expect("sign");
    v.verify(Some(&late_new), act, BODY, NOW)
        .expect("the new key signs");
}

#[test]
fn verifier_keys_must_be_ed25519_public_keys() {
    assert!(CommandVerifier::new("", Uuid::now_v7(), 1).is_err());
    assert!(CommandVerifier::new("AAAA", Uuid::now_v7(), 1).is_err());
    let signer = CommandSigner::from_seed(&[7u8; 32]).expect("seed");
    assert_eq!(
        signer.public_key_b64(),
        CommandSigner::from_seed(&[7u8; 32])
            .expect("seed")
            .public_key_b64(),
        "a stored seed gives back the same key"
    );
}
