//! What each kind of notification says, as a plain-text part and an HTML part.
//!
//! Every kind is written as one [`Letter`] (a heading, paragraphs, a list, one action), and
//! one renderer turns a letter into both parts: the two can never say different things, and
//! a new kind is a dozen lines. A body missing a field its template needs is an error, never
//! an e-mail with a hole in it: the sender dead-letters it, naming the field.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// The kinds of notification the platform sends, each with a template.
pub const KINDS: &[&str] = &[
    "IGNITION_FAILED",
    "HIBERNATION_NOTICE",
    "WALLET_LOW",
    "WALLET_EMPTY",
    "WALLET_TOPUP_FAILED",
    "CAMPAIGN_ERROR",
    "DELETION_REQUESTED",
    "DELETION_REMINDER",
    "EMAIL_VERIFICATION",
    "INVITATION",
    "WEBHOOK_SECRET_ROTATED",
    "SERVICE_DISRUPTION",
    "SERVICE_RESTORED",
    "SERVICE_MIGRATION",
];

/// Kinds a person may unsubscribe from: advice, not obligations. A verification link, an
/// invitation, a failed ignition or payment, the kill-switch and a deletion are always sent:
/// they are answers to what the person did, or what the contract and the law say they must
/// be told.
pub fn is_advisory(kind: &str) -> bool {
    matches!(kind, "HIBERNATION_NOTICE" | "WALLET_LOW" | "CAMPAIGN_ERROR")
}

/// A notification ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Why a notification could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No template for this kind.
    #[error("there is no e-mail template for notifications of kind {0}")]
    UnknownKind(String),
    /// The body lacks a field the template needs.
    #[error("the {kind} notification has no `{field}` field to fill its template with")]
    Missing {
        /// The kind.
        kind: String,
        /// The field.
        field: &'static str,
    },
}

/// What a notification is about, beyond its body.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The kind.
    pub kind: &'a str,
    /// The subject written with it.
    pub subject: &'a str,
    /// The template's fields.
    pub body: &'a Value,
    /// The workspace's name, if it is about one.
    pub workspace: Option<&'a str>,
    /// The dashboard's address, for links back.
    pub dashboard: &'a str,
    /// The one-click unsubscribe link, for advisory kinds.
    pub unsubscribe: Option<&'a str>,
}

/// One notification's content, before it is rendered as text and as HTML.
#[derive(Debug, Default)]
struct Letter {
    heading: String,
    paragraphs: Vec<String>,
    list: Vec<String>,
    action: Option<(String, String)>,
}

/// Writes `ctx`'s notification.
pub fn render(ctx: &Context<'_>) -> Result<Rendered, TemplateError> {
    let letter = letter(ctx)?;
    Ok(Rendered {
        subject: ctx.subject.to_owned(),
        text: text(&letter, ctx),
        html: markup(&letter, ctx).into_string(),
    })
}

fn field<'a>(ctx: &Context<'a>, name: &'static str) -> Result<&'a str, TemplateError> {
    ctx.body
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TemplateError::Missing {
            kind: ctx.kind.to_owned(),
            field: name,
        })
}

fn optional<'a>(ctx: &Context<'a>, name: &str) -> Option<&'a str> {
    ctx.body
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn workspace_words(ctx: &Context<'_>) -> String {
    ctx.workspace
        .map(|w| format!("your workspace “{w}”"))
        .unwrap_or_else(|| "your workspace".to_owned())
}

fn letter(ctx: &Context<'_>) -> Result<Letter, TemplateError> {
    let ws = workspace_words(ctx);
    let dashboard = ctx.dashboard.trim_end_matches('/');
    let open = |label: &str| Some((label.to_owned(), format!("{dashboard}/app")));
    Ok(match ctx.kind {
        "IGNITION_FAILED" => Letter {
            heading: "Your workspace could not be started".into(),
            paragraphs: vec![
                format!("We could not start {ws}, and we removed everything the attempt made."),
                format!("What happened: {}", field(ctx, "reason")?),
            ],
            list: ctx
                .body
                .get("troubleshooting")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            action: open("Try again"),
        },
        "HIBERNATION_NOTICE" => Letter {
            heading: "Your instance will hibernate in 24 hours".into(),
            paragraphs: vec![
                format!(
                    "{} has been quiet: {}.",
                    capitalise(&ws),
                    field(ctx, "reason")?
                ),
                "Hibernating stops your server's running costs; your data, workflows and \
                 settings are kept, and it wakes when you come back."
                    .into(),
                format!("To keep it awake: {}.", field(ctx, "keep_awake")?),
            ],
            list: vec![],
            action: open("Keep it awake"),
        },
        "WALLET_LOW" => Letter {
            heading: "Your wallet is running low".into(),
            paragraphs: vec![
                format!(
                    "The wallet of {ws} holds {}. Managed services (searches, AI, \
                     verification) stop when it is empty.",
                    field(ctx, "available")?
                ),
                "Top it up, or turn on automatic top-ups, to keep your campaigns going.".into(),
            ],
            list: vec![],
            action: open("Top up"),
        },
        "WALLET_EMPTY" => Letter {
            heading: "Managed services are paused".into(),
            paragraphs: vec![
                format!(
                    "The wallet of {ws} is empty ({}): managed calls are refused until it \
                     is topped up. Your workflows keep running; the steps that use managed \
                     services fail until then.",
                    field(ctx, "available")?
                ),
                "Nothing else is charged and nothing is lost.".into(),
            ],
            list: vec![],
            action: open("Top up now"),
        },
        "WALLET_TOPUP_FAILED" => Letter {
            heading: "Your automatic top-up did not go through".into(),
            paragraphs: vec![
                format!("We tried to top up the wallet of {ws}, and the payment was refused."),
                format!("The reason given: {}", field(ctx, "reason")?),
                "Check your payment method; we will not try again until you do.".into(),
            ],
            list: vec![],
            action: open("Check payment method"),
        },
        "CAMPAIGN_ERROR" => Letter {
            heading: "A workflow of yours stopped".into(),
            paragraphs: vec![
                format!(
                    "The {} workflow of {ws} stopped: {}.",
                    field(ctx, "key")?,
                    field(ctx, "reason")?
                ),
                "Your other workflows are not affected.".into(),
            ],
            list: vec![],
            action: open("Open your campaigns"),
        },
        "DELETION_REQUESTED" => Letter {
            heading: "Your workspace will be deleted".into(),
            paragraphs: vec![
                format!(
                    "{} will be deleted for good on {}. Until then you can change your mind.",
                    capitalise(&ws),
                    field(ctx, "deletes_at")?
                ),
                match optional(ctx, "export_link") {
                    Some(link) => format!("Download everything first: your export is at {link}"),
                    None => "Download everything first: your dashboard makes an export of all \
                             your data."
                        .into(),
                },
            ],
            list: vec![],
            action: open("Cancel the deletion"),
        },
        "DELETION_REMINDER" => Letter {
            heading: "A reminder: your workspace will be deleted".into(),
            paragraphs: vec![
                format!(
                    "{} will be deleted for good on {}.",
                    capitalise(&ws),
                    field(ctx, "deletes_at")?
                ),
                match optional(ctx, "export_link") {
                    Some(link) => format!("Your export is still at {link}"),
                    None => "You can still download an export from your dashboard.".into(),
                },
            ],
            list: vec![],
            action: open("Cancel the deletion"),
        },
        "EMAIL_VERIFICATION" => Letter {
            heading: "Confirm your e-mail address".into(),
            paragraphs: vec![
                "Someone (we hope you) signed up to Genesis with this address. Follow the \
                 link to confirm it; if it was not you, ignore this message."
                    .into(),
                format!("The link works until {}.", field(ctx, "expires_at")?),
            ],
            list: vec![],
            action: Some(("Confirm my address".into(), field(ctx, "link")?.to_owned())),
        },
        "INVITATION" => Letter {
            heading: "You are invited to a Genesis workspace".into(),
            paragraphs: vec![
                format!("You have been invited to join {ws} on Genesis."),
                format!("The invitation works until {}.", field(ctx, "expires_at")?),
            ],
            list: vec![],
            action: Some((
                "Accept the invitation".into(),
                field(ctx, "link")?.to_owned(),
            )),
        },
        "WEBHOOK_SECRET_ROTATED" => Letter {
            heading: "Your webhook signing secret has been renewed".into(),
            paragraphs: vec![
                format!(
                    "As every 90 days, the secret that signs the events we send to {} \
                     was renewed.",
                    field(ctx, "url")?
                ),
                format!(
                    "Until {}, every event carries two signatures, one per secret, so your \
                     receiver keeps working. Before then, show the new secret once on your \
                     workspace's Webhooks page and give it to your receiver.",
                    field(ctx, "previous_valid_until")?
                ),
            ],
            list: vec![],
            action: open("Show the new secret"),
        },
        "SERVICE_DISRUPTION" => Letter {
            heading: "Your automation engine is down; we are restoring it".into(),
            paragraphs: vec![
                format!(
                    "The datacenter that runs {ws} ({}) has failed. We are bringing it back in \
                     another datacenter; you need do nothing.",
                    field(ctx, "datacenter")?
                ),
                match field(ctx, "backup_from") {
                    Ok(at) => format!(
                        "It comes back from its backup of {at}: what it did after that may \
                         have to be done again. We will write when it runs."
                    ),
                    Err(_) => "It has no recent backup, so it is set up afresh with your \
                               credentials and workflows; its run history is lost. We will \
                               write when it runs."
                        .into(),
                },
            ],
            list: vec![],
            action: open("See its status"),
        },
        "SERVICE_RESTORED" => Letter {
            heading: "Your automation engine is back".into(),
            paragraphs: vec![
                format!(
                    "{} runs again, with its credentials and workflows.",
                    capitalise(&ws)
                ),
                match field(ctx, "lost_after") {
                    Ok(at) if ctx.body.get("migrated").and_then(|m| m.as_bool()) == Some(true) => {
                        format!(
                            "It moved home from its snapshot of {at}: anything it did in the \
                             minutes after that, during the move, has to be done again."
                        )
                    }
                    Ok(at) => format!(
                        "It was restored from its backup of {at}: anything it did after \
                         that, during the outage, has to be done again."
                    ),
                    Err(_) => "It was set up afresh: its earlier run history is lost.".into(),
                },
            ],
            list: vec![],
            action: open("Open your dashboard"),
        },
        "SERVICE_MIGRATION" => Letter {
            heading: "Your automation engine is moving back to its home region".into(),
            paragraphs: vec![
                format!(
                    "Its home datacenter ({}) is back, so {ws} moves there from {}, where it \
                     ran during the outage. You need do nothing.",
                    field(ctx, "to")?,
                    field(ctx, "from")?
                ),
                "It pauses for a few minutes while it moves: what arrives in that time may \
                 have to be sent again. We will write when it runs."
                    .into(),
            ],
            list: vec![],
            action: open("See its status"),
        },
        other => return Err(TemplateError::UnknownKind(other.to_owned())),
    })
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn text(letter: &Letter, ctx: &Context<'_>) -> String {
    let mut out = format!("{}\n\n", letter.heading);
    for p in &letter.paragraphs {
        out.push_str(p);
        out.push_str("\n\n");
    }
    for item in &letter.list {
        out.push_str("- ");
        out.push_str(item);
        out.push('\n');
    }
    if !letter.list.is_empty() {
        out.push('\n');
    }
    if let Some((label, url)) = &letter.action {
        out.push_str(&format!("{label}: {url}\n\n"));
    }
    out.push_str("-- \nGenesis\n");
    if let Some(url) = ctx.unsubscribe {
        out.push_str(&format!("Stop these notices: {url}\n"));
    }
    out
}

fn markup(letter: &Letter, ctx: &Context<'_>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (ctx.subject) }
            }
            body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; color: #1a1a1a" {
                h1 style="font-size: 1.3em" { (letter.heading) }
                @for p in &letter.paragraphs { p { (p) } }
                @if !letter.list.is_empty() {
                    ul { @for item in &letter.list { li { (item) } } }
                }
                @if let Some((label, url)) = &letter.action {
                    p { a href=(url) style="font-weight: bold" { (label) } }
                }
                hr;
                p style="color: #666; font-size: 0.85em" {
                    "Genesis"
                    @if let Some(url) = ctx.unsubscribe {
                        " · " a href=(url) { "Stop these notices" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(kind: &str) -> Value {
        json!({
            "reason": "the cloud did not answer",
            "troubleshooting": ["Try again in a few minutes."],
            "keep_awake": "sign in",
            "available": "$4.50",
            "level": "low_5",
            "key": "outreach",
            "workflow_id": "w1",
            "deletes_at": "2026-12-14",
            "export_link": "https://genesis.test/exports/1",
            "link": format!("https://genesis.test/{kind}/link"),
            "expires_at": "2026-12-08T10:00:00Z",
            "url": "https://hooks.acme.test/genesis",
            "previous_valid_until": "2026-12-14 10:00 UTC",
            "datacenter": "fra1",
            "backup_from": "2026-12-07 03:00 UTC",
            "lost_after": "2026-12-07 03:00 UTC",
            "from": "lon1",
            "to": "fra1",
        })
    }

    fn ctx<'a>(kind: &'a str, body: &'a Value, unsubscribe: Option<&'a str>) -> Context<'a> {
        Context {
            kind,
            subject: "A subject",
            body,
            workspace: Some("Acme <Outreach>"),
            dashboard: "https://genesis.test/",
            unsubscribe,
        }
    }

    #[test]
    fn every_kind_renders_both_parts_with_the_same_words() {
        for kind in KINDS {
            let body = sample(kind);
            let r = render(&ctx(kind, &body, None)).expect(kind);
            let heading = r.text.lines().next().expect("a heading");
            assert!(r.html.contains(heading), "{kind}: html lacks {heading:?}");
            assert!(r.text.contains("Genesis"), "{kind}");
            assert!(
                !r.text.contains("{"),
                "{kind}: a placeholder left in {:?}",
                r.text
            );
        }
    }

    #[test]
    fn html_escapes_what_a_tenant_named() {
        let body = sample("IGNITION_FAILED");
        let r = render(&ctx("IGNITION_FAILED", &body, None)).expect("renders");
        assert!(r.html.contains("Acme &lt;Outreach&gt;"), "{}", r.html);
        assert!(!r.html.contains("<Outreach>"));
        assert!(r.text.contains("Acme <Outreach>"));
    }

    #[test]
    fn a_missing_field_is_an_error_naming_it_not_a_hole() {
        let body = json!({ "level": "low_5" });
        let err = render(&ctx("WALLET_LOW", &body, None)).expect_err("no amount");
        assert_eq!(
            err,
            TemplateError::Missing {
                kind: "WALLET_LOW".into(),
                field: "available"
            }
        );
        let err = render(&ctx("SOMETHING_NEW", &body, None)).expect_err("unknown");
        assert!(err.to_string().contains("SOMETHING_NEW"));
    }

    #[test]
    fn only_advisory_kinds_carry_the_unsubscribe_link() {
        assert!(is_advisory("WALLET_LOW"));
        assert!(!is_advisory("WALLET_EMPTY"));
        assert!(!is_advisory("EMAIL_VERIFICATION"));
        assert!(!is_advisory("DELETION_REQUESTED"));
        let body = sample("WALLET_LOW");
        let r = render(&ctx(
            "WALLET_LOW",
            &body,
            Some("https://genesis.test/u?t=x"),
        ))
        .expect("ok");
        assert!(r.text.contains("https://genesis.test/u?t=x"));
        assert!(r.html.contains("https://genesis.test/u?t=x"));
    }
}
