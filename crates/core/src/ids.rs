//! Identifiers of tenants and droplets.
//!
//! A `WorkspaceId` is the tenant key that reaches SQL (`SET LOCAL app.workspace_id`), partition
//! bounds and advisory-lock keys, so it is only ever built from a strictly parsed UUID: the
//! hyphenated 36-character form, nothing else. A nil UUID is refused because it is the value a
//! forgotten default would produce.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Why a string is not an identifier; the message names what was wrong without echoing
/// arbitrary input back at length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// Nothing was given where an id was required.
    #[error("is empty")]
    Empty,
    /// The text is not a hyphenated UUID (8-4-4-4-12 hex digits).
    #[error("is not a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
    Malformed,
    /// The nil UUID is never a real tenant.
    #[error("is the nil UUID")]
    Nil,
}

fn parse_strict_uuid(raw: &str) -> Result<Uuid, IdParseError> {
    if raw.is_empty() {
        return Err(IdParseError::Empty);
    }
    // `Uuid::parse_str` also accepts braced, URN and simple forms; we accept one form only so
    // that an id has exactly one spelling in logs, URLs and SQL settings.
    if raw.len() != 36 {
        return Err(IdParseError::Malformed);
    }
    let uuid = Uuid::try_parse(raw).map_err(|_| IdParseError::Malformed)?;
    if uuid.is_nil() {
        return Err(IdParseError::Nil);
    }
    Ok(uuid)
}

/// The identity of one tenant (one workspace, one droplet, one lead partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct WorkspaceId(Uuid);

impl WorkspaceId {
    /// A fresh, time-ordered id (UUID v7), so ids created together sort together in indexes.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Strict parse of the hyphenated form; see the module doc for why only that form.
    pub fn parse(raw: &str) -> Result<Self, IdParseError> {
        parse_strict_uuid(raw).map(Self)
    }

    /// Wraps a UUID read back from our own database, where it was validated on the way in.
    /// Refuses nil for the same reason `parse` does.
    pub fn from_uuid(uuid: Uuid) -> Result<Self, IdParseError> {
        if uuid.is_nil() {
            return Err(IdParseError::Nil);
        }
        Ok(Self(uuid))
    }

    /// The underlying UUID, for binding as a SQL parameter.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The 32 lowercase hex digits, used to build short, unique, valid SQL identifiers
    /// (index and constraint names) that never depend on user-chosen text.
    pub fn simple_hex(&self) -> String {
        self.0.simple().to_string()
    }

    /// A stable 32-bit key for PostgreSQL advisory locks. Collisions only serialize two
    /// unrelated workspaces' DDL for a moment; they never break correctness.
    pub fn lock_key(&self) -> i32 {
        let b = self.0.as_bytes();
        let mut acc = 0u32;
        for chunk in b.chunks(4) {
            acc ^= u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        i32::from_be_bytes(acc.to_be_bytes())
    }
}

impl Default for WorkspaceId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for WorkspaceId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for WorkspaceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Our own identity of a droplet row (not DigitalOcean's numeric id, which is only known once
/// the cloud has accepted the create call and is stored beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct DropletId(Uuid);

impl DropletId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Strict parse of the hyphenated form.
    pub fn parse(raw: &str) -> Result<Self, IdParseError> {
        parse_strict_uuid(raw).map(Self)
    }

    /// Wraps a UUID read back from our own database.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The underlying UUID, for binding as a SQL parameter.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for DropletId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DropletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl<'de> Deserialize<'de> for DropletId {
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
    fn refuses_every_non_canonical_spelling() {
        let id = WorkspaceId::new();
        let u = id.as_uuid();
        assert!(WorkspaceId::parse(&u.hyphenated().to_string()).is_ok());
        assert_eq!(WorkspaceId::parse(""), Err(IdParseError::Empty));
        for other in [
            u.simple().to_string(),
            u.braced().to_string(),
            u.urn().to_string(),
            format!(" {}", u.hyphenated()),
            "'; drop table x; --".to_string(),
        ] {
            assert_eq!(
                WorkspaceId::parse(&other),
                Err(IdParseError::Malformed),
                "{other}"
            );
        }
        assert_eq!(
            WorkspaceId::parse("00000000-0000-0000-0000-000000000000"),
            Err(IdParseError::Nil)
        );
    }

    #[test]
    fn deserialization_goes_through_the_parser() {
        let bad: Result<WorkspaceId, _> = serde_json::from_str("\"not-a-uuid\"");
        assert!(bad.is_err());
        let id = WorkspaceId::new();
        let back: WorkspaceId = serde_json::from_str(&format!("\"{id}\"")).expect("valid id");
        assert_eq!(back, id);
    }

    proptest! {
        #[test]
        fn display_round_trips(bytes in any::<[u8; 16]>()) {
            prop_assume!(bytes != [0u8; 16]);
            let id = WorkspaceId::from_uuid(Uuid::from_bytes(bytes)).expect("non-nil");
            prop_assert_eq!(WorkspaceId::parse(&id.to_string()), Ok(id));
            prop_assert_eq!(id.simple_hex().len(), 32);
        }

        #[test]
        fn arbitrary_text_never_panics(raw in ".{0,80}") {
            let _ = WorkspaceId::parse(&raw);
        }
    }
}
