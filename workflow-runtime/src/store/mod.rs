//! The storage seam: everything the engine asks of persistence, as one trait.
//!
//! The engine drives runs; a [`Store`] keeps them. The engine reads run records, a run's inbox,
//! its trace, dedupe rows and the list of pending waits; it claims ready runs and due timers;
//! and it hands over one [`CheckpointWrite`] per checkpoint, which the store makes durable and
//! acknowledges. The store owns everything about the layout: its tables, the index rows
//! derived from each record (which runs must execute a step, which timers are armed, which
//! runs wait for a signal), the numbering of inbox and trace entries, batching several
//! checkpoints into one durable transaction, opening and recovery.
//!
//! One backend ships with the crate: [`FileStore`], an embedded database file locked to one
//! process (also in memory, or on a [`MemoryDisk`] that outlives it, for tests).
//! [`EngineBuilder::open_store`](crate::EngineBuilder::open_store) opens an engine over any
//! store.
//!
//! # Writing a storage backend
//!
//! 1. Implement [`Store`]. Reads return records and rows as they were last acknowledged.
//!    [`Store::commit`] applies one [`CheckpointWrite`] atomically: its [`RunWrite`] replaces
//!    the run's record, the index rows of [`RunWrite::previous`] go and those of
//!    [`RunRecord::indexed_command`] come (a `Step` without a backoff, a `Batch` and a
//!    `Children` are ready to execute; a `Step` with `not_before_ms`, a `Wait` and a `Sleep`
//!    are timers at their deadline; a
//!    `Wait` is also a [`PendingWait`]), a finished run that is not parked as incompatible
//!    loses its inbox, a buffered signal gets the next inbox index, consumed ones go, trace
//!    events are numbered on from the run's last one; the writes of [`CheckpointWrite::others`]
//!    are applied in the same transaction, each in the same way. Acknowledge only once it is
//!    durable.
//! 2. Check [`Fence`]s: refuse a checkpoint written under a lease that is no longer the run's
//!    current one, or one that creates a run ([`Fence::Create`]) whose id is taken, with
//!    [`StoreError::NotOwner`], writing nothing of it.
//! 3. Keep the cause of a failure: [`StoreError::io`] for a device error (it makes a full disk
//!    a [`StoreError::NoSpace`]), [`StoreError::backend`] for anything else. After a device
//!    failure, accept writes again once the device does, reopening what must be reopened, and
//!    never acknowledge a commit whose sync failed; see [`Store::probe_writes`].
//! 4. Open, create and migrate the store in the backend's own constructor, and report what
//!    is wrong with an [`OpenError`](crate::OpenError).
//! 5. Purge: a [`CheckpointWrite`] with [`CheckpointWrite::purge`] set removes an ended run
//!    and every row of it, atomically, and is refused for a run that has not ended. With a
//!    [`CheckpointWrite::run`] too, the removed run is written anew from it and its trace, in
//!    the same transaction.
//! 6. Answer [`Store::timers_page`] from a range read of the timers in deadline order: an
//!    engine that is its store's only user reads its timers a page at a time as they come due,
//!    and the default (which filters [`Store::timers`]) reads every timer on each page.
//! 7. Pass [`crate::testing::conformance`] with a harness that opens your store.
//!
//! # Ownership: claims, leases, fences
//!
//! A backend shared by several worker processes must make sure two of them never drive the
//! same run at once. The seam expresses that with leases: [`Store::claim_ready`] and
//! [`Store::claim_timers`] hand out runs together with a [`Lease`] (an owner, a token, an
//! expiry); a lease is renewed with [`Store::renew`] and given back with [`Store::release`];
//! once it lapses another owner may claim the run, which makes the old lease stale. A
//! checkpoint written under a lease names it in its [`Fence`], and the store refuses it with
//! [`StoreError::NotOwner`] when the lease is no longer the run's current one, so a worker that
//! stalled past its lease never overwrites a newer state. A backend owned by one process, like
//! [`FileStore`], grants every claim that no live lease of another owner blocks.

mod copy;
mod file;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

pub use self::copy::{CopyError, CopyOptions, CopyReport, copy_runs};
pub use self::file::{
    CutMode, CutReport, DiskFault, DiskFaults, FileStore, MemoryDisk, PowerLossDisk,
};
pub use crate::error::StoreError;
use crate::model::Command;
pub use crate::stored_state::StoredState;
pub use crate::trace::TraceEvent;
pub use crate::types::{InboxEntry, PendingWait, RunRecord};

/// Persistence for an engine: reads, claims, and durable checkpoint commits.
///
/// Every method may be called from any thread; none may block for long except where noted
/// (reads are expected to be quick; [`Store::commit`] returns at once and acknowledges later).
/// An implementation must pass [`crate::testing::conformance`].
///
/// # Examples
///
/// A backend that wraps another and counts the checkpoints it commits; a real backend implements each method against its own database the same way, and passes [`crate::testing::conformance`].
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use workflow_runtime::store::*;
///
/// struct Counting<S> {
///     inner: S,
///     checkpoints: AtomicU64,
/// }
///
/// impl<S: Store> Store for Counting<S> {
///     fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
///         self.inner.run(run_id)
///     }
///     fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
///         self.inner.runs()
///     }
///     fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
///         self.inner.inbox(run_id)
///     }
///     fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
///         self.inner.has_dedupe(run_id, key)
///     }
///     fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
///         self.inner.dedupe_keys(run_id)
///     }
///     fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
///         self.inner.trace(run_id)
///     }
///     fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
///         self.inner.last_trace(run_id)
///     }
///     fn pending_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
///         self.inner.pending_waits()
///     }
///     fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
///         self.inner.ready()
///     }
///     fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
///         self.inner.timers(due_by_ms)
///     }
///     fn timers_page(
///         &self,
///         after: Option<(u64, &str)>,
///         due_by_ms: u64,
///         limit: usize,
///     ) -> Result<Vec<ArmedTimer>, StoreError> {
///         self.inner.timers_page(after, due_by_ms, limit)
///     }
///     fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
///         self.inner.claim_ready(claim)
///     }
///     fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
///         self.inner.claim_timers(claim, due_by_ms)
///     }
///     fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
///         self.inner.renew(lease, now_ms, lease_ms)
///     }
///     fn release(&self, lease: &Lease) -> Result<(), StoreError> {
///         self.inner.release(lease)
///     }
///     fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
///         self.inner.claim_run(claim, run_id)
///     }
///     fn announce(&self, run_id: &str) -> Result<(), StoreError> {
///         self.inner.announce(run_id)
///     }
///     fn wait_for_work(&self, poll: std::time::Duration) -> WorkWait<'_> {
///         self.inner.wait_for_work(poll)
///     }
///     fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement {
///         self.checkpoints.fetch_add(1, Ordering::Relaxed);
///         self.inner.commit(checkpoint)
///     }
///     fn commit_count(&self) -> u64 {
///         self.inner.commit_count()
///     }
///     fn close(&self) -> Acknowledgement {
///         self.inner.close()
///     }
///     fn close_blocking(&self) {
///         self.inner.close_blocking()
///     }
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = Counting { inner: FileStore::open_memory()?, checkpoints: AtomicU64::new(0) };
/// let engine = workflow_runtime::Engine::builder().open_store(store).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub trait Store: Send + Sync + 'static {
    /// The run's record, if the run exists.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after [`Store::close`], or a read or decode failure.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Every run record, in run id order. An operations call: it reads the whole store.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError>;

    /// The run's buffered signals with their inbox indexes, oldest first.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError>;

    /// Whether the run has accepted a signal with this de-duplication key.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError>;

    /// Every de-duplication key the run has accepted, with when it was accepted (milliseconds
    /// since the Unix epoch), in key order (bytewise). An operations call: with
    /// [`Store::runs`], [`Store::inbox`] and [`Store::trace`] it reads a run out whole, which
    /// is how [`copy_runs`] moves runs between backends.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError>;

    /// The run's trace, in order.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError>;

    /// The last event of the run's trace.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError>;

    /// Every wait for a signal, in run id order.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn pending_waits(&self) -> Result<Vec<PendingWait>, StoreError>;

    /// Every run whose next step must be executed, in run id order, without claiming any.
    /// This is how an engine that is its store's only user ([`Fence::Exclusive`]) finds the
    /// runs to resume at open: it needs no lease, and holding one per run would cost memory
    /// proportional to the store. Engines sharing a store claim with [`Store::claim_ready`].
    ///
    /// # Errors
    /// As [`Store::run`].
    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError>;

    /// Every armed timer due at or before `due_by_ms`, earliest deadline first (ties in run id
    /// order), without claiming any (see [`Store::ready`]). An exclusive engine reads its
    /// timers a page at a time with [`Store::timers_page`] instead.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError>;

    /// Up to `limit` armed timers due at or before `due_by_ms` that come after the timer keyed
    /// `after` (a deadline and a run id; `None` for the start) in the order of
    /// [`Store::timers`], earliest first, without claiming any. An exclusive engine pages its
    /// timers in with it as time advances, so that the deadlines far ahead stay in the store
    /// instead of memory; `after` is always the key of the last timer of the previous page.
    ///
    /// The default filters [`Store::timers`], which reads every timer due by `due_by_ms` on
    /// each call: a backend over an ordered index should answer from a bounded range read
    /// instead (the conformance suite checks the answers, not the cost:
    /// [`crate::testing::conformance::timers_are_read_in_pages`]).
    ///
    /// # Errors
    /// As [`Store::run`].
    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        let all = self.timers(due_by_ms)?;
        let start = match after {
            None => 0,
            // The exact key when it is still there (the backend's own order decides what
            // follows it), else the first key after it bytewise.
            Some((d, run)) => all
                .iter()
                .position(|t| t.deadline_ms == d && t.run_id == run)
                .map(|i| i + 1)
                .unwrap_or_else(|| {
                    all.iter()
                        .position(|t| (t.deadline_ms, t.run_id.as_str()) > (d, run))
                        .unwrap_or(all.len())
                }),
        };
        Ok(all.into_iter().skip(start).take(limit).collect())
    }

    /// Claims up to `claim.limit` runs whose next step must be executed, in run id order,
    /// skipping runs under a live lease of another owner, runs of workflows
    /// [`Claim::workflows`] leaves out, and runs deferred ([`Store::defer`]) to after
    /// `claim.now_ms`. A backend that keeps deferrals may grant the runs never deferred before
    /// those whose deferral has passed (which then come earliest deferral first), so that
    /// runs claimed without effect do not come first again each round. Each granted run comes
    /// with a lease for `claim.owner` that lasts `claim.lease_ms` from `claim.now_ms`; a grant
    /// ends any deferral of the run.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError>;

    /// Claims up to `claim.limit` timers due at or before `due_by_ms`, earliest deadline first
    /// (ties in run id order), with the same lease and workflow rules as
    /// [`Store::claim_ready`].
    ///
    /// # Errors
    /// As [`Store::run`].
    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError>;

    /// Extends a lease to `lease_ms` from `now_ms`, keeping its token.
    ///
    /// # Errors
    /// [`StoreError::NotOwner`] if another owner has claimed the run since.
    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError>;

    /// Extends several leases at once, each as [`Store::renew`] would: one answer per lease,
    /// in order. The default renews them one by one; a backend where every write is a round
    /// trip and a flush (a database server) does them in one statement.
    ///
    /// # Errors
    /// As [`Store::run`], when the call as a whole failed.
    fn renew_all(
        &self,
        leases: &[Lease],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Vec<Result<Lease, StoreError>>, StoreError> {
        Ok(leases
            .iter()
            .map(|lease| self.renew(lease, now_ms, lease_ms))
            .collect())
    }

    /// Gives a lease back, so that any owner may claim the run at once. Releasing a stale lease
    /// changes nothing.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Gives a lease back, as [`Store::release`], and keeps [`Store::claim_ready`] from
    /// granting the run again before `not_before_ms` (on the claimants' clock, as
    /// [`Claim::now_ms`]). A claim by id ([`Store::claim_run`]) is granted at once and ends the
    /// deferral, as does any other grant. A shared engine defers a run it claimed without
    /// effect: a parent whose awaited children are all still running is ready only in case the
    /// announcement of a child's end was lost, and claiming it every round would keep the
    /// runs after it from being claimed at all.
    ///
    /// The default releases the lease and keeps no deferral, which a store used by one process
    /// can live with ([`FileStore`]: no worker of it dies while the others go on).
    ///
    /// # Errors
    /// As [`Store::run`].
    fn defer(&self, lease: &Lease, not_before_ms: u64) -> Result<(), StoreError> {
        let _ = not_before_ms;
        self.release(lease)
    }

    /// The pending waits whose run's inbox holds a buffered signal of the name waited for
    /// ([`PendingWait::signal`]), in run id order: the runs a shared engine claims when
    /// announcements may have been lost, to deliver what was buffered for them.
    ///
    /// The default reads every pending wait and the inbox of each; a backend over a database
    /// should answer with one query that starts from the inbox, so that the cost follows
    /// the buffered signals rather than the parked runs.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn signalled_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        let mut out = Vec::new();
        for wait in self.pending_waits()? {
            if self
                .inbox(&wait.run_id)?
                .iter()
                .any(|(_, e)| e.name == wait.signal)
            {
                out.push(wait);
            }
        }
        Ok(out)
    }

    /// Claims one run by id, whatever it is suspended on, unless another owner's live lease
    /// holds it; `None` when it is held or does not exist. A worker of a shared store uses it
    /// to take a run that another process woke ([`Store::announce`]): a signal buffered for a
    /// parked wait, a run just started. `claim.limit` is ignored.
    ///
    /// The default answers `None` (no run is ever claimed this way), which only an engine that
    /// is its store's only user can live with; the conformance suite requires a real one
    /// ([`crate::testing::conformance::a_run_is_claimed_by_id`]).
    ///
    /// # Errors
    /// As [`Store::run`].
    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        let _ = (claim, run_id);
        Ok(None)
    }

    /// A lease for `claim.owner` on run `run_id`, which the caller is about to create with a
    /// checkpoint carrying it ([`CheckpointWrite::grant`]): a shared engine that creates a run
    /// it drives asks for one, so that it needs no claim once the run exists. `None` when the
    /// backend grants no lease before the run exists (the default; the creator then claims
    /// the run after its commit, [`Store::claim_run`]) or sees that the run exists or another
    /// owner's live lease holds it. A backend that writes leases with its runs (PostgreSQL)
    /// answers without looking at the run and grants the lease by that commit alone, which
    /// leaves a run that exists by then with the lease it has; the token it answers differs
    /// from every other grant's. `claim.limit` is ignored.
    ///
    /// # Errors
    /// As [`Store::run`].
    fn lease_new_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        let _ = (claim, run_id);
        Ok(None)
    }

    /// Tells the other processes sharing the store that run `run_id` has work no lease covers
    /// yet (it was just started, or a signal was buffered for it by a process that does not
    /// drive it), once what made that work is durable. Their [`Store::wait_for_work`] returns
    /// it. A hint only: workers also poll. The default does nothing.
    ///
    /// # Errors
    /// A backend failure; the work is still found by polling.
    fn announce(&self, run_id: &str) -> Result<(), StoreError> {
        let _ = run_id;
        Ok(())
    }

    /// Resolves with the runs announced by other processes ([`Store::announce`]) since the
    /// last call, as soon as there is one, or after `poll` with none: a shared engine's
    /// poller waits here between two claim rounds. A backend with notifications (PostgreSQL's
    /// LISTEN/NOTIFY) resolves early; the default just sleeps `poll`, so that polling alone
    /// finds the work.
    fn wait_for_work(&self, poll: Duration) -> WorkWait<'_> {
        Box::pin(async move {
            tokio::time::sleep(poll).await;
            Wakeups::default()
        })
    }

    /// Makes one checkpoint durable. The returned [`Acknowledgement`] resolves once it is
    /// durable, or with the error that prevented it, in which case nothing of it was written.
    /// Checkpoints committed while others are being written may share one durable transaction
    /// (group commit); each is still acknowledged, or refused, on its own.
    fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement;

    /// How many durable write transactions the store has made since it was opened.
    fn commit_count(&self) -> u64;

    /// Resolves once the store has checked that it accepts writes: at once when it knows of no
    /// failure, else after one attempt to recover from the device failure that stopped its
    /// writes (reopening what it must), with the error that still prevents them if that
    /// attempt failed. The engine calls it, with a backoff, after a commit failed because the
    /// device did, and re-reads its runs once it succeeds. The default answers `Ok` at once,
    /// for a backend that recovers by itself inside each commit.
    fn probe_writes(&self) -> Acknowledgement {
        Acknowledgement::ready(Ok(()))
    }

    /// A number that changes whenever the store's contents may have changed other than by
    /// acknowledged commits: when it reopened itself after a device failure. See
    /// [`CheckpointWrite::epoch`]. The default, for a store that never does, is 0.
    fn epoch(&self) -> u64 {
        0
    }

    /// Commits what is queued, then releases the store (a file lock, connections). Later calls
    /// fail with [`StoreError::Closed`]. Resolves once the store is released.
    fn close(&self) -> Acknowledgement;

    /// [`Store::close`] for a context that cannot await (a destructor); blocks until done.
    fn close_blocking(&self);
}

/// What [`Store::wait_for_work`] answers with.
pub type WorkWait<'a> = Pin<Box<dyn Future<Output = Wakeups> + Send + 'a>>;

/// Runs other processes announced ([`Store::announce`]), as [`Store::wait_for_work`] hands
/// them over.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::Wakeups;
/// let none = Wakeups::default();
/// assert!(none.runs.is_empty() && !none.lost);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wakeups {
    /// The announced runs, oldest first; a run may appear more than once.
    pub runs: Vec<String>,
    /// Set when announcements may have been missed since the last call (the backend lost
    /// its notification channel and opened it again): the caller should look for work it
    /// was not told about.
    pub lost: bool,
}

impl Wakeups {
    /// Wake-ups as a backend hands them over.
    pub fn new(runs: Vec<String>, lost: bool) -> Self {
        Self { runs, lost }
    }
}

/// Who asks for runs, for how long, and how many at most.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = FileStore::open_memory()?;
/// let claim = Claim { owner: "worker-1", now_ms: 1_000, lease_ms: 30_000, limit: 64, workflows: None };
/// for ready in store.claim_ready(&claim)? {
///     println!("{} is mine until {}", ready.run_id, ready.lease.expires_ms);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The claiming worker's identity, unique among the store's users.
    pub owner: &'a str,
    /// The caller's clock, milliseconds since the Unix epoch; a backend shared by several
    /// machines may use its own clock instead.
    pub now_ms: u64,
    /// How long granted leases last.
    pub lease_ms: u64,
    /// The most runs to grant.
    pub limit: usize,
    /// Claim only runs of these workflows ([`Store::claim_ready`], [`Store::claim_timers`]);
    /// `None` for any. A worker names the workflows it registers, so that the runs of the
    /// others, which it would only give back, neither use up its `limit` nor keep the runs it
    /// can drive from it round after round.
    pub workflows: Option<&'a [&'a str]>,
}

impl Claim<'_> {
    /// Whether a run of `workflow` may be granted to this claim ([`Claim::workflows`]).
    pub fn wants(&self, workflow: &str) -> bool {
        self.workflows.is_none_or(|names| names.contains(&workflow))
    }
}

/// The right to drive one run until `expires_ms`.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let lease = Lease::new("order-1", "worker-1", 7, 31_000);
/// // A checkpoint written under it names it, so the store can refuse it once it is stale.
/// let mut write = CheckpointWrite::new("order-1");
/// write.fence = lease.fence();
/// assert_eq!(write.fence, Fence::Lease(7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Lease {
    /// The leased run.
    pub run_id: String,
    /// Who holds it.
    pub owner: String,
    /// Distinguishes this grant from every other grant of the same run.
    pub token: u64,
    /// When it lapses, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

impl Lease {
    /// A lease as a backend grants it.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::Lease;
    /// let lease = Lease::new("order-1", "worker-2", 41, 90_000);
    /// assert_eq!((lease.token, lease.expires_ms), (41, 90_000));
    /// ```
    pub fn new(
        run_id: impl Into<String>,
        owner: impl Into<String>,
        token: u64,
        expires_ms: u64,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            owner: owner.into(),
            token,
            expires_ms,
        }
    }

    /// The fence a checkpoint written under this lease carries.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{Fence, Lease};
    /// assert_eq!(Lease::new("r", "w", 3, 0).fence(), Fence::Lease(3));
    /// ```
    pub fn fence(&self) -> Fence {
        Fence::Lease(self.token)
    }
}

/// A run whose next step must be executed, as read by [`Store::ready`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyEntry {
    /// The run.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
}

impl ReadyEntry {
    /// A ready run as a backend reads it.
    pub fn new(run_id: impl Into<String>, workflow: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            workflow: workflow.into(),
        }
    }
}

/// An armed timer, as read by [`Store::timers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArmedTimer {
    /// When it fires, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// The run.
    pub run_id: String,
    /// The checkpoint that armed it; a run that moved on since makes the timer stale.
    pub seq: u64,
    /// The run's workflow.
    pub workflow: String,
}

impl ArmedTimer {
    /// A timer as a backend reads it.
    pub fn new(
        deadline_ms: u64,
        run_id: impl Into<String>,
        seq: u64,
        workflow: impl Into<String>,
    ) -> Self {
        Self {
            deadline_ms,
            run_id: run_id.into(),
            seq,
            workflow: workflow.into(),
        }
    }
}

/// A run whose next step must be executed, as claimed.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = FileStore::open_memory()?;
/// let claim = Claim { owner: "worker-1", now_ms: 0, lease_ms: 1_000, limit: 10, workflows: None };
/// let ready: Vec<ReadyRun> = store.claim_ready(&claim)?;
/// assert!(ready.is_empty()); // a fresh store has no run to drive
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyRun {
    /// The run.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// The lease granted with it.
    pub lease: Lease,
}

impl ReadyRun {
    /// A claimed run as a backend grants it.
    pub fn new(run_id: impl Into<String>, workflow: impl Into<String>, lease: Lease) -> Self {
        Self {
            run_id: run_id.into(),
            workflow: workflow.into(),
            lease,
        }
    }
}

/// An armed timer (a wait's deadline, a sleep's end, or a step's backoff), as claimed.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = FileStore::open_memory()?;
/// let claim = Claim { owner: "worker-1", now_ms: 5_000, lease_ms: 1_000, limit: 10, workflows: None };
/// for timer in store.claim_timers(&claim, 5_000)? {
///     println!("{} fires at {} (armed by checkpoint {})", timer.run_id, timer.deadline_ms, timer.seq);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueTimer {
    /// When it fires, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// The run.
    pub run_id: String,
    /// The checkpoint that armed it; a run that moved on since makes the timer stale.
    pub seq: u64,
    /// The run's workflow.
    pub workflow: String,
    /// The lease granted with it.
    pub lease: Lease,
}

impl DueTimer {
    /// A claimed timer as a backend grants it.
    pub fn new(timer: ArmedTimer, lease: Lease) -> Self {
        Self {
            deadline_ms: timer.deadline_ms,
            run_id: timer.run_id,
            seq: timer.seq,
            workflow: timer.workflow,
            lease,
        }
    }
}

/// What a checkpoint's writer claims about its right to write the run.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::{CheckpointWrite, Fence};
/// // A single-process engine writes without a lease.
/// assert_eq!(CheckpointWrite::new("r-1").fence, Fence::Exclusive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Fence {
    /// No lease: the caller is the only writer of the store (a single-process engine). A
    /// backend shared by several processes may refuse such a write.
    #[default]
    Exclusive,
    /// Written under the lease with this token; refused unless that lease is still the run's
    /// current one.
    Lease(u64),
    /// Creates the run: refused with [`StoreError::NotOwner`] if a run with this id is stored
    /// already (or is created by an earlier checkpoint of the same group), so that of two
    /// processes starting one run id at the same instant exactly one creates it. An engine
    /// sharing its store writes every new run so, its own and the children it creates
    /// ([`CheckpointWrite::others`]).
    Create,
}

/// One checkpoint of one run: everything a commit writes for it.
///
/// The store derives the index rows from `run`: the rows of `previous` go, the rows of the
/// record's [`RunRecord::indexed_command`] come (a step to execute, a timer, a wait), and a run
/// that finished (other than by being parked as incompatible) has its inbox cleared.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serde_json::json;
/// let store = FileStore::open_memory()?;
/// let record = RunRecord::new("checkout", json!("Start"), 1_000);
/// let mut write = CheckpointWrite::new("order-1");
/// write.run = Some(RunWrite::new(record, None));
/// write.buffer = Some(InboxEntry::new("confirm", json!(true), None));
/// store.commit(write).await?;
/// assert_eq!(store.run("order-1")?.unwrap().workflow, "checkout");
/// assert_eq!(store.inbox("order-1")?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckpointWrite {
    /// The run.
    pub run_id: String,
    /// The writer's right to write it.
    pub fence: Fence,
    /// The run's new record, when this checkpoint moves the run.
    pub run: Option<RunWrite>,
    /// A signal to append to the inbox; the store gives it the next inbox index.
    pub buffer: Option<InboxEntry>,
    /// Inbox entries consumed by this checkpoint, by index.
    pub consumed: Vec<u64>,
    /// A de-duplication key accepted now, with the time, milliseconds since the Unix epoch.
    pub dedupe: Option<(String, u64)>,
    /// Trace events to append; the store numbers them on from the run's last event (their
    /// `seq` as given is replaced).
    pub trace: Vec<TraceEvent>,
    /// Removes the run with everything of it (record, index rows, trace, inbox, dedupe keys)
    /// instead of writing it; the other fields are then empty. Refused with
    /// [`StoreError::NotPurgeable`] unless the stored run has ended for good
    /// ([`RunRecord::is_purgeable`]); purging a run that does not exist changes nothing. Its id
    /// may then be used by a new run, whose trace and inbox start afresh.
    ///
    /// With `run` set too, the purge replaces the run: everything of it goes, then `run` and
    /// `trace` are written as for a new run, in the same transaction (an erasure,
    /// `Engine::erase`, rewrites an ended run and its trace without their payloads).
    pub purge: bool,
    /// The store's [`Store::epoch`] when the writer began reading what this checkpoint was
    /// computed from. A store whose epoch has moved on since refuses it with a device error
    /// ([`StoreError::is_device_failure`]), writing nothing: after a recovery the store may
    /// hold what the writer could not see (a commit refused because its sync failed, which
    /// reached the disk after all). `None` skips the check.
    pub epoch: Option<u64>,
    /// Checkpoints of other runs to make durable in the same transaction, all or nothing with
    /// this one: the child runs a workflow starts (`ctx.child`), created atomically with the
    /// parent's checkpoint that asks for them, so that a crash leaves either both or neither.
    /// Each is applied as a checkpoint of its own (its fence checked, its index rows derived);
    /// if one of them is refused, the whole write is refused. Nested `others` are not allowed
    /// (a backend may refuse them). Empty for most checkpoints.
    pub others: Vec<CheckpointWrite>,
    /// A lease on the run this checkpoint creates, from [`Store::lease_new_run`], held by the
    /// writer from the commit on: a backend that keeps leases with its runs (a database)
    /// writes it with the new run, so that the writer drives the run without claiming it
    /// after the commit and no other worker claims it in between; one that granted it at once
    /// (the embedded store, whose leases live in memory) has nothing left to do. Only a
    /// checkpoint that writes a record carries one. If the run exists by the time of the
    /// commit, it keeps the lease it has, and the writer's later checkpoints under this one
    /// are refused like any stale lease's. `None` for most checkpoints.
    pub grant: Option<Lease>,
}

impl CheckpointWrite {
    /// A checkpoint of `run_id` that writes nothing yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::CheckpointWrite;
    /// let write = CheckpointWrite::new("order-1");
    /// assert!(write.run.is_none() && write.trace.is_empty() && !write.purge);
    /// ```
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            fence: Fence::Exclusive,
            run: None,
            buffer: None,
            consumed: Vec::new(),
            dedupe: None,
            trace: Vec::new(),
            purge: false,
            epoch: None,
            others: Vec::new(),
            grant: None,
        }
    }

    /// A checkpoint that purges `run_id` (see [`CheckpointWrite::purge`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::store::*;
    /// # fn main() {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = FileStore::open_memory()?;
    /// // Purging a run that does not exist changes nothing.
    /// store.commit(CheckpointWrite::purging("gone")).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn purging(run_id: impl Into<String>) -> Self {
        let mut write = Self::new(run_id);
        write.purge = true;
        write
    }
}

/// A run's new record, with what it was suspended on before, so the store can drop the index
/// rows of that command.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use workflow_runtime::store::{RunRecord, RunWrite};
/// let first = RunWrite::new(RunRecord::new("checkout", json!("Start"), 0), None);
/// assert!(first.previous.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunWrite {
    /// The record to store.
    pub record: RunRecord,
    /// The pending command of the record this one replaces; `None` for a new run.
    pub previous: Option<Command>,
}

impl RunWrite {
    /// A record replacing one that was suspended on `previous`.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use workflow_runtime::store::{RunRecord, RunWrite};
    /// let write = RunWrite::new(RunRecord::new("checkout", json!("Start"), 0), None);
    /// assert_eq!(write.record.seq, 0);
    /// ```
    pub fn new(record: RunRecord, previous: Option<Command>) -> Self {
        Self { record, previous }
    }
}

/// The answer to [`Store::commit`] or [`Store::close`]: a future that resolves once the store
/// has done it, or with the reason it could not.
///
/// A backend answers at once with [`Acknowledgement::ready`] or later through the
/// [`Acknowledger`] of [`Acknowledgement::channel`]; dropping that acknowledger unanswered
/// resolves the acknowledgement with [`StoreError::Closed`].
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (acknowledger, acknowledgement) = Acknowledgement::channel();
/// // A backend's writer thread answers once the write is durable.
/// std::thread::spawn(move || acknowledger.acknowledge(Ok(())));
/// acknowledgement.await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "an acknowledgement does nothing unless awaited"]
pub struct Acknowledgement(Ack);

#[derive(Debug)]
enum Ack {
    Ready(Option<Result<(), StoreError>>),
    Waiting(oneshot::Receiver<Result<(), StoreError>>),
}

/// Answers one [`Acknowledgement`].
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (acknowledger, acknowledgement) = Acknowledgement::channel();
/// acknowledger.acknowledge(Err(StoreError::NotOwner { run_id: "r-1".into() }));
/// assert!(matches!(acknowledgement.await, Err(StoreError::NotOwner { .. })));
/// // Dropped unanswered, it answers `Closed`.
/// let (acknowledger, acknowledgement) = Acknowledgement::channel();
/// drop(acknowledger);
/// assert!(matches!(acknowledgement.await, Err(StoreError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct Acknowledger(oneshot::Sender<Result<(), StoreError>>);

impl Acknowledger {
    /// Resolves the acknowledgement; nothing happens if nobody awaits it any more.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::store::*;
    /// # fn main() {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (acknowledger, acknowledgement) = Acknowledgement::channel();
    /// acknowledger.acknowledge(Ok(()));
    /// assert!(acknowledgement.await.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn acknowledge(self, result: Result<(), StoreError>) {
        let _ = self.0.send(result);
    }
}

impl Acknowledgement {
    /// An acknowledgement that is already answered.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::store::*;
    /// # fn main() {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A backend that refuses work after closing answers at once.
    /// let refused = Acknowledgement::ready(Err(StoreError::Closed));
    /// assert!(matches!(refused.await, Err(StoreError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn ready(result: Result<(), StoreError>) -> Self {
        Self(Ack::Ready(Some(result)))
    }

    /// An acknowledgement to answer later, with the means to answer it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::store::*;
    /// # fn main() {
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (acknowledger, acknowledgement) = Acknowledgement::channel();
    /// tokio::spawn(async move { acknowledger.acknowledge(Ok(())) });
    /// acknowledgement.await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn channel() -> (Acknowledger, Acknowledgement) {
        let (tx, rx) = oneshot::channel();
        (Acknowledger(tx), Acknowledgement(Ack::Waiting(rx)))
    }
}

impl Future for Acknowledgement {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Ack::Ready(result) => Poll::Ready(result.take().unwrap_or(Err(StoreError::Closed))),
            Ack::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(StoreError::Closed))),
        }
    }
}

/// The index rows a run's record has, as every backend derives them (see "Writing a storage
/// backend" above): for a backend outside this crate, which cannot read [`Command`]s.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Indexed {
    /// A step must be executed, or the run awaits child runs whose outcomes it reads when
    /// resumed: the run is ready.
    Ready,
    /// A timer at this deadline, milliseconds since the Unix epoch: a sleep's end or a step's
    /// backoff.
    Timer(u64),
    /// A wait for a signal: a timer at its deadline, and this pending wait.
    Wait(PendingWait),
}

impl Indexed {
    /// The index rows of run `run_id` whose record is `record`; `None` once it has finished.
    pub fn of(run_id: &str, record: &RunRecord) -> Option<Indexed> {
        Some(match record.indexed_command()? {
            Command::Step {
                not_before_ms: Some(deadline_ms),
                ..
            } => Indexed::Timer(*deadline_ms),
            Command::Step { .. } | Command::Batch { .. } | Command::Children { .. } => {
                Indexed::Ready
            }
            Command::Sleep { deadline_ms } => Indexed::Timer(*deadline_ms),
            Command::Wait {
                name,
                deadline_ms,
                metadata,
                any_of,
            } => Indexed::Wait(PendingWait {
                run_id: run_id.to_owned(),
                workflow: record.workflow.clone(),
                wait_id: record.seq.to_string(),
                signal: name.clone(),
                metadata: metadata.clone(),
                deadline_ms: *deadline_ms,
                any_of: any_of.clone(),
            }),
        })
    }

    /// When its timer fires, if it has one.
    pub fn deadline_ms(&self) -> Option<u64> {
        match self {
            Indexed::Ready => None,
            Indexed::Timer(deadline_ms) => Some(*deadline_ms),
            Indexed::Wait(wait) => Some(wait.deadline_ms),
        }
    }
}
