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
