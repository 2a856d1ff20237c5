//! Service tiers (spec 55.4's pre-warming matrix). The tier decides hibernation and
//! pre-warming policy, so it is a closed set rather than free text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tenant's service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Hibernates when idle; standard wake (< 60 s).
    Standard,
    /// Hibernates, but is pre-warmed or served from the hot-standby pool (< 5 s).
    HighPriority,
    /// Never hibernates.
    Enterprise,
}

/// A tier code that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {given:?}; expected one of standard, high-priority, enterprise")]
pub struct TierParseError {
    /// What was given (truncated to 40 characters).
    pub given: String,
}

impl Tier {
    /// Every tier.
    pub const ALL: [Tier; 3] = [Tier::Standard, Tier::HighPriority, Tier::Enterprise];

    /// The stable code used in config, APIs and the database.
    pub fn code(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::HighPriority => "high-priority",
            Tier::Enterprise => "enterprise",
        }
    }

    /// Parses a tier code.
    pub fn parse(raw: &str) -> Result<Self, TierParseError> {
        Tier::ALL
            .into_iter()
            .find(|t| t.code() == raw)
            .ok_or_else(|| TierParseError {
                given: raw.chars().take(40).collect(),
            })
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Tier {
    type Err = TierParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Tier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Tier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.code()), Ok(t));
        }
        assert!(Tier::parse("gold").is_err());
    }
}
