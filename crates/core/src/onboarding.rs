//! Onboarding values: what a tenant told us at sign-up that the Golden Template's variables
//! need (spec 53.3: `YOUR_SENDER_EMAIL`, `YOUR_NAME`, `YOUR_COMPANY_NAME`,
//! `YOUR_CALENDLY_LINK_1`). Keys are the placeholder without its `YOUR_` prefix, in lower
//! case (`sender_email` fills `YOUR_SENDER_EMAIL`), so a template can ask for a new value
//! without a schema change.
//!
//! # Guarantees
//! - Keys match `^[a-z0-9_]{1,40}$`; values are 1 to 500 characters with no control
//!   characters (they end up inside workflow JSON, e-mails and log lines).
//! - At most 32 values.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Parsed onboarding values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Onboarding(BTreeMap<String, String>);

/// Why onboarding values were refused; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnboardingError {
    /// A key is not `^[a-z0-9_]{1,40}$`.
    #[error("key {0:?} must be 1 to 40 of a-z, 0-9 and _")]
    BadKey(String),
    /// A value is empty, too long or has control characters.
    #[error("value of {0:?} must be 1 to 500 characters without control characters")]
    BadValue(String),
    /// More than 32 values.
    #[error("at most 32 values")]
    TooMany,
}

impl Onboarding {
    /// Parses raw key/value pairs.
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, OnboardingError> {
        if raw.len() > 32 {
            return Err(OnboardingError::TooMany);
        }
        for (k, v) in &raw {
            let key_ok = (1..=40).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                return Err(OnboardingError::BadKey(k.clone()));
            }
            let len = v.chars().count();
            if !(1..=500).contains(&len) || v.chars().any(char::is_control) {
                return Err(OnboardingError::BadValue(k.clone()));
            }
        }
        Ok(Self(raw))
    }

    /// The value for a template variable (`YOUR_SENDER_EMAIL` → `sender_email`), if given.
    pub fn for_placeholder(&self, placeholder: &str) -> Option<&str> {
        let key = placeholder.strip_prefix("YOUR_")?.to_ascii_lowercase();
        self.0.get(&key).map(String::as_str)
    }

    /// The values.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Onboarding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_find_their_values() {
        let o = Onboarding::parse(map(&[("sender_email", "ada@acme.example")])).expect("valid");
        assert_eq!(
            o.for_placeholder("YOUR_SENDER_EMAIL"),
            Some("ada@acme.example")
        );
        assert_eq!(o.for_placeholder("YOUR_NAME"), None);
        assert_eq!(o.for_placeholder("SENDER_EMAIL"), None);
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        assert_eq!(
            Onboarding::parse(map(&[("Sender", "x")])),
            Err(OnboardingError::BadKey("Sender".into()))
        );
        assert_eq!(
            Onboarding::parse(map(&[("name", "a\nb")])),
            Err(OnboardingError::BadValue("name".into()))
        );
        assert_eq!(
            Onboarding::parse(map(&[("name", "")])),
            Err(OnboardingError::BadValue("name".into()))
        );
        let many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(Onboarding::parse(many), Err(OnboardingError::TooMany));
    }
}
