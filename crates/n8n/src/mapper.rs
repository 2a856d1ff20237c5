//! The Dynamic UUID Mapper (spec 53): a Golden Template carries placeholders where a tenant's
//! values belong: credential ids (`TEMPLATE_GMAIL_UUID`, 53.2) and variables
//! (`YOUR_WORKSPACE_ID`, 53.3). Mapping replaces every one of them and fails loudly, naming
//! the placeholder and the node, on any that is left: a template that reaches n8n half-mapped
//! would run against the wrong tenant's data or fail at 3 a.m.
//!
//! Credential placeholders are `TEMPLATE_<NAME>_UUID`, found as a node credential's `id`;
//! variables are `YOUR_<NAME>`, found anywhere in a node's strings (parameters, names, notes).
//! Both are upper case, digits and `_`.

use std::collections::BTreeSet;

use genesis_protocol::command::TemplateMapping;
use serde_json::Value;

/// Why a template cannot become a tenant's workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The document is not a workflow.
    #[error("the template is not a workflow: {0}")]
    NotAWorkflow(String),
    /// A credential placeholder with no mapping.
    #[error("node {node:?}: credential placeholder {placeholder} has no mapping")]
    UnmappedCredential {
        /// The placeholder.
        placeholder: String,
        /// The node that uses it.
        node: String,
    },
    /// A variable placeholder with no value.
    #[error("node {node:?}: variable {placeholder} has no value")]
    UnmappedVariable {
        /// The placeholder.
        placeholder: String,
        /// The node that uses it.
        node: String,
    },
    /// A mapped credential id that this n8n does not have.
    #[error("node {node:?}: credential {id} ({kind}) does not exist in this n8n")]
    UnknownCredential {
        /// The id.
        id: String,
        /// Credential type.
        kind: String,
        /// The node.
        node: String,
    },
}

/// Placeholders of the form `<prefix>[A-Z0-9_]+<suffix>` in `s`.
fn placeholders<'a>(s: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    s.match_indices(prefix).filter_map(move |(at, _)| {
        let rest = &s[at + prefix.len()..];
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        // A placeholder starts a word: `MY_YOUR_X` is not one.
        let starts_word = s[..at]
            .bytes()
            .last()
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        (len > 0 && starts_word).then(|| &s[at..at + prefix.len() + len])
    })
}

/// Every variable placeholder (`YOUR_...`) anywhere in `template`: what a deployment's
/// mapping must provide. The control plane checks this before it starts an ignition, so a
/// missing onboarding value is refused up front, by name.
pub fn template_variables(template: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => out.extend(placeholders(s, "YOUR_").map(str::to_owned)),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(template, &mut out);
    out
}

fn is_credential_placeholder(id: &str) -> bool {
    id.starts_with("TEMPLATE_")
        && id.ends_with("_UUID")
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Replaces variables inside every string of `v`; reports the first unmapped one.
fn map_strings(v: &mut Value, mapping: &TemplateMapping, node: &str) -> Result<(), MapError> {
    match v {
        Value::String(s) => {
            let found: BTreeSet<String> = placeholders(s, "YOUR_").map(str::to_owned).collect();
            // Longest first, so YOUR_CALENDLY_LINK_1 is not cut by a YOUR_CALENDLY_LINK value.
            let mut found: Vec<String> = found.into_iter().collect();
            found.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in found {
                let value =
                    mapping
                        .variables
                        .get(&p)
                        .ok_or_else(|| MapError::UnmappedVariable {
                            placeholder: p.clone(),
                            node: node.to_owned(),
                        })?;
                *s = s.replace(&p, value);
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|i| map_strings(i, mapping, node)),
        Value::Object(map) => map
            .values_mut()
            .try_for_each(|i| map_strings(i, mapping, node)),
        _ => Ok(()),
    }
}

/// The tenant's workflow made from `template` with `mapping`.
pub fn map_template(template: &Value, mapping: &TemplateMapping) -> Result<Value, MapError> {
    let mut doc = template.clone();
    let nodes = doc
        .get_mut("nodes")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| MapError::NotAWorkflow("no nodes array".into()))?;
    for node in nodes.iter_mut() {
        let name = node
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        if let Some(creds) = node.get_mut("credentials").and_then(Value::as_object_mut) {
            for cred in creds.values_mut() {
                let Some(id) = cred.get("id").and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                if !is_credential_placeholder(&id) {
                    continue;
                }
                let target =
                    mapping
                        .credentials
                        .get(&id)
                        .ok_or_else(|| MapError::UnmappedCredential {
                            placeholder: id.clone(),
                            node: name.clone(),
                        })?;
                if let Some(obj) = cred.as_object_mut() {
                    obj.insert("id".into(), Value::String(target.id.clone()));
                    obj.insert("name".into(), Value::String(target.name.clone()));
                }
            }
        }
        map_strings(node, mapping, &name)?;
    }
    // Workflow-level strings (the name, settings) may carry variables too.
    for key in ["name", "settings"] {
        if let Some(v) = doc.get_mut(key) {
            map_strings(v, mapping, "(workflow)")?;
        }
    }
    if let Some(leftover) = find_credential_placeholder(&doc) {
        return Err(leftover);
    }
    Ok(doc)
}

fn find_credential_placeholder(doc: &Value) -> Option<MapError> {
    let nodes = doc.get("nodes")?.as_array()?;
    nodes.iter().find_map(|n| {
        let name = n.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        let text = n.to_string();
        placeholders(&text, "TEMPLATE_")
            .find(|p| p.ends_with("_UUID"))
            .map(|p| MapError::UnmappedCredential {
                placeholder: p.to_owned(),
                node: name.to_owned(),
            })
    })
}

/// Checks that every credential a workflow's nodes reference exists in this n8n (n8n itself
/// accepts unknown ids and fails only when the workflow runs).
pub fn verify_credentials(workflow: &Value, existing: &BTreeSet<String>) -> Result<(), MapError> {
    let nodes = workflow
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| MapError::NotAWorkflow("no nodes array".into()))?;
    for node in nodes {
        let name = node
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let Some(creds) = node.get("credentials").and_then(Value::as_object) else {
            continue;
        };
        for (kind, cred) in creds {
            let id = cred.get("id").and_then(Value::as_str).unwrap_or_default();
            if !existing.contains(id) {
                return Err(MapError::UnknownCredential {
                    id: id.to_owned(),
                    kind: kind.clone(),
                    node: name.to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis_protocol::command::CredentialRef;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "name": "Outreach for YOUR_COMPANY_NAME",
            "nodes": [
                {"name": "Inbound", "type": "n8n-nodes-base.webhook",
                 "parameters": {"path": "ws-YOUR_WORKSPACE_ID", "httpMethod": "POST"}},
                {"name": "Send mail", "type": "n8n-nodes-base.gmail",
                 "parameters": {"sendTo": "={{$json.email}}", "message": "Hi, YOUR_NAME here. Book: YOUR_CALENDLY_LINK_1"},
                 "credentials": {"gmailOAuth2": {"id": "TEMPLATE_GMAIL_UUID", "name": "Template Gmail"}}},
                {"name": "Write lead", "type": "n8n-nodes-base.postgres",
                 "parameters": {"table": "YOUR_LEADS_TABLE"},
                 "credentials": {"postgres": {"id": "TEMPLATE_SUPABASE_UUID", "name": "Template DB"}}}
            ],
            "connections": {},
            "settings": {}
        })
    }

    fn mapping() -> TemplateMapping {
        let mut m = TemplateMapping::default();
        m.credentials.insert(
            "TEMPLATE_GMAIL_UUID".into(),
            CredentialRef {
                id: "gm1".into(),
                name: "Acme Gmail".into(),
            },
        );
        m.credentials.insert(
            "TEMPLATE_SUPABASE_UUID".into(),
            CredentialRef {
                id: "db1".into(),
                name: "Acme DB".into(),
            },
        );
        for (k, v) in [
            ("YOUR_COMPANY_NAME", "Acme"),
            ("YOUR_WORKSPACE_ID", "3f0c"),
            ("YOUR_NAME", "Ada"),
            ("YOUR_CALENDLY_LINK_1", "https://cal.example/ada"),
            ("YOUR_LEADS_TABLE", "genesis.leads_p_acme"),
        ] {
            m.variables.insert(k.into(), v.into());
        }
        m
    }

    #[test]
    fn template_variables_lists_what_a_mapping_must_give() {
        let vars = template_variables(&template());
        let want: BTreeSet<String> = [
            "YOUR_COMPANY_NAME",
            "YOUR_WORKSPACE_ID",
            "YOUR_NAME",
            "YOUR_CALENDLY_LINK_1",
            "YOUR_LEADS_TABLE",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(vars, want);
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let out = map_template(&template(), &mapping()).expect("maps");
        assert_eq!(out["name"], "Outreach for Acme");
        assert_eq!(out["nodes"][0]["parameters"]["path"], "ws-3f0c");
        assert_eq!(
            out["nodes"][1]["credentials"]["gmailOAuth2"],
            json!({"id": "gm1", "name": "Acme Gmail"})
        );
        assert_eq!(
            out["nodes"][1]["parameters"]["message"],
            "Hi, Ada here. Book: https://cal.example/ada"
        );
        assert_eq!(
            out["nodes"][2]["parameters"]["table"],
            "genesis.leads_p_acme"
        );
        let text = out.to_string();
        assert!(
            !text.contains("YOUR_") && !text.contains("TEMPLATE_"),
            "{text}"
        );
        let ids: BTreeSet<String> = ["gm1", "db1"].map(String::from).into();
        verify_credentials(&out, &ids).expect("all credentials exist");
    }

    #[test]
    fn what_is_left_unmapped_is_named_with_its_node() {
        let mut m = mapping();
        m.credentials.remove("TEMPLATE_SUPABASE_UUID");
        assert_eq!(
            map_template(&template(), &m),
            Err(MapError::UnmappedCredential {
                placeholder: "TEMPLATE_SUPABASE_UUID".into(),
                node: "Write lead".into()
            })
        );
        let mut m = mapping();
        m.variables.remove("YOUR_CALENDLY_LINK_1");
        assert_eq!(
            map_template(&template(), &m),
            Err(MapError::UnmappedVariable {
                placeholder: "YOUR_CALENDLY_LINK_1".into(),
                node: "Send mail".into()
            })
        );
        // A credential placeholder hidden elsewhere in a node is caught too.
        let mut t = template();
        t["nodes"][2]["parameters"]["note"] = json!("copy of TEMPLATE_OPENAI_UUID");
        assert!(matches!(
            map_template(&t, &mapping()),
            Err(MapError::UnmappedCredential { ref placeholder, .. }) if placeholder == "TEMPLATE_OPENAI_UUID"
        ));
        let out = map_template(&template(), &mapping()).expect("maps");
        let only_gmail: BTreeSet<String> = ["gm1"].map(String::from).into();
        assert_eq!(
            verify_credentials(&out, &only_gmail),
            Err(MapError::UnknownCredential {
                id: "db1".into(),
                kind: "postgres".into(),
                node: "Write lead".into()
            })
        );
        assert!(matches!(
            map_template(&json!({"name": "x"}), &mapping()),
            Err(MapError::NotAWorkflow(_))
        ));
    }
}
