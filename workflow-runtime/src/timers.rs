//! The timer service: one task holding the deadlines due soon, sleeping until the earliest.
//!
//! Entries are hints: the engine checks the run's stored checkpoint when one fires, so a stale
//! or repeated entry is harmless.
//!
//! An engine that is its store's only user does not hold every armed timer: the store's
//! ordered `timers` index has them all, and the task pages in, with [`Store::timers_page`],
//! only those due within [`WINDOW_MS`] (and at most about a page ahead of what is due), as
//! time advances. A parked run whose deadline is days away costs no memory here. The rule that
//! keeps this exact: every stored timer with a deadline up to `through` has been read, so an
//! [`Timers::arm`] beyond it can be left to the store (its checkpoint is committed before it is
//! armed, so the page that reaches it will read it), and one at or before it is held.
//!
//! Timers that the store does not index (a step attempt's timeout) are armed with
//! [`Timers::arm_held`] and always held. An engine sharing its store claims its timers instead
//! (`engine/shared.rs`) and holds what it claims, so it has no pager.
//!
//! [`Store::timers_page`]: crate::store::Store::timers_page

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::store::{ArmedTimer, StoreError};

/// With the system clock, wake up at least this often to notice wall-clock jumps.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How far ahead of the clock stored deadlines are paged in.
pub(crate) const WINDOW_MS: u64 = 60_000;
/// Timers read per page.
const PAGE: usize = 1024;
/// Fewer entries than this in memory, and the next page is read before it is due.
const LOW_WATER: usize = PAGE / 4;
/// After a failed page read, wait this long (real time) before the next attempt.
const RETRY: Duration = Duration::from_millis(200);

enum Cmd {
    Arm {
        deadline_ms: u64,
        run_id: String,
        seq: u64,
        held: bool,
    },
    Cancel {
        deadline_ms: u64,
        run_id: String,
    },
    /// Forget how far the store has been read: the next round reads it from the start (after
    /// a workflow is registered, or the store recovered).
    Reload,
    /// Answered once every timer due at the clock's current time has fired.
    Sync(oneshot::Sender<()>),
    /// Answered with how many timers are held in memory.
    #[cfg(test)]
    Held(oneshot::Sender<usize>),
}

/// Reads a page of the store's timers: `(after, due_by_ms, limit)` as
/// [`crate::store::Store::timers_page`].
pub(crate) type ReadPage =
    Box<dyn Fn(Option<(u64, &str)>, u64, usize) -> Result<Vec<ArmedTimer>, StoreError> + Send>;

/// Pages stored timers in for an engine that is its store's only user.
pub(crate) struct Pager {
    read: ReadPage,
    /// Whether a timer of this workflow is driven here (it is registered).
    wanted: Box<dyn Fn(&str) -> bool + Send>,
    /// The key of the last stored timer read.
    after: Option<(u64, String)>,
    /// Every stored timer with a deadline up to this one has been read (`None`: nothing yet).
    through: Option<u64>,
    /// The last page was full: more may be due by its bound.
    more: bool,
    /// The last read failed; retried after [`RETRY`].
    failed: bool,
}

impl Pager {
    /// A pager reading with `read` and keeping the timers of workflows `wanted` accepts.
    pub(crate) fn new(read: ReadPage, wanted: Box<dyn Fn(&str) -> bool + Send>) -> Pager {
        Pager {
            read,
            wanted,
            after: None,
            through: None,
            more: false,
            failed: false,
        }
    }

    /// Whether a timer armed at `deadline_ms` must be held: the pages have gone past it.
    fn covers(&self, deadline_ms: u64) -> bool {
        self.through.is_some_and(|t| deadline_ms <= t)
    }

    /// Whether a page should be read now, with `held` entries in memory.
    fn due(&self, now: u64, held: usize) -> bool {
        match self.through {
            None => true,
            // A full page: read on once memory runs low, or at once when what is unread may
            // already be due.
            Some(t) if self.more => {
                t <= now || (held < LOW_WATER && t < now.saturating_add(WINDOW_MS))
            }
            // Read up to its bound: read again once half the window has passed.
            Some(t) => t < now.saturating_add(WINDOW_MS / 2),
        }
    }

    /// When the next page is due if nothing else happens (for the task's sleep).
    fn next_due(&self) -> Option<u64> {
        match self.through {
            Some(t) if !self.more => Some(t.saturating_sub(WINDOW_MS / 2).saturating_add(1)),
            _ => None,
        }
    }

    /// Reads the next page into `queue`.
    fn page(&mut self, now: u64, queue: &mut Queue) -> Result<(), StoreError> {
        let due_by = now.saturating_add(WINDOW_MS);
        let after = self.after.as_ref().map(|(d, r)| (*d, r.as_str()));
        let page = (self.read)(after, due_by, PAGE)?;
        self.more = page.len() >= PAGE;
        if let Some(last) = page.last() {
            self.after = Some((last.deadline_ms, last.run_id.clone()));
        }
        // A full page covers only its last deadline (more runs may share it); a short one
        // covers everything up to its bound.
        self.through = Some(match (self.more, page.last()) {
            (true, Some(last)) => last.deadline_ms,
            _ => due_by,
        });
        for t in page {
            if (self.wanted)(&t.workflow) {
                queue.insert((t.deadline_ms, t.run_id), t.seq);
            }
        }
        Ok(())
    }

    fn reload(&mut self) {
        self.after = None;
        self.through = None;
        self.more = false;
    }
}

type Queue = BTreeMap<(u64, String), u64>;

/// The handle to the timer task.
pub(crate) struct Timers {
    tx: mpsc::UnboundedSender<Cmd>,
    task: JoinHandle<()>,
}

impl Timers {
    /// Starts the task; `fire(run_id, seq)` is called for each timer that comes due, from the
    /// task, so it must not block. With a `pager`, stored timers are paged in from the store
    /// as they come due; without one, every armed timer is held.
    pub(crate) fn spawn(
        clock: Arc<dyn Clock>,
        pager: Option<Pager>,
        fire: impl Fn(String, u64) + Send + Sync + 'static,
    ) -> Timers {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(clock, rx, pager, fire));
        Timers { tx, task }
    }

    /// Fires `fire(run_id, seq)` at `deadline_ms` (at once if it has passed), for a timer the
    /// store indexes: with a pager, one beyond what has been paged in is left to the store.
    /// Call it only once the checkpoint that armed it is committed.
    pub(crate) fn arm(&self, deadline_ms: u64, run_id: String, seq: u64) {
        let _ = self.tx.send(Cmd::Arm {
            deadline_ms,
            run_id,
            seq,
            held: false,
        });
    }

    /// As [`Timers::arm`], for a timer the store does not index: always held in memory.
    pub(crate) fn arm_held(&self, deadline_ms: u64, run_id: String, seq: u64) {
        let _ = self.tx.send(Cmd::Arm {
            deadline_ms,
            run_id,
            seq,
            held: true,
        });
    }

    /// Forgets a timer, so that a satisfied wait does not occupy memory until its deadline.
    pub(crate) fn cancel(&self, deadline_ms: u64, run_id: String) {
        let _ = self.tx.send(Cmd::Cancel {
            deadline_ms,
            run_id,
        });
    }

    /// Reads the store's timers again from the start (a workflow was registered, or the store
    /// recovered); timers already held stay.
    pub(crate) fn reload(&self) {
        let _ = self.tx.send(Cmd::Reload);
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

    /// How many timers the task holds in memory, once every timer due now has fired.
    #[cfg(test)]
    pub(crate) async fn held(&self) -> usize {
        self.sync().await;
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Held(tx));
        rx.await.unwrap_or(0)
    }

    /// Stops the task; a [`Timers::sync`] in progress or made later returns at once.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

async fn run(
    clock: Arc<dyn Clock>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    mut pager: Option<Pager>,
    fire: impl Fn(String, u64),
) {
    let jumps = clock.jumps();
    let mut queue: Queue = BTreeMap::new();
    let mut synced: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let now = clock.now_ms();
        loop {
            while let Some(entry) = queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let ((_, run_id), seq) = entry.remove_entry();
                fire(run_id, seq);
            }
            // Firing emptied memory, or time moved on: read on until nothing more is due.
            let Some(p) = pager.as_mut().filter(|p| p.due(now, queue.len())) else {
                break;
            };
            match p.page(now, &mut queue) {
                Ok(()) => p.failed = false,
                Err(StoreError::Closed) => {
                    pager = None;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the armed timers failed; trying again");
                    p.failed = true;
                    break;
                }
            }
        }
        for ack in synced.drain(..) {
            let _ = ack.send(());
        }
        let next_fire = queue.first_key_value().map(|((d, _), _)| *d);
        let next = match (next_fire, pager.as_ref().and_then(Pager::next_due)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let retry = pager.as_ref().is_some_and(|p| p.failed);
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                apply(&mut queue, pager.as_mut(), &mut synced, cmd);
                while let Ok(cmd) = rx.try_recv() {
                    apply(&mut queue, pager.as_mut(), &mut synced, cmd);
                }
            }
            () = wait(next, now, jumps.as_ref()) => {}
            () = tokio::time::sleep(RETRY), if retry => {}
        }
    }
}

fn apply(
    queue: &mut Queue,
    pager: Option<&mut Pager>,
    synced: &mut Vec<oneshot::Sender<()>>,
    cmd: Cmd,
) {
    match cmd {
        Cmd::Sync(ack) => synced.push(ack),
        #[cfg(test)]
        Cmd::Held(ack) => {
            let _ = ack.send(queue.len());
        }
        Cmd::Arm {
            deadline_ms,
            run_id,
            seq,
            held,
        } => {
            // Left to the store when no page has reached it yet: the page that does reads it.
            if held || pager.is_none_or(|p| p.covers(deadline_ms)) {
                queue.insert((deadline_ms, run_id), seq);
            }
        }
        Cmd::Cancel {
            deadline_ms,
            run_id,
        } => {
            queue.remove(&(deadline_ms, run_id));
        }
        Cmd::Reload => {
            if let Some(p) = pager {
                p.reload();
            }
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

    use super::{PAGE, Pager, Timers, WINDOW_MS};
    use crate::clock::{Clock, ManualClock, SystemClock};
    use crate::store::ArmedTimer;

    /// A sorted list standing in for the store's timers index, read the way
    /// `Store::timers_page` reads it; counts the rows it hands out.
    fn fake_store(
        rows: Vec<(u64, String)>,
        read: Arc<std::sync::atomic::AtomicUsize>,
    ) -> super::ReadPage {
        Box::new(move |after, due_by, limit| {
            let page: Vec<ArmedTimer> = rows
                .iter()
                .filter(|(d, r)| after.is_none_or(|a| (*d, r.as_str()) > a) && *d <= due_by)
                .take(limit)
                .map(|(d, r)| ArmedTimer::new(*d, r.clone(), 1, "wf"))
                .collect();
            read.fetch_add(page.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(page)
        })
    }

    /// 100,000 timers a month away and a few due within the hour: only those due within the
    /// window are ever held, and the far ones are read only once the clock nears them, a page
    /// at a time, then all fire.
    #[tokio::test]
    async fn only_deadlines_due_soon_are_held() {
        const FAR: u64 = 30 * 86_400_000;
        let clock = Arc::new(ManualClock::new(0));
        let mut rows: Vec<(u64, String)> = (0..100_000u64)
            .map(|i| (FAR + (i % 1_000), format!("far-{i:06}")))
            .collect();
        rows.extend((0..10u64).map(|i| (i * 600_000 + 1, format!("near-{i}"))));
        rows.sort();
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fired.clone();
        let pager = Pager::new(fake_store(rows, read.clone()), Box::new(|_| true));
        let timers = Timers::spawn(clock.clone(), Some(pager), move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        // Within the first window: the first near timer only.
        assert_eq!(timers.held().await, 1);
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 1);
        // An hour and a half on: the ten near ones fired, nothing far was read or held.
        for _ in 0..9 {
            clock.advance(Duration::from_millis(600_000));
            timers.held().await;
        }
        clock.advance(Duration::from_millis(600_000));
        assert_eq!(timers.held().await, 0);
        assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 10);
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 10);
        // A timer armed far ahead is left to the store.
        timers.arm(FAR + 5_000, "armed-far".into(), 1);
        assert_eq!(timers.held().await, 0);
        // Near the far deadlines, at most a window's worth, bounded by pages, is held.
        clock.advance(Duration::from_millis(FAR - clock.now_ms() - WINDOW_MS / 4));
        let held = timers.held().await;
        assert!(held > 0 && held <= 2 * PAGE, "{held} held");
        clock.advance(Duration::from_millis(WINDOW_MS));
        assert_eq!(timers.held().await, 0);
        assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 100_010);
        timers.stop();
    }

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
            let timers = Arc::new(Timers::spawn(clock, None, |_, _| {}));
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
