//! Data-residency regions (spec 62.1). A region decides which database holds a tenant's
//! personal data and which DigitalOcean datacenters may host its droplet.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of the five residency regions of spec 62.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Virginia (DigitalOcean nyc1/nyc3).
    UsEast,
    /// San Francisco (sfo1/sfo3).
    UsWest,
    /// Frankfurt (fra1).
    EuWest,
    /// London (lon1).
    EuNorth,
    /// Singapore (sgp1).
    Apac,
}

/// A region code that is not one of spec 62.1's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {given:?}; expected one of us-east, us-west, eu-west, eu-north, apac")]
pub struct RegionParseError {
    /// What was given (truncated to 40 characters so logs stay bounded).
    pub given: String,
}

impl Region {
    /// Every region, in the order of the spec's table.
    pub const ALL: [Region; 5] = [
        Region::UsEast,
        Region::UsWest,
        Region::EuWest,
        Region::EuNorth,
        Region::Apac,
    ];

    /// The stable code used in config, APIs and the database.
    pub fn code(self) -> &'static str {
        match self {
            Region::UsEast => "us-east",
            Region::UsWest => "us-west",
            Region::EuWest => "eu-west",
            Region::EuNorth => "eu-north",
            Region::Apac => "apac",
        }
    }

    /// DigitalOcean datacenter slugs allowed for droplets of this region, preferred first.
    pub fn datacenters(self) -> &'static [&'static str] {
        match self {
            Region::UsEast => &["nyc3", "nyc1"],
            Region::UsWest => &["sfo3", "sfo1"],
            Region::EuWest => &["fra1"],
            Region::EuNorth => &["lon1"],
            Region::Apac => &["sgp1"],
        }
    }

    /// Parses a region code.
    pub fn parse(raw: &str) -> Result<Self, RegionParseError> {
        Region::ALL
            .into_iter()
            .find(|r| r.code() == raw)
            .ok_or_else(|| RegionParseError {
                given: raw.chars().take(40).collect(),
            })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Region {
    type Err = RegionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_refused() {
        for r in Region::ALL {
            assert_eq!(Region::parse(r.code()), Ok(r));
            assert!(!r.datacenters().is_empty());
        }
        assert!(Region::parse("mars-1").is_err());
        assert!(Region::parse("US-EAST").is_err());
    }
}
