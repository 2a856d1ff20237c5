//! The vault keeps only ciphertext bound to its workspace and credential, and rotates keys.

use std::collections::BTreeMap;

use genesis_store::StoreError;
use genesis_store::testing::TestDb;
use genesis_store::vault::MasterKeys;
use sqlx::Connection;

use crate::helpers::provision;

#[tokio::test]
async fn credentials_are_encrypted_bound_and_rotatable() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let a = provision(db, "vault_a").await;
    let b = provision(db, "vault_b").await;
    let v1 = MasterKeys::new(1, BTreeMap::from([(1, [1u8; 32])])).expect("keys");
    let cred = uuid::Uuid::now_v7();
    let secret = br#"{"apiKey":"sk-live-very-secret"}"#;
    db.vault_put(&v1, a.id, cred, "openAiApi", "Acme OpenAI", secret, "test")
        .await
        .expect("put");
    let got = db.vault_get(&v1, a.id, cred).await.expect("get");
    assert_eq!(
        (got.kind.as_str(), got.secret.as_slice()),
        ("openAiApi", &secret[..])
    );
    assert!(
        !format!("{got:?}").contains("sk-live"),
        "Debug never shows the secret"
    );

    // The database holds no plaintext.
    let mut admin = sqlx::postgres::PgConnection::connect_with(&db.options().admin)
        .await
        .expect("admin");
    let (ciphertext,): (Vec<u8>,) =
        sqlx::query_as("SELECT ciphertext FROM genesis.vault_credentials")
            .fetch_one(&mut admin)
            .await
            .expect("row");
    assert!(!ciphertext.windows(7).any(|w| w == b"sk-live"));

    // A row copied to another tenant does not decrypt there.
    sqlx::query(
        "INSERT INTO genesis.vault_credentials (workspace_id, credential_id, kind, name, key_version, nonce, ciphertext)
         SELECT $1, credential_id, kind, name, key_version, nonce, ciphertext FROM genesis.vault_credentials",
    )
    .bind(b.id.as_uuid())
    .execute(&mut admin)
    .await
    .expect("copy");
    assert!(matches!(
        db.vault_get(&v1, b.id, cred).await,
        Err(StoreError::Corrupt { .. })
    ));

    // Rotation: version 2 writes, version 1 rows still read; without key 1 they do not.
    let v2 = MasterKeys::new(2, BTreeMap::from([(1, [1u8; 32]), (2, [2u8; 32])])).expect("keys");
    let cred2 = uuid::Uuid::now_v7();
    db.vault_put(&v2, a.id, cred2, "gmailOAuth2", "Acme Gmail", b"{}", "test")
        .await
        .expect("put");
    assert_eq!(
        db.vault_get(&v2, a.id, cred).await.expect("old row").secret,
        secret
    );
    let only2 = MasterKeys::new(2, BTreeMap::from([(2, [2u8; 32])])).expect("keys");
    assert!(db.vault_get(&only2, a.id, cred).await.is_err());
    assert!(db.vault_get(&only2, a.id, cred2).await.is_ok());
    assert!(
        MasterKeys::new(3, BTreeMap::new()).is_err(),
        "the current key must exist"
    );

    assert_eq!(
        db.vault_delete_workspace(a.id, "test")
            .await
            .expect("purge"),
        2
    );
    assert!(matches!(
        db.vault_get(&v2, a.id, cred).await,
        Err(StoreError::NotFound { .. })
    ));
    t.cleanup().await.expect("cleanup");
}
