//! Lead fields that arrive from tenants' imports and APIs and must be parsed before storage.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A lead's e-mail address, trimmed and lower-cased so that the per-workspace uniqueness of
/// addresses is case-insensitive without a functional index.
///
/// The check is deliberately shallow (one `@`, a dotted domain, no spaces or control
/// characters, at most 320 bytes): deliverability is decided by the mail provider, not here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a usable e-mail address ({reason})")]
pub struct EmailError {
    /// What was wrong.
    pub reason: &'static str,
}

impl Email {
    /// Parses and normalizes an address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim().to_lowercase();
        let fail = |reason| Err(EmailError { reason });
        if s.len() < 3 || s.len() > 320 {
            return fail("length must be 3 to 320");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("contains whitespace or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return fail("missing '@'");
        };
        if local.is_empty() || domain.contains('@') {
            return fail("needs exactly one '@' with text before it");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return fail("domain needs a dot between labels");
        }
        Ok(Self(s))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Where a lead is in the outreach funnel. Stored as text with a CHECK constraint that lists
/// the same codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeadStatus {
    /// Imported, not yet contacted.
    New,
    /// At least one message sent.
    Contacted,
    /// The lead answered.
    Replied,
    /// A meeting was booked.
    Booked,
    /// The address bounced.
    Bounced,
    /// The lead asked not to be contacted.
    Unsubscribed,
}

/// A status code that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown lead status {given:?}; expected one of new, contacted, replied, booked, bounced, unsubscribed"
)]
pub struct LeadStatusError {
    /// What was given (truncated to 40 characters).
    pub given: String,
}

impl LeadStatus {
    /// Every status.
    pub const ALL: [LeadStatus; 6] = [
        LeadStatus::New,
        LeadStatus::Contacted,
        LeadStatus::Replied,
        LeadStatus::Booked,
        LeadStatus::Bounced,
        LeadStatus::Unsubscribed,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Contacted => "contacted",
            LeadStatus::Replied => "replied",
            LeadStatus::Booked => "booked",
            LeadStatus::Bounced => "bounced",
            LeadStatus::Unsubscribed => "unsubscribed",
        }
    }

    /// Parses a code.
    pub fn parse(raw: &str) -> Result<Self, LeadStatusError> {
        LeadStatus::ALL
            .into_iter()
            .find(|s| s.code() == raw)
            .ok_or_else(|| LeadStatusError {
                given: raw.chars().take(40).collect(),
            })
    }
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for LeadStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for LeadStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.to_string()),
            Ok("ada@example.com".into())
        );
        for bad in [
            "",
            "a@b",
            "no-at.example.com",
            "@x.com",
            "a@@x.com",
            "a b@x.com",
            "a@x.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_is_idempotent(raw in "\\PC{0,40}") {
            if let Ok(e) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            }
        }
    }
}
