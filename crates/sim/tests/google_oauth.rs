//! Our OAuth refresher against the fake Google token endpoint, over HTTP.

use genesis_ignition::{OAuthError, OAuthRefresher};
use genesis_sim::google_oauth::{ACCESS_TOKEN_TTL_S, FakeGoogleOAuth};
use serde_json::json;

async fn start() -> (FakeGoogleOAuth, String) {
    let google = FakeGoogleOAuth::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/token", listener.local_addr().expect("addr"));
    let app = google.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (google, url)
}

#[tokio::test]
async fn a_refresh_replaces_the_access_token_and_keeps_the_rest() {
    let (google, url) = start().await;
    let oauth = OAuthRefresher::new(&url).expect("client");
    let stored = json!({
        "clientId": "client.apps.googleusercontent.com",
        "clientSecret": "s3cret",
        "oauthTokenData": {"access_token": "ya29.old", "refresh_token": "1//keep", "expiry_date": 1}
    });
    let now_ms = 1_800_000_000_000;
    let fresh = oauth
        .refresh("gmailOAuth2", &stored, now_ms)
        .await
        .expect("refresh");
    let token = &fresh["oauthTokenData"];
    assert_ne!(token["access_token"], "ya29.old");
    assert!(
        token["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("ya29."))
    );
    assert_eq!(token["refresh_token"], "1//keep", "Google sends none back");
    assert_eq!(token["expiry_date"], now_ms + ACCESS_TOKEN_TTL_S * 1000);
    assert_eq!(fresh["clientSecret"], "s3cret");
    assert_eq!(google.refreshes(), 1);

    // A revoked refresh token is refused for good, not retried as an outage.
    google.revoke("1//keep");
    let err = oauth
        .refresh("gmailOAuth2", &stored, now_ms)
        .await
        .expect_err("revoked");
    assert!(
        matches!(&err, OAuthError::Refused { error, .. } if error == "invalid_grant"),
        "{err:?}"
    );
    assert!(!err.is_transient());

    // What cannot be refreshed is named before anything is sent.
    assert_eq!(
        oauth
            .refresh("openAiApi", &json!({"apiKey": "sk"}), now_ms)
            .await,
        Err(OAuthError::UnknownProvider("openAiApi".into()))
    );
    assert_eq!(
        oauth
            .refresh(
                "gmailOAuth2",
                &json!({"clientId": "a", "clientSecret": "b"}),
                now_ms
            )
            .await,
        Err(OAuthError::Incomplete("oauthTokenData.refresh_token"))
    );
    assert_eq!(google.refreshes(), 1);
}

#[tokio::test]
async fn the_fake_answers_bad_requests_as_google_does() {
    let (_google, url) = start().await;
    let http = reqwest::Client::new();
    let r = http
        .post(&url)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .expect("post");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Missing required parameter: refresh_token"
    );
}

/// The authorization half: what the fake refuses before any code exists, and what it
/// refuses at the exchange, as Google does.
#[tokio::test]
async fn the_authorization_code_grant_is_as_strict_as_googles() {
    use base64::Engine;
    use sha2::Digest;

    let (google, token_url) = start().await;
    let base = token_url.trim_end_matches("/token").to_owned();
    let redirect = "https://app.example/app/oauth/google/callback";
    google.register_client("cid", "secret", &[redirect]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let verifier = "v".repeat(50);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let auth = |pairs: Vec<(&'static str, String)>| {
        let mut u = reqwest::Url::parse(&format!("{base}/o/oauth2/v2/auth")).expect("url");
        u.query_pairs_mut().extend_pairs(pairs);
        u
    };
    let good = || {
        vec![
            ("client_id", "cid".to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("response_type", "code".to_owned()),
            (
                "scope",
                "openid email https://www.googleapis.com/auth/gmail.send".to_owned(),
            ),
            ("state", "s1".to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
            ("access_type", "offline".to_owned()),
        ]
    };
    let page = |pairs: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = auth(pairs);
        async move {
            let r = http.get(url).send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("text"))
        }
    };
    // Refused on Google's own page, never sent back to an address it cannot trust.
    let mut unknown = good();
    unknown[0].1 = "nobody".into();
    let (s, t) = page(unknown).await;
    assert_eq!((s, t.contains("invalid_client")), (401, true));
    let mut elsewhere = good();
    elsewhere[1].1 = "https://evil.example/cb".into();
    let (s, t) = page(elsewhere).await;
    assert_eq!((s, t.contains("redirect_uri_mismatch")), (400, true));
    let mut scope = good();
    scope[3].1 = "https://www.googleapis.com/auth/everything".into();
    let (s, t) = page(scope).await;
    assert_eq!((s, t.contains("invalid_scope")), (400, true));

    // Consent, then the exchange.
    let (s, t) = page(good()).await;
    assert_eq!(s, 200);
    let at = t.find(r#"name="request" value=""#).expect("request") + 22;
    let request = t[at..].split('"').next().expect("id").to_owned();
    let r = http
        .post(format!("{base}/o/oauth2/v2/auth/consent"))
        .form(&[
            ("request", request.as_str()),
            ("account", "ada@gmail.example"),
            ("decision", "allow"),
            ("grant", "https://www.googleapis.com/auth/gmail.send"),
        ])
        .send()
        .await
        .expect("consent");
    let back = reqwest::Url::parse(
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("redirect"),
    )
    .expect("url");
    assert!(back.as_str().starts_with(redirect));
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s1");
    let code = q["code"].clone();
    let exchange = |verifier: String, secret: &'static str| {
        let http = http.clone();
        let url = token_url.clone();
        let code = code.clone();
        async move {
            let r = http
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("client_id", "cid"),
                    ("client_secret", secret),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier.as_str()),
                ])
                .send()
                .await
                .expect("post");
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.expect("json"),
            )
        }
    };
    let (s, b) = exchange(verifier.clone(), "wrong").await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, b) = exchange("w".repeat(50), "secret").await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("Invalid code verifier."))
    );
    let (s, b) = exchange(verifier.clone(), "secret").await;
    assert_eq!(s, 200, "{b}");
    assert!(b["refresh_token"].is_string());
    let access = b["access_token"].as_str().expect("token").to_owned();
    // A code is good once; its replay is refused and revokes what it granted.
    let (s, b) = exchange(verifier.clone(), "secret").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let r = http
        .get(format!("{base}/v1/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401, "tokens of a replayed code are revoked");
}
