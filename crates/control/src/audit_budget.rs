//! How many audit rows unauthenticated traffic may write.
//!
//! A refused handshake or sign-in is worth recording, but a flood of them must not become a
//! flood of rows: whoever can reach the port could otherwise grow the audit log (and the
//! database's WAL) as fast as they can send. An [`AuditBudget`] lets a row through at most
//! once per key (a source address) per interval, and at most so many per second in all. What
//! it holds back is counted, and the next row that goes through carries that count, so the
//! log still says how much happened, in a bounded number of rows.
//!
//! Written here rather than taken from a crate: it is a map, a clock and `governor`'s direct
//! limiter, and the "carry the skipped count" part is ours.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Keys whose skipped rows are remembered; beyond it, keys not seen for an interval are
/// forgotten (their skipped counts with them), so memory stays bounded under spoofed floods.
const MAX_KEYS: usize = 10_000;

/// The budget; see the module documentation.
pub struct AuditBudget<K> {
    every: Duration,
    global: DefaultDirectRateLimiter,
    seen: Mutex<HashMap<K, (Instant, u64)>>,
}

impl<K> std::fmt::Debug for AuditBudget<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBudget")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> AuditBudget<K> {
    /// At most one row per key per `every` (zero: no per-key limit), and `per_second` rows
    /// in all.
    pub fn new(every: Duration, per_second: u32) -> Self {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            every,
            global: RateLimiter::direct(Quota::per_second(per_second)),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a row for `key` is written now: `Some(skipped)`, how many for this key were
    /// held back since the last one written, or `None` (held back, and counted).
    pub fn slot(&self, key: K) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = seen
            .get(&key)
            .is_none_or(|(last, _)| now.duration_since(*last) >= self.every);
        if due && self.global.check().is_ok() {
            let skipped = seen.insert(key, (now, 0)).map_or(0, |(_, n)| n);
            if seen.len() > MAX_KEYS {
                let every = self.every.max(Duration::from_secs(1));
                seen.retain(|_, (last, n)| now.duration_since(*last) < every || *n > 0);
                if seen.len() > MAX_KEYS {
                    seen.clear();
                }
            }
            return Some(skipped);
        }
        seen.entry(key).or_insert((now, 0)).1 += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_key_per_interval_carrying_what_was_held_back() {
        let budget = AuditBudget::new(Duration::from_secs(60), 1000);
        assert_eq!(budget.slot("a"), Some(0));
        for _ in 0..500 {
            assert_eq!(budget.slot("a"), None);
        }
        assert_eq!(
            budget.slot("b"),
            Some(0),
            "another key has its own interval"
        );
    }

    #[test]
    fn the_global_rate_holds_without_a_per_key_interval() {
        let budget = AuditBudget::new(Duration::ZERO, 5);
        let written = (0..100u32).filter(|i| budget.slot(*i).is_some()).count();
        assert_eq!(written, 5, "distinct keys still share the global rate");
        // Key 7 was held back once; when the rate allows again, its next row carries it.
        std::thread::sleep(Duration::from_millis(1100));
        let later = budget.slot(7);
        assert_eq!(
            later,
            Some(1),
            "the held-back row of key 7 is carried by its next"
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_spoofed_flood() {
        let budget = AuditBudget::new(Duration::ZERO, 1_000_000);
        for i in 0..(MAX_KEYS as u64 * 3) {
            budget.slot(i);
        }
        assert!(budget.seen.lock().expect("lock").len() <= MAX_KEYS + 1);
    }
}
