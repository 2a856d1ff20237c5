//! What stands between the network and the command executor, so that traffic that proves
//! nothing costs the droplet next to nothing:
//! - [`SourceLimiter`]: requests per source address, checked before any token is read;
//! - [`RefusalLog`]: refusals kept as counts per reason plus the latest few, so a flood of
//!   refused requests cannot grow memory or the next heartbeat;
//! - [`UsedIds`]: the ids of accepted commands, kept on disk until their tokens expire, so a
//!   token used before a restart is still refused after it.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Mutex;

use genesis_protocol::{Refusal, RefusalReason};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How many refusals a heartbeat reports one by one (the rest are only counted).
pub const REPORTED_REFUSALS: usize = 20;

/// Requests per second one source address may make, and the burst it may save up. The
/// control plane sends a droplet a handful of commands in a second during a rollout; far
/// fewer than this.
pub const PER_SOURCE_PER_SECOND: u32 = 20;
/// See [`PER_SOURCE_PER_SECOND`].
pub const PER_SOURCE_BURST: u32 = 40;

/// Requests per source address, refused before any work once over the quota. The limiter's
/// memory is one small entry per address seen recently; [`SourceLimiter::forget_idle`]
/// drops the others.
pub struct SourceLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for SourceLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLimiter")
            .field("sources", &self.limiter.len())
            .finish()
    }
}

impl Default for SourceLimiter {
    fn default() -> Self {
        Self::new(PER_SOURCE_PER_SECOND, PER_SOURCE_BURST)
    }
}

impl SourceLimiter {
    /// `per_second` requests per source, with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Whether `source` may make one more request now.
    pub fn admit(&self, source: IpAddr) -> bool {
        self.limiter.check_key(&source).is_ok()
    }

    /// Forgets sources whose quota is full again (they cost nothing to forget).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Refusals since the last delivered heartbeat: counts by reason, and the latest
/// [`REPORTED_REFUSALS`] in full.
#[derive(Debug, Default)]
pub struct RefusalLog {
    inner: Mutex<Taken>,
}

/// What a heartbeat carries of the refusals.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Taken {
    /// Refusals by reason.
    pub counts: BTreeMap<RefusalReason, u64>,
    /// The latest ones, oldest first.
    pub latest: VecDeque<Refusal>,
}

impl RefusalLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one refusal.
    pub fn push(&self, refusal: Refusal) {
        let mut t = self.lock();
        *t.counts.entry(refusal.reason).or_default() += 1;
        t.latest.push_back(refusal);
        while t.latest.len() > REPORTED_REFUSALS {
            t.latest.pop_front();
        }
    }

    /// Counts one refusal that is not kept in full (rate-limited requests).
    pub fn count(&self, reason: RefusalReason) {
        *self.lock().counts.entry(reason).or_default() += 1;
    }

    /// Everything since the last call (the heartbeat takes it).
    pub fn take(&self) -> Taken {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back what an undelivered heartbeat carried, merged with what came since.
    pub fn restore(&self, mut taken: Taken) {
        let mut t = self.lock();
        for (reason, n) in std::mem::take(&mut t.counts) {
            *taken.counts.entry(reason).or_default() += n;
        }
        taken.latest.extend(std::mem::take(&mut t.latest));
        while taken.latest.len() > REPORTED_REFUSALS {
            taken.latest.pop_front();
        }
        *t = taken;
    }
}

/// The ids of accepted commands with their tokens' expiry, in an append-only file in the
/// state directory (`jti exp` a line). Loaded at start, trimmed of expired ids then and
/// whenever it grows past a few thousand lines.
#[derive(Debug)]
pub struct UsedIds {
    file: PathBuf,
    /// Flush each id to the disk before the command runs (a real droplet: its power can
    /// fail); a virtual droplet's "restart" keeps the page cache anyway.
    sync: bool,
    /// The open log (appended to) and how many lines it holds.
    log: Mutex<(Option<std::fs::File>, usize)>,
}

/// Lines after which the file is rewritten with only live ids.
const COMPACT_AFTER: usize = 4_096;

impl UsedIds {
    /// The log at `file`; returns it with the ids still live at `now` (Unix seconds; an id
    /// is live until its token's `exp` plus the verifier's leeway).
    pub fn open(
        file: PathBuf,
        sync: bool,
        now: u64,
    ) -> Result<(Self, Vec<(String, u64)>), std::io::Error> {
        let (live, all) = Self::read_live(&file, now)?;
        let me = Self {
            file,
            sync,
            log: Mutex::new((None, all)),
        };
        // Rewritten only when something expired: a droplet's start does not cost a file
        // replacement and its fsync for nothing (the first id creates the file).
        if live.len() != all {
            me.rewrite(&live)?;
        }
        Ok((me, live))
    }

    /// The live ids, and how many lines the file holds.
    fn read_live(file: &PathBuf, now: u64) -> Result<(Vec<(String, u64)>, usize), std::io::Error> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let live = text
            .lines()
            .filter_map(|l| {
                let (jti, exp) = l.split_once(' ')?;
                let exp: u64 = exp.trim().parse().ok()?;
                (now < exp.saturating_add(genesis_protocol::jwt::LEEWAY_S))
                    .then(|| (jti.to_owned(), exp))
            })
            .collect();
        Ok((live, text.lines().count()))
    }

    fn rewrite(&self, live: &[(String, u64)]) -> Result<(), std::io::Error> {
        let text: String = live.iter().map(|(j, e)| format!("{j} {e}\n")).collect();
        genesis_n8n::secret_file::write_private_with(&self.file, text.as_bytes(), self.sync)?;
        // The old handle points at the replaced file.
        *self.log.lock().unwrap_or_else(|p| p.into_inner()) = (None, live.len());
        Ok(())
    }

    /// Records `jti` (its token expires at `exp`) before its command runs. An error means
    /// the command must not run: its id could be replayed after a restart.
    pub fn record(&self, jti: &str, exp: u64, now: u64) -> Result<(), std::io::Error> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.1 >= COMPACT_AFTER {
            let (mut live, _) = Self::read_live(&self.file, now)?;
            live.push((jti.to_owned(), exp));
            drop(log);
            return self.rewrite(&live);
        }
        if log.0.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            log.0 = Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(&self.file)?,
            );
        }
        let Some(f) = log.0.as_mut() else {
            return Err(std::io::Error::other("the used-id log is not open"));
        };
        f.write_all(format!("{jti} {exp}\n").as_bytes())?;
        if self.sync {
            f.sync_data()?;
        }
        log.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reason: RefusalReason, at: u64) -> Refusal {
        Refusal {
            reason,
            action: None,
            jti: None,
            at,
        }
    }

    #[test]
    fn a_flood_of_refusals_is_counted_and_only_the_latest_are_kept() {
        let log = RefusalLog::default();
        for i in 0..50_000 {
            log.push(refusal(RefusalReason::Missing, i));
        }
        log.count(RefusalReason::RateLimited);
        let t = log.take();
        assert_eq!(t.counts[&RefusalReason::Missing], 50_000);
        assert_eq!(t.counts[&RefusalReason::RateLimited], 1);
        assert_eq!(t.latest.len(), REPORTED_REFUSALS);
        assert_eq!(t.latest.back().map(|r| r.at), Some(49_999));
        assert_eq!(log.take(), Taken::default(), "taken once");
        // An undelivered heartbeat's refusals come back, merged with the new ones.
        log.push(refusal(RefusalReason::Expired, 1));
        log.restore(t);
        let again = log.take();
        assert_eq!(again.counts[&RefusalReason::Missing], 50_000);
        assert_eq!(again.counts[&RefusalReason::Expired], 1);
        assert_eq!(again.latest.len(), REPORTED_REFUSALS);
        assert_eq!(
            again.latest.back().map(|r| r.reason),
            Some(RefusalReason::Expired)
        );
    }

    #[test]
    fn a_source_over_its_quota_is_refused_and_others_are_not() {
        let l = SourceLimiter::new(5, 10);
        let a: IpAddr = "203.0.113.9".parse().expect("ip");
        let b: IpAddr = "198.51.100.1".parse().expect("ip");
        let admitted = (0..100).filter(|_| l.admit(a)).count();
        assert!((10..=12).contains(&admitted), "{admitted}");
        assert!(l.admit(b), "another source has its own quota");
    }

    #[test]
    fn used_ids_survive_a_reopen_until_they_expire() {
        let dir = std::env::temp_dir().join(format!("genesis-used-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("used-commands.log");
        let (ids, live) = UsedIds::open(file.clone(), true, 1_000).expect("open");
        assert!(live.is_empty());
        assert!(
            !file.exists(),
            "a start with nothing to keep writes nothing"
        );
        ids.record("a", 1_300, 1_000).expect("record");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("created")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        ids.record("b", 1_010, 1_000).expect("record");
        let (again, live) = UsedIds::open(file.clone(), true, 1_100).expect("reopen");
        assert_eq!(
            live,
            [("a".to_owned(), 1_300)],
            "b expired (with the leeway)"
        );
        assert_eq!(
            std::fs::read_to_string(&file).expect("log"),
            "a 1300\n",
            "trimmed at the reopen"
        );
        again
            .record("c", 1_400, 1_100)
            .expect("record after a rewrite");
        let (_, live) = UsedIds::open(file.clone(), true, 1_100).expect("reopen");
        assert_eq!(live.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
