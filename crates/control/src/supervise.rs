//! Runs the control plane's long-lived tasks side by side and keeps `serve`'s promise: it waits on
//! every one of them, says which stopped and why, and fails when one did.
//!
//! Written here rather than taken from a crate: it is a `JoinSet`, a name per task id and a
//! stop signal, and its rules are ours:
//! - a task that ends before the stop was asked for is a failure, even with `Ok` (a loop or
//!   a server has no business ending on its own), and it stops the others;
//! - a task that panics is a failure, named (the panic's message goes to the log);
//! - after the stop, every task is awaited, and any that ends with an error fails the run.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};

/// The tasks, each with a name.
#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<Result<(), String>>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    /// Starts `task` under `name`.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for `stop_requested` (the signal), or for a task to end first; then calls
    /// `stop` (which tells every task to finish) and waits for all of them. `Err` names the
    /// first task that failed, and why.
    pub async fn run(
        mut self,
        stop_requested: impl Future<Output = ()>,
        stop: impl FnOnce(),
    ) -> Result<(), String> {
        let early = tokio::select! {
            () = stop_requested => None,
            Some(done) = self.tasks.join_next_with_id() => Some(done),
        };
        let mut failure = None;
        if let Some(done) = early {
            let (name, outcome) = self.outcome(done);
            let why = outcome
                .err()
                .unwrap_or_else(|| "it ended on its own".into());
            tracing::error!(task = name, reason = %why, "a task stopped: stopping the control plane");
            failure = Some(format!("{name} stopped: {why}"));
        } else {
            tracing::info!("stopping: draining requests and running jobs");
        }
        stop();
        while let Some(done) = self.tasks.join_next_with_id().await {
            let (name, outcome) = self.outcome(done);
            match outcome {
                Ok(()) => tracing::debug!(task = name, "stopped"),
                Err(why) => {
                    tracing::error!(task = name, reason = %why, "a task failed while stopping");
                    failure.get_or_insert(format!("{name} failed: {why}"));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn outcome(
        &self,
        done: Result<(Id, Result<(), String>), JoinError>,
    ) -> (&'static str, Result<(), String>) {
        match done {
            Ok((id, result)) => (self.name(id), result),
            Err(e) => {
                let why = if e.is_panic() {
                    "it panicked".to_owned()
                } else {
                    "it was cancelled".to_owned()
                };
                (self.name(e.id()), Err(why))
            }
        }
    }

    fn name(&self, id: Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("a task")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A loop that runs until told to stop, as `serve`'s loops do.
    async fn until_stopped(mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), String> {
        let _ = stop.wait_for(|s| *s).await;
        Ok(())
    }

    #[tokio::test]
    async fn the_signal_stops_every_task_and_the_run_succeeds() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Supervisor::default();
        s.spawn("http", until_stopped(rx.clone()));
        s.spawn("zombie-detector", until_stopped(rx.clone()));
        let result = s
            .run(tokio::time::sleep(Duration::from_millis(20)), move || {
                let _ = tx.send(true);
            })
            .await;
        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn a_task_that_fails_first_is_named_and_stops_the_others() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Supervisor::default();
        s.spawn("http", until_stopped(rx.clone()));
        s.spawn("worker", async {
            Err("redis: connection refused".to_owned())
        });
        let result = s
            .run(std::future::pending(), move || {
                let _ = tx.send(true);
            })
            .await;
        assert_eq!(
            result,
            Err("worker stopped: redis: connection refused".to_owned())
        );
    }

    #[tokio::test]
    async fn a_loop_that_ends_on_its_own_or_panics_is_a_failure() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Supervisor::default();
        s.spawn("http", until_stopped(rx.clone()));
        s.spawn("rollout-conductor", async { Ok(()) });
        let result = s.run(std::future::pending(), move || {
            let _ = tx.send(true);
        });
        assert_eq!(
            result.await,
            Err("rollout-conductor stopped: it ended on its own".to_owned())
        );

        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Supervisor::default();
        s.spawn("http", until_stopped(rx.clone()));
        s.spawn("standby", async { panic!("boom") });
        let result = s.run(std::future::pending(), move || {
            let _ = tx.send(true);
        });
        assert_eq!(result.await, Err("standby stopped: it panicked".to_owned()));
    }

    #[tokio::test]
    async fn an_error_while_draining_fails_the_run() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Supervisor::default();
        let mut stop = rx.clone();
        s.spawn("journal", async move {
            let _ = stop.wait_for(|s| *s).await;
            Err("the last records could not be written".to_owned())
        });
        let result = s
            .run(async {}, move || {
                let _ = tx.send(true);
            })
            .await;
        assert_eq!(
            result,
            Err("journal failed: the last records could not be written".to_owned())
        );
    }
}
