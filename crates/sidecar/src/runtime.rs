//! How the sidecar runs n8n: [`ContainerRuntime`], with a process implementation here
//! ([`ProcessRuntime`]: n8n from npm, or any command) and an in-process one in the simulator.
//!
//! A swap (spec 56.2) is `swap(image)` then a health check by the caller, then either nothing
//! or `rollback()`: the runtime keeps what ran before so it can go back.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

/// What runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStatus {
    /// Whether the process/container is up.
    pub running: bool,
    /// Its pid, when it is a process the sidecar can see.
    pub pid: Option<u32>,
    /// The image (or version) it runs.
    pub image: String,
    /// Seconds since it started.
    pub uptime_s: u64,
}

/// A runtime operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// This runtime cannot do that.
    #[error("not supported by this runtime: {0}")]
    Unsupported(String),
    /// It tried and failed.
    #[error("{0}")]
    Failed(String),
}

/// Operations on the n8n container.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// What runs now.
    fn status(&self) -> impl Future<Output = RuntimeStatus> + Send;
    /// Restarts n8n; returns the new pid if known.
    fn restart(&self) -> impl Future<Output = Result<Option<u32>, RuntimeError>> + Send;
    /// Fetches `image` so a later swap is quick.
    fn pull(&self, image: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// Replaces what runs with `image`, remembering the old one for [`Self::rollback`].
    fn swap(&self, image: &str) -> impl Future<Output = Result<Option<u32>, RuntimeError>> + Send;
    /// Goes back to what ran before the last swap.
    fn rollback(&self) -> impl Future<Output = Result<Option<u32>, RuntimeError>> + Send;
    /// The last `lines` lines of n8n's output, oldest first.
    fn logs(&self, lines: usize) -> impl Future<Output = Vec<String>> + Send;
}

/// The last lines of a container's output, for `GET_LOGS`; shared by runtimes that collect
/// output themselves.
#[derive(Debug, Clone)]
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
    cap: usize,
}

impl LogRing {
    /// A ring keeping `cap` lines.
    pub fn new(cap: usize) -> Self {
        Self {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(cap.min(256)))),
            cap: cap.max(1),
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&self, line: String) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() == self.cap {
                l.pop_front();
            }
            l.push_back(line);
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let Ok(l) = self.lines.lock() else {
            return Vec::new();
        };
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }
}

/// How to start n8n as a process. `{image}` in `args` is replaced by the current image.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program, e.g. `node` or `n8n`.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Optional command run by `pull` (`{image}` replaced), e.g. an `npm install`.
    pub pull: Option<(String, Vec<String>)>,
    /// The image (version) to run first.
    pub image: String,
}

/// Lines of output kept for `GET_LOGS`.
const LOG_LINES: usize = 2_000;

struct Running {
    child: tokio::process::Child,
    started: Instant,
}

struct ProcState {
    running: Option<Running>,
    image: String,
    previous: Option<String>,
}

/// n8n (or anything) as a child process, with its output kept in a ring buffer.
pub struct ProcessRuntime {
    spec: ProcessSpec,
    state: tokio::sync::Mutex<ProcState>,
    logs: LogRing,
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("program", &self.spec.program)
            .finish_non_exhaustive()
    }
}

fn substitute(args: &[String], image: &str) -> Vec<String> {
    args.iter().map(|a| a.replace("{image}", image)).collect()
}

impl ProcessRuntime {
    /// Starts the process.
    pub async fn start(spec: ProcessSpec) -> Result<Self, RuntimeError> {
        let rt = Self {
            state: tokio::sync::Mutex::new(ProcState {
                running: None,
                image: spec.image.clone(),
                previous: None,
            }),
            spec,
            logs: LogRing::new(LOG_LINES),
        };
        {
            let mut s = rt.state.lock().await;
            let image = s.image.clone();
            s.running = Some(rt.spawn(&image)?);
        }
        Ok(rt)
    }

    fn spawn(&self, image: &str) -> Result<Running, RuntimeError> {
        let mut cmd = tokio::process::Command::new(&self.spec.program);
        // Its own process group: n8n starts child processes of its own (task runners),
        // and stopping n8n must stop them too.
        cmd.args(substitute(&self.spec.args, image))
            .envs(self.spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| RuntimeError::Failed(format!("starting {}: {e}", self.spec.program)))?;
        if let Some(out) = child.stdout.take() {
            self.collect(BufReader::new(out).lines());
        }
        if let Some(err) = child.stderr.take() {
            self.collect(BufReader::new(err).lines());
        }
        Ok(Running {
            child,
            started: Instant::now(),
        })
    }

    fn collect<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
        &self,
        mut lines: tokio::io::Lines<R>,
    ) {
        let logs = self.logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                logs.push(line);
            }
        });
    }

    async fn replace(&self, image: &str) -> Result<Option<u32>, RuntimeError> {
        let mut s = self.state.lock().await;
        if let Some(r) = s.running.take() {
            stop_group(r).await;
        }
        let r = self.spawn(image)?;
        let pid = r.child.id();
        s.running = Some(r);
        s.image = image.to_owned();
        Ok(pid)
    }
}

/// How long a stopped process group has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Signals the whole process group of `r`'s child.
fn signal_group(r: &Running, signal: nix::sys::signal::Signal) {
    if let Some(pid) = r.child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Stops `r`'s process group: SIGTERM (n8n finishes what it is doing and closes its
/// database), then SIGKILL for whatever is left after [`STOP_GRACE`].
async fn stop_group(mut r: Running) {
    signal_group(&r, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, r.child.wait())
        .await
        .is_err()
    {
        tracing::warn!("the process did not stop within {STOP_GRACE:?}; killing it");
    }
    signal_group(&r, nix::sys::signal::Signal::SIGKILL);
    let _ = r.child.wait().await;
}

impl ProcessRuntime {
    /// Stops the process and its children (the droplet halts), gracefully first.
    pub async fn stop(&self) {
        if let Some(r) = self.state.lock().await.running.take() {
            stop_group(r).await;
        }
    }
}

impl Drop for ProcessRuntime {
    /// Nothing outlives the runtime: a dropped runtime kills its process group at once.
    fn drop(&mut self) {
        if let Some(r) = self.state.get_mut().running.as_ref() {
            signal_group(r, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl ContainerRuntime for ProcessRuntime {
    async fn status(&self) -> RuntimeStatus {
        let mut s = self.state.lock().await;
        let image = s.image.clone();
        match s.running.as_mut() {
            Some(r) => {
                let alive = matches!(r.child.try_wait(), Ok(None));
                RuntimeStatus {
                    running: alive,
                    pid: if alive { r.child.id() } else { None },
                    image,
                    uptime_s: r.started.elapsed().as_secs(),
                }
            }
            None => RuntimeStatus {
                running: false,
                pid: None,
                image,
                uptime_s: 0,
            },
        }
    }

    async fn restart(&self) -> Result<Option<u32>, RuntimeError> {
        let image = self.state.lock().await.image.clone();
        self.replace(&image).await
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let Some((program, args)) = &self.spec.pull else {
            tracing::info!(
                image,
                "process runtime: nothing to pull (no pull command set)"
            );
            return Ok(());
        };
        let out = tokio::process::Command::new(program)
            .args(substitute(args, image))
            .output()
            .await
            .map_err(|e| RuntimeError::Failed(format!("pull: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Failed(format!(
                "pull of {image} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    async fn swap(&self, image: &str) -> Result<Option<u32>, RuntimeError> {
        let old = self.state.lock().await.image.clone();
        let pid = self.replace(image).await?;
        self.state.lock().await.previous = Some(old);
        Ok(pid)
    }

    async fn rollback(&self) -> Result<Option<u32>, RuntimeError> {
        let previous = self
            .state
            .lock()
            .await
            .previous
            .take()
            .ok_or_else(|| RuntimeError::Failed("nothing to roll back to".into()))?;
        self.replace(&previous).await
    }

    async fn logs(&self, lines: usize) -> Vec<String> {
        self.logs.tail(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn wait_for_log(rt: &ProcessRuntime, needle: &str) -> bool {
        for _ in 0..100 {
            if rt.logs(50).await.iter().any(|l| l.contains(needle)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// n8n starts task runners of its own; stopping n8n must not leave them behind.
    #[tokio::test]
    async fn stopping_stops_the_children_too() {
        let rt = ProcessRuntime::start(ProcessSpec {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "sleep 30 & echo child $!; exec sleep 30".into(),
            ],
            env: vec![],
            pull: None,
            image: "v1".into(),
        })
        .await
        .expect("start");
        assert!(wait_for_log(&rt, "child ").await);
        let child: u32 = rt
            .logs(10)
            .await
            .iter()
            .find_map(|l| l.strip_prefix("child ")?.trim().parse().ok())
            .expect("the child's pid");
        // Alive: listed, and not a zombie waiting for whoever inherited it to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| !r.trim_start().starts_with('Z'))
            })
        };
        assert!(alive());
        rt.stop().await;
        for _ in 0..50 {
            if !alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the child {child} outlived the stop");
        assert!(!rt.status().await.running);
    }

    #[tokio::test]
    async fn a_process_restarts_swaps_and_rolls_back() {
        let rt = ProcessRuntime::start(ProcessSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo running {image}; exec sleep 30".into()],
            env: vec![],
            pull: None,
            image: "v1".into(),
        })
        .await
        .expect("start");
        assert!(wait_for_log(&rt, "running v1").await);
        let s1 = rt.status().await;
        assert!(s1.running && s1.pid.is_some());
        let pid2 = rt.restart().await.expect("restart");
        assert_ne!(pid2, s1.pid, "a new process");
        rt.pull("v2").await.expect("nothing to pull");
        rt.swap("v2").await.expect("swap");
        assert!(wait_for_log(&rt, "running v2").await);
        assert_eq!(rt.status().await.image, "v2");
        rt.rollback().await.expect("rollback");
        assert_eq!(rt.status().await.image, "v1");
        assert!(rt.rollback().await.is_err(), "only one step back");
    }
}

/// n8n run by someone else (by hand, or by docker compose without the socket mounted): the
/// sidecar can watch it but not restart, pull or swap it.
#[derive(Debug)]
pub struct ExternalRuntime {
    image: String,
    started: Instant,
}

impl ExternalRuntime {
    /// Watching an n8n that runs `image`.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            started: Instant::now(),
        }
    }
}

impl ContainerRuntime for ExternalRuntime {
    async fn status(&self) -> RuntimeStatus {
        RuntimeStatus {
            running: true,
            pid: None,
            image: self.image.clone(),
            uptime_s: self.started.elapsed().as_secs(),
        }
    }

    async fn restart(&self) -> Result<Option<u32>, RuntimeError> {
        Err(RuntimeError::Unsupported(
            "n8n is managed outside the sidecar".into(),
        ))
    }

    async fn pull(&self, _image: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported(
            "n8n is managed outside the sidecar".into(),
        ))
    }

    async fn swap(&self, _image: &str) -> Result<Option<u32>, RuntimeError> {
        Err(RuntimeError::Unsupported(
            "n8n is managed outside the sidecar".into(),
        ))
    }

    async fn rollback(&self) -> Result<Option<u32>, RuntimeError> {
        Err(RuntimeError::Unsupported(
            "n8n is managed outside the sidecar".into(),
        ))
    }

    async fn logs(&self, _lines: usize) -> Vec<String> {
        Vec::new()
    }
}
