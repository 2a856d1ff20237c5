//! Where n8n 2.8.4 serves a workflow's production webhooks, by its own rules.
//!
//! n8n registers a Webhook node at a path that depends on whether the node carries a
//! `webhookId` (read from `n8n-workflow`'s `getNodeWebhookPath` and `n8n`'s
//! `WebhookService.getNodeWebhooks`, and checked against a running n8n 2.8.4):
//! - with a `webhookId`, the node's `path` parameter is the whole path (the Webhook node's
//!   description says `isFullPath`), or the `webhookId` when the path is empty;
//! - without one, the path is `{workflowId}/{encodeURIComponent(lowercase node name)}/{path}`.
//!   The registered path then holds percent signs (`lead%20webhook`), and n8n matches it
//!   against the *decoded* request path, so the URL that reaches it encodes them again
//!   (`lead%2520webhook`). n8n's own editor shows the single-encoded URL, which answers 404.
//!
//! A leading or trailing `/` of the `path` parameter is dropped, `httpMethod` defaults to GET
//! (and may list several methods, comma-separated), and a disabled node registers nothing.
//! A path with `:parameters` is served under the `webhookId` (`{webhookId}/{path}`); its URL
//! is reported with the parameters left in, as a template.
//!
//! The Golden Template gives every trigger a stable `webhookId`, so its URLs do not depend on
//! the id n8n gives the workflow; the rule without one is kept for workflows made elsewhere.

use serde_json::Value;

/// The node type of n8n's Webhook trigger.
pub const WEBHOOK_NODE: &str = "n8n-nodes-base.webhook";

/// One production webhook of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionWebhook {
    /// HTTP method, upper case.
    pub method: String,
    /// The node that listens.
    pub node: String,
    /// The path n8n registers (after `/webhook/`), as it compares it with a decoded request
    /// path.
    pub path: String,
    /// Whether the path has `:parameters` (it then lives under the node's `webhookId`).
    pub dynamic: bool,
}

impl ProductionWebhook {
    /// The URL that reaches this webhook under `base` (n8n's `WEBHOOK_URL`, no trailing
    /// slash needed).
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/webhook/{}",
            base.trim_end_matches('/'),
            self.path.replace('%', "%25")
        )
    }

    /// Whether a request for `method` at the decoded path `request_path` (after `/webhook/`)
    /// is this webhook's.
    pub fn matches(&self, method: &str, request_path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let wanted = self.path.trim_matches('/');
        let got = request_path.trim_matches('/');
        if !self.dynamic {
            return wanted == got;
        }
        let (w, g): (Vec<&str>, Vec<&str>) =
            (wanted.split('/').collect(), got.split('/').collect());
        w.len() == g.len()
            && w.iter()
                .zip(&g)
                .all(|(w, g)| (w.starts_with(':') && !g.is_empty()) || w == g)
    }
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is
/// percent-encoded as UTF-8.
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_dynamic(path: &str) -> bool {
    path.starts_with(':') || path.contains("/:")
}

/// The production webhooks of a workflow whose id is `workflow_id` and whose nodes are
/// `nodes`, as n8n 2.8.4 registers them when the workflow is active. A Webhook node whose
/// path is an expression is left out: n8n resolves it at activation, which this crate does
/// not do.
pub fn production_webhooks(workflow_id: &str, nodes: &[Value]) -> Vec<ProductionWebhook> {
    let mut out = Vec::new();
    for node in nodes {
        if node.get("type").and_then(Value::as_str) != Some(WEBHOOK_NODE)
            || node.get("disabled").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let name = node.get("name").and_then(Value::as_str).unwrap_or_default();
        let params = node.get("parameters");
        let raw = params
            .and_then(|p| p.get("path"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if raw.starts_with('=') {
            continue;
        }
        let path = raw.strip_prefix('/').unwrap_or(raw);
        let path = path.strip_suffix('/').unwrap_or(path);
        let webhook_id = node
            .get("webhookId")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty());
        let dynamic = is_dynamic(path);
        let registered = match webhook_id {
            Some(id) if dynamic => format!("{id}/{path}"),
            Some(id) if path.is_empty() => id.to_owned(),
            Some(_) => path.to_owned(),
            None => format!(
                "{workflow_id}/{}/{path}",
                encode_uri_component(&name.to_lowercase())
            ),
        };
        let methods = params
            .and_then(|p| p.get("httpMethod"))
            .and_then(Value::as_str)
            .unwrap_or("GET");
        for method in methods.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            out.push(ProductionWebhook {
                method: method.to_uppercase(),
                node: name.to_owned(),
                path: registered.clone(),
                dynamic,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(name: &str, path: &str, webhook_id: Option<&str>) -> Value {
        let mut n = json!({
            "name": name, "type": WEBHOOK_NODE, "typeVersion": 2, "position": [0, 0],
            "parameters": {"path": path, "httpMethod": "POST"}
        });
        if let Some(id) = webhook_id {
            n["webhookId"] = json!(id);
        }
        n
    }

    /// Both cases as a running n8n 2.8.4 served them (found by hand with curl, and kept true
    /// by the sidecar suite against the real n8n).
    #[test]
    fn paths_follow_n8n_with_and_without_a_webhook_id() {
        let with = production_webhooks(
            "KsNWSvhgPNQsNHCy",
            &[hook("Lead webhook", "leads-b", Some("3f0c"))],
        );
        assert_eq!(with[0].path, "leads-b");
        assert_eq!(
            with[0].url("http://n8n:5678/"),
            "http://n8n:5678/webhook/leads-b"
        );
        let without = production_webhooks(
            "KsNWSvhgPNQsNHCy",
            &[hook("Lead webhook", "/leads-a/", None)],
        );
        assert_eq!(without[0].path, "KsNWSvhgPNQsNHCy/lead%20webhook/leads-a");
        assert_eq!(
            without[0].url("http://n8n:5678"),
            "http://n8n:5678/webhook/KsNWSvhgPNQsNHCy/lead%2520webhook/leads-a"
        );
        assert!(without[0].matches("post", "KsNWSvhgPNQsNHCy/lead%20webhook/leads-a"));
        assert!(!without[0].matches("POST", "KsNWSvhgPNQsNHCy/lead webhook/leads-a"));
        let empty = production_webhooks("w", &[hook("Hook", "", Some("abcd"))]);
        assert_eq!(empty[0].path, "abcd");
    }

    #[test]
    fn dynamic_paths_live_under_the_webhook_id_and_match_by_segment() {
        let h = &production_webhooks("w", &[hook("Hook", "users/:id", Some("abcd"))])[0];
        assert_eq!(h.path, "abcd/users/:id");
        assert!(h.matches("POST", "abcd/users/42"));
        assert!(!h.matches("POST", "abcd/users"));
        assert!(!h.matches("POST", "abcd/people/42"));
    }

    #[test]
    fn disabled_expression_and_other_nodes_register_nothing_and_methods_split() {
        let mut off = hook("Off", "x", Some("1"));
        off["disabled"] = json!(true);
        let expr = hook("Expr", "={{ $json.p }}", Some("2"));
        let other =
            json!({"name": "Cron", "type": "n8n-nodes-base.scheduleTrigger", "parameters": {}});
        let mut both = hook("Both", "y", Some("3"));
        both["parameters"]["httpMethod"] = json!("GET, POST");
        let mut default = hook("Default", "z", Some("4"));
        default["parameters"]
            .as_object_mut()
            .map(|p| p.remove("httpMethod"));
        let hooks = production_webhooks("w", &[off, expr, other, both, default]);
        let got: Vec<(&str, &str)> = hooks
            .iter()
            .map(|h| (h.method.as_str(), h.path.as_str()))
            .collect();
        assert_eq!(got, [("GET", "y"), ("POST", "y"), ("GET", "z")]);
    }

    #[test]
    fn encode_uri_component_is_javascripts() {
        assert_eq!(encode_uri_component("lead webhook"), "lead%20webhook");
        assert_eq!(encode_uri_component("a/b?c=d&e"), "a%2Fb%3Fc%3Dd%26e");
        assert_eq!(encode_uri_component("it's (ok)!~*"), "it's%20(ok)!~*");
        assert_eq!(encode_uri_component("é"), "%C3%A9");
    }
}
