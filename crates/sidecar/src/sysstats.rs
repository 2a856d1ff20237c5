//! Host figures for heartbeats, read from the kernel (`/proc/stat`, `/proc/meminfo`,
//! `statvfs`) rather than through a general-purpose crate: three numbers do not justify one.

use std::sync::Mutex;

/// CPU percentage between two calls, from `/proc/stat` jiffies.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Mutex<Option<(u64, u64)>>,
}

fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let idle = nums.get(3)? + nums.get(4).copied().unwrap_or(0);
    Some((nums.iter().sum(), idle))
}

impl CpuMeter {
    /// Busy share of all CPUs since the previous call (0 on the first).
    pub fn percent(&self) -> f32 {
        let Some((total, idle)) = cpu_jiffies() else {
            return 0.0;
        };
        let Ok(mut last) = self.last.lock() else {
            return 0.0;
        };
        let pct = match *last {
            Some((t0, i0)) if total > t0 => {
                let dt = (total - t0) as f32;
                let di = idle.saturating_sub(i0) as f32;
                ((dt - di) / dt * 100.0).clamp(0.0, 100.0)
            }
            _ => 0.0,
        };
        *last = Some((total, idle));
        pct
    }
}

/// A `/proc/meminfo` field, KiB (0 when unreadable).
fn meminfo_kib(name: &str) -> u64 {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    info.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Memory in use (total minus available), MiB.
pub fn memory_used_mb() -> u64 {
    meminfo_kib("MemTotal:").saturating_sub(meminfo_kib("MemAvailable:")) / 1024
}

/// Memory in all, MiB: what `memory_used_mb` is a share of (spec 54.3's 85 % rule).
pub fn memory_total_mb() -> u64 {
    meminfo_kib("MemTotal:") / 1024
}

/// Share of the filesystem holding `path` that is used, as `df` computes it.
pub fn disk_used_percent(path: &std::path::Path) -> f32 {
    let Ok(s) = rustix::fs::statvfs(path) else {
        return 0.0;
    };
    let used = s.f_blocks.saturating_sub(s.f_bfree);
    let usable = used + s.f_bavail;
    if usable == 0 {
        return 0.0;
    }
    (used as f64 / usable as f64 * 100.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_in_range() {
        let m = CpuMeter::default();
        assert_eq!(m.percent(), 0.0, "no interval yet");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let p = m.percent();
        assert!((0.0..=100.0).contains(&p));
        assert!(memory_used_mb() > 0);
        let d = disk_used_percent(std::path::Path::new("/"));
        assert!(d > 0.0 && d <= 100.0, "{d}");
    }
}

/// Resource figures as a heartbeat reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostSample {
    /// CPU, percent.
    pub cpu_percent: f32,
    /// Memory in use, MiB.
    pub memory_used_mb: u64,
    /// Memory in all, MiB.
    pub memory_total_mb: u64,
    /// Disk, percent.
    pub disk_percent: f32,
}

/// Where a sidecar's resource figures come from: the machine it runs on, or, for a virtual
/// droplet in the simulator (many share one host), figures the simulation sets.
#[derive(Debug, Clone, Default)]
pub enum HostStats {
    /// `/proc` and `statvfs` of this machine.
    #[default]
    System,
    /// A value someone else controls (shared, so it can change while the sidecar runs).
    Simulated(std::sync::Arc<Mutex<HostSample>>),
}

impl HostStats {
    /// The current figures (`cpu` measures CPU between calls on a real machine).
    pub fn read(&self, cpu: &CpuMeter) -> HostSample {
        match self {
            HostStats::System => HostSample {
                cpu_percent: cpu.percent(),
                memory_used_mb: memory_used_mb(),
                memory_total_mb: memory_total_mb(),
                disk_percent: disk_used_percent(std::path::Path::new("/")),
            },
            HostStats::Simulated(s) => s.lock().map(|g| *g).unwrap_or(HostSample {
                cpu_percent: 0.0,
                memory_used_mb: 0,
                memory_total_mb: 0,
                disk_percent: 0.0,
            }),
        }
    }
}
