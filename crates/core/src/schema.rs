//! OpenAPI schemas of the domain types whose JSON form the derive cannot see.
//!
//! `Region`, `Tier` and `LeadStatus` serialize through hand-written `Serialize` impls as their
//! codes, and `Slug`, `WorkspaceName` and `Email` are strings with rules that the API
//! contract should state. Their schemas are written here, next to the rules they describe,
//! and built from the same constants (`ALL`, `code()`, `MAX_SLUG_LEN`), so that the published
//! contract cannot drift from what the parsers accept.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::{Email, LeadStatus, Region, Slug, Tier, WorkspaceName, slug::MAX_SLUG_LEN};

/// These schemas are published under the types' own names.
macro_rules! named {
    ($($ty:ident),*) => {$(
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    )*};
}

named!(Region, Tier, LeadStatus, Slug, WorkspaceName, Email);

/// A string schema restricted to `codes`.
fn codes(description: &str, codes: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(codes))
        .into()
}

impl PartialSchema for Region {
    fn schema() -> RefOr<Schema> {
        codes(
            "A data-residency region (spec 62.1).",
            Region::ALL.iter().map(|r| r.code()),
        )
    }
}

impl PartialSchema for Tier {
    fn schema() -> RefOr<Schema> {
        codes(
            "A tenant's service tier.",
            Tier::ALL.iter().map(|t| t.code()),
        )
    }
}

impl PartialSchema for LeadStatus {
    fn schema() -> RefOr<Schema> {
        codes(
            "Where a lead is in the outreach funnel.",
            LeadStatus::ALL.iter().map(|s| s.code()),
        )
    }
}

impl PartialSchema for Slug {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A workspace's unique short name: lowercase letters, digits and '_'.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_SLUG_LEN))
            .pattern(Some(format!("^[a-z0-9_]{{1,{MAX_SLUG_LEN}}}$")))
            .into()
    }
}

/// A workspace as a path names it: its id or its slug (operators type either).
///
/// Only a schema: handlers resolve the text themselves (`app::workspaces::resolve`).
pub struct WorkspaceRef;

impl ToSchema for WorkspaceRef {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WorkspaceRef")
    }
}

impl PartialSchema for WorkspaceRef {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .description(Some("A workspace's id, or its slug."))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .item(Slug::schema())
            .into()
    }
}

impl PartialSchema for WorkspaceName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A display name: 1 to 200 characters, without control or invisible formatting \
                 characters.",
            ))
            .min_length(Some(1))
            .max_length(Some(200))
            .into()
    }
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .min_length(Some(3))
            .max_length(Some(320))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published codes are the ones the parser accepts, and nothing else.
    #[test]
    fn region_schema_lists_exactly_the_parseable_codes() {
        let RefOr::T(Schema::Object(o)) = Region::schema() else {
            panic!("region schema is not an inline object schema");
        };
        let listed: Vec<String> = o
            .enum_values
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(listed.len(), Region::ALL.len());
        for code in &listed {
            assert!(Region::parse(code).is_ok(), "{code} is listed but refused");
        }
    }
}
