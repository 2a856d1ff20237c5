//! Runs a singleton reconciler on one replica at a time: every tick, a replica that does not
//! lead tries to take the leadership (a PostgreSQL advisory lock, `genesis_store::leader`);
//! the leader checks it still holds it, then runs one pass.

use std::future::Future;
use std::time::Duration;

use genesis_store::{Database, Leadership};
use tokio::sync::watch;

/// Runs `pass` every `every` while this process leads `name` on `db`, until `stop`.
pub async fn run_as_leader<F, Fut>(
    db: Database,
    name: &str,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: Option<Leadership> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Some(l) = held.as_mut()
            && !l.still_held().await
        {
            tracing::warn!(loop_name = name, "lost leadership (its connection died)");
            held = None;
        }
        if held.is_none() {
            match db.leader_try(name).await {
                Ok(Some(l)) => {
                    tracing::info!(loop_name = name, "leading");
                    held = Some(l);
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(loop_name = name, error = %e, "cannot try leadership");
                    continue;
                }
            }
        }
        pass().await;
    }
}
