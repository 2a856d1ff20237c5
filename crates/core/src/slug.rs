//! Workspace slugs: the only user-chosen text that ever becomes part of a SQL identifier
//! (`genesis.leads_p_<slug>`, spec 40.3).
//!
//! A `Slug` can only be built by [`Slug::parse`], which accepts `^[a-z0-9_]{1,50}$` and nothing
//! else, so injection through a partition name is impossible by construction. Identifiers are
//! still quoted when they reach SQL (defence in depth).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest slug allowed: `leads_p_` plus 50 characters stays under PostgreSQL's 63-byte
/// identifier limit, so names are never silently truncated into collisions.
pub const MAX_SLUG_LEN: usize = 50;

/// Why a string is not a slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// Empty slugs would produce the bare name `leads_p_`.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_SLUG_LEN`].
    #[error("is {len} characters long; at most {MAX_SLUG_LEN} are allowed")]
    TooLong {
        /// The length that was given, in characters.
        len: usize,
    },
    /// Contains a character outside `a-z`, `0-9`, `_`.
    #[error("{found:?} is not allowed: use lowercase letters, digits and '_'")]
    BadCharacter {
        /// The first offending character.
        found: char,
    },
}

/// A validated workspace slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug; see the module doc for the grammar.
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        if raw.is_empty() {
            return Err(SlugError::Empty);
        }
        if let Some(found) = raw
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(SlugError::BadCharacter { found });
        }
        // Only ASCII remains, so bytes == characters.
        if raw.len() > MAX_SLUG_LEN {
            return Err(SlugError::TooLong { len: raw.len() });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unqualified name of this workspace's lead partition (spec 40.3).
    pub fn partition_table(&self) -> String {
        format!("leads_p_{}", self.0)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
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
    fn refuses_injection_and_bad_shapes() {
        assert_eq!(Slug::parse(""), Err(SlugError::Empty));
        assert_eq!(
            Slug::parse("a;drop table x"),
            Err(SlugError::BadCharacter { found: ';' })
        );
        assert_eq!(
            Slug::parse("A"),
            Err(SlugError::BadCharacter { found: 'A' })
        );
        assert_eq!(
            Slug::parse("x\"y"),
            Err(SlugError::BadCharacter { found: '"' })
        );
        assert_eq!(
            Slug::parse(&"a".repeat(51)),
            Err(SlugError::TooLong { len: 51 })
        );
        assert_eq!(
            Slug::parse("é"),
            Err(SlugError::BadCharacter { found: 'é' })
        );
        assert!(Slug::parse(&"a".repeat(50)).is_ok());
        assert_eq!(
            Slug::parse("acme_corp").map(|s| s.partition_table()),
            Ok("leads_p_acme_corp".to_string())
        );
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_grammar(raw in "[a-z0-9_]{1,50}") {
            let slug = Slug::parse(&raw).expect("grammar-conforming slug");
            prop_assert!(slug.partition_table().len() <= 63);
        }

        #[test]
        fn anything_accepted_matches_the_grammar(raw in "\\PC{0,60}") {
            if let Ok(slug) = Slug::parse(&raw) {
                let s = slug.as_str();
                prop_assert!(!s.is_empty() && s.len() <= MAX_SLUG_LEN);
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            }
        }
    }
}
