//! Rotating the vault's master key (spec 65.1): every sealed secret of a regional database
//! rewrapped under the current key version, so that an older version can be retired.
//!
//! The operator adds a new key version to the configuration and makes it current; new
//! secrets are sealed under it at once, and `genesis vault rotate` rewraps the rest, batch
//! by batch, with progress. Each row is rewritten only if it still carries the version it
//! was read with (`WHERE key_version = $old`), so a rewrap that is killed halfway resumes
//! where it stopped, runs safely beside the application's own writes, and never loses a
//! secret: until a row is rewritten, its old version still opens it. `genesis vault status`
//! counts rows per table and version; a version no row uses may be removed.
//!
//! A tenant's secret is rewrapped under its region's current version (spec 62.2), so the
//! same command moves a region's rows from the fleet's ring onto a ring of its own once one
//! is configured; what belongs to no tenant (operators' TOTP, command keys) follows the
//! fleet's.

use genesis_core::Region;
use genesis_core::audit::AuditCategory;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::vault::{MasterKeys, Sealed};
use crate::{Database, StoreError};

/// The tables that hold sealed secrets, as `status` names them.
pub const SEALED_TABLES: &[&str] = &[
    "vault_credentials",
    "onboarding_secrets",
    "oauth_flows",
    "operators",
    "webhook_endpoints",
    "webhook_endpoints.previous",
    "command_keys",
];

/// Rows of one table (and region) under one key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// The table.
    pub table: String,
    /// The tenants' region, for a table of tenants' secrets; `None` for the fleet's.
    pub region: Option<Region>,
    /// The master key version.
    pub key_version: i32,
    /// Rows sealed under it.
    pub rows: i64,
}

/// What one batch of a rewrap did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rewrapped {
    /// Rows now under the current key.
    pub rewrapped: u64,
    /// Rows that changed under us (rewritten by the application meanwhile): they are read
    /// again by the next batch.
    pub raced: u64,
}

/// One sealed value and where it lives.
enum Place {
    Credential { workspace: Uuid, credential: Uuid },
    Onboarding { workspace: Uuid, kind: String },
    Flow { state: Vec<u8> },
    Operator { id: Uuid },
    Endpoint { id: Uuid },
    EndpointPrevious { id: Uuid },
    CommandKey { kid: String },
}

impl Place {
    fn aad(&self) -> Result<Vec<u8>, StoreError> {
        Ok(match self {
            Place::Credential {
                workspace,
                credential,
            } => crate::vault::aad(crate::accounts::workspace_id(*workspace)?, *credential),
            Place::Onboarding { workspace, kind } => {
                crate::onboarding::secret_aad_of(workspace, kind)
            }
            Place::Flow { state } => crate::onboarding::flow_aad(state),
            Place::Operator { id } => crate::operators::totp_aad(*id),
            Place::Endpoint { id } | Place::EndpointPrevious { id } => {
                crate::outbound_webhooks::secret_aad(*id)
            }
            Place::CommandKey { kid } => crate::command_keys::command_key_aad(kid),
        })
    }
}

impl VersionCount {
    /// The version these rows belong under: their region's current, or the fleet's.
    pub fn target(&self, keys: &MasterKeys) -> u32 {
        match self.region {
            Some(region) => keys.for_region(region).current(),
            None => keys.current(),
        }
    }
}

impl Database {
    /// Rows per sealed table, region (for a tenant's secrets) and key version.
    pub async fn vault_status(&self) -> Result<Vec<VersionCount>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT 'vault_credentials' AS "t!", w.region AS "r?", key_version AS "v!",
                      count(*) AS "n!"
                 FROM genesis.vault_credentials s
                 JOIN genesis.workspaces w ON w.id = s.workspace_id
                 GROUP BY w.region, key_version
               UNION ALL
               SELECT 'onboarding_secrets', w.region, key_version, count(*)
                 FROM genesis.onboarding_secrets s
                 JOIN genesis.workspaces w ON w.id = s.workspace_id
                 GROUP BY w.region, key_version
               UNION ALL
               SELECT 'oauth_flows', w.region, key_version, count(*)
                 FROM genesis.oauth_flows s
                 JOIN genesis.workspaces w ON w.id = s.workspace_id
                 GROUP BY w.region, key_version
               UNION ALL
               SELECT 'operators', NULL, totp_key_version, count(*)
                 FROM genesis.operators WHERE totp_key_version IS NOT NULL GROUP BY totp_key_version
               UNION ALL
               SELECT 'webhook_endpoints', w.region, key_version, count(*)
                 FROM genesis.webhook_endpoints s
                 JOIN genesis.workspaces w ON w.id = s.workspace_id
                 GROUP BY w.region, key_version
               UNION ALL
               SELECT 'webhook_endpoints.previous', w.region, previous_key_version, count(*)
                 FROM genesis.webhook_endpoints s
                 JOIN genesis.workspaces w ON w.id = s.workspace_id
                 WHERE previous_key_version IS NOT NULL
                 GROUP BY w.region, previous_key_version
               UNION ALL
               SELECT 'command_keys', NULL, key_version, count(*)
                 FROM genesis.command_keys GROUP BY key_version
               ORDER BY 1, 2, 3"#,
        )
        .fetch_all(&self.app)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(VersionCount {
                    table: r.t,
                    region: r
                        .r
                        .map(|code| {
                            Region::parse(&code).map_err(|_| StoreError::Corrupt {
                                what: "workspace region",
                                value: code,
                            })
                        })
                        .transpose()?,
                    key_version: r.v,
                    rows: r.n,
                })
            })
            .collect()
    }

    /// Rewraps up to `batch` sealed values of this database that are not under `keys`'
    /// current version (each table in turn). Call until it rewraps nothing.
    pub async fn vault_rewrap_batch(
        &self,
        keys: &MasterKeys,
        batch: i64,
    ) -> Result<Rewrapped, StoreError> {
        let found = self.vault_stale(keys, batch).await?;
        let mut done = Rewrapped::default();
        for (place, region, sealed) in found {
            let keys = match region {
                Some(region) => keys.for_region(region),
                None => keys.clone(),
            };
            let Some(fresh) = keys.rewrap(&sealed, &place.aad()?)? else {
                continue;
            };
            if self
                .vault_put_rewrapped(&place, sealed.key_version, &fresh)
                .await?
            {
                done.rewrapped += 1;
            } else {
                done.raced += 1;
            }
        }
        Ok(done)
    }

    /// Records a finished rewrap, audited (Security: VAULT_REWRAPPED).
    pub async fn vault_rewrap_audit(
        &self,
        keys: &MasterKeys,
        rewrapped: u64,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.app.acquire().await?;
        record(
            &mut conn,
            &AuditEvent::new(actor, AuditCategory::Security, "VAULT_REWRAPPED").details(
                serde_json::json!({
                    "key_version": keys.current(),
                    "regions": keys
                        .regional_currents()
                        .into_iter()
                        .map(|(r, v)| (r.code(), v))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                    "rewrapped": rewrapped,
                }),
            ),
        )
        .await?;
        Ok(())
    }

    /// Sealed values not under their target version: their region's current for a tenant's
    /// (with the region), the fleet's for the rest.
    async fn vault_stale(
        &self,
        keys: &MasterKeys,
        batch: i64,
    ) -> Result<Vec<(Place, Option<Region>, Sealed)>, StoreError> {
        let version = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let current = version(keys.current());
        // Each region's target version, as two parallel arrays the queries join on.
        let (regions, targets): (Vec<String>, Vec<i32>) = Region::ALL
            .iter()
            .map(|r| (r.code().to_owned(), version(keys.for_region(*r).current())))
            .unzip();
        let region = |code: &str| {
            Region::parse(code).map_err(|_| StoreError::Corrupt {
                what: "workspace region",
                value: code.to_owned(),
            })
        };
        let mut out = Vec::new();
        let sealed = |v: i32, nonce: Vec<u8>, ciphertext: Vec<u8>| Sealed {
            key_version: v,
            nonce,
            ciphertext,
        };
        for r in sqlx::query!(
            r#"SELECT s.workspace_id, s.credential_id, s.key_version, s.nonce, s.ciphertext,
                      w.region
               FROM genesis.vault_credentials s
               JOIN genesis.workspaces w ON w.id = s.workspace_id
               JOIN unnest($1::text[], $2::int[]) AS t(region, target) ON t.region = w.region
               WHERE s.key_version <> t.target LIMIT $3"#,
            &regions,
            &targets,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::Credential {
                    workspace: r.workspace_id,
                    credential: r.credential_id,
                },
                Some(region(&r.region)?),
                sealed(r.key_version, r.nonce, r.ciphertext),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT s.workspace_id, s.kind, s.key_version, s.nonce, s.ciphertext, w.region
               FROM genesis.onboarding_secrets s
               JOIN genesis.workspaces w ON w.id = s.workspace_id
               JOIN unnest($1::text[], $2::int[]) AS t(region, target) ON t.region = w.region
               WHERE s.key_version <> t.target LIMIT $3"#,
            &regions,
            &targets,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::Onboarding {
                    workspace: r.workspace_id,
                    kind: r.kind,
                },
                Some(region(&r.region)?),
                sealed(r.key_version, r.nonce, r.ciphertext),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT s.state_sha256, s.key_version, s.nonce, s.verifier, w.region
               FROM genesis.oauth_flows s
               JOIN genesis.workspaces w ON w.id = s.workspace_id
               JOIN unnest($1::text[], $2::int[]) AS t(region, target) ON t.region = w.region
               WHERE s.key_version <> t.target LIMIT $3"#,
            &regions,
            &targets,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::Flow {
                    state: r.state_sha256,
                },
                Some(region(&r.region)?),
                sealed(r.key_version, r.nonce, r.verifier),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT id, totp_key_version AS "v!", totp_nonce AS "nonce!", totp_ciphertext AS "ct!"
               FROM genesis.operators
               WHERE totp_key_version IS NOT NULL AND totp_key_version <> $1 LIMIT $2"#,
            current,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::Operator { id: r.id },
                None,
                sealed(r.v, r.nonce, r.ct),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT s.id, s.key_version, s.nonce, s.ciphertext, w.region
               FROM genesis.webhook_endpoints s
               JOIN genesis.workspaces w ON w.id = s.workspace_id
               JOIN unnest($1::text[], $2::int[]) AS t(region, target) ON t.region = w.region
               WHERE s.key_version <> t.target LIMIT $3"#,
            &regions,
            &targets,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::Endpoint { id: r.id },
                Some(region(&r.region)?),
                sealed(r.key_version, r.nonce, r.ciphertext),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT s.id, s.previous_key_version AS "v!", s.previous_nonce AS "nonce!",
                      s.previous_ciphertext AS "ct!", w.region
               FROM genesis.webhook_endpoints s
               JOIN genesis.workspaces w ON w.id = s.workspace_id
               JOIN unnest($1::text[], $2::int[]) AS t(region, target) ON t.region = w.region
               WHERE s.previous_key_version IS NOT NULL AND s.previous_key_version <> t.target
               LIMIT $3"#,
            &regions,
            &targets,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::EndpointPrevious { id: r.id },
                Some(region(&r.region)?),
                sealed(r.v, r.nonce, r.ct),
            ));
        }
        for r in sqlx::query!(
            r#"SELECT kid, key_version, nonce, ciphertext
               FROM genesis.command_keys WHERE key_version <> $1 LIMIT $2"#,
            current,
            batch
        )
        .fetch_all(&self.app)
        .await?
        {
            out.push((
                Place::CommandKey { kid: r.kid },
                None,
                sealed(r.key_version, r.nonce, r.ciphertext),
            ));
        }
        Ok(out)
    }

    /// Writes `fresh` where `place` still holds version `old`; false when it changed.
    async fn vault_put_rewrapped(
        &self,
        place: &Place,
        old: i32,
        fresh: &Sealed,
    ) -> Result<bool, StoreError> {
        let (v, n, c) = (fresh.key_version, &fresh.nonce, &fresh.ciphertext);
        let done = match place {
            Place::Credential {
                workspace,
                credential,
            } => sqlx::query!(
                r#"UPDATE genesis.vault_credentials SET key_version = $3, nonce = $4, ciphertext = $5
                   WHERE workspace_id = $1 AND credential_id = $2 AND key_version = $6"#,
                workspace,
                credential,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::Onboarding { workspace, kind } => sqlx::query!(
                r#"UPDATE genesis.onboarding_secrets SET key_version = $3, nonce = $4, ciphertext = $5
                   WHERE workspace_id = $1 AND kind = $2 AND key_version = $6"#,
                workspace,
                kind,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::Flow { state } => sqlx::query!(
                r#"UPDATE genesis.oauth_flows SET key_version = $2, nonce = $3, verifier = $4
                   WHERE state_sha256 = $1 AND key_version = $5"#,
                state,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::Operator { id } => sqlx::query!(
                r#"UPDATE genesis.operators
                   SET totp_key_version = $2, totp_nonce = $3, totp_ciphertext = $4
                   WHERE id = $1 AND totp_key_version = $5"#,
                id,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::Endpoint { id } => sqlx::query!(
                r#"UPDATE genesis.webhook_endpoints SET key_version = $2, nonce = $3, ciphertext = $4
                   WHERE id = $1 AND key_version = $5"#,
                id,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::EndpointPrevious { id } => sqlx::query!(
                r#"UPDATE genesis.webhook_endpoints
                   SET previous_key_version = $2, previous_nonce = $3, previous_ciphertext = $4
                   WHERE id = $1 AND previous_key_version = $5"#,
                id,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
            Place::CommandKey { kid } => sqlx::query!(
                r#"UPDATE genesis.command_keys SET key_version = $2, nonce = $3, ciphertext = $4
                   WHERE kid = $1 AND key_version = $5"#,
                kid,
                v,
                n,
                c,
                old
            )
            .execute(&self.app)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }
}

/// Where the rotations of spec 65.1 stand in one regional database (God Mode's security
/// page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RotationCounts {
    /// Live droplets whose sidecar token is good for more than 7 days.
    pub tokens_fresh: i64,
    /// Live droplets whose token ends within 7 days: renewed at their next heartbeat.
    pub tokens_renewing: i64,
    /// Live droplets whose newest token has expired: behind (they re-attest).
    pub tokens_expired: i64,
    /// Live webhook endpoints.
    pub endpoints: i64,
    /// Endpoints whose secret is past 90 days: due.
    pub endpoints_due: i64,
    /// Endpoints whose previous secret still signs: in flight.
    pub endpoints_overlapping: i64,
    /// Endpoints renewed on schedule whose tenant has not fetched the new secret yet.
    pub endpoints_unrevealed: i64,
    /// OAuth tokens in serving droplets' inventories good for more than 14 days.
    pub oauth_fresh: i64,
    /// Tokens within 14 days of their expiry: due for the daily refresh.
    pub oauth_due: i64,
    /// Tokens past their expiry: behind (the watchdog's heal).
    pub oauth_expired: i64,
}

impl RotationCounts {
    /// `self += other`.
    pub fn add(&mut self, o: &Self) {
        self.tokens_fresh += o.tokens_fresh;
        self.tokens_renewing += o.tokens_renewing;
        self.tokens_expired += o.tokens_expired;
        self.endpoints += o.endpoints;
        self.endpoints_due += o.endpoints_due;
        self.endpoints_overlapping += o.endpoints_overlapping;
        self.oauth_fresh += o.oauth_fresh;
        self.oauth_due += o.oauth_due;
        self.oauth_expired += o.oauth_expired;
        self.endpoints_unrevealed += o.endpoints_unrevealed;
    }
}

impl Database {
    /// Where the rotations stand here.
    pub async fn rotation_counts(&self) -> Result<RotationCounts, StoreError> {
        let t = sqlx::query!(
            r#"WITH newest AS (
                   SELECT DISTINCT ON (t.droplet_id) t.droplet_id, t.expires_at
                   FROM genesis.sidecar_tokens t
                   JOIN genesis.droplets d ON d.id = t.droplet_id
                   WHERE t.revoked_at IS NULL AND d.state <> 'TERMINATED'
                   ORDER BY t.droplet_id, t.expires_at DESC
               )
               SELECT count(*) FILTER (WHERE expires_at > now() + interval '7 days') AS "fresh!",
                      count(*) FILTER (WHERE expires_at <= now() + interval '7 days'
                                         AND expires_at > now()) AS "renewing!",
                      count(*) FILTER (WHERE expires_at <= now()) AS "expired!"
               FROM newest"#,
        )
        .fetch_one(&self.app)
        .await?;
        let e = sqlx::query!(
            r#"SELECT count(*) AS "all!",
                      count(*) FILTER (WHERE rotated_at < now() - interval '90 days') AS "due!",
                      count(*) FILTER (WHERE previous_until > now()) AS "overlapping!",
                      count(*) FILTER (WHERE secret_revealed_at IS NULL) AS "unrevealed!"
               FROM genesis.webhook_endpoints WHERE disabled_at IS NULL"#,
        )
        .fetch_one(&self.app)
        .await?;
        // The expiries the sidecars last reported (spec 43.1's inventory), as the daily
        // refresh reads them.
        let o = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE e > now() + interval '14 days') AS "fresh!",
                      count(*) FILTER (WHERE e <= now() + interval '14 days'
                                         AND e > now()) AS "due!",
                      count(*) FILTER (WHERE e <= now()) AS "expired!"
               FROM (SELECT to_timestamp((c->>'expires_at')::bigint) AS e
                     FROM genesis.droplets d,
                          jsonb_array_elements(CASE
                              WHEN jsonb_typeof(d.last_heartbeat->'credentials') = 'array'
                              THEN d.last_heartbeat->'credentials' ELSE '[]'::jsonb END) c
                     WHERE d.state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED')
                       AND jsonb_typeof(c->'expires_at') = 'number') tokens"#,
        )
        .fetch_one(&self.app)
        .await?;
        Ok(RotationCounts {
            oauth_fresh: o.fresh,
            oauth_due: o.due,
            oauth_expired: o.expired,
            tokens_fresh: t.fresh,
            tokens_renewing: t.renewing,
            tokens_expired: t.expired,
            endpoints: e.all,
            endpoints_due: e.due,
            endpoints_overlapping: e.overlapping,
            endpoints_unrevealed: e.unrevealed,
        })
    }
}
