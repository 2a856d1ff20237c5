//! The one-click unsubscribe from advisory notices (RFC 8058), open without a session: the
//! link's token is the proof. `GET` only shows what the link would stop (mail scanners
//! follow links, and must not unsubscribe anyone); `POST`, from the page's button or from
//! a mail client's one-click, does it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::pages::{page, problem_page};
use crate::AppState;
use crate::app::notifications::{self, UNSUBSCRIBE_PATH};
use crate::extract::ApiQuery;
use crate::god::layout::html_response;

/// The link's query: the region whose database holds it, and its token.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    r: String,
    t: String,
}

/// `GET /notifications/unsubscribe?r=…&t=…`: what the link stops, and the button.
pub async fn preview(State(state): State<AppState>, ApiQuery(q): ApiQuery<LinkQuery>) -> Response {
    match notifications::unsubscribe(&state, &q.r, &q.t, false).await {
        Ok(u) => html_response(
            StatusCode::OK,
            page(
                "Unsubscribe",
                None,
                html! {
                    main.signin {
                        h1 { "Stop " (u.what) "?" }
                        p { "For " strong { (u.email) } ". Other notices (about payments, "
                            "deletion or your account) are still sent." }
                        form method="post" action={ (UNSUBSCRIBE_PATH) "?r=" (q.r) "&t=" (q.t) } {
                            button type="submit" id="unsubscribe" { "Stop these notices" }
                        }
                    }
                },
            ),
        ),
        Err(p) => problem_page(None, &p, "/"),
    }
}

/// `POST /notifications/unsubscribe?r=…&t=…`: unsubscribes (idempotent).
pub async fn confirm(State(state): State<AppState>, ApiQuery(q): ApiQuery<LinkQuery>) -> Response {
    match notifications::unsubscribe(&state, &q.r, &q.t, true).await {
        Ok(u) => html_response(
            StatusCode::OK,
            page(
                "Unsubscribed",
                None,
                html! {
                    main.signin {
                        h1 { "Done" }
                        p role="status" { "We will not send " (u.what) " to " strong { (u.email) } " again." }
                    }
                },
            ),
        ),
        Err(p) => problem_page(None, &p, "/"),
    }
}
