//! E-mail: the templates notifications are written from, and the SMTP mailer that sends
//! them. Which notifications go out, when, and what happens on failure is
//! [`crate::app::notifications`]'s; [`crate::workers::mail`] paces it.

pub mod smtp;
pub mod templates;
