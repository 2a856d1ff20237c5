//! Simulators of the services we cannot reach from here (spec 45). They speak the real APIs
//! (same paths, JSON, status codes and rate-limit headers) so our real clients talk to them
//! over HTTP; they are product features (`genesis sim-cloud`), not test doubles.

pub mod digitalocean;
