//! Adapters for legacy infrastructure kept alive by the Ohio exception (spec 3). Nothing
//! outside this module knows legacy table names.

pub mod ohio;
