//! Outbound webhooks (spec 65.3, 65.4): the endpoints tenants register, the events written
//! for them in the transaction of the change they report ([`emit`]), and the deliveries'
//! progress on 65.4's schedule.
//!
//! Times here come from the caller (`now`), not from the database's clock: the schedule
//! is tested on a clock the test moves, and the sender's clock is the one its waits use.

use genesis_core::audit::AuditCategory;
use std::time::Duration;

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::vault::Sealed;
use crate::{Database, StoreError};

/// The events a tenant may subscribe to.
pub const EVENTS: &[&str] = &[
    "tenant.active",
    "tenant.hibernated",
    "tenant.woken",
    "lead.created",
    "lead.replied",
    "wallet.low",
    "wallet.empty",
    "campaign.error",
];

/// A registered endpoint (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What it receives.
    pub events: Vec<String>,
    /// The tenant's note.
    pub description: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Its secret last changed.
    pub rotated_at: DateTime<Utc>,
    /// The tenant has been shown its current secret (false after a scheduled renewal, until
    /// they ask for it).
    pub secret_shown: bool,
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    /// Chosen by the caller (the secret is sealed to it before the row exists).
    pub id: Uuid,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Where events are POSTed (checked by the caller).
    pub url: &'a str,
    /// What it receives (checked against [`EVENTS`] by the caller).
    pub events: &'a [String],
    /// The tenant's note.
    pub description: &'a str,
    /// The signing secret, sealed.
    pub secret: &'a Sealed,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettledState {
    /// The receiver answered 2xx.
    Delivered,
    /// Failed; tried again at `at`.
    Retry,
    /// Failed for good: a dead letter.
    Dead,
}

impl SettledState {
    fn code(self) -> &'static str {
        match self {
            SettledState::Delivered => "delivered",
            SettledState::Retry => "retry",
            SettledState::Dead => "dead",
        }
    }
}

/// One attempt's outcome, to be written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The delivery.
    pub id: Uuid,
    /// What becomes of it.
    pub state: SettledState,
    /// When it was delivered or given up, or when it is tried again.
    pub at: DateTime<Utc>,
    /// The receiver's answer, if it answered.
    pub status: Option<i32>,
    /// Why it failed, in words.
    pub error: Option<String>,
}

/// A delivery claimed for sending, with what it needs to sign and send.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Its id (the `webhook-id`).
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The event.
    pub event: String,
    /// The body sent, as written.
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// Where to.
    pub url: String,
    /// The current secret, then the previous one while the rotation overlaps.
    pub secrets: Vec<Sealed>,
    /// The endpoint was removed: nothing is sent.
    pub endpoint_disabled: bool,
}

/// One delivery as the tenant and God Mode see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    /// Its id (the `webhook-id`).
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The event.
    pub event: String,
    /// Attempts made.
    pub attempts: i32,
    /// The receiver's last answer, if it answered.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Given up (a dead letter).
    pub dead_at: Option<DateTime<Utc>>,
}

/// Associated data: an endpoint's sealed secret opens for that endpoint only.
pub fn secret_aad(endpoint: Uuid) -> Vec<u8> {
    let mut v = b"genesis-webhook-endpoint-v1".to_vec();
    v.extend_from_slice(endpoint.as_bytes());
    v
}

/// Writes `event` for every live endpoint of `workspace` subscribed to it, in `conn`'s
/// transaction. The body is Standard Webhooks' shape: `{type, timestamp, data}`. How many
/// deliveries it wrote.
pub(crate) async fn emit(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    event: &str,
    data: serde_json::Value,
) -> Result<u64, StoreError> {
    debug_assert!(EVENTS.contains(&event), "unknown webhook event {event}");
    Ok(sqlx::query!(
        r#"INSERT INTO genesis.webhook_deliveries (id, endpoint_id, workspace_id, event, payload)
           SELECT gen_random_uuid(), e.id, e.workspace_id, $2,
                  jsonb_build_object('type', $2::text, 'timestamp', now(), 'data', $3::jsonb)
           FROM genesis.webhook_endpoints e
           WHERE e.workspace_id = $1 AND e.disabled_at IS NULL AND $2 = ANY (e.events)"#,
        workspace.as_uuid(),
        event,
        data,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

fn sealed(
    version: Option<i32>,
    nonce: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
) -> Option<Sealed> {
    Some(Sealed {
        key_version: version?,
        nonce: nonce?,
        ciphertext: ciphertext?,
    })
}

impl Database {
    /// Registers an endpoint, audited (Security: WEBHOOK_ENDPOINT_CREATED).
    pub async fn webhook_endpoint_create(
        &self,
        new: &NewEndpoint<'_>,
        actor: &str,
    ) -> Result<Endpoint, StoreError> {
        let mut tx = self.app.begin().await?;
        let e = sqlx::query_as!(
            Endpoint,
            r#"INSERT INTO genesis.webhook_endpoints
                   (id, workspace_id, url, events, description, key_version, nonce, ciphertext)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               RETURNING id, workspace_id, url, events, description, created_at, rotated_at,
                         secret_revealed_at IS NOT NULL AS "secret_shown!""#,
            new.id,
            new.workspace.as_uuid(),
            new.url,
            new.events,
            new.description,
            new.secret.key_version,
            new.secret.nonce,
            new.secret.ciphertext,
        )
        .fetch_one(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Security, "WEBHOOK_ENDPOINT_CREATED")
                .workspace(new.workspace)
                .subject(new.id.to_string())
                .details(serde_json::json!({ "url": new.url, "events": new.events })),
        )
        .await?;
        tx.commit().await?;
        Ok(e)
    }

    /// The workspace's live endpoints, oldest first.
    pub async fn webhook_endpoints(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Endpoint>, StoreError> {
        Ok(sqlx::query_as!(
            Endpoint,
            r#"SELECT id, workspace_id, url, events, description, created_at, rotated_at,
                      secret_revealed_at IS NOT NULL AS "secret_shown!"
               FROM genesis.webhook_endpoints
               WHERE workspace_id = $1 AND disabled_at IS NULL ORDER BY created_at, id"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Removes an endpoint (its deliveries stay, for the record; pending ones are not
    /// sent), audited. False when the workspace has no such live endpoint.
    pub async fn webhook_endpoint_remove(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let gone = sqlx::query!(
            r#"UPDATE genesis.webhook_endpoints SET disabled_at = now()
               WHERE id = $1 AND workspace_id = $2 AND disabled_at IS NULL"#,
            id,
            workspace.as_uuid(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if gone {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Security, "WEBHOOK_ENDPOINT_REMOVED")
                    .workspace(workspace)
                    .subject(id.to_string()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Claims up to `limit` deliveries due at `now` for `lease`, oldest due first. A first
    /// attempt is due at once, whatever `now` says (it was written on the database's clock,
    /// which the sender's need not match); later ones when `now` reaches their time.
    pub async fn webhook_claim(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = sqlx::query!(
            r#"WITH due AS (
                   SELECT id FROM genesis.webhook_deliveries
                   WHERE delivered_at IS NULL AND dead_at IS NULL
                     AND (attempts = 0 OR next_attempt_at <= $1)
                   ORDER BY next_attempt_at, id
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED
               ), claimed AS (
                   UPDATE genesis.webhook_deliveries d
                   SET attempts = d.attempts + 1,
                       next_attempt_at = $1 + make_interval(secs => $3)
                   FROM due WHERE d.id = due.id
                   RETURNING d.id, d.endpoint_id, d.workspace_id, d.event, d.payload, d.attempts
               )
               SELECT c.id, c.endpoint_id, c.workspace_id, c.event, c.payload, c.attempts,
                      e.url, e.disabled_at IS NOT NULL AS "disabled!",
                      e.key_version, e.nonce, e.ciphertext,
                      CASE WHEN e.previous_until > $1 THEN e.previous_key_version END AS previous_key_version,
                      CASE WHEN e.previous_until > $1 THEN e.previous_nonce END AS previous_nonce,
                      CASE WHEN e.previous_until > $1 THEN e.previous_ciphertext END AS previous_ciphertext
               FROM claimed c JOIN genesis.webhook_endpoints e ON e.id = c.endpoint_id
               ORDER BY c.id"#,
            now,
            limit,
            lease.as_secs_f64(),
        )
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut secrets = vec![Sealed {
                    key_version: r.key_version,
                    nonce: r.nonce,
                    ciphertext: r.ciphertext,
                }];
                secrets.extend(sealed(
                    r.previous_key_version,
                    r.previous_nonce,
                    r.previous_ciphertext,
                ));
                DueDelivery {
                    id: r.id,
                    endpoint_id: r.endpoint_id,
                    workspace_id: r.workspace_id,
                    event: r.event,
                    payload: r.payload,
                    attempt: r.attempts,
                    url: r.url,
                    secrets,
                    endpoint_disabled: r.disabled,
                }
            })
            .collect())
    }

    /// Records a round of attempts' outcomes in one statement (a delivery settled
    /// meanwhile, by a replay or another sender, is left alone).
    pub async fn webhook_settle(&self, outcomes: &[Settled]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = outcomes.iter().map(|o| o.id).collect();
        let states: Vec<String> = outcomes.iter().map(|o| o.state.code().to_owned()).collect();
        let ats: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.at).collect();
        let statuses: Vec<Option<i32>> = outcomes.iter().map(|o| o.status).collect();
        let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
        sqlx::query!(
            r#"UPDATE genesis.webhook_deliveries d
               SET delivered_at = CASE WHEN u.state = 'delivered' THEN u.at END,
                   dead_at = CASE WHEN u.state = 'dead' THEN u.at END,
                   next_attempt_at = CASE WHEN u.state = 'retry' THEN u.at ELSE d.next_attempt_at END,
                   last_status = u.status,
                   last_error = u.error
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int4[], $5::text[])
                    AS u(id, state, at, status, error)
               WHERE d.id = u.id AND d.delivered_at IS NULL AND d.dead_at IS NULL"#,
            &ids,
            &states,
            &ats,
            &statuses as &[Option<i32>],
            &errors as &[Option<String>],
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// A workspace's deliveries, newest first: all, or the dead letters only.
    pub async fn webhook_deliveries(
        &self,
        workspace: WorkspaceId,
        dead_only: bool,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as!(
            DeliveryRow,
            r#"SELECT id, endpoint_id, workspace_id, event, attempts, last_status, last_error,
                      created_at, next_attempt_at, delivered_at, dead_at
               FROM genesis.webhook_deliveries
               WHERE workspace_id = $1 AND (NOT $2 OR dead_at IS NOT NULL)
               ORDER BY created_at DESC, id DESC LIMIT $3"#,
            workspace.as_uuid(),
            dead_only,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Every workspace's dead letters, newest first (God Mode).
    pub async fn webhook_dead_letters(&self, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as!(
            DeliveryRow,
            r#"SELECT id, endpoint_id, workspace_id, event, attempts, last_status, last_error,
                      created_at, next_attempt_at, delivered_at, dead_at
               FROM genesis.webhook_deliveries WHERE dead_at IS NOT NULL
               ORDER BY dead_at DESC, id DESC LIMIT $1"#,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Sends dead letter `id` again from the first attempt of the schedule, due at `now`,
    /// audited. `workspace` scopes it (a tenant replays only its own); `None` is an
    /// operator's replay. False when it is not a dead letter there, or its endpoint is gone.
    pub async fn webhook_replay(
        &self,
        workspace: Option<WorkspaceId>,
        id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.webhook_deliveries d
               SET dead_at = NULL, attempts = 0, next_attempt_at = $3
               FROM genesis.webhook_endpoints e
               WHERE d.id = $1 AND d.dead_at IS NOT NULL AND e.id = d.endpoint_id
                 AND e.disabled_at IS NULL
                 AND ($2::uuid IS NULL OR d.workspace_id = $2)
               RETURNING d.workspace_id, d.event"#,
            id,
            workspace.map(|w| w.as_uuid()),
            now,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut event =
            AuditEvent::new(actor, AuditCategory::Security, "WEBHOOK_DELIVERY_REPLAYED")
                .subject(id.to_string())
                .details(serde_json::json!({ "event": row.event }));
        if let Ok(ws) = WorkspaceId::from_uuid(row.workspace_id) {
            event = event.workspace(ws);
        }
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// How a secret came to be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The tenant asked, and was shown the new secret in the answer.
    Asked,
    /// The 90-day schedule: the tenant is told by e-mail and shown the new secret once,
    /// when they ask for it.
    Scheduled,
}

impl Database {
    /// Live endpoints whose secret is older than `before`, oldest first.
    pub async fn webhook_endpoints_due_rotation(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Endpoint>, StoreError> {
        Ok(sqlx::query_as!(
            Endpoint,
            r#"SELECT id, workspace_id, url, events, description, created_at, rotated_at,
                      secret_revealed_at IS NOT NULL AS "secret_shown!"
               FROM genesis.webhook_endpoints
               WHERE disabled_at IS NULL AND rotated_at < $1
               ORDER BY rotated_at, id LIMIT $2"#,
            before,
            limit,
        )
        .fetch_all(&self.app)
        .await?)
    }

    /// Replaces an endpoint's secret with `fresh`: the current one becomes the previous,
    /// which signs beside it until `overlap_until`. One statement, audited
    /// (Credentials: WEBHOOK_SECRET_ROTATED); a scheduled rotation also tells the
    /// workspace's owners. `workspace` scopes it to a tenant's own (None: the schedule).
    /// The endpoint, or None when there is no such live endpoint.
    pub async fn webhook_endpoint_rotate(
        &self,
        workspace: Option<WorkspaceId>,
        id: Uuid,
        fresh: &Sealed,
        overlap_until: DateTime<Utc>,
        how: Rotation,
        actor: &str,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut tx = self.app.begin().await?;
        let e = sqlx::query_as!(
            Endpoint,
            r#"UPDATE genesis.webhook_endpoints
               SET previous_key_version = key_version, previous_nonce = nonce,
                   previous_ciphertext = ciphertext, previous_until = $4,
                   key_version = $5, nonce = $6, ciphertext = $7, rotated_at = now(),
                   secret_revealed_at = CASE WHEN $3 THEN now() END
               WHERE id = $1 AND disabled_at IS NULL
                 AND ($2::uuid IS NULL OR workspace_id = $2)
               RETURNING id, workspace_id, url, events, description, created_at, rotated_at,
                         secret_revealed_at IS NOT NULL AS "secret_shown!""#,
            id,
            workspace.map(|w| w.as_uuid()),
            how == Rotation::Asked,
            overlap_until,
            fresh.key_version,
            fresh.nonce,
            fresh.ciphertext,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(e) = e else {
            return Ok(None);
        };
        let ws = crate::accounts::workspace_id(e.workspace_id)?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Credentials, "WEBHOOK_SECRET_ROTATED")
                .workspace(ws)
                .subject(e.id.to_string())
                .details(serde_json::json!({
                    "url": e.url,
                    "previous_valid_until": overlap_until,
                    "scheduled": how == Rotation::Scheduled,
                })),
        )
        .await?;
        if how == Rotation::Scheduled {
            sqlx::query!(
                r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                   VALUES ($1, 'WEBHOOK_SECRET_ROTATED', $2, $3)"#,
                e.workspace_id,
                "Your webhook signing secret has been renewed",
                serde_json::json!({
                    "url": e.url,
                    "previous_valid_until": overlap_until.format("%Y-%m-%d %H:%M UTC").to_string(),
                }),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(e))
    }

    /// The current secret of an endpoint whose tenant has not seen it (after a scheduled
    /// rotation), marked seen: once. Audited (Credentials: WEBHOOK_SECRET_ACCESSED). None
    /// when it was shown already, or there is no such live endpoint.
    pub async fn webhook_secret_reveal(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        actor: &str,
    ) -> Result<Option<Sealed>, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.webhook_endpoints SET secret_revealed_at = now()
               WHERE id = $1 AND workspace_id = $2 AND disabled_at IS NULL
                 AND secret_revealed_at IS NULL
               RETURNING key_version, nonce, ciphertext"#,
            id,
            workspace.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Credentials, "WEBHOOK_SECRET_ACCESSED")
                .workspace(workspace)
                .subject(id.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Sealed {
            key_version: row.key_version,
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        }))
    }
}
