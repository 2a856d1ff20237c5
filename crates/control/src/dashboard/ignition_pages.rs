//! The wizard's last stage (spec 60.1 stage 7): "Start Engine", and a live page that follows
//! the ignition's six steps over server-sent events. A rollback is said in plain words with
//! what to do, and the button comes back to try again.
//!
//! The page is readable without script (the steps as they stood when it was drawn); the
//! script ([`LIVE_SCRIPT`], a file for the Content-Security-Policy) only keeps it current.
//! The event stream polls the saga's row: a saga moves a handful of times in a minute, and
//! one indexed read per half second per open page is far cheaper than a notification
//! channel per workspace.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use maud::{Markup, html};

use super::pages::{page, problem_page};
use super::session::Me;
use crate::app::tenant_access::{self, Access};
use crate::app::wizard::{self, EngineProgress, Wizard};
use crate::extract::ApiForm;
use crate::god::layout::html_response;
use crate::{AppState, Problem};

/// How often the stream looks at the saga.
pub const POLL: Duration = Duration::from_millis(500);
/// How long one stream lives; the browser's `EventSource` reconnects after.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(10 * 60);

fn steps(progress: Option<&EngineProgress>) -> Markup {
    html! {
        ol #engine-steps {
            @for s in progress.map(|p| p.steps.clone()).unwrap_or_default() {
                li id={ "step-" (s.code) } data-status=(s.status) {
                    (s.label) " — " span.status { (s.status) }
                }
            }
        }
    }
}

fn engine_page(
    me: &Me,
    access: &Access,
    wiz: &Wizard,
    progress: Option<&EngineProgress>,
    error: Option<&Problem>,
    lead_token: Option<&str>,
) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    let status = access.workspace.status;
    let can_start = matches!(
        status,
        genesis_core::WorkspaceStatus::Pending | genesis_core::WorkspaceStatus::RollbackComplete
    );
    let rolled_back = progress.is_some_and(|p| p.phase == genesis_core::SagaPhase::RolledBack);
    page(
        "Start Engine",
        Some(me),
        html! {
            main #engine data-events={ (base) "/setup/ignition/events" } {
                h1 { "Start Engine" }
                @if let Some(p) = error {
                    p.error role="alert" #engine-error { (p.detail.strip_prefix(&format!("{}: ", p.field.as_deref().unwrap_or_default())).unwrap_or(&p.detail)) }
                }
                @if let Some(token) = lead_token {
                    div #lead-token {
                        p { "Your lead-intake token, shown this once (your tools send it in the "
                            code { (genesis_ignition::WEBHOOK_TOKEN_HEADER) } " header):" }
                        p { code { (token) } }
                    }
                }
                @if progress.is_some() { (steps(progress)) }
                div #engine-outcome {
                    @if let Some(p) = progress.filter(|_| rolled_back) {
                        p.error role="alert" #engine-failed {
                            "Your engine did not start: " (p.failed.unwrap_or("a step")) " failed, and everything it had begun was undone."
                        }
                        ul #engine-advice { @for a in &p.advice { li { (a) } } }
                    }
                    @if status == genesis_core::WorkspaceStatus::Active {
                        p #engine-running { "Your engine is running. " a href=(base) { "Go to your workspace" } }
                    }
                }
                @if can_start {
                    @if let Some((_, label)) = wiz.missing_before_start() {
                        p #engine-waiting { "Finish the \"" (label) "\" step first." }
                    } @else {
                        form #start-engine method="post" action={ (base) "/setup/ignition" } {
                            input type="hidden" name="csrf" value=(me.csrf);
                            button type="submit" #start { @if rolled_back { "Try again" } @else { "Start Engine" } }
                        }
                    }
                }
                p { a href={ (base) "/setup" } { "Back to the set-up" } }
                script src="/god/assets/engine-live.js" defer {}
            }
        },
    )
}

/// `GET /app/workspaces/{id}/setup/ignition`.
pub async fn engine(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let wiz = wizard::wizard(&state, db, &access).await?;
        let progress = wizard::engine_progress(db, &access).await?;
        Ok(html_response(
            StatusCode::OK,
            engine_page(&me, &access, &wiz, progress.as_ref(), None, None),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

/// The Start Engine form.
#[derive(Debug, serde::Deserialize)]
pub struct StartPost {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/setup/ignition`: presses Start Engine; the answer is the live
/// page (with the lead-intake token, shown once). A refusal is said on the same page.
pub async fn start(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<StartPost>,
) -> Response {
    let r = async {
        me.check_csrf(&post.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let outcome = wizard::start_engine(&state, db, &access).await;
        // Drawn from the workspace as it is now (a started saga moved it on).
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let wiz = wizard::wizard(&state, db, &access).await?;
        let progress = wizard::engine_progress(db, &access).await?;
        let (code, error, token) = match outcome {
            Ok(answer) => (StatusCode::OK, None, answer.lead_intake.map(|l| l.token)),
            Err(p) if p.field.is_some() || p.status == 409 || p.status == 503 => (
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT),
                Some(p),
                None,
            ),
            Err(p) => return Err(p),
        };
        Ok(html_response(
            code,
            engine_page(
                &me,
                &access,
                &wiz,
                progress.as_ref(),
                error.as_ref(),
                token.as_deref(),
            ),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

/// `GET /app/workspaces/{id}/setup/ignition/events`: `progress` events, one each time the
/// saga moves, until it finishes (or [`STREAM_LIFETIME`]).
pub async fn events(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    // Membership is checked once, up front: the stream then reads only this workspace.
    let (access, _) = tenant_access::access(&state, &me.caller(), &id).await?;
    let started = Instant::now();
    let seed = (state, access, None::<EngineProgress>, false);
    let stream = stream::unfold(seed, move |(state, access, last, over)| async move {
        if over {
            return None;
        }
        loop {
            if started.elapsed() > STREAM_LIFETIME {
                return None;
            }
            let db = state.stores.for_region(access.workspace.region);
            match wizard::engine_progress(db, &access).await {
                Ok(Some(p)) if last.as_ref() != Some(&p) => {
                    let finished = p.finished;
                    let event = Event::default()
                        .event("progress")
                        .json_data(&p)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable"));
                    return Some((Ok(event), (state, access, Some(p), finished)));
                }
                Ok(_) => {}
                Err(p) => {
                    tracing::warn!(detail = %p.detail, "the engine's progress could not be read");
                }
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Keeps the engine page current from its event stream; when the saga finishes it reloads
/// the page (so the outcome and the buttons are drawn by the server), unless the page shows
/// the lead-intake token, which a reload would lose: then it says the outcome in place.
pub const LIVE_SCRIPT: &str = r#"
(function(){
  var main=document.getElementById('engine'); if(!main||!window.EventSource) return;
  if(!document.getElementById('engine-steps')) return;
  var src=new EventSource(main.dataset.events);
  src.addEventListener('progress', function(e){
    var p=JSON.parse(e.data);
    p.steps.forEach(function(s){
      var li=document.getElementById('step-'+s.code); if(!li) return;
      li.dataset.status=s.status; li.querySelector('.status').textContent=s.status;
    });
    if(!p.finished) return;
    src.close();
    if(p.phase==='DONE' && document.getElementById('lead-token')){
      var done=document.createElement('p'); done.id='engine-running';
      var a=document.createElement('a'); a.href=location.pathname.replace(/\/setup\/ignition\/?$/,''); a.textContent='Go to your workspace';
      done.appendChild(document.createTextNode('Your engine is running. ')); done.appendChild(a);
      document.getElementById('engine-outcome').appendChild(done);
      var f=document.getElementById('start-engine'); if(f) f.remove();
    } else { location.replace(location.pathname); }
  });
})();
"#;
