//! Template rollouts in God Mode (spec 44.1 "Template Rollout", spec 56): the list, a start
//! form, and each rollout's page with per-batch progress that updates live from a
//! server-sent event stream, and the pause / resume / abort buttons.
//!
//! Everything an operator does here goes through the same functions as the API
//! (`api::rollouts`), audited under the operator's own name. The page reads fine without
//! script; the small inline script only keeps it current.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use genesis_core::rollout::{RolloutEvent, RolloutScope, Scenario};
use genesis_core::{Region, Tier};
use maud::html;
use serde::Deserialize;

use super::layout::{actor, csrf_input, html_response, moment, page, problem_page};
use super::pages::found_or_page;
use super::session::SignedIn;
use crate::app::rollouts::{
    RolloutView, StartRequest, control_rollout, rollout_view, start_rollout,
};
use crate::extract::ApiForm;
use crate::{AppState, Problem};

/// How often the event stream reads the rollout again.
const TICK: Duration = Duration::from_secs(1);

/// `GET /god/rollouts`: the newest rollouts and the start form.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
) -> Result<Response, Problem> {
    let rollouts = crate::app::rollouts::recent(&state).await?;
    let carried = state
        .igniter
        .as_ref()
        .map(|i| i.templates().version.clone());
    let body = html! {
        main {
            h1 { "Template rollouts" }
            form.filters #start method="post" action="/god/rollouts" {
                (csrf_input(&me))
                p.quiet #carried-version { "Deploys template version " b { (carried.as_deref().unwrap_or("—")) }
                    ", the one this control plane carries; or, with an image, swaps n8n's container instead." }
                label { "Scenario" select name="scenario" {
                    @for s in Scenario::ALL { option value=(s.code()) { (s.code()) } }
                } }
                label { "Droplets" select name="scope" {
                    option value="all" { "every serving droplet" }
                    @for r in Region::ALL { option value={ "region:" (r.code()) } { "region " (r.code()) } }
                    @for t in Tier::ALL { option value={ "tier:" (t.code()) } { "tier " (t.code()) } }
                } }
                label { "n8n image (optional)" input type="text" name="n8n_image" placeholder="n8nio/n8n:2.8.4"; }
                label { "Batch size" input type="number" name="batch_size" min="0" placeholder="default"; }
                label { "Pause between batches (s)" input type="number" name="pause_between_s" min="0" placeholder="default"; }
                button type="submit" id="start-rollout" data-confirm="Start this rollout now?" { "Start a rollout" }
            }
            table #rollouts {
                tr { th { "Started" } th { "Scenario" } th { "Version" } th { "Status" } th { "Batch" } th { "By" } }
                @for r in &rollouts {
                    tr {
                        td { a href={ "/god/rollouts/" (r.id) } { (moment(r.created_at)) } }
                        td { (r.scenario.code()) }
                        td { (r.target_version) }
                        td { (r.status.code()) }
                        td { (r.current_batch.min(r.batches)) " / " (r.batches) }
                        td { (actor(&r.created_by)) }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Rollouts", Some(&me), body),
    ))
}

/// The start form.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: String,
    scenario: String,
    #[serde(default)]
    batch_size: String,
    #[serde(default)]
    pause_between_s: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    n8n_image: String,
}

/// The form's scope: `all`, `region:<code>` or `tier:<code>`.
fn scope_field(raw: &str) -> Result<Option<RolloutScope>, Problem> {
    let bad = || Problem::invalid_field("scope", "must be every droplet, one region or one tier");
    Ok(Some(match raw.trim().split_once(':') {
        None if raw.trim().is_empty() || raw.trim() == "all" => RolloutScope::All,
        Some(("region", r)) => RolloutScope::Region {
            region: Region::parse(r).map_err(|_| bad())?,
        },
        Some(("tier", t)) => RolloutScope::Tier {
            tier: Tier::parse(t).map_err(|_| bad())?,
        },
        _ => return Err(bad()),
    }))
}

/// An optional number field: empty means "the scenario's default".
fn optional<T: std::str::FromStr>(field: &str, raw: &str) -> Result<Option<T>, Problem> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| Problem::invalid_field(field, "must be a whole number of at least 0"))
}

/// `POST /god/rollouts`: starts one and opens its page.
pub async fn start(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiForm(form): ApiForm<StartForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let started = async {
        let req = StartRequest {
            scenario: form.scenario.clone(),
            batch_size: optional("batch_size", &form.batch_size)?,
            pause_between_s: optional("pause_between_s", &form.pause_between_s)?,
            scope: scope_field(&form.scope)?,
            n8n_image: Some(form.n8n_image.trim().to_owned()).filter(|i| !i.is_empty()),
            ..StartRequest::default()
        };
        start_rollout(&state, &req, &me.actor()).await
    }
    .await;
    Ok(match started {
        Ok(v) => Redirect::to(&format!("/god/rollouts/{}", v.rollout.id)).into_response(),
        Err(p) => problem_page(&me, &p, "/god/rollouts"),
    })
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 { 100 } else { part * 100 / whole }
}

/// `GET /god/rollouts/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let v = match found_or_page(rollout_view(&state, &id).await, &me)? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let r = &v.rollout;
    let all =
        v.totals.pending + v.totals.done + v.totals.failed + v.totals.deferred + v.totals.cancelled;
    let settled = all - v.totals.pending;
    let end = if r.status.is_final() {
        r.updated_at
    } else {
        chrono::Utc::now()
    };
    let elapsed_s = (end - r.created_at).num_seconds().max(0);
    // At the pace so far: only while running, and once something has settled.
    let eta_s = (!r.status.is_final() && settled > 0 && v.totals.pending > 0)
        .then(|| elapsed_s * v.totals.pending / settled);
    let body = html! {
        main {
            h1 { "Rollout " code { (r.id.to_string().get(..8).unwrap_or_default()) } }
            p {
                (r.scenario.code()) " to " b { (r.target_version) }
                @if let Some(img) = &r.n8n_image { " (n8n image " code { (img) } ")" }
                " on " (scope_words(&r.scope)) ", started by " (actor(&r.created_by)) "."
            }
            p #status-line {
                "Status: " b #status { (r.status.code()) }
                @if let Some(why) = &r.reason { " — " span #reason { (why) } }
            }
            (split_bar("overall", &v.totals, all))
            p #timing data-started=(r.created_at.to_rfc3339()) {
                span #timing-label { (if r.status.is_final() { "Took " } else { "Running for " }) }
                span #elapsed { (duration(elapsed_s)) }
                span #eta-phrase hidden[eta_s.is_none()] {
                    "; about " span #eta { (eta_s.map(duration).unwrap_or_default()) } " to go at this pace"
                }
                "."
            }
            p { span #settled { (settled) } " of " (all) " droplets settled ("
                span #percent { (percent(settled, all)) } " %): "
                span #done { (v.totals.done) } " done, " span #failed { (v.totals.failed) } " failed, "
                span #deferred { (v.totals.deferred) } " deferred, " span #cancelled { (v.totals.cancelled) } " cancelled." }
            div #controls {
                // Each button shows only while it applies; the live script keeps that true.
                @for (action, label, when) in CONTROLS {
                    form.inline method="post" action={ (r.id) "/" (action) } data-when=(when)
                        hidden[!when.split(' ').any(|s| s == r.status.code())] {
                        (csrf_input(&me))
                        button type="submit" id={ (action) "-rollout" } data-confirm=[(action.starts_with("abort")).then_some("Abort this rollout? Droplets not yet updated are left as they are.")] { (label) }
                    }
                    " "
                }
            }
            h2 { "Batches" }
            table #batches {
                tr { th { "Batch" } th { "Progress" } th { "Pending" } th { "Done" } th { "Failed" } th { "Deferred" } th { "Cancelled" } }
                @for b in &v.per_batch {
                    @let size = b.pending + b.done + b.failed + b.deferred + b.cancelled;
                    tr data-batch=(b.batch) {
                        td { (b.batch + 1) }
                        td { (split_bar_small(b, size)) }
                        td.pending { (b.pending) } td.done { (b.done) } td.failed { (b.failed) }
                        td.deferred { (b.deferred) } td.cancelled { (b.cancelled) }
                    }
                }
            }
            @if !v.failures.is_empty() {
                h2 { "Failures" }
                table #failures {
                    tr { th { "Droplet" } th { "Why" } }
                    @for f in &v.failures {
                        tr { td { a href={ "/god/droplets/" (f.droplet) } { code { (f.droplet) } } } td.text { (f.error.as_deref().unwrap_or("")) } }
                    }
                }
            }
            script src="/god/assets/rollout-live.js" data-rollout=(r.id) {}
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Rollout", Some(&me), body),
    ))
}

/// `seconds` as people say it: "45 s", "3 min 20 s", "2 h 5 min".
fn duration(seconds: i64) -> String {
    match seconds {
        ..=59 => format!("{} s", seconds.max(0)),
        60..=3_599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3_600, seconds % 3_600 / 60),
    }
}

fn scope_words(scope: &RolloutScope) -> String {
    match scope {
        RolloutScope::All => "every serving droplet".into(),
        RolloutScope::Region { region } => format!("region {}", region.code()),
        RolloutScope::Tier { tier } => format!("tier {}", tier.code()),
        RolloutScope::Workspaces { ids } => format!("{} chosen tenants", ids.len()),
    }
}

/// One bar split into done, failed, cancelled and deferred (pending is the grey rest), so
/// an aborted rollout never looks finished.
fn split_bar(id: &str, t: &genesis_store::BatchTally, all: i64) -> maud::Markup {
    html! {
        div.progress id=(id) role="img" aria-label={ (t.done) " done, " (t.failed) " failed, " (t.cancelled) " cancelled, " (t.deferred) " deferred, " (t.pending) " pending" } {
            @for (class, n) in [("done", t.done), ("failed", t.failed), ("cancelled", t.cancelled), ("deferred", t.deferred)] {
                span class={ "p-" (class) } data-part=(class) style={ "width:" (share(n, all)) "%" } {}
            }
        }
    }
}

fn split_bar_small(b: &genesis_store::BatchTally, size: i64) -> maud::Markup {
    html! {
        div.progress.small {
            @for (class, n) in [("done", b.done), ("failed", b.failed), ("cancelled", b.cancelled), ("deferred", b.deferred)] {
                span class={ "p-" (class) } data-part=(class) style={ "width:" (share(n, size)) "%" } {}
            }
        }
    }
}

/// `part` of `whole` in percent, with two decimals (bars of small parts stay visible).
fn share(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "0".into()
    } else {
        format!("{:.2}", part as f64 * 100.0 / whole as f64)
    }
}

/// The control buttons: action, label, and the statuses in which it applies.
const CONTROLS: [(&str, &str, &str); 3] = [
    ("pause", "Pause", "RUNNING"),
    ("resume", "Resume", "PAUSED"),
    ("abort", "Abort", "RUNNING PAUSED"),
];

/// Keeps the page current from `/god/api/rollouts/{id}/events` (no build step, no library).
/// Served as a file (`/god/assets/rollout-live.js`); the rollout's id comes from its tag's
/// `data-rollout`.
pub const LIVE_SCRIPT: &str = r#"
(function(){
  var me=document.currentScript, id=me&&me.dataset.rollout;
  if(!window.EventSource||!id) return;
  var es=new EventSource('/god/api/rollouts/'+encodeURIComponent(id)+'/events');
  function set(id,v){var e=document.getElementById(id); if(e) e.textContent=v;}
  es.addEventListener('progress',function(m){
    var v=JSON.parse(m.data), t=v.totals;
    var all=t.pending+t.done+t.failed+t.deferred+t.cancelled, settled=all-t.pending;
    var pct=all>0?Math.floor(settled*100/all):100;
    set('status',v.status); set('settled',settled); set('percent',pct);
    set('done',t.done); set('failed',t.failed); set('deferred',t.deferred); set('cancelled',t.cancelled);
    function fill(bar,parts,whole){ if(!bar) return; bar.querySelectorAll('span[data-part]').forEach(function(sp){
      sp.style.width=(whole>0?parts[sp.dataset.part]*100/whole:0)+'%';});}
    fill(document.getElementById('overall'),t,all);
    var timing=document.getElementById('timing'), el=document.getElementById('elapsed');
    var final=/COMPLETED|ABORTED|FAILED/.test(v.status);
    function dur(s){return s<60?s+' s':(s<3600?Math.floor(s/60)+' min '+(s%60)+' s':Math.floor(s/3600)+' h '+Math.floor(s%3600/60)+' min');}
    var phrase=document.getElementById('eta-phrase');
    if(timing&&el&&!timing.dataset.done){
      var s=Math.max(0,Math.round((Date.now()-Date.parse(timing.dataset.started))/1000));
      el.textContent=dur(s);
      if(final){timing.dataset.done='1'; set('timing-label','Took ');}
      if(phrase){phrase.hidden=final||settled===0||t.pending===0;
        if(!phrase.hidden) set('eta',dur(Math.round(s*t.pending/settled)));}
    }
    document.querySelectorAll('#controls form').forEach(function(f){
      f.hidden=f.dataset.when.split(' ').indexOf(v.status)<0;});
    v.per_batch.forEach(function(b){
      var row=document.querySelector('tr[data-batch="'+b.batch+'"]'); if(!row) return;
      ['pending','done','failed','deferred','cancelled'].forEach(function(k){
        var c=row.querySelector('td.'+k); if(c) c.textContent=b[k];});
      var size=b.pending+b.done+b.failed+b.deferred+b.cancelled;
      fill(row.querySelector('.progress'),b,size);
    });
  });
  es.addEventListener('end',function(){es.close();});
})();
"#;

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct ControlForm {
    csrf: String,
}

/// `POST /god/rollouts/{id}/{action}`: pause, resume or abort, then back to the page.
pub async fn control(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path((id, action)): Path<(String, String)>,
    ApiForm(form): ApiForm<ControlForm>,
) -> Result<Response, Problem> {
    me.check_csrf(&form.csrf)?;
    let event = match action.as_str() {
        "pause" => RolloutEvent::Pause,
        "resume" => RolloutEvent::Resume,
        "abort" => RolloutEvent::Abort,
        _ => return Err(Problem::not_found("action")),
    };
    let back = format!("/god/rollouts/{id}");
    Ok(
        match control_rollout(&state, &id, event, &me.actor()).await {
            Ok(_) => Redirect::to(&back).into_response(),
            Err(p) => problem_page(&me, &p, &back),
        },
    )
}

/// What each `progress` event carries: the rollout's status and its batches.
#[derive(Debug, serde::Serialize)]
struct Progress<'a> {
    status: &'a str,
    totals: &'a genesis_store::BatchTally,
    per_batch: &'a [genesis_store::BatchTally],
}

fn progress_event(v: &RolloutView) -> Event {
    let p = Progress {
        status: v.rollout.status.code(),
        totals: &v.totals,
        per_batch: &v.per_batch,
    };
    Event::default()
        .event("progress")
        .data(serde_json::to_string(&p).unwrap_or_default())
}

/// Where an event stream is.
enum Phase {
    /// The view read when the request came: sent at once.
    First(Box<RolloutView>),
    /// Read again after a tick.
    Poll,
    /// The rollout is final: say `end`.
    End,
    /// Nothing more.
    Closed,
}

/// The `progress` event of `v`, and what follows it.
fn step(v: &RolloutView) -> (Result<Event, Infallible>, Phase) {
    let next = if v.rollout.status.is_final() {
        Phase::End
    } else {
        Phase::Poll
    };
    (Ok(progress_event(v)), next)
}

/// `GET /god/api/rollouts/{id}/events`: a `progress` event now and every second, then
/// `end` once the rollout is final (or gone).
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let first = rollout_view(&state, &id).await?;
    let stream = futures_util::stream::unfold(
        (state, id, Phase::First(Box::new(first))),
        |(state, id, phase)| async move {
            let (event, next) = match phase {
                Phase::Closed => return None,
                Phase::End => (
                    Ok(Event::default().event("end").data("final")),
                    Phase::Closed,
                ),
                Phase::First(v) => step(&v),
                Phase::Poll => {
                    tokio::time::sleep(TICK).await;
                    match rollout_view(&state, &id).await {
                        Ok(v) => step(&v),
                        Err(_) => (
                            Ok(Event::default().event("end").data("gone")),
                            Phase::Closed,
                        ),
                    }
                }
            };
            Some((event, (state, id, next)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /god/api/rollouts/{id}`: the rollout as JSON (what the page's script could poll
/// where server-sent events are blocked).
pub async fn json(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, Problem> {
    Ok(Json(rollout_view(&state, &id).await?))
}
