//! The API's OpenAPI 3.1 document, generated from the handlers' own annotations and types.
//!
//! Routes are registered through `utoipa_axum::routes!`, which adds each handler to the
//! router and to the document in the same call: a route cannot be served without being
//! documented, nor documented without being served. What every operation shares (the
//! bearer token, and the problems any of them may answer) is added here once, by
//! [`Modify`] passes, rather than repeated on each handler.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use crate::Problem;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Where the browsable documentation is served.
pub const DOCS_PATH: &str = "/api/v1/docs";

/// The security scheme every operation names.
const BEARER: &str = "bearer";

/// Statuses every authenticated operation may answer, whatever it does: a malformed
/// request, a missing or wrong token, an invalid field, a busy database and our own fault.
const COMMON_PROBLEMS: [(&str, &str); 5] = [
    (
        "400",
        "The request is malformed (not JSON, or not of the expected shape).",
    ),
    ("401", "The bearer token is missing or wrong."),
    ("422", "A field or parameter is invalid; `field` names it."),
    ("500", "The server failed; the cause was logged."),
    ("503", "A dependency is busy or down; retry shortly."),
];

/// What an operation that reads a body may also answer.
const UNSUPPORTED_MEDIA: (&str, &str) = (
    "415",
    "The body is not JSON (send `Content-Type: application/json`).",
);

/// The document's fixed parts; the paths come from the routers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Genesis Engine control plane",
        description = "Operators' and tenants' API of the Genesis Engine: workspaces, their \
            ignition, leads, hibernation, the fleet's health, droplet operations and template \
            rollouts. Every error is RFC 9457 `application/problem+json`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(Problem, genesis_core::schema::WorkspaceRef)),
    tags(
        (name = "workspaces", description = "Tenants' workspaces"),
        (name = "ignition", description = "Bringing a workspace's droplet up (spec 41.1)"),
        (name = "leads", description = "A workspace's leads"),
        (name = "hibernation", description = "Powering idle droplets off and waking them (spec 55)"),
        (name = "fleet", description = "The fleet's health, alerts and reconcilers"),
        (name = "droplets", description = "One droplet, and commands to its sidecar"),
        (name = "rollouts", description = "Template and image rollouts (spec 56)"),
        (name = "billing", description = "Margins per tenant and month (spec 59.1)"),
        (name = "webhooks", description = "Outbound webhooks to tenants' systems, signed per Standard Webhooks (spec 65.3, 65.4)"),
        (name = "tenant", description = "A tenant's own API: a workspace's API token (`Bearer gt_…`) reaches that workspace only"),
    )
)]
struct Base;

/// Names the bearer scheme and requires it everywhere.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's API token, or, on a workspace's own lead routes, that \
                         workspace's token.",
                    ))
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    }
}

/// Adds [`COMMON_PROBLEMS`] to every operation that does not document them itself, and
/// [`UNSUPPORTED_MEDIA`] to those that read a body.
struct CommonProblems;

impl Modify for CommonProblems {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                let with_body = op.request_body.is_some().then_some(UNSUPPORTED_MEDIA);
                for (status, description) in COMMON_PROBLEMS.into_iter().chain(with_body) {
                    if !op.responses.responses.contains_key(status) {
                        op.responses
                            .responses
                            .insert(status.to_owned(), problem_response(description).into());
                    }
                }
            }
        }
    }
}

/// A reusable problem response, for handlers' `responses(...)` lists.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::Response>,
            > {
                [($status.to_owned(), problem_response($description).into())].into()
            }
        }
    )*};
}

problem_responses! {
    /// 404: nothing by that id (or, for a tenant, nothing of theirs).
    NotFound = "404", "Nothing by that id.";
    /// 409: the resource is in no state to do this, or a unique value is taken.
    Conflict = "409", "The resource is in no state to do this, or a unique value is taken; \
        `detail` says which.";
    /// 403: the caller may not do this (a tenant's token listing tokens).
    Forbidden = "403", "The caller may not do this; `detail` says who may.";
    /// 503: a part this needs (the cloud API) did not answer, or none is configured.
    Unavailable = "503", "The cloud API did not answer, or this control plane has none; \
        try again later.";
}

/// A response whose body is a [`Problem`].
pub fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The whole document, from the paths the routers registered.
pub fn finish(paths: OpenApi) -> OpenApi {
    let mut doc = Base::openapi().merge_from(paths);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    Security.modify(&mut doc);
    CommonProblems.modify(&mut doc);
    PlainSummaries.modify(&mut doc);
    doc
}

/// Handlers' doc comments start with their route (`` `GET /api/v1/alerts`: ... ``), which
/// the docs page shows beside the summary already; the summary keeps only the sentence.
struct PlainSummaries;

impl Modify for PlainSummaries {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                let Some(summary) = op.summary.as_mut() else {
                    continue;
                };
                let Some((_, rest)) = summary.strip_prefix('`').and_then(|s| s.split_once("`"))
                else {
                    continue;
                };
                let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut rest = rest.trim_start_matches([':', '.']).trim();
                // "(spec 55.3's manual trigger): 202 while ..." keeps "202 while ...".
                if rest.starts_with('(')
                    && let Some((_, after)) = rest.split_once("): ")
                {
                    rest = after;
                }
                let mut chars = rest.chars();
                let plain = match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                };
                if plain.is_empty() {
                    op.summary = None;
                } else {
                    *summary = plain;
                }
            }
        }
    }
}
