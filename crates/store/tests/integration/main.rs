//! Integration tests of the store against a real PostgreSQL (`DATABASE_URL`, set up by
//! `make test`). Each test creates its own database, so they run in parallel. One binary for
//! all of them keeps link time down.

mod audit_chain;
mod audit_retention;
mod blocking;
mod deletions;
mod handshake;
mod helpers;
mod isolation;
mod ledger;
mod lifecycle;
mod ohio;
mod partitions;
mod pgbouncer;
mod privileges;
mod slugs;
mod support_grants;
mod vault;
