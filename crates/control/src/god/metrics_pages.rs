//! The metric aggregator (spec 44.2): the platform's executions, success rate, mean
//! duration, emails sent and most frequent error types over time, from the sidecars'
//! periodic reports (added up per 15-minute bucket by `genesis_store::metrics`).
//!
//! Charts are inline SVG drawn here, one bar or point per bucket: no script, no library,
//! and a window of a week is 672 buckets, well within what SVG draws at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{html_response, page};
use super::session::SignedIn;
use crate::app::metrics::{BucketView, MAX_HOURS, MetricsView, fleet_history, metrics_of};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `?hours=` (1 to 720, default 24; metric buckets are kept 168) and `?region=` (default:
/// all; empty means all).
#[derive(Debug, Deserialize)]
pub struct MetricsQuery {
    hours: Option<u32>,
    region: Option<String>,
}

/// `GET /god/api/metrics`.
pub async fn json(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<MetricsView>, Problem> {
    Ok(Json(
        metrics_of(&state, q.hours.unwrap_or(24), q.region).await?,
    ))
}

const CHART_W: f64 = 960.0;
const CHART_H: f64 = 140.0;
/// Room for the y axis's labels (left) and the x axis's (below).
const LEFT: f64 = 72.0;
const BELOW: f64 = 22.0;

/// The time axis: where the window starts, and how long a step is.
#[derive(Debug, Clone, Copy)]
struct TimeAxis {
    from: chrono::DateTime<chrono::Utc>,
    step: chrono::Duration,
}

/// The axes every chart has: the value scale (0 and the peak, with the unit) on the left,
/// and the window's start, middle and end below.
fn axes(max: f64, fmt: fn(f64) -> String, t: TimeAxis, steps: usize) -> Markup {
    let end = t.from + t.step * i32::try_from(steps).unwrap_or(i32::MAX);
    let mid = t.from + (end - t.from) / 2;
    let label = |at: chrono::DateTime<chrono::Utc>| at.format("%m-%d %H:%M").to_string();
    html! {
        line x1=(LEFT) y1="0" x2=(LEFT) y2=(CHART_H) stroke="#8c959f" {}
        line x1=(LEFT) y1=(CHART_H) x2=(LEFT + CHART_W) y2=(CHART_H) stroke="#8c959f" {}
        text.y-max x=(LEFT - 6.0) y="11" text-anchor="end" font-size="12" fill="#57606a" { (fmt(max)) }
        text x=(LEFT - 6.0) y=(CHART_H) text-anchor="end" font-size="12" fill="#57606a" { (fmt(0.0)) }
        text x=(LEFT) y=(CHART_H + 16.0) font-size="12" fill="#57606a" { (label(t.from)) }
        text x=(LEFT + CHART_W / 2.0) y=(CHART_H + 16.0) text-anchor="middle" font-size="12" fill="#57606a" { (label(mid)) }
        text x=(LEFT + CHART_W) y=(CHART_H + 16.0) text-anchor="end" font-size="12" fill="#57606a" { (label(end)) " UTC" }
    }
}

/// Runs of consecutive values of `values` as SVG polyline points (a gap ends a run).
fn runs(values: &[Option<f64>], step: f64, y: impl Fn(f64) -> f64) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push_str(&format!(
                "{:.1},{:.1} ",
                LEFT + (i as f64 + 0.5) * step,
                y(*v)
            )),
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// A run as SVG: a line, or a dot when it is a single point (a line of one point draws
/// nothing).
fn run_mark(points: &str, colour: &str, state: Option<&str>) -> Markup {
    let mut only = points.split_whitespace();
    match (only.next(), only.next()) {
        (Some(p), None) => {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            html! { circle cx=(x) cy=(y) r="3" fill=(colour) data-state=[state] {} }
        }
        _ => {
            html! { polyline points=(points) fill="none" stroke=(colour) stroke-width="2" data-state=[state] {} }
        }
    }
}

fn view_box() -> String {
    format!("0 0 {} {}", LEFT + CHART_W + 4.0, CHART_H + BELOW)
}

/// One chart: a bar (or, with `line`, a point joined to its neighbours) per bucket, scaled
/// to the window's largest value; a bucket without a value leaves a gap.
fn chart(
    id: &str,
    title: &str,
    values: &[Option<f64>],
    line: bool,
    fmt: fn(f64) -> String,
    t: TimeAxis,
) -> Markup {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { CHART_H / max } else { 0.0 };
    let step = CHART_W / values.len().max(1) as f64;
    let y = |v: f64| CHART_H - v * scale;
    html! {
        figure.chart id=(id) {
            figcaption {
                (title) " "
                small.quiet {
                    @if values.iter().flatten().next().is_none() { "(no reports in this window)" }
                    @else { "(peak " (fmt(max)) ")" }
                }
            }
            svg viewBox=(view_box()) role="img" aria-label=(title) {
                (axes(max, fmt, t, values.len()))
                @if line {
                    @for r in runs(values, step, y) { (run_mark(&r, "#0072b2", None)) }
                } @else {
                    @for (i, v) in values.iter().enumerate() {
                        @if let Some(v) = v {
                            @if *v > 0.0 {
                                rect x=(format!("{:.1}", LEFT + i as f64 * step + step * 0.1))
                                    y=(format!("{:.1}", y(*v)))
                                    width=(format!("{:.1}", step * 0.8))
                                    height=(format!("{:.1}", *v * scale)) fill="#009e73" {
                                    title { (fmt(*v)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A line's colour per droplet state: the heatmap's palette.
fn state_colour(code: &str) -> &'static str {
    match code {
        "ACTIVE_HEALTHY" => "#009e73",
        "ACTIVE_DEGRADED" => "#e69f00",
        "DRIFT_DETECTED" => "#b8a800",
        "HIBERNATING" => "#8c959f",
        "WAKING" => "#56b4e9",
        "ZOMBIE" => "#d55e00",
        "REBOOTING" => "#0072b2",
        "ORPHAN" => "#cc79a7",
        "FAILED" => "#000000",
        _ => "#57606a",
    }
}

/// Fleet states over time: one line per state, with a legend in words.
fn fleet_chart(h: &crate::app::metrics::FleetHistory) -> Markup {
    let max = h
        .series
        .values()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { CHART_H / max } else { 0.0 };
    let step = CHART_W / h.steps.max(1) as f64;
    let y = |v: f64| CHART_H - v * scale;
    let t = TimeAxis {
        from: h.from,
        step: chrono::Duration::minutes(h.step_minutes),
    };
    html! {
        figure.chart #chart-fleet-states {
            figcaption {
                "Droplets per state "
                small.quiet {
                    @if h.series.is_empty() { "(no samples yet: the fleet sampler records one a minute)" }
                    @else { "(sampled each minute, kept 30 days; " (h.step_minutes) " min per point)" }
                }
            }
            p.legend {
                @for code in h.series.keys() {
                    @let words = genesis_core::DropletState::from_code(code).map_or(code.as_str(), |s| s.in_words());
                    span data-series=(code) { i.swatch style={ "background:" (state_colour(code)) } {} (words) }
                }
            }
            svg viewBox=(view_box()) role="img" aria-label="Droplets per state over time" {
                (axes(max, count, t, h.steps))
                @for (code, values) in &h.series {
                    @for r in runs(values, step, y) { (run_mark(&r, state_colour(code), Some(code))) }
                }
            }
        }
    }
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn percent(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn millis(v: f64) -> String {
    format!("{v:.0} ms")
}

/// `GET /god/metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Response, Problem> {
    let hours = q.hours.unwrap_or(24);
    let region = q.region.filter(|r| !r.is_empty());
    let fleet = fleet_history(&state, hours, region.as_deref()).await?;
    // Metric buckets are kept a week; longer windows show the week for them.
    let v = metrics_of(&state, hours.min(MAX_HOURS), region).await?;
    let axis = TimeAxis {
        from: v.buckets.first().map_or(fleet.from, |b| b.bucket),
        step: chrono::Duration::minutes(crate::app::metrics::BUCKET_MINUTES),
    };
    let series = |f: fn(&BucketView) -> Option<f64>| v.buckets.iter().map(f).collect::<Vec<_>>();
    let t = &v.totals;
    let first = v.buckets.first().map(|b| b.bucket);
    let body = html! {
        main {
            h1 { "Metrics " small.quiet { "last " (hours) " h" @if let Some(r) = &v.region { ", " (r) } } }
            form.filters #metrics-window method="get" action="/god/metrics" {
                label { "Region" select name="region" {
                    option value="" { "every region" }
                    @for r in genesis_core::Region::ALL {
                        option value=(r.code()) selected[v.region.as_deref() == Some(r.code())] { (r.code()) }
                    }
                } }
                label { "Window" select name="hours" {
                    @for (h, label) in [(1, "1 hour"), (6, "6 hours"), (24, "24 hours"), (72, "3 days"), (168, "7 days"), (720, "30 days")] {
                        option value=(h) selected[hours == h] { (label) }
                    }
                } }
                button type="submit" { "Show" }
            }
            p.quiet {
                "Every sidecar reports aggregate counts (no lead data, no email content) every "
                "15 minutes, a droplet's first within 15 minutes of its handshake"
                @if v.totals.reports == 0 { ": none has arrived in this window yet" }
                ". Executions and emails are kept 7 days; fleet states 30 days."
            }
            (fleet_chart(&fleet))
            div.cards {
                div.card #executions { b { (t.executions) } "executions" }
                div.card #success-rate { b { (t.success_rate.map_or("—".to_owned(), percent)) } "succeeded" }
                div.card #avg-duration { b { (t.avg_duration_ms.map_or("—".to_owned(), millis)) } "mean duration" }
                div.card #emails-sent { b { (t.emails_sent) } "emails sent" }
                div.card #reports { b { (t.reports) } "reports" }
            }
            (chart("chart-executions", "Executions per 15 minutes", &series(|b| Some(b.executions as f64)), false, count, axis))
            (chart("chart-success", "Success rate", &series(|b| b.success_rate), true, percent, axis))
            (chart("chart-duration", "Mean duration", &series(|b| b.avg_duration_ms), true, millis, axis))
            (chart("chart-emails", "Emails sent per 15 minutes", &series(|b| Some(b.emails_sent as f64)), false, count, axis))
            @if let Some(first) = first {
                p.quiet { "From " (first.format("%Y-%m-%d %H:%M UTC")) " to now, " (v.buckets.len()) " buckets." }
            }
            h2 { "Top error types" }
            @if v.top_errors.is_empty() {
                p #no-errors { "No failed executions reported in this window." }
            } @else {
                table #errors {
                    tr { th { "Error type" } th { "Executions" } }
                    @for (kind, n) in &v.top_errors { tr { td { (kind) } td { (n) } } }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Metrics", Some(&me), body),
    ))
}
