//! Telling a region that is down from droplets that are (spec 66.1's "region degraded" and
//! "region total failure"), as pure rules the `region-watch` reconciler applies.
//!
//! # Two signals, because either alone lies
//! - **Heartbeat loss.** The share of a region's serving droplets whose sidecars stopped
//!   reporting. Alone it cannot tell a dead region from our own trouble: a broken heartbeat
//!   ingestion silences every region at once.
//! - **The cloud's answers about that region.** A few silent droplets are looked up at
//!   DigitalOcean: a region whose API answers 5xx (or not at all) for each of them is down
//!   at the provider. Alone it cannot tell a region from a blip of the API, which the
//!   client's own retries absorb.
//!
//! A region is **failed** only when both agree: at least [`FAILED_SHARE`] of its serving
//! droplets are silent (or it has too few left to count, as after a failover set them
//! aside) and every look at the cloud failed. It is **degraded** when either signal is up:
//! [`DEGRADED_SHARE`] silent, or any look failed. Looking costs requests, so the cloud is
//! asked only about a region that is already suspect (heartbeats lost, or an open incident).
//!
//! # An incident, not a reading
//! One pass's verdict flaps; an operator needs a record. An [`Incident`] opens at the first
//! degraded or failed verdict, is **confirmed failed** once failed verdicts have held for
//! the confirmation time (and then stays failed until it closes: a failed region whose
//! droplets were set aside by a failover has nothing left to count), and **closes** once
//! clear verdicts have held as long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Below this many serving droplets a region's heartbeat share says nothing (a region of
/// two droplets with one dead is the single-droplet path's business).
pub const MIN_TO_JUDGE: i64 = 3;
/// A silent share at or above this makes a region degraded (spec 66.1's "20-30 % of
/// tenants" is the share of the fleet a region holds; a fifth of a region's own droplets
/// down is far beyond what single-droplet failures explain).
pub const DEGRADED_SHARE: f64 = 0.2;
/// A silent share at or above this, with the cloud failing there, makes a region failed.
pub const FAILED_SHARE: f64 = 0.8;
/// How many silent droplets are looked up at the cloud per pass and region.
pub const PROBES: usize = 3;
/// How long a verdict must hold before an incident is confirmed failed, or closed.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(180);

/// What one pass saw of one region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageSignals {
    /// Droplets that should be reporting (serving states).
    pub watched: i64,
    /// Of those, silent for the zombie detector's three missed windows.
    pub silent: i64,
    /// Droplets looked up at the cloud this pass.
    pub probes: u32,
    /// Looks that failed with a 5xx, a timeout or no connection (a droplet found, or found
    /// gone, is an answer: the API works there).
    pub probe_failures: u32,
}

/// One pass's verdict on one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageLevel {
    /// Nothing beyond single droplets.
    Clear,
    /// One signal is up.
    Degraded,
    /// Both are.
    Failed,
}

impl OutageLevel {
    /// Its name in the database and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }

    /// The level named `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Clear, Self::Degraded, Self::Failed]
            .into_iter()
            .find(|l| l.code() == code)
    }
}

impl OutageSignals {
    /// The silent share, or `None` when too few droplets serve to say.
    pub fn silent_share(&self) -> Option<f64> {
        (self.watched >= MIN_TO_JUDGE).then(|| self.silent as f64 / self.watched as f64)
    }

    /// Whether the cloud should be asked about this region this pass: its heartbeats look
    /// bad, or an incident is already open (to see it end, or confirm it).
    pub fn worth_probing(&self, incident_open: bool) -> bool {
        incident_open || self.silent_share().is_some_and(|s| s >= DEGRADED_SHARE)
    }

    /// The verdict.
    pub fn level(&self) -> OutageLevel {
        let cloud_down = self.probes > 0 && self.probe_failures == self.probes;
        let share = self.silent_share();
        if cloud_down && share.is_none_or(|s| s >= FAILED_SHARE) {
            OutageLevel::Failed
        } else if self.probe_failures > 0 || share.is_some_and(|s| s >= DEGRADED_SHARE) {
            OutageLevel::Degraded
        } else {
            OutageLevel::Clear
        }
    }
}

/// An open incident, as the reconciler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incident {
    /// Degraded or failed (confirmed).
    pub level: OutageLevel,
    /// Since when failed verdicts hold without a break (unset when the last was not).
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Since when clear verdicts hold without a break.
    pub clear_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a verdict does to a region's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentChange {
    /// No incident, and none needed.
    None,
    /// Opens one at this level (degraded; failed only after confirmation).
    Open(Incident),
    /// Updates the open one; `confirmed` when it just became failed.
    Update {
        /// Its new state.
        incident: Incident,
        /// It just became failed: operators are told, and the policy may declare.
        confirmed: bool,
    },
    /// Clear long enough: the region recovered.
    Close,
}

/// Applies one pass's `verdict` at `now` to the region's open incident.
pub fn observe(
    open: Option<Incident>,
    verdict: OutageLevel,
    now: chrono::DateTime<chrono::Utc>,
    confirm_after: Duration,
) -> IncidentChange {
    let held = |since: chrono::DateTime<chrono::Utc>| {
        (now - since).to_std().is_ok_and(|d| d >= confirm_after)
    };
    let Some(mut i) = open else {
        if verdict == OutageLevel::Clear {
            return IncidentChange::None;
        }
        let failing_since = (verdict == OutageLevel::Failed).then_some(now);
        let confirmed = failing_since.is_some_and(held);
        return IncidentChange::Open(Incident {
            level: if confirmed {
                OutageLevel::Failed
            } else {
                OutageLevel::Degraded
            },
            failing_since,
            clear_since: None,
        });
    };
    i.failing_since = match verdict {
        OutageLevel::Failed => Some(i.failing_since.unwrap_or(now)),
        _ => None,
    };
    i.clear_since = match verdict {
        OutageLevel::Clear => Some(i.clear_since.unwrap_or(now)),
        _ => None,
    };
    if i.clear_since.is_some_and(held) {
        return IncidentChange::Close;
    }
    let confirmed = i.level != OutageLevel::Failed && i.failing_since.is_some_and(held);
    if confirmed {
        i.level = OutageLevel::Failed;
    }
    IncidentChange::Update {
        incident: i,
        confirmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(watched: i64, silent: i64, probes: u32, probe_failures: u32) -> OutageSignals {
        OutageSignals {
            watched,
            silent,
            probes,
            probe_failures,
        }
    }

    #[test]
    fn a_region_fails_only_when_heartbeats_and_the_cloud_agree() {
        // Every sidecar silent, but the cloud answers about them: our side, not theirs.
        assert_eq!(signals(100, 100, 3, 0).level(), OutageLevel::Degraded);
        // The cloud failing, with most droplets still reporting: an API blip.
        assert_eq!(signals(100, 5, 3, 3).level(), OutageLevel::Degraded);
        assert_eq!(signals(100, 79, 3, 3).level(), OutageLevel::Degraded);
        assert_eq!(signals(100, 80, 3, 3).level(), OutageLevel::Failed);
        // One look answered: the API works there, somewhat.
        assert_eq!(signals(100, 90, 3, 2).level(), OutageLevel::Degraded);
        // A failover set the droplets aside: nothing left to count, the cloud decides.
        assert_eq!(signals(0, 0, 3, 3).level(), OutageLevel::Failed);
        assert_eq!(signals(0, 0, 3, 0).level(), OutageLevel::Clear);
        assert_eq!(signals(100, 19, 0, 0).level(), OutageLevel::Clear);
        assert_eq!(signals(100, 20, 0, 0).level(), OutageLevel::Degraded);
        // Two droplets, both dead: the single-droplet path's business.
        assert_eq!(signals(2, 2, 0, 0).level(), OutageLevel::Clear);
    }

    #[test]
    fn the_cloud_is_asked_only_about_a_suspect_region() {
        assert!(!signals(100, 10, 0, 0).worth_probing(false));
        assert!(signals(100, 20, 0, 0).worth_probing(false));
        assert!(signals(0, 0, 0, 0).worth_probing(true));
        assert!(!signals(2, 2, 0, 0).worth_probing(false));
    }

    #[test]
    fn an_incident_is_confirmed_after_failed_verdicts_hold_and_closes_after_clear_ones_do() {
        let t0 = chrono::Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let confirm = Duration::from_secs(180);
        let IncidentChange::Open(i) = observe(None, OutageLevel::Failed, t0, confirm) else {
            panic!("opens");
        };
        assert_eq!(i.level, OutageLevel::Degraded, "not confirmed at once");
        let IncidentChange::Update {
            incident: i,
            confirmed: false,
        } = observe(Some(i), OutageLevel::Failed, at(179), confirm)
        else {
            panic!("still unconfirmed");
        };
        // A break restarts the clock.
        let IncidentChange::Update { incident: i, .. } =
            observe(Some(i), OutageLevel::Degraded, at(180), confirm)
        else {
            panic!("update");
        };
        assert_eq!(i.failing_since, None);
        let IncidentChange::Update { incident: i, .. } =
            observe(Some(i), OutageLevel::Failed, at(200), confirm)
        else {
            panic!("update");
        };
        let IncidentChange::Update {
            incident: i,
            confirmed: true,
        } = observe(Some(i), OutageLevel::Failed, at(380), confirm)
        else {
            panic!("confirmed after 180 s of failed verdicts");
        };
        assert_eq!(i.level, OutageLevel::Failed);
        // Confirmed stays failed on a degraded pass, and is confirmed only once.
        let IncidentChange::Update {
            incident: i,
            confirmed: false,
        } = observe(Some(i), OutageLevel::Degraded, at(400), confirm)
        else {
            panic!("update");
        };
        assert_eq!(i.level, OutageLevel::Failed);
        let IncidentChange::Update { incident: i, .. } =
            observe(Some(i), OutageLevel::Clear, at(500), confirm)
        else {
            panic!("clear, not yet long enough");
        };
        assert_eq!(
            observe(Some(i), OutageLevel::Clear, at(680), confirm),
            IncidentChange::Close
        );
        assert_eq!(
            observe(None, OutageLevel::Clear, at(700), confirm),
            IncidentChange::None
        );
    }

    #[test]
    fn with_no_confirmation_time_a_failed_region_is_confirmed_at_once() {
        let IncidentChange::Open(i) = observe(
            None,
            OutageLevel::Failed,
            chrono::Utc::now(),
            Duration::ZERO,
        ) else {
            panic!("opens");
        };
        assert_eq!(i.level, OutageLevel::Failed);
    }
}
