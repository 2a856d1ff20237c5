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
use crate::app::metrics::{BucketView, MetricsView, metrics_of};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `?hours=` (1 to 168, default 24) and `?region=` (default: all).
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

/// One chart: a bar (or, with `line`, a point joined to its neighbours) per bucket, scaled
/// to the window's largest value; a bucket without a value leaves a gap.
fn chart(
    id: &str,
    title: &str,
    values: &[Option<f64>],
    line: bool,
    fmt: fn(f64) -> String,
) -> Markup {
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { CHART_H / max } else { 0.0 };
    let step = CHART_W / values.len().max(1) as f64;
    let y = |v: f64| CHART_H - v * scale;
    // Runs of consecutive values, each drawn as one polyline.
    let mut runs: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push_str(&format!("{:.1},{:.1} ", (i as f64 + 0.5) * step, y(*v))),
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    html! {
        figure.chart id=(id) {
            figcaption {
                (title) " "
                small.quiet {
                    @if values.iter().flatten().next().is_none() { "(no reports)" }
                    @else { "(peak " (fmt(max)) ")" }
                }
            }
            svg viewBox={ "0 0 " (CHART_W) " " (CHART_H) } width="100%" height=(CHART_H)
                preserveAspectRatio="none" role="img" aria-label=(title) {
                line x1="0" y1=(CHART_H) x2=(CHART_W) y2=(CHART_H) stroke="#d0d7de" {}
                @if line {
                    @for r in &runs {
                        polyline points=(r) fill="none" stroke="#1f6feb" stroke-width="2" {}
                    }
                } @else {
                    @for (i, v) in values.iter().enumerate() {
                        @if let Some(v) = v {
                            @if *v > 0.0 {
                                rect x=(format!("{:.1}", i as f64 * step + step * 0.1))
                                    y=(format!("{:.1}", y(*v)))
                                    width=(format!("{:.1}", step * 0.8))
                                    height=(format!("{:.1}", *v * scale)) fill="#2da44e" {
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
    let v = metrics_of(&state, q.hours.unwrap_or(24), q.region).await?;
    let series = |f: fn(&BucketView) -> Option<f64>| v.buckets.iter().map(f).collect::<Vec<_>>();
    let t = &v.totals;
    let first = v.buckets.first().map(|b| b.bucket);
    let body = html! {
        main {
            h1 { "Metrics " small.quiet { "last " (v.hours) " h" @if let Some(r) = &v.region { ", " (r) } } }
            p.quiet {
                "Every sidecar reports aggregate counts every 15 minutes (no lead data, no email "
                "content). Window: "
                @for h in [6, 24, 72, 168] {
                    a href={ "?hours=" (h) @if let Some(r) = &v.region { "&region=" (r) } } { (h) " h" } " "
                }
            }
            div.cards {
                div.card #executions { b { (t.executions) } "executions" }
                div.card #success-rate { b { (t.success_rate.map_or("—".to_owned(), percent)) } "succeeded" }
                div.card #avg-duration { b { (t.avg_duration_ms.map_or("—".to_owned(), millis)) } "mean duration" }
                div.card #emails-sent { b { (t.emails_sent) } "emails sent" }
                div.card #reports { b { (t.reports) } "reports" }
            }
            (chart("chart-executions", "Executions per 15 minutes", &series(|b| Some(b.executions as f64)), false, count))
            (chart("chart-success", "Success rate", &series(|b| b.success_rate), true, percent))
            (chart("chart-duration", "Mean duration", &series(|b| b.avg_duration_ms), true, millis))
            (chart("chart-emails", "Emails sent per 15 minutes", &series(|b| Some(b.emails_sent as f64)), false, count))
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
