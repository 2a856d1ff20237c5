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
    // A use of it is audited (Credentials: ACCESSED), with who and why, not what; a plain
    // read is not.
    let used = db
        .vault_use(
            &v1,
            a.id,
            cred,
            "system:ignition",
            "injected into the tenant's n8n",
        )
        .await
        .expect("use");
    assert_eq!(used.secret, secret);
    let accessed = db
        .audit_list(Some(a.id), Some("ACCESSED"), 10)
        .await
        .expect("audit");
    assert_eq!(accessed.len(), 1);
    assert_eq!(accessed[0].category, "credentials");
    assert_eq!(accessed[0].actor, "system:ignition");
    assert_eq!(accessed[0].subject.as_deref(), Some(&*cred.to_string()));
    assert_eq!(
        accessed[0].details["purpose"],
        "injected into the tenant's n8n"
    );
    assert!(!accessed[0].details.to_string().contains("sk-live"));

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

#[tokio::test]
async fn a_master_key_rotation_rewraps_every_secret_and_resumes_after_a_stop() {
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let a = provision(db, "rewrap_a").await;
    let v1 = MasterKeys::new(1, BTreeMap::from([(1, [1u8; 32])])).expect("keys");
    let mut creds = Vec::new();
    for i in 0..7u8 {
        let cred = uuid::Uuid::now_v7();
        db.vault_put(&v1, a.id, cred, "openAiApi", "key", &[b'k', i], "test")
            .await
            .expect("put");
        creds.push((cred, vec![b'k', i]));
    }
    // An endpoint's secret, in its own table, with a previous one in its overlap.
    let endpoint = uuid::Uuid::now_v7();
    let aad = genesis_store::outbound_webhooks::secret_aad(endpoint);
    let sealed = v1.seal(b"whsec_current", &aad).expect("seal");
    db.webhook_endpoint_create(
        &genesis_store::NewEndpoint {
            id: endpoint,
            workspace: a.id,
            url: "https://hooks.example.com/x",
            events: &["lead.created".to_owned()],
            description: "",
            secret: &sealed,
        },
        "test",
    )
    .await
    .expect("endpoint");
    let previous = v1.seal(b"whsec_previous", &aad).expect("seal");
    sqlx::query(
        "UPDATE genesis.webhook_endpoints SET previous_key_version = $1, previous_nonce = $2,
                previous_ciphertext = $3, previous_until = now() + interval '1 day'",
    )
    .bind(previous.key_version)
    .bind(&previous.nonce)
    .bind(&previous.ciphertext)
    .execute(db.owner_pool())
    .await
    .expect("previous");

    let v2 = MasterKeys::new(2, BTreeMap::from([(1, [1u8; 32]), (2, [2u8; 32])])).expect("keys");
    let stale = |s: &[genesis_store::vault_rotation::VersionCount]| -> i64 {
        s.iter()
            .filter(|c| c.key_version == 1)
            .map(|c| c.rows)
            .sum()
    };
    assert_eq!(stale(&db.vault_status().await.expect("status")), 9);
    // A rotation stopped after one small batch has moved some, and broken none.
    let first = db.vault_rewrap_batch(&v2, 2).await.expect("batch");
    assert!(first.rewrapped > 0);
    let left = stale(&db.vault_status().await.expect("status"));
    assert!(left > 0 && left < 9, "{left}");
    for (cred, secret) in &creds {
        assert_eq!(
            &db.vault_get(&v2, a.id, *cred)
                .await
                .expect("readable midway")
                .secret,
            secret
        );
    }
    // Run again until done: it resumes where it stopped.
    while db
        .vault_rewrap_batch(&v2, 2)
        .await
        .expect("batch")
        .rewrapped
        > 0
    {}
    let status = db.vault_status().await.expect("status");
    assert_eq!(stale(&status), 0, "{status:?}");
    assert!(status.iter().all(|c| c.key_version == 2));
    // Key 1 can go: everything opens with key 2 alone.
    let only2 = MasterKeys::new(2, BTreeMap::from([(2, [2u8; 32])])).expect("keys");
    for (cred, secret) in &creds {
        assert_eq!(
            &db.vault_get(&only2, a.id, *cred)
                .await
                .expect("rewrapped")
                .secret,
            secret
        );
    }
    let (v, n, c, pv, pn, pc): (i32, Vec<u8>, Vec<u8>, i32, Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT key_version, nonce, ciphertext, previous_key_version, previous_nonce, previous_ciphertext
         FROM genesis.webhook_endpoints",
    )
    .fetch_one(db.owner_pool())
    .await
    .expect("endpoint");
    let open = |v, n, c| {
        only2
            .open(
                &genesis_store::Sealed {
                    key_version: v,
                    nonce: n,
                    ciphertext: c,
                },
                &aad,
            )
            .expect("opens under key 2")
    };
    assert_eq!(open(v, n, c), b"whsec_current");
    assert_eq!(open(pv, pn, pc), b"whsec_previous");
    // A rewrap with the old key gone from the configuration says which one is missing.
    let v3 = MasterKeys::new(3, BTreeMap::from([(3, [3u8; 32])])).expect("keys");
    let err = db
        .vault_rewrap_batch(&v3, 10)
        .await
        .expect_err("key 2 is needed to read");
    assert!(err.to_string().contains("key version 2"), "{err}");
    t.cleanup().await.expect("cleanup");
}

/// Spec 62.2: a region with a ring of its own has its tenants' secrets sealed under it, a
/// rotation moves the secrets written before onto it, and the other regions' keys never
/// open them.
#[tokio::test]
async fn a_regions_secrets_are_sealed_under_its_own_ring() {
    use genesis_core::Region;
    let t = TestDb::create().await.expect("test database");
    let db = &t.db;
    let eu = provision(db, "ring_eu").await;
    let mut us = crate::helpers::new_workspace("ring_us");
    us.region = Region::UsEast;
    let us = genesis_store::PartitionManager::new(db.clone())
        .workspace_provision(&us, "test")
        .await
        .expect("us workspace");
    let version_of = |ws: genesis_core::WorkspaceId, cred: uuid::Uuid| {
        let pool = db.owner_pool().clone();
        async move {
            sqlx::query_scalar::<_, i32>(
                "SELECT key_version FROM genesis.vault_credentials
                 WHERE workspace_id = $1 AND credential_id = $2",
            )
            .bind(ws.as_uuid())
            .bind(cred)
            .fetch_one(&pool)
            .await
            .expect("row")
        }
    };

    // Before eu-west has a ring, its tenants use the fleet's.
    let fleet = MasterKeys::new(1, BTreeMap::from([(1, [1u8; 32])])).expect("keys");
    let (old_eu, old_us) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (ws, cred) in [(eu.id, old_eu), (us.id, old_us)] {
        db.vault_put(&fleet, ws, cred, "openAiApi", "key", b"before", "test")
            .await
            .expect("put");
        assert_eq!(version_of(ws, cred).await, 1);
    }

    // Versions are unique across rings: a region cannot reuse the fleet's.
    assert!(matches!(
        fleet
            .clone()
            .with_region(Region::EuWest, 1, BTreeMap::from([(1, [9u8; 32])])),
        Err(StoreError::Invalid { .. })
    ));
    let keys = fleet
        .with_region(Region::EuWest, 20, BTreeMap::from([(20, [20u8; 32])]))
        .expect("eu ring");

    // New secrets: the EU tenant's under its ring, the US tenant's under the fleet's.
    let (new_eu, new_us) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (ws, cred) in [(eu.id, new_eu), (us.id, new_us)] {
        db.vault_put(&keys, ws, cred, "openAiApi", "key", b"after", "test")
            .await
            .expect("put");
    }
    assert_eq!(version_of(eu.id, new_eu).await, 20);
    assert_eq!(version_of(us.id, new_us).await, 1);

    // The rotation moves the EU tenant's older secret onto its ring, and leaves the US
    // tenant's where it belongs.
    let stale = |s: &[genesis_store::vault_rotation::VersionCount]| -> i64 {
        s.iter()
            .filter(|c| u32::try_from(c.key_version).ok() != Some(c.target(&keys)))
            .map(|c| c.rows)
            .sum()
    };
    assert_eq!(stale(&db.vault_status().await.expect("status")), 1);
    while db
        .vault_rewrap_batch(&keys, 10)
        .await
        .expect("batch")
        .rewrapped
        > 0
    {}
    assert_eq!(stale(&db.vault_status().await.expect("status")), 0);
    assert_eq!(version_of(eu.id, old_eu).await, 20);
    assert_eq!(version_of(us.id, old_us).await, 1);
    assert_eq!(
        db.vault_get(&keys, eu.id, old_eu)
            .await
            .expect("rewrapped")
            .secret,
        b"before"
    );

    // The US region's view of the keys does not open an EU row, even holding its key.
    let (v, nonce, ciphertext): (i32, Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT key_version, nonce, ciphertext FROM genesis.vault_credentials
         WHERE credential_id = $1",
    )
    .bind(new_eu)
    .fetch_one(db.owner_pool())
    .await
    .expect("row");
    let sealed = genesis_store::Sealed {
        key_version: v,
        nonce,
        ciphertext,
    };
    let aad = genesis_store::vault::aad(eu.id, new_eu);
    assert_eq!(
        keys.for_region(Region::EuWest)
            .open(&sealed, &aad)
            .expect("opens in its region"),
        b"after"
    );
    assert!(matches!(
        keys.for_region(Region::UsEast).open(&sealed, &aad),
        Err(StoreError::Invalid { .. })
    ));
    t.cleanup().await.expect("cleanup");
}
