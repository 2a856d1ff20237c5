//! Business logic the API and God Mode share: handlers parse and authorise, then call one
//! function here (DESIGN: `app/`, one module per resource). Older resources still keep theirs
//! beside their handlers in `api/`; they move here as they are touched.

pub mod droplet_ops;
pub mod droplets;
pub mod reconcilers;
