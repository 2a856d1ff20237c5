//! Request parsing helpers that turn every rejection into a problem naming the field (they
//! live in [`crate::extract`], shared with the application layer).

pub use crate::extract::{ApiJson, ApiQuery, required};
