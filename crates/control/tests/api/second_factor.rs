//! God Mode's second factor (TOTP): asked once the password is right, each code accepted
//! once, and, where the control plane requires it, no sign-in without one enrolled.

use genesis_control::god::GodSettings;
use genesis_control::second_factor::{code_at, new_secret};

use super::god_mode::{Browser, EMAIL, PASSWORD, audit_reasons, form, with_operator};
use super::{spawn_app_full, test_vault};

async fn sign_in_with(b: &mut Browser, code: Option<&str>) -> reqwest::Response {
    let mut pairs = vec![("email", EMAIL), ("password", PASSWORD), ("next", "/god")];
    if let Some(c) = code {
        pairs.push(("code", c));
    }
    let r = b.post("/god/sign-in", form(&pairs), None).await;
    if let Some(c) = r.headers().get(reqwest::header::SET_COOKIE) {
        b.cookie = c
            .to_str()
            .ok()
            .and_then(|c| c.split(';').next())
            .map(str::to_owned);
    }
    r
}

fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970")
}

#[tokio::test]
async fn an_enrolled_operator_needs_a_fresh_code_after_the_password() {
    let app = spawn_app_full(None, GodSettings::default()).await;
    with_operator(&app).await;
    let secret = new_secret();
    app.t
        .db
        .operator_totp_enroll(&test_vault(), EMAIL, &secret, "test")
        .await
        .expect("enrol");
    // The secret is stored sealed, never in clear.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT totp_ciphertext FROM genesis.operators WHERE email = $1")
            .bind(EMAIL)
            .fetch_one(app.t.db.owner_pool())
            .await
            .expect("row");
    assert!(!stored.windows(secret.len()).any(|w| w == secret));

    let mut b = Browser::new(&app);
    let r = sign_in_with(&mut b, None).await;
    assert_eq!(r.status(), 401, "the password alone is not enough");
    let body = r.text().await.expect("page");
    assert!(body.contains("Wrong e-mail, password or code."), "{body}");
    assert_eq!(sign_in_with(&mut b, Some("000000")).await.status(), 401);

    let code = code_at(&secret, now()).expect("code");
    let r = sign_in_with(&mut b, Some(&code)).await;
    assert_eq!(r.status(), 303, "password and code");
    assert_eq!(b.get("/god").await.status(), 200);

    // The same code again (seen over a shoulder): refused, even with the right password.
    let mut thief = Browser::new(&app);
    thief.from = Some("198.51.100.9".into());
    assert_eq!(sign_in_with(&mut thief, Some(&code)).await.status(), 401);
    let reasons = audit_reasons(&app, "LOGIN_FAILED").await;
    for want in ["wrong_code", "replayed_code"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
}

#[tokio::test]
async fn where_a_second_factor_is_required_an_operator_without_one_is_told_how_to_enrol() {
    let app = spawn_app_full(
        None,
        GodSettings {
            require_second_factor: true,
            ..GodSettings::default()
        },
    )
    .await;
    with_operator(&app).await;
    let mut b = Browser::new(&app);
    let r = sign_in_with(&mut b, None).await;
    assert_eq!(r.status(), 401);
    let body = r.text().await.expect("page");
    assert!(body.contains("genesis admin operator-totp"), "{body}");
    // A wrong password says nothing about the second factor.
    let r = b
        .post(
            "/god/sign-in",
            form(&[
                ("email", EMAIL),
                ("password", "wrong password!"),
                ("next", "/god"),
            ]),
            None,
        )
        .await;
    let body = r.text().await.expect("page");
    assert!(!body.contains("operator-totp"), "{body}");
}
