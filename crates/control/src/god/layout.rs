//! The frame every God Mode page shares: head, style, navigation. HTML is built with `maud`,
//! which escapes every interpolated value: tenant-supplied text (names, error messages) can
//! never become markup. No script is needed to read a page, and none is inline: the style
//! sheet and the rollout page's live script are files under `/god/assets/`, so the
//! Content-Security-Policy can refuse every inline script ([`crate::front_door`]).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, ROOT, SignedIn};

/// God Mode's style sheet, served at [`STYLE_PATH`] (the Content-Security-Policy allows no
/// inline `<style>` element).
pub const STYLE: &str = r#"
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232b;background:#f4f6f8}
header{display:flex;align-items:center;gap:1.5rem;padding:.7rem 1.5rem;background:#141b24;color:#fff}
header a{color:#cfe3ff;text-decoration:none}header .who{margin-left:auto;opacity:.8}
main{padding:1.5rem;max-width:1200px}h1{font-size:1.4rem;margin:.2rem 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:1rem}.card{background:#fff;border-radius:8px;padding:1rem 1.2rem;box-shadow:0 1px 3px #0002;min-width:10rem}
.card b{display:block;font-size:1.8rem}table{border-collapse:collapse;background:#fff;margin:1rem 0}
td,th{padding:.35rem .8rem;border-bottom:1px solid #e4e8ec;text-align:right}th:first-child,td:first-child{text-align:left}
[hidden]{display:none!important}form.inline{display:inline}button{font:inherit;cursor:pointer}
.signin{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 8px #0003}
.signin label{display:block;margin:.8rem 0 .2rem}.signin input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}
.signin button{margin-top:1.2rem;width:100%;padding:.6rem;background:#1f6feb;color:#fff;border:0;border-radius:6px}
.error{color:#b42318;background:#fee4e2;padding:.5rem .7rem;border-radius:6px}
.grid{display:flex;flex-wrap:wrap;gap:1px;margin:.4rem 0 1.2rem}.grid a{width:7px;height:7px;display:block}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:10px;height:10px;margin-right:.3rem}
.s-ACTIVE_HEALTHY{background:#2da44e}.s-ACTIVE_DEGRADED{background:#d4a72c}.s-DRIFT_DETECTED{background:#e16f24}
.s-HIBERNATING{background:#8c959f}.s-WAKING{background:#54aeff}.s-ZOMBIE{background:#cf222e}.s-REBOOTING{background:#8250df}
.s-ORPHAN{background:#82071e}.s-FAILED{background:#24292f}.s-MAINTENANCE{background:#bf8700}
.s-PENDING,.s-INITIALIZING,.s-HANDSHAKE_PENDING{background:#d0d7de}
.quiet{color:#57606a}.progress{background:#e4e8ec;height:14px;border-radius:7px;overflow:hidden;max-width:40rem}
.progress div{background:#2da44e;height:100%}.progress.small{height:8px;width:10rem}
.badge{padding:.1rem .5rem;border-radius:4px;color:#fff;font-size:.85em}.b-HEALTHY{background:#2da44e}
.b-DEGRADED{background:#bf8700}.b-CRITICAL{background:#cf222e}
.o-ok{background:#2da44e}.o-failed,.o-refused{background:#cf222e}.o-unreachable{background:#bf8700}
figure.chart{margin:1rem 0;background:#fff;padding:.6rem .8rem;border-radius:8px;box-shadow:0 1px 3px #0002;max-width:1000px}
figure.chart figcaption{font-weight:600;margin-bottom:.3rem}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.2rem}dl.facts dt{color:#57606a}
"#;

/// Where [`STYLE`] is served.
pub const STYLE_PATH: &str = "/god/assets/god.css";

/// A whole page: `body` under the navigation bar (none on the sign-in page, `who` = None).
pub fn page(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Genesis God Mode" }
                link rel="stylesheet" href=(STYLE_PATH);
                script src="/god/assets/confirm.js" defer {}
            }
            body {
                @if let Some(s) = who {
                    header {
                        strong { "Genesis God Mode" }
                        a href=(ROOT) { "Fleet" }
                        a href="/god/heatmap" { "Heatmap" }
                        a href="/god/regions" { "Regions" }
                        a href="/god/metrics" { "Metrics" }
                        a href="/god/alerts" { "Watchdog" }
                        a href="/god/rollouts" { "Rollouts" }
                        a href="/god/reconcilers" { "Reconcilers" }
                        span.who { (s.operator.email) }
                        form.inline method="post" action="/god/sign-out" {
                            input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

/// `markup` as an HTML response that no cache keeps (pages show live, private data).
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A refusal as a page: what was wrong, and the way back.
pub fn problem_page(me: &SignedIn, p: &crate::Problem, back: &str) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    html_response(
        status,
        page(
            "Refused",
            Some(me),
            html! { main { h1 { (p.title) } p.error role="alert" { (p.detail) } p { a href=(back) { "Back" } } } },
        ),
    )
}

/// The hidden field every state-changing form carries.
pub fn csrf_input(me: &SignedIn) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(me.csrf); }
}

/// Asks before a form is sent when its button (or the form) carries `data-confirm`: a file,
/// not an inline `onclick`, which the Content-Security-Policy refuses (and the browser then
/// sends the form without asking).
pub const CONFIRM_SCRIPT: &str = r#"document.addEventListener('submit', function (e) {
  var b = e.submitter, f = e.target;
  var ask = (b && b.dataset && b.dataset.confirm) || (f.dataset && f.dataset.confirm);
  if (ask && !window.confirm(ask)) { e.preventDefault(); }
});
"#;

/// `GET /god/assets/{name}`: the style sheet and scripts, open without a session (the
/// sign-in page needs the style; neither holds anything private).
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "god.css" => (STYLE, "text/css; charset=utf-8"),
        "confirm.js" => (CONFIRM_SCRIPT, "text/javascript; charset=utf-8"),
        "rollout-live.js" => (
            super::rollout_pages::LIVE_SCRIPT,
            "text/javascript; charset=utf-8",
        ),
        _ => return crate::Problem::not_found("asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
