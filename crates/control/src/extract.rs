//! Request extractors whose every rejection is RFC 9457 problem+json written for people.
//!
//! axum's own `Json`, `Query` and `Form` answer a bad request with `text/plain` such as
//! "Failed to deserialize the JSON body into the target type: scope: unknown variant `mars`
//! at line 1 column 64". These wrappers keep what a person needs (which field, what was
//! wrong) and drop the parser's framing, and they are used by the API and God Mode alike.

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Problem;

/// `axum::Json<T>` with problem+json rejections naming the field.
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query<T>` with problem+json rejections naming the parameter.
pub struct ApiQuery<T>(pub T);

/// `axum::Form<T>` with problem+json rejections naming the field.
pub struct ApiForm<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(field_problem(&e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(Problem::bad_body(format!(
                "the body is not valid JSON: {}",
                strip_framing(&e.body_text())
            ))),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::unsupported_media(
                "send the body as JSON, with Content-Type: application/json",
            )),
            Err(e) => Err(other_rejection(e.status(), &e.body_text())),
        }
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(field_problem(&e.body_text()))
            }
            Err(e) => Err(other_rejection(e.status(), &e.body_text())),
        }
    }
}

impl<S, T> FromRequest<S> for ApiForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Self(v)),
            Err(FormRejection::FailedToDeserializeForm(e)) => Err(field_problem(&e.body_text())),
            Err(FormRejection::FailedToDeserializeFormBody(e)) => {
                Err(field_problem(&e.body_text()))
            }
            Err(FormRejection::InvalidFormContentType(_)) => Err(Problem::unsupported_media(
                "send the form as application/x-www-form-urlencoded",
            )),
            Err(e) => Err(other_rejection(e.status(), &e.body_text())),
        }
    }
}

/// The parser's message without axum's preamble and serde_json's position suffix.
fn strip_framing(text: &str) -> &str {
    let text = text
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("Failed to "))
        .map_or(text, |(_, rest)| rest);
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => &text[..i],
        _ => text,
    }
}

/// A data error as "field: message" → a 422 naming the field, else a 400.
fn field_problem(text: &str) -> Problem {
    let message = strip_framing(text);
    match message.split_once(": ") {
        Some((path, detail)) if !path.is_empty() && !path.contains(' ') && path != "." => {
            Problem::invalid_field(path, readable(detail))
        }
        _ => Problem::bad_body(readable(message)),
    }
}

/// serde's phrasing ("invalid digit found in string", "unknown variant `x`, expected ...")
/// is understandable; only its backticks are turned into quotes.
fn readable(detail: &str) -> String {
    detail.replace('`', "\"")
}

/// Any other rejection (body too large, unreadable body, ...): its status, a plain message.
fn other_rejection(status: StatusCode, text: &str) -> Problem {
    Problem::with_status(status, people_text(text))
}

/// A framework's one-line error text, as a person should read it.
pub fn people_text(text: &str) -> String {
    readable(strip_framing(text))
}

/// A required string field: missing → problem naming it.
pub fn required<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, Problem> {
    v.as_deref()
        .ok_or_else(|| Problem::invalid_field(field, "is required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_framing_is_dropped_and_the_field_named() {
        let p = field_problem(
            "Failed to deserialize the JSON body into the target type: scope: unknown variant `mars`, expected `fleet` or `region` at line 1 column 64",
        );
        assert_eq!(p.status, 422);
        assert_eq!(p.field.as_deref(), Some("scope"));
        assert_eq!(
            p.detail,
            "scope: unknown variant \"mars\", expected \"fleet\" or \"region\""
        );
        let q = field_problem(
            "Failed to deserialize query string: limit: invalid digit found in string",
        );
        assert_eq!((q.status, q.field.as_deref()), (422, Some("limit")));
        let whole = field_problem(
            "Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2",
        );
        assert_eq!(whole.status, 400);
        assert_eq!(whole.detail, "missing field \"email\"");
    }
}
