//! The wizard's AI keys (spec 60.1 stage 4): OpenAI's (the Golden Template's writer, so
//! required), Anthropic's and Relevance AI's (optional). Each is checked for its shape,
//! then live, with the cheapest call the vendor has that needs a valid key, all at once;
//! only when every given key works are they sealed in the vault, in the stage's
//! transaction. Pages show them masked.

use genesis_store::onboarding::{Confirmation, NewSecret, SavedStage, SecretKind};
use serde_json::json;

use super::tenant_access::Access;
use crate::providers::Providers;
use crate::{AppState, Problem};

/// Relevance AI's regions: code and where it is.
pub const RELEVANCE_REGIONS: [(&str, &str); 3] = [
    ("bcbe5a", "United States"),
    ("d7b62b", "Europe"),
    ("f1db6c", "Australia"),
];

/// The form as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AiKeysForm {
    /// OpenAI's key.
    #[serde(default)]
    pub openai_key: String,
    /// Anthropic's key (optional).
    #[serde(default)]
    pub anthropic_key: String,
    /// Relevance AI's region code (optional, with the two below).
    #[serde(default)]
    pub relevance_region: String,
    /// Relevance AI's project id.
    #[serde(default)]
    pub relevance_project: String,
    /// Relevance AI's key.
    #[serde(default)]
    pub relevance_key: String,
}

/// The keys, shapes checked.
#[derive(Debug, Clone)]
struct Keys {
    openai: String,
    anthropic: Option<String>,
    relevance: Option<(String, String, String)>,
}

fn key_chars(field: &str, v: &str) -> Result<(), Problem> {
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(Problem::invalid_field(
            field,
            "this is not a key: keys are letters, digits, '-' and '_' (check for spaces or \
             quotes copied with it)",
        ))
    }
}

fn shaped(field: &str, v: &str, prefix: &str, vendor: &str) -> Result<String, Problem> {
    let v = v.trim();
    key_chars(field, v)?;
    if !v.starts_with(prefix) || !(prefix.len() + 16..=400).contains(&v.len()) {
        return Err(Problem::invalid_field(
            field,
            format!("{vendor} keys start with \"{prefix}\" and are longer; copy the whole key"),
        ));
    }
    Ok(v.to_owned())
}

impl AiKeysForm {
    fn parse(&self) -> Result<Keys, Problem> {
        if self.openai_key.trim().is_empty() {
            return Err(Problem::invalid_field(
                "openai_key",
                "paste your OpenAI API key: the engine writes its emails with it",
            ));
        }
        let openai = shaped("openai_key", &self.openai_key, "sk-", "OpenAI")?;
        let anthropic = match self.anthropic_key.trim() {
            "" => None,
            k => Some(shaped("anthropic_key", k, "sk-ant-", "Anthropic")?),
        };
        let (region, project, key) = (
            self.relevance_region.trim(),
            self.relevance_project.trim(),
            self.relevance_key.trim(),
        );
        let relevance = if project.is_empty() && key.is_empty() {
            None
        } else {
            if !RELEVANCE_REGIONS.iter().any(|(c, _)| *c == region) {
                return Err(Problem::invalid_field(
                    "relevance_region",
                    "choose your Relevance AI project's region",
                ));
            }
            if uuid::Uuid::parse_str(project).is_err() {
                return Err(Problem::invalid_field(
                    "relevance_project",
                    "a Relevance AI project id looks like 1a2b3c4d-…; copy it from the API \
                     keys page",
                ));
            }
            let key = shaped("relevance_key", key, "sk-", "Relevance AI")?;
            Some((region.to_owned(), project.to_owned(), key))
        };
        Ok(Keys {
            openai,
            anthropic,
            relevance,
        })
    }
}

/// What may be shown of a key: its start and last four characters.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return "…".into();
    }
    let head: String = chars[..7].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// How a vendor answered a key.
enum Verdict {
    Works,
    Refused(String),
    Unreachable,
}

async fn judge(res: Result<reqwest::Response, reqwest::Error>, message_at: &[&str]) -> Verdict {
    let Ok(res) = res else {
        return Verdict::Unreachable;
    };
    match res.status().as_u16() {
        200..=299 => Verdict::Works,
        401 | 403 => {
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let said = message_at
                .iter()
                .find_map(|p| body.pointer(p).and_then(|m| m.as_str()))
                .unwrap_or("the key was refused")
                .chars()
                .take(200)
                .collect();
            Verdict::Refused(said)
        }
        _ => Verdict::Unreachable,
    }
}

async fn check_openai(p: &Providers, key: &str) -> Verdict {
    let res = p
        .http
        .get(format!("{}/v1/models", p.openai_url))
        .bearer_auth(key)
        .send()
        .await;
    judge(res, &["/error/message"]).await
}

async fn check_anthropic(p: &Providers, key: &str) -> Verdict {
    let res = p
        .http
        .get(format!("{}/v1/models", p.anthropic_url))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await;
    judge(res, &["/error/message"]).await
}

async fn check_relevance(
    p: &Providers,
    (region, project, key): &(String, String, String),
) -> Verdict {
    let base = p.relevance_url.replace("{region}", region);
    let res = p
        .http
        .post(format!("{base}/latest/agents/list"))
        .header("Authorization", format!("{project}:{key}"))
        .json(&json!({"page_size": 1}))
        .send()
        .await;
    judge(res, &["/message"]).await
}

fn answer(verdict: Verdict, field: &str, vendor: &str) -> Result<(), Problem> {
    match verdict {
        Verdict::Works => Ok(()),
        Verdict::Refused(said) => Err(Problem::invalid_field(
            field,
            format!(
                "{vendor} does not accept this key (it says: \"{said}\"); check you copied all \
                 of it, or make a new one"
            ),
        )),
        Verdict::Unreachable => Err(Problem::unavailable(format!(
            "{vendor} could not be reached to check your key; nothing was saved, try again in \
             a minute"
        ))
        .with_field(field)),
    }
}

/// Checks and saves the AI keys (owners). Answers the masked keys as saved.
pub async fn confirm(
    state: &AppState,
    db: &genesis_store::Database,
    access: &Access,
    form: &AiKeysForm,
) -> Result<serde_json::Value, Problem> {
    access.owner("set the workspace up")?;
    let keys = form.parse()?;
    let vault = super::wizard::vault(state)?;
    let p = &state.providers;
    let (openai, anthropic, relevance) = tokio::join!(
        check_openai(p, &keys.openai),
        async {
            match &keys.anthropic {
                Some(k) => Some(check_anthropic(p, k).await),
                None => None,
            }
        },
        async {
            match &keys.relevance {
                Some(r) => Some(check_relevance(p, r).await),
                None => None,
            }
        },
    );
    answer(openai, "openai_key", "OpenAI")?;
    if let Some(v) = anthropic {
        answer(v, "anthropic_key", "Anthropic")?;
    }
    if let Some(v) = relevance {
        answer(v, "relevance_key", "Relevance AI")?;
    }
    let openai_secret = json!({"apiKey": keys.openai}).to_string();
    let openai_hint = mask(&keys.openai);
    let anthropic_secret = keys
        .anthropic
        .as_ref()
        .map(|k| (json!({"apiKey": k}).to_string(), mask(k)));
    let relevance_secret = keys.relevance.as_ref().map(|(region, project, key)| {
        (
            json!({"region": region, "project": project, "apiKey": key}).to_string(),
            mask(key),
        )
    });
    let mut secrets = vec![NewSecret {
        kind: SecretKind::OpenAi,
        hint: &openai_hint,
        secret: openai_secret.as_bytes(),
    }];
    if let Some((s, h)) = &anthropic_secret {
        secrets.push(NewSecret {
            kind: SecretKind::Anthropic,
            hint: h,
            secret: s.as_bytes(),
        });
    }
    if let Some((s, h)) = &relevance_secret {
        secrets.push(NewSecret {
            kind: SecretKind::Relevance,
            hint: h,
            secret: s.as_bytes(),
        });
    }
    let value = json!({
        "openai": openai_hint,
        "anthropic": anthropic_secret.as_ref().map(|(_, h)| h),
        "relevance": keys.relevance.as_ref().map(|(region, project, _)| json!({"region": region, "project": project})),
    });
    db.onboarding_confirm(
        access.workspace.id,
        &Confirmation {
            stage: SavedStage::AiKeys,
            value: &value,
            template: &[],
            secrets: &secrets,
            keys: Some(vault),
        },
        &access.actor,
    )
    .await?;
    if access.workspace.status == genesis_core::WorkspaceStatus::Active {
        // A running engine's n8n holds the OpenAI key too: a new one goes there now (spec
        // 65.1, a tenant's own key update), or the page says it did not.
        super::tenant_credentials::update(
            state,
            access.workspace.id,
            "openai",
            &super::tenant_credentials::CredentialUpdate {
                data: json!({"apiKey": keys.openai}),
            },
            &access.actor,
        )
        .await?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> AiKeysForm {
        AiKeysForm {
            openai_key: format!("sk-proj-{}", "a".repeat(40)),
            ..AiKeysForm::default()
        }
    }

    #[test]
    fn each_wrong_key_is_named() {
        assert!(form().parse().is_ok());
        let cases = [
            (
                AiKeysForm {
                    openai_key: "".into(),
                    ..form()
                },
                "openai_key",
            ),
            (
                AiKeysForm {
                    openai_key: "pk-123".into(),
                    ..form()
                },
                "openai_key",
            ),
            (
                AiKeysForm {
                    openai_key: format!("\"sk-proj-{}\"", "a".repeat(40)),
                    ..form()
                },
                "openai_key",
            ),
            (
                AiKeysForm {
                    anthropic_key: format!("sk-{}", "a".repeat(40)),
                    ..form()
                },
                "anthropic_key",
            ),
            (
                AiKeysForm {
                    relevance_key: format!("sk-{}", "a".repeat(30)),
                    relevance_project: uuid::Uuid::nil().to_string(),
                    ..form()
                },
                "relevance_region",
            ),
            (
                AiKeysForm {
                    relevance_region: "d7b62b".into(),
                    relevance_project: "my project".into(),
                    relevance_key: format!("sk-{}", "a".repeat(30)),
                    ..form()
                },
                "relevance_project",
            ),
        ];
        for (f, field) in cases {
            assert_eq!(
                f.parse().err().and_then(|p| p.field).as_deref(),
                Some(field),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_mask_keeps_the_ends_only() {
        assert_eq!(mask("sk-proj-abcdefghijklmnop1234"), "sk-proj…1234");
        assert_eq!(mask("sk-short"), "…");
    }
}
