//! The watchdog's drift rules (spec 43.2) as a pure comparison of what the database says a
//! tenant should run with what its droplet reports it runs. The watchdog (issue 7, next
//! increment) gathers both sides and acts on the result; this module only decides.
//!
//! # Guarantees
//! - Every difference is reported once, with its spec 43.2 type, severity and whether spec
//!   43.3 allows healing it automatically.
//! - Equal inputs give no drift; the result does not depend on the order of either list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Spec 43.2's drift types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// In n8n but not in the database.
    OrphanWorkflow,
    /// In the database but not in n8n.
    OrphanDbRecord,
    /// The database says active, n8n says inactive (or the reverse).
    StateMismatch,
    /// The workspace exists, its partition does not.
    MissingPartition,
    /// An OAuth credential has expired.
    CredentialExpired,
    /// The workflow runs another template version than the database says.
    VersionMismatch,
}

impl DriftKind {
    /// Every type, in spec 43.2's order.
    pub const ALL: [DriftKind; 6] = [
        DriftKind::OrphanWorkflow,
        DriftKind::OrphanDbRecord,
        DriftKind::StateMismatch,
        DriftKind::MissingPartition,
        DriftKind::CredentialExpired,
        DriftKind::VersionMismatch,
    ];

    /// Spec 43.2's severity.
    pub fn severity(self) -> &'static str {
        match self {
            DriftKind::OrphanWorkflow
            | DriftKind::CredentialExpired
            | DriftKind::VersionMismatch => "MEDIUM",
            DriftKind::OrphanDbRecord | DriftKind::StateMismatch => "HIGH",
            DriftKind::MissingPartition => "CRITICAL",
        }
    }

    /// Whether spec 43.3 heals it without a person.
    pub fn auto_healable(self) -> bool {
        self != DriftKind::MissingPartition
    }

    /// The stable code (`orphan_workflow`, ...).
    pub fn code(self) -> &'static str {
        match self {
            DriftKind::OrphanWorkflow => "orphan_workflow",
            DriftKind::OrphanDbRecord => "orphan_db_record",
            DriftKind::StateMismatch => "state_mismatch",
            DriftKind::MissingPartition => "missing_partition",
            DriftKind::CredentialExpired => "credential_expired",
            DriftKind::VersionMismatch => "version_mismatch",
        }
    }
}

/// A workflow as the database wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredWorkflow {
    /// n8n's id on this droplet.
    pub workflow_id: String,
    /// Should it be active.
    pub active: bool,
    /// The template version deployed.
    pub template_version: String,
}

/// A workflow as the droplet reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualWorkflow {
    /// n8n's id.
    pub workflow_id: String,
    /// Is it active.
    pub active: bool,
    /// The template version it carries, if it says.
    pub template_version: Option<String>,
}

/// A credential as the droplet reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualCredential {
    /// n8n's id.
    pub credential_id: String,
    /// When its OAuth token expires (Unix seconds), if it is an OAuth credential.
    pub expires_at: Option<i64>,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Its type.
    pub kind: DriftKind,
    /// The workflow or credential concerned (none for a missing partition).
    pub subject: Option<String>,
}

/// What the watchdog compares for one droplet.
#[derive(Debug, Clone, Default)]
pub struct DriftInput<'a> {
    /// The database's workflows for this droplet.
    pub desired: &'a [DesiredWorkflow],
    /// The droplet's workflows.
    pub actual: &'a [ActualWorkflow],
    /// The droplet's credentials.
    pub credentials: &'a [ActualCredential],
    /// Whether the workspace's partition exists.
    pub partition_exists: bool,
}

/// Every drift between `input`'s two sides at `now` (Unix seconds), in a stable order.
pub fn detect(input: &DriftInput<'_>, now: i64) -> Vec<Drift> {
    let mut out = Vec::new();
    if !input.partition_exists {
        out.push(Drift {
            kind: DriftKind::MissingPartition,
            subject: None,
        });
    }
    let desired: BTreeMap<&str, &DesiredWorkflow> = input
        .desired
        .iter()
        .map(|d| (d.workflow_id.as_str(), d))
        .collect();
    let actual: BTreeMap<&str, &ActualWorkflow> = input
        .actual
        .iter()
        .map(|a| (a.workflow_id.as_str(), a))
        .collect();
    for (id, d) in &desired {
        let drift = |kind| Drift {
            kind,
            subject: Some((*id).to_owned()),
        };
        match actual.get(id) {
            None => out.push(drift(DriftKind::OrphanDbRecord)),
            Some(a) => {
                if a.active != d.active {
                    out.push(drift(DriftKind::StateMismatch));
                }
                if a.template_version
                    .as_deref()
                    .is_some_and(|v| v != d.template_version)
                {
                    out.push(drift(DriftKind::VersionMismatch));
                }
            }
        }
    }
    for id in actual.keys() {
        if !desired.contains_key(id) {
            out.push(Drift {
                kind: DriftKind::OrphanWorkflow,
                subject: Some((*id).to_owned()),
            });
        }
    }
    let mut creds: Vec<&ActualCredential> = input.credentials.iter().collect();
    creds.sort_by(|a, b| a.credential_id.cmp(&b.credential_id));
    for c in creds {
        if c.expires_at.is_some_and(|e| e <= now) {
            out.push(Drift {
                kind: DriftKind::CredentialExpired,
                subject: Some(c.credential_id.clone()),
            });
        }
    }
    out.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn desired(id: &str, active: bool) -> DesiredWorkflow {
        DesiredWorkflow {
            workflow_id: id.into(),
            active,
            template_version: "v1".into(),
        }
    }

    fn actual(id: &str, active: bool, version: &str) -> ActualWorkflow {
        ActualWorkflow {
            workflow_id: id.into(),
            active,
            template_version: Some(version.into()),
        }
    }

    #[test]
    fn each_drift_type_is_found_with_its_subject() {
        let now = 1_800_000_000;
        let d = [desired("a", true), desired("b", true), desired("c", true)];
        let a = [
            actual("a", false, "v1"), // state mismatch
            actual("b", true, "v0"),  // version mismatch
            actual("x", true, "v1"),  // orphan workflow ("c" is an orphan record)
        ];
        let creds = [
            ActualCredential {
                credential_id: "gm".into(),
                expires_at: Some(now - 60),
            },
            ActualCredential {
                credential_id: "oa".into(),
                expires_at: None,
            },
        ];
        let found = detect(
            &DriftInput {
                desired: &d,
                actual: &a,
                credentials: &creds,
                partition_exists: false,
            },
            now,
        );
        let got: Vec<(DriftKind, Option<&str>)> = found
            .iter()
            .map(|d| (d.kind, d.subject.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (DriftKind::OrphanWorkflow, Some("x")),
                (DriftKind::OrphanDbRecord, Some("c")),
                (DriftKind::StateMismatch, Some("a")),
                (DriftKind::MissingPartition, None),
                (DriftKind::CredentialExpired, Some("gm")),
                (DriftKind::VersionMismatch, Some("b")),
            ]
        );
        assert!(!DriftKind::MissingPartition.auto_healable());
        assert_eq!(DriftKind::MissingPartition.severity(), "CRITICAL");
    }

    proptest! {
        /// The same workflows on both sides, in any order, are no drift.
        #[test]
        fn agreement_is_no_drift(ids in proptest::collection::btree_set("[a-z]{1,6}", 0..20), flip in any::<bool>()) {
            let d: Vec<DesiredWorkflow> = ids.iter().map(|i| desired(i, true)).collect();
            let mut a: Vec<ActualWorkflow> = ids.iter().map(|i| actual(i, true, "v1")).collect();
            if flip { a.reverse(); }
            let found = detect(&DriftInput { desired: &d, actual: &a, credentials: &[], partition_exists: true }, 1_800_000_000);
            prop_assert!(found.is_empty(), "{found:?}");
        }
    }
}
