//! The timer service: one task holding every armed deadline, sleeping until the earliest.
//!
//! A parked run costs one entry here and nothing else. Entries are hints: the engine checks the
//! run's stored checkpoint when one fires, so a stale entry is harmless.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;

/// With the system clock, wake up at least this often to notice wall-clock jumps.
const MAX_SLEEP: Duration = Duration::from_secs(60);

enum Cmd {
    Arm {
        deadline_ms: u64,
        run_id: String,
        seq: u64,
    },
    Cancel {
        deadline_ms: u64,
        run_id: String,
    },
    /// Answered once every timer due at the clock's current time has fired.
    Sync(oneshot::Sender<()>),
}

/// The handle to the timer task.
pub(crate) struct Timers {
    tx: mpsc::UnboundedSender<Cmd>,
    task: JoinHandle<()>,
}

impl Timers {
    /// Starts the task; `fire(run_id, seq)` is called for each timer that comes due, from the
    /// task, so it must not block.
    pub(crate) fn spawn(
        clock: Arc<dyn Clock>,
        fire: impl Fn(String, u64) + Send + Sync + 'static,
    ) -> Timers {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(clock, rx, fire));
        Timers { tx, task }
    }

    /// Fires `fire(run_id, seq)` at `deadline_ms` (at once if it has passed).
    pub(crate) fn arm(&self, deadline_ms: u64, run_id: String, seq: u64) {
        let _ = self.tx.send(Cmd::Arm {
            deadline_ms,
            run_id,
            seq,
        });
    }

    /// Forgets a timer, so that a satisfied wait does not occupy memory until its deadline.
    pub(crate) fn cancel(&self, deadline_ms: u64, run_id: String) {
        let _ = self.tx.send(Cmd::Cancel {
            deadline_ms,
            run_id,
        });
    }

    /// Returns once every timer due now has fired, or at once when the task has stopped; tests
    /// use it to wait for quiet.
    pub(crate) async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Sync(tx)).is_err() {
            return;
        }
        // A send can pass the channel's "closed?" check just before an aborted task's receiver
        // closes and land after the receiver's one-time drain: the request then sits in the
        // channel for good and its reply sender never drops (our own sender keeps the channel
        // alive). Waiting for the receiver's end as well makes that a return, not a hang.
        tokio::select! {
            _ = rx => {}
            () = self.tx.closed() => {}
        }
    }

    /// Stops the task; a [`Timers::sync`] in progress or made later returns at once.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

async fn run(
    clock: Arc<dyn Clock>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    fire: impl Fn(String, u64),
) {
    let jumps = clock.jumps();
    let mut queue: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let mut synced: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let now = clock.now_ms();
        while let Some(entry) = queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, run_id), seq) = entry.remove_entry();
            fire(run_id, seq);
        }
        for ack in synced.drain(..) {
            let _ = ack.send(());
        }
        let next = queue.first_key_value().map(|((d, _), _)| *d);
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                apply(&mut queue, &mut synced, cmd);
                while let Ok(cmd) = rx.try_recv() {
                    apply(&mut queue, &mut synced, cmd);
                }
            }
            () = wait(next, now, jumps.as_ref()) => {}
        }
    }
}

fn apply(
    queue: &mut BTreeMap<(u64, String), u64>,
    synced: &mut Vec<oneshot::Sender<()>>,
    cmd: Cmd,
) {
    match cmd {
        Cmd::Sync(ack) => synced.push(ack),
        Cmd::Arm {
            deadline_ms,
            run_id,
            seq,
        } => {
            queue.insert((deadline_ms, run_id), seq);
        }
        Cmd::Cancel {
            deadline_ms,
            run_id,
        } => {
            queue.remove(&(deadline_ms, run_id));
        }
    }
}

async fn wait(next: Option<u64>, now: u64, jumps: Option<&Arc<Notify>>) {
    match (jumps, next) {
        // A clock that moves by hand says when it moved; sleeping in real time would only spin.
        // Its `notify_one` leaves a permit, so a jump between reading `now` and getting here is
        // not lost.
        (Some(jumps), _) => jumps.notified().await,
        (None, Some(deadline)) => {
            let ms = Duration::from_millis(deadline.saturating_sub(now));
            tokio::time::sleep(ms.min(MAX_SLEEP)).await;
        }
        (None, None) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Timers;
    use crate::clock::{ManualClock, SystemClock};

    /// A stress test at the unit level: `sync` racing the task's abort must return, whichever
    /// side wins (the window is narrow here; `torture/tests/model.rs` reproduces it through the
    /// engine). Before the fix, a
    /// request that slipped into the channel after the aborted receiver's drain waited forever
    /// (about 2 in 300 crash tests of a tiny workflow).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_returns_when_the_task_stops_under_it() {
        for round in 0..3_000u32 {
            let clock: Arc<dyn crate::clock::Clock> = if round % 2 == 0 {
                Arc::new(ManualClock::new(0))
            } else {
                Arc::new(SystemClock)
            };
            let timers = Arc::new(Timers::spawn(clock, |_, _| {}));
            timers.arm(u64::from(round), format!("run-{round}"), 1);
            let syncing = {
                let timers = timers.clone();
                tokio::spawn(async move { timers.sync().await })
            };
            if round % 3 == 0 {
                tokio::task::yield_now().await;
            }
            timers.stop();
            let finished = tokio::time::timeout(Duration::from_secs(10), syncing).await;
            assert!(
                finished.is_ok(),
                "round {round}: sync() never returned after the timer task stopped"
            );
            // After the stop, a new request must not wait either.
            tokio::time::timeout(Duration::from_secs(10), timers.sync())
                .await
                .unwrap_or_else(|_| panic!("round {round}: sync() after stop() hung"));
        }
    }
}
