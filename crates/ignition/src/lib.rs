//! Ignition (spec 41, 50.4): bringing a tenant from nothing to ACTIVE. This first part builds
//! the droplet's cloud-init document; the saga that drives the steps comes next (issue 6).

pub mod cloud_init;

pub use cloud_init::{CloudInitError, IgnitionEnv, Images, render};
