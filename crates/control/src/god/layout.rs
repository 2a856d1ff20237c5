//! The frame every God Mode page shares: head, style, navigation. HTML is built with `maud`,
//! which escapes every interpolated value: tenant-supplied text (names, error messages) can
//! never become markup. No script is needed to read a page, and none is inline: the style
//! sheet and the rollout page's live script are files under `/god/assets/`, so the
//! Content-Security-Policy can refuse every inline script ([`crate::front_door`]).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, ROOT, SignedIn};

/// God Mode's style sheet, served at [`STYLE_PATH`] (the Content-Security-Policy allows no
/// inline `<style>` element).
pub const STYLE: &str = r#"
code.wrap{word-break:break-all;font-size:.85em}
#engine-steps li[data-status=done]{color:#1a7f37}#engine-steps li[data-status=running]{font-weight:600}#engine-steps li[data-status=failed],#engine-steps li[data-status=undone]{color:#b3261e}
tr[data-state=found] td:last-child{color:#1a7f37}tr[data-state=missing] td:last-child,tr[data-state=wrong] td:last-child{color:#b3261e}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232b;background:#f4f6f8}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1.2rem;padding:.6rem 1.2rem;background:#141b24;color:#fff}
header nav{display:flex;gap:.2rem .9rem;flex-wrap:wrap}header a{color:#cfe3ff;text-decoration:none;padding:.15rem 0}
header a[aria-current=page]{color:#fff;font-weight:600;border-bottom:2px solid #56b4e9}
header .who{margin-left:auto;opacity:.8}.nbadge{background:#d55e00;color:#fff;border-radius:9px;padding:0 .45rem;margin-left:.3rem;font-size:.8em}
form.search input{font:inherit;padding:.2rem .5rem;border-radius:5px;border:0;width:13rem;max-width:100%}
main{padding:1.2rem 1.5rem;max-width:1200px}h1{font-size:1.4rem;margin:.2rem 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:1rem}.card{background:#fff;border-radius:8px;padding:.9rem 1.1rem;box-shadow:0 1px 3px #0002;min-width:9rem;border-top:5px solid #d0d7de}
.card b{display:block;font-size:1.8rem}.card small{display:block;color:#57606a}
table{border-collapse:collapse;background:#fff;margin:1rem 0;display:block;overflow-x:auto;width:max-content;max-width:100%}
td,th{padding:.35rem .8rem;border-bottom:1px solid #e4e8ec;text-align:right}th:first-child,td:first-child{text-align:left}td.text,th.text{text-align:left}
[hidden]{display:none!important}form.inline{display:inline}button{font:inherit;cursor:pointer}
button.danger{background:#b42318;color:#fff;border:0;border-radius:5px;padding:.25rem .7rem}
.signin{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 8px #0003}
.signin label{display:block;margin:.8rem 0 .2rem}.signin input,.signin select{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}
.signin button{margin-top:1.2rem;width:100%;padding:.6rem;background:#1f6feb;color:#fff;border:0;border-radius:6px}
.error{color:#b42318;background:#fee4e2;padding:.5rem .7rem;border-radius:6px}.stale{color:#9a6700;background:#fff8c5;padding:.1rem .4rem;border-radius:4px}
.grid{display:flex;flex-wrap:wrap;gap:2px;margin:.4rem 0 1.2rem}.grid a{width:10px;height:10px;display:block}
.grid a:hover,.grid a:focus{outline:2px solid #141b24;outline-offset:1px}
.legend span{display:inline-flex;align-items:center;margin:0 1rem .3rem 0}.legend i,.swatch{display:inline-block;width:12px;height:12px;margin-right:.35rem;vertical-align:middle}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;background:#fff;padding:.6rem .8rem;border-radius:8px;margin-bottom:.8rem}
.filters label{display:flex;flex-direction:column;font-size:.85em;color:#57606a}.filters select,.filters input{font:inherit}
.s-ACTIVE_HEALTHY{background:#009e73}.s-WAKING{background:#56b4e9}.s-HIBERNATING{background:#b8bec6}
.s-ACTIVE_DEGRADED{background:#e69f00 linear-gradient(#0000 35%,#fffc 35% 65%,#0000 65%)}
.s-DRIFT_DETECTED{background:#f0e442 repeating-linear-gradient(45deg,#0000 0 2px,#0007 2px 3px)}
.s-ZOMBIE{background:repeating-linear-gradient(45deg,#0000 0 2px,#fffb 2px 3px),repeating-linear-gradient(-45deg,#0000 0 2px,#fffb 2px 3px) #d55e00}
.s-REBOOTING{background:#0072b2 repeating-linear-gradient(90deg,#0000 0 2px,#fff9 2px 3px)}
.s-ORPHAN{background:#cc79a7 repeating-conic-gradient(#000a 0 25%,#0000 0 50%) 0 0/5px 5px}
.s-FAILED{background:#000 radial-gradient(#fff 30%,#0000 32%)}
.s-MAINTENANCE{background:#999 repeating-linear-gradient(-45deg,#0000 0 2px,#fff9 2px 3px)}
.s-PENDING,.s-INITIALIZING,.s-HANDSHAKE_PENDING{background:#e4e8ec;box-shadow:inset 0 0 0 1px #8c959f}
.card.s-border{background:#fff}.quiet{color:#57606a}
.progress{background:#e4e8ec;height:14px;border-radius:7px;overflow:hidden;max-width:40rem;display:flex}
.progress span{height:100%}.progress.small{height:8px;width:10rem}.p-done{background:#009e73}.p-failed{background:#d55e00}
.p-cancelled{background:#8c959f}.p-deferred{background:#e69f00}
.badge{padding:.1rem .5rem;border-radius:4px;color:#fff;font-size:.85em}.b-HEALTHY{background:#2da44e}
.b-DEGRADED{background:#bf8700}.b-CRITICAL{background:#cf222e}
.o-ok{background:#2da44e}.o-failed,.o-refused{background:#cf222e}.o-unreachable{background:#bf8700}
figure.chart{margin:1rem 0;background:#fff;padding:.6rem .8rem;border-radius:8px;box-shadow:0 1px 3px #0002;max-width:1000px}
figure.chart figcaption{font-weight:600;margin-bottom:.3rem}figure.chart svg{max-width:100%;height:auto}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.3rem 1.2rem}dl.facts dt{color:#57606a}dl.facts dd{margin:0;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:.6rem}
@media (max-width:640px){main{padding:.8rem}header .who{margin-left:0}form.search,form.search input{width:100%}
dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}.progress.small{width:5rem}}
"#;

/// Where [`STYLE`] is served.
pub const STYLE_PATH: &str = "/god/assets/god.css";

/// A whole page: `body` under the navigation bar (none on the sign-in page, `who` = None).
pub fn page(title: &str, who: Option<&SignedIn>, body: Markup) -> Markup {
    document(
        &format!("{title} · Genesis God Mode"),
        html! {
            @if let Some(s) = who { (navigation(s)) }
            (body)
        },
    )
}

/// An HTML document titled `title`, with the style sheet and the confirmation script every
/// page of God Mode and of the tenants' dashboard loads (files: the CSP allows no inline
/// ones).
pub fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href=(STYLE_PATH);
                script src="/god/assets/confirm.js" defer {}
            }
            body { (body) }
        }
    }
}

/// The pages the navigation links, with their labels, and whether only managers and
/// admins may open them (support staff are not shown links they would be refused).
const NAV: [(&str, &str, bool); 14] = [
    (ROOT, "Fleet", false),
    ("/god/heatmap", "Heatmap", false),
    ("/god/regions", "Regions", false),
    ("/god/metrics", "Metrics", false),
    ("/god/alerts", "Watchdog", false),
    ("/god/rollouts", "Rollouts", true),
    ("/god/financial", "Financial", true),
    ("/god/reconcilers", "Reconcilers", true),
    ("/god/deliveries", "Dead letters", true),
    ("/god/security", "Security", true),
    (super::dr_pages::PATH, "DR", true),
    ("/god/audit", "Audit log", true),
    ("/god/search", "Tenants", false),
    (super::support_pages::PATH, "Support access", false),
];

/// True when `path` is `link`'s page or one under it (the overview only for itself).
fn is_current(link: &str, path: &str) -> bool {
    if link == ROOT {
        return path == ROOT;
    }
    path == link || path.starts_with(&format!("{link}/"))
}

/// The bar on every page: the sections (the current one marked for eyes and screen
/// readers), the open alerts' count, search, who is signed in, and sign-out. It wraps on
/// narrow screens instead of spilling out.
fn navigation(s: &SignedIn) -> Markup {
    // A tenant's page and a droplet's belong to the tenants' section.
    let path = if s.path.starts_with("/god/tenants/") || s.path.starts_with("/god/droplets/") {
        "/god/search"
    } else {
        s.path.as_str()
    };
    html! {
        header {
            strong { "Genesis God Mode" }
            nav aria-label="God Mode" {
                @for (href, label, fleet_only) in NAV {
                    @if !(fleet_only && s.operator.role.needs_grant()) {
                    a href=(href) aria-current=[is_current(href, path).then_some("page")] {
                        (label)
                        @if href == "/god/alerts" {
                            @if let Some(n) = s.open_alerts.filter(|n| *n > 0) {
                                span.nbadge #open-alerts title={ (n) " open alerts" } { (n) }
                            }
                        }
                    }
                    }
                }
            }
            form.search role="search" method="get" action="/god/search" {
                input type="search" name="q" placeholder="Tenant name, slug or id" aria-label="Find a tenant by name, slug or id";
            }
            span.who title={ "role: " (s.operator.role) } { (s.operator.email) }
            form.inline method="post" action="/god/sign-out" {
                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                button type="submit" id="sign-out" { "Sign out" }
            }
        }
    }
}

/// How long ago `at` was, the way people say it ("12 s ago", "3 min ago", "2 days ago").
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - at).num_seconds();
    match s {
        i64::MIN..=-1 => "just now".into(),
        0..=59 => format!("{s} s ago"),
        60..=3_599 => format!("{} min ago", s / 60),
        3_600..=86_399 => format!("{} h ago", s / 3_600),
        _ => match s / 86_400 {
            1 => "1 day ago".into(),
            d => format!("{d} days ago"),
        },
    }
}

/// A moment as `<time>`: relative in the text, exact (UTC) on hover and for machines.
pub fn moment(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (ago(at, Utc::now())) }
    }
}

/// A droplet state as a swatch and words, with the machine's name on hover.
pub fn droplet_state(state: genesis_core::DropletState) -> Markup {
    html! {
        span.state title=(state.code()) { i class={ "swatch s-" (state.code()) } {} (state.in_words()) }
    }
}

/// Who did something, as people read it: an operator or a tenant's account by e-mail, an
/// API token (the operators' shared one, or a tenant's) as "API token", anything else as the
/// part of the platform that acted. The audit log's own name is on hover.
pub fn actor(raw: &str) -> Markup {
    let shown = match raw.split_once(':') {
        _ if raw == crate::auth::API_ACTOR => "API token".to_owned(),
        Some(("operator" | "account", "") | ("token", _)) => "API token".to_owned(),
        // A person: an operator or a tenant's account, by address.
        Some(("operator" | "account", email)) => email.to_owned(),
        _ => format!("{raw} (automatic)"),
    };
    html! { span.actor title=(raw) { (shown) } }
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
        "overview-live.js" => (super::pages::LIVE_SCRIPT, "text/javascript; charset=utf-8"),
        "engine-live.js" => (
            crate::dashboard::ignition_pages::LIVE_SCRIPT,
            "text/javascript; charset=utf-8",
        ),
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

#[cfg(test)]
mod tests {
    use super::actor;

    #[test]
    fn people_are_named_by_address_tokens_as_tokens_and_the_rest_as_automatic() {
        let shown = |raw: &str| {
            let html = actor(raw).into_string();
            let start = html.find('>').map_or(0, |i| i + 1);
            html[start..].trim_end_matches("</span>").to_owned()
        };
        assert_eq!(shown("operator:ops@genesis.test"), "ops@genesis.test");
        assert_eq!(shown("account:ada@acme.test"), "ada@acme.test");
        assert_eq!(shown(crate::auth::API_ACTOR), "API token");
        assert_eq!(
            shown("token:0193a1d2-7b3c-7def-8123-456789abcdef"),
            "API token"
        );
        assert_eq!(shown("system:payments"), "system:payments (automatic)");
        assert_eq!(shown("watchdog"), "watchdog (automatic)");
    }
}
