//! Server settings checked against spec 40.2 (`genesis db check`).
//!
//! "Required" rows are the ones correctness or the partition physics depend on; "recommended"
//! rows are production sizing (a laptop's throwaway cluster legitimately runs smaller).

use serde::Serialize;

use crate::{Database, StoreError, bootstrap::APP_ROLE};

/// How much a row matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingLevel {
    /// `db check` fails when this is off.
    Required,
    /// Reported, never fatal.
    Recommended,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct SettingCheck {
    /// Setting or property name.
    pub setting: String,
    /// What the server has.
    pub value: String,
    /// What spec 40.2 asks for.
    pub required: String,
    /// Whether `value` satisfies `required`.
    pub ok: bool,
    /// Required or recommended.
    pub level: SettingLevel,
    /// Why it matters.
    pub why: &'static str,
}

enum Expect {
    Equals(&'static str),
    AtLeastBytes(u64),
    AtLeast(i64),
}

const SPEC_40_2: &[(&str, Expect, SettingLevel, &str)] = &[
    (
        "enable_partition_pruning",
        Expect::Equals("on"),
        SettingLevel::Required,
        "without it every tenant query plans and scans all 15,000 partitions",
    ),
    (
        "max_locks_per_transaction",
        Expect::AtLeast(256),
        SettingLevel::Required,
        "partition DDL and queries over many partitions run out of lock slots at the default 64",
    ),
    (
        "max_pred_locks_per_transaction",
        Expect::AtLeast(128),
        SettingLevel::Required,
        "serializable transactions over partitions need predicate-lock room",
    ),
    (
        "shared_buffers",
        Expect::AtLeastBytes(4 << 30),
        SettingLevel::Recommended,
        "keeps the catalogs of 60,000+ relations cached",
    ),
    (
        "work_mem",
        Expect::AtLeastBytes(256 << 20),
        SettingLevel::Recommended,
        "per-operation sort/hash memory for reporting queries",
    ),
    (
        "maintenance_work_mem",
        Expect::AtLeastBytes(2 << 30),
        SettingLevel::Recommended,
        "index builds for new partitions and CREATE INDEX CONCURRENTLY",
    ),
];

fn unit_bytes(unit: Option<&str>) -> u64 {
    match unit {
        Some("8kB") => 8 << 10,
        Some("kB") => 1 << 10,
        Some("MB") => 1 << 20,
        Some("GB") => 1 << 30,
        _ => 1,
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}GB", b >> 30)
    } else if b >= 1 << 20 {
        format!("{}MB", b >> 20)
    } else {
        format!("{}kB", b >> 10)
    }
}

impl Database {
    /// The report. Reads settings through the runtime pool so per-role settings
    /// (`plan_cache_mode`) are seen exactly as the runtime sees them.
    pub async fn settings_check(&self) -> Result<Vec<SettingCheck>, StoreError> {
        let names: Vec<String> = SPEC_40_2.iter().map(|(n, ..)| (*n).to_owned()).collect();
        let rows = sqlx::query!(
            r#"SELECT name AS "name!", setting AS "setting!", unit FROM pg_settings WHERE name = ANY($1)"#,
            &names,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut out = Vec::new();
        for (name, expect, level, why) in SPEC_40_2 {
            let Some(row) = rows.iter().find(|r| r.name == *name) else {
                continue;
            };
            let (value, required, ok) = match expect {
                Expect::Equals(want) => (
                    row.setting.clone(),
                    (*want).to_owned(),
                    row.setting == *want,
                ),
                Expect::AtLeast(min) => {
                    let v: i64 = row.setting.parse().unwrap_or(0);
                    (row.setting.clone(), format!(">= {min}"), v >= *min)
                }
                Expect::AtLeastBytes(min) => {
                    let v =
                        row.setting.parse::<u64>().unwrap_or(0) * unit_bytes(row.unit.as_deref());
                    (
                        human_bytes(v),
                        format!(">= {}", human_bytes(*min)),
                        v >= *min,
                    )
                }
            };
            out.push(SettingCheck {
                setting: (*name).to_owned(),
                value,
                required,
                ok,
                level: *level,
                why,
            });
        }

        let plan_cache_mode =
            sqlx::query_scalar!(r#"SELECT current_setting('plan_cache_mode') AS "v!""#)
                .fetch_one(&mut *self.read().await?)
                .await?;
        out.push(SettingCheck {
            setting: format!("plan_cache_mode (as {APP_ROLE})"),
            ok: plan_cache_mode == "force_custom_plan",
            value: plan_cache_mode,
            required: "force_custom_plan".into(),
            level: SettingLevel::Required,
            why: "a generic plan of a prepared tenant query takes minutes to plan at 15,000 partitions",
        });

        let role = sqlx::query!(
            r#"SELECT rolsuper AS "superuser!", rolbypassrls AS "bypassrls!",
                      current_setting('server_version_num')::int AS "version!"
               FROM pg_roles WHERE rolname = current_user"#
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        out.push(SettingCheck {
            setting: format!("{APP_ROLE} bypasses RLS"),
            ok: !role.superuser && !role.bypassrls,
            value: if role.superuser || role.bypassrls {
                "yes"
            } else {
                "no"
            }
            .into(),
            required: "no".into(),
            level: SettingLevel::Required,
            why: "a superuser or BYPASSRLS runtime role would see every tenant's rows",
        });
        out.push(SettingCheck {
            setting: "server_version_num".into(),
            ok: role.version >= 150_000,
            value: role.version.to_string(),
            required: ">= 150000".into(),
            level: SettingLevel::Required,
            why: "DETACH PARTITION CONCURRENTLY and the planner behaviour we rely on",
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(unit_bytes(Some("8kB")) * 524_288, 4 << 30);
        assert_eq!(human_bytes(4 << 30), "4GB");
        assert_eq!(human_bytes(256 << 20), "256MB");
    }
}
