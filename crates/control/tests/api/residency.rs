//! Data residency (spec 62.2: personal data never leaves the selected region), proven on two
//! real databases: eu-west alone on one, every other region (and the coordinating tables:
//! operators, rollouts, slug and address claims) on the other. An EU tenant signs up, fails
//! a sign-in, gets a workspace with leads and a webhook, exports its data and is looked at
//! by support under a grant, all over HTTP; then every text and JSON column of every table
//! of the other database is searched for each personal value, and none is found. Its
//! secrets are sealed under eu-west's own master key (spec 62.2: a region-specific vault).

use genesis_core::support::OperatorRole;
use serde_json::json;

use super::accounts::tenant_in;
use super::god_mode::{Browser, PASSWORD, csrf_of, form};
use super::{EU_KEY_VERSION, spawn_app_two_regions};

/// Where each personal value turns up in database `name`: `table.column` for every text,
/// varchar, JSON and JSONB column of the `genesis` schema that contains it. Read as the
/// server's administrator, whom row-level security does not hide rows from.
async fn found_in(name: &str, values: &[&str]) -> Vec<String> {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin = sqlx::PgPool::connect(&format!(
        "{}/{name}",
        base.rsplit_once('/').expect("a database in the URL").0
    ))
    .await
    .expect("admin");
    let db = &admin;
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = 'genesis' AND t.table_type = 'BASE TABLE'
           AND c.data_type IN ('text', 'character varying', 'json', 'jsonb')",
    )
    .fetch_all(db)
    .await
    .expect("columns");
    assert!(
        columns.len() > 50,
        "the schema's columns: {}",
        columns.len()
    );
    let mut found = Vec::new();
    for (table, column) in columns {
        let hits: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT v FROM genesis.{table} t, unnest($1::text[]) v
             WHERE strpos(lower(t.{column}::text), lower(v)) > 0"
        )))
        .bind(values)
        .fetch_all(db)
        .await
        .expect("search");
        for v in hits {
            found.push(format!("{v:?} in genesis.{table}.{column}"));
        }
    }
    found
}

#[tokio::test]
async fn an_eu_tenants_personal_data_is_written_to_the_eu_database_only() {
    let (app, eu) = spawn_app_two_regions().await;
    let email = "zelda.quartermain@bakery.example";
    let lead_a = "hildegard.oyelaran@example.org";
    let lead_b = "Wojciechowska";
    let hook = "hooks.zephyr-bakery.example";
    let name = "Zephyr Backstube";
    let support_note = "Quartermain asked on the phone";

    // Sign-up in eu-west, and a wrong password for the same address.
    let owner = tenant_in(&app, eu.db.owner_pool(), email, "eu-west").await;
    let mut stranger = Browser::new(&app);
    stranger.from = Some("203.0.113.77".into());
    let r = stranger
        .post(
            "/app/sign-in",
            form(&[
                ("email", email),
                ("password", "not the password at all"),
                ("next", "/app"),
            ]),
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    drop(owner);

    // A workspace in eu-west with leads, a webhook and an export.
    let (s, ws, _) = app
        .post(
            "/api/v1/workspaces",
            json!({"slug": "zephyr_eu", "name": name, "region": "eu-west"}),
        )
        .await;
    assert_eq!(s, 201, "{ws}");
    let ws = ws["id"].as_str().expect("id").to_owned();
    // Its lead table, as the ignition's first step makes it (there is no cloud here).
    genesis_store::PartitionManager::new(eu.db.clone())
        .ensure(genesis_core::WorkspaceId::parse(&ws).expect("id"), "test")
        .await
        .expect("partition");
    let (s, body, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/leads"),
            json!({"leads": [
                {"email": lead_a, "first_name": "Hildegard"},
                {"email": "second@example.org", "last_name": lead_b},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = app
        .post(
            &format!("/api/v1/workspaces/{ws}/webhooks"),
            json!({"url": format!("https://{hook}/in"), "events": ["lead.created"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // Its signing secret is sealed under eu-west's key, not the fleet's.
    let version: i32 =
        sqlx::query_scalar("SELECT key_version FROM genesis.webhook_endpoints WHERE id = $1")
            .bind(uuid::Uuid::parse_str(body["id"].as_str().expect("id")).expect("uuid"))
            .fetch_one(eu.db.owner_pool())
            .await
            .expect("endpoint");
    assert_eq!(version, EU_KEY_VERSION as i32);
    let (s, started, _) = app
        .post(&format!("/api/v1/workspaces/{ws}/exports"), json!({}))
        .await;
    assert_eq!(s, 202, "{started}");
    let export = started["id"].as_str().expect("id").to_owned();
    for _ in 0..300 {
        let (_, job) = app
            .get(&format!("/api/v1/workspaces/{ws}/exports/{export}"))
            .await;
        if job["state"] != "RUNNING" {
            assert_eq!(job["state"], "READY", "{job}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Support looks at it under a grant, with a note that names the customer.
    let hash = genesis_control::credentials::hash_password(PASSWORD).expect("hash");
    app.t
        .db
        .operator_create_with_role("sam@genesis.test", &hash, OperatorRole::Support, "test")
        .await
        .expect("operator");
    let mut sam = Browser::new(&app);
    sam.from = Some("198.51.100.30".into());
    assert_eq!(
        sam.sign_in("sam@genesis.test", PASSWORD).await.status(),
        303
    );
    let token = csrf_of(&sam.get("/god/support").await.text().await.expect("page"));
    let r = sam
        .post(
            "/god/support/grants",
            form(&[
                ("csrf", &token),
                ("workspace", &ws),
                ("tier", "read_only"),
                ("reason", support_note),
            ]),
            None,
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(sam.get(&format!("/god/tenants/{ws}")).await.status(), 200);

    let personal = [email, lead_a, lead_b, hook, name, support_note];
    // Everything is where it belongs...
    let home_of_it = found_in(&eu.name, &personal).await;
    for v in personal {
        assert!(
            home_of_it.iter().any(|f| f.starts_with(&format!("{v:?}"))),
            "{v} was never written to the EU database: the test would prove nothing ({home_of_it:#?})"
        );
    }
    // ... and nowhere else.
    let elsewhere = found_in(&app.t.name, &personal).await;
    assert!(
        elsewhere.is_empty(),
        "outside the EU database: {elsewhere:#?}"
    );
}
