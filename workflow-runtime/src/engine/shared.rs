//! Shared mode: several engines, in several processes, drive the runs of one store.
//!
//! An engine opened with [`EngineBuilder::shared`] drives a run only while it holds the run's
//! lease ([`Store::claim_ready`], [`Store::claim_timers`], [`Store::claim_run`]), writes every
//! checkpoint of it under that lease ([`Fence::Lease`]), renews the leases of the runs it
//! drives from a background task, and gives a lease back once the run parks on a wait or a
//! sleep that is not due soon, or ends. A commit refused with [`StoreError::NotOwner`], or a
//! renewal refused the same way, means another worker took the run over: this engine stops
//! the run's step and forgets the run.
//!
//! Work is found by a poller: every [`LeaseSettings::poll_every`] (earlier when the store
//! reports an announcement, see [`Store::wait_for_work`]) it claims ready runs and timers due
//! before the next round. A process that does not drive a run (it does not register its
//! workflow, or another worker holds its lease) still starts runs and sends signals: a start is
//! written as a new run, a signal is buffered in the run's inbox, and the store announces the
//! run ([`Store::announce`]) so that a worker claims it and delivers the signal.
//!
//! The single-process default never reaches this module: without `shared`, every hook below
//! returns at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::Notify;

use super::checkpoint::Checkpoint;
use super::versions::Resolution;
use super::{Engine, EngineBuilder, Inner, lock, report};
use crate::error::{OpsError, SignalError, StoreError};
use crate::model::Command;
use crate::store::{CheckpointWrite, Claim, Fence, InboxEntry, Lease};
use crate::trace::TraceKind;
use crate::types::{RunRecord, SignalOutcome};

/// How an engine sharing its store with other worker processes holds runs; see
/// [`EngineBuilder::shared`].
///
/// A lease must outlast the longest pause of a worker that is still healthy (a garbage
/// collection, a slow disk, a step that blocks its thread): a worker paused past it loses the
/// run to another worker, and its late checkpoint is refused. A shorter lease hands the runs of
/// a dead worker over sooner.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::LeaseSettings;
/// let settings = LeaseSettings::new(Duration::from_secs(10))
///     .poll_every(Duration::from_millis(250))
///     .owner("worker-a");
/// assert_eq!(settings.renew_every, Duration::from_secs(10) / 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseSettings {
    /// How long a lease lasts without renewal: how soon another worker takes over the runs of
    /// a worker that died or stalled. Default 30 s.
    pub lease: Duration,
    /// How often the leases of the runs being driven are renewed; must be well under `lease`.
    /// Default a third of `lease`.
    pub renew_every: Duration,
    /// How often the store is polled for ready runs and due timers when no announcement comes
    /// earlier. Default 1 s.
    pub poll_every: Duration,
    /// The most runs this engine claims per round (a bound on the steps it runs at once).
    /// Default 256.
    pub max_runs: usize,
    /// This worker's name among the store's users; must be unique. Default: the process id and
    /// the time the engine opened.
    pub owner: Option<String>,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl LeaseSettings {
    /// Leases of `lease`, renewed every third of it; the other settings at their defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::LeaseSettings;
    /// let settings = LeaseSettings::new(Duration::from_secs(3));
    /// assert_eq!(settings.renew_every, Duration::from_secs(1));
    /// ```
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            renew_every: lease / 3,
            poll_every: Duration::from_secs(1),
            max_runs: 256,
            owner: None,
        }
    }

    /// Sets [`LeaseSettings::renew_every`].
    #[must_use]
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = every;
        self
    }

    /// Sets [`LeaseSettings::poll_every`].
    #[must_use]
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }

    /// Sets [`LeaseSettings::max_runs`].
    #[must_use]
    pub fn max_runs(mut self, runs: usize) -> Self {
        self.max_runs = runs.max(1);
        self
    }

    /// Sets [`LeaseSettings::owner`].
    #[must_use]
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
}

impl EngineBuilder {
    /// Shares the store with other engines, in this process or others (a store several
    /// processes open, such as PostgreSQL): the engine drives a run only under its lease,
    /// claims ready runs and due timers by polling (and on the store's announcements), renews
    /// the leases of the runs it drives, and stops driving a run whose lease another worker
    /// took over. A process that registers no workflows claims nothing: it starts runs and
    /// sends signals, which a worker picks up. See [`LeaseSettings`].
    ///
    /// In this mode a signal to a run that this engine cannot claim at once is buffered in the
    /// run's inbox ([`SignalOutcome::Buffered`]) and delivered by the worker that claims the
    /// run; [`RunHandle::result`](crate::RunHandle::result) re-reads the store every
    /// [`LeaseSettings::poll_every`], since another worker may end the run.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::LeaseSettings;
    /// let engine = Engine::builder()
    ///     .register(approval)
    ///     .shared(LeaseSettings::new(Duration::from_secs(10)).poll_every(Duration::from_millis(50)))
    ///     .open_in_memory()
    ///     .await?;
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// engine.signal("r-1", "approve", true).await?;
    /// assert_eq!(run.result().await?, Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    #[must_use]
    pub fn shared(mut self, settings: LeaseSettings) -> Self {
        self.shared = Some(settings);
        self
    }
}

impl Engine {
    /// This engine's name as a lease owner, when it shares its store
    /// ([`EngineBuilder::shared`]).
    pub fn worker_id(&self) -> Option<&str> {
        self.inner.shared.as_ref().map(|s| s.owner.as_str())
    }
}

/// The leases and pending work of an engine in shared mode.
pub(super) struct Shared {
    settings: LeaseSettings,
    owner: String,
    /// The leases held, by run.
    leases: Mutex<HashMap<String, Lease>>,
    /// Runs whose due timer is armed here: their lease is kept until it fires.
    armed: Mutex<HashSet<String>>,
    /// Announced runs to claim, with the rounds tried so far.
    wakes: Mutex<HashMap<String, u32>>,
    /// Runs claimed without effect, to be deferred rather than released by the next settle
    /// ([`crate::store::Store::defer`]), until the wall-clock time given.
    deferrals: Mutex<HashMap<String, u64>>,
    /// Wakes the poller before its interval ends.
    kick: Notify,
}

impl Shared {
    pub(super) fn new(settings: LeaseSettings) -> Arc<Shared> {
        let owner = settings.owner.clone().unwrap_or_else(|| {
            format!(
                "worker-{}-{}",
                std::process::id(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )
        });
        Arc::new(Shared {
            settings,
            owner,
            leases: Mutex::default(),
            armed: Mutex::default(),
            wakes: Mutex::default(),
            deferrals: Mutex::default(),
            kick: Notify::new(),
        })
    }

    fn lease_ms(&self) -> u64 {
        millis(self.settings.lease)
    }

    fn claim(&self, limit: usize) -> Claim<'_> {
        Claim {
            owner: &self.owner,
            now_ms: wall_ms(),
            lease_ms: self.lease_ms(),
            limit,
            workflows: None,
        }
    }

    /// How long a run claimed without effect stays out of the claim rounds: as long as the
    /// sweep's interval, so that what an announcement lost would have woken waits no longer
    /// than a buffered signal does.
    fn deferral_ms(&self) -> u64 {
        millis(self.settings.poll_every).saturating_mul(SWEEP_ROUNDS)
    }

    fn hold(&self, lease: Lease) {
        lock(&self.leases).insert(lease.run_id.clone(), lease);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Leases are between processes, so they run on the wall clock even when the engine's clock is
/// a test's manual one.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// How many rounds an announced run is tried while another worker holds it: it may be about
/// to park on the wait the buffered signal is for, having read the inbox just before.
const WAKE_ROUNDS: u32 = 64;

/// Every this many rounds (and whenever announcements may have been lost), the poller looks
/// for waits whose signal sits in the inbox without an announcement.
const SWEEP_ROUNDS: u64 = 60;

impl Inner {
    /// Starts the poller and the renewer.
    pub(super) fn start_shared(self: &Arc<Self>) {
        if self.shared.is_some() {
            tokio::spawn(poll(Arc::downgrade(self)));
            tokio::spawn(renew(Arc::downgrade(self)));
        }
    }

    /// Shared mode: asks the poller for a round at once instead of resuming from unclaimed
    /// reads. Returns whether it did.
    pub(super) fn resume_shared(&self) -> bool {
        match &self.shared {
            Some(sh) => {
                sh.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Under the run's lock: claims the run unless its lease is held here already. A process
    /// that registers no workflow never claims.
    ///
    /// The claim waits on a thread of the blocking pool, not on a runtime thread: a store
    /// that sends the claims made at the same time as one statement (PostgreSQL, where each
    /// claim statement is a transaction and a WAL flush) can only group the claims whose
    /// callers wait at once, and on the runtime's threads no more than their number would.
    /// The lease is kept by that thread, so a caller that stops waiting loses nothing.
    pub(super) async fn acquire(&self, run_id: &str) {
        let Some(sh) = &self.shared else { return };
        if lock(&sh.leases).contains_key(run_id) || self.registry().names().is_empty() {
            return;
        }
        let (store, sh, run_id) = (self.store.clone(), sh.clone(), run_id.to_owned());
        let claimed =
            tokio::task::spawn_blocking(move || match store.claim_run(&sh.claim(1), &run_id) {
                Ok(Some(lease)) => sh.hold(lease),
                Ok(None) => {}
                Err(e) => tracing::debug!(run_id, error = %e, "claiming a run"),
            })
            .await;
        if let Err(e) = claimed {
            tracing::debug!(error = %e, "claiming a run");
        }
    }

    /// Shared mode, under the run's lock, for an operation that rewrites the run (cancel,
    /// terminate, retry, erase): takes the run's lease, in a process that drives no workflow
    /// too, waiting up to one lease time for the worker that drives the run to give it back
    /// (it does once the run parks or its step ends; a dead worker's lapses). The lock's
    /// release gives it back. An unknown run is left to the operation to report.
    pub(super) async fn lease_for_op(&self, run_id: &str) -> Result<(), OpsError> {
        let Some(sh) = &self.shared else {
            return Ok(());
        };
        let began = std::time::Instant::now();
        loop {
            if lock(&sh.leases).contains_key(run_id) {
                return Ok(());
            }
            if let Some(lease) = self.store.claim_run(&sh.claim(1), run_id)? {
                sh.hold(lease);
                return Ok(());
            }
            if self.store.run(run_id)?.is_none() {
                return Ok(());
            }
            if began.elapsed() >= sh.settings.lease {
                return Err(OpsError::LeasedElsewhere {
                    run_id: run_id.to_owned(),
                    waited_ms: millis(began.elapsed()),
                });
            }
            let pause = sh.settings.poll_every.min(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
        }
    }

    /// Whether this engine runs a step or holds an armed timer for the run.
    fn busy_with(&self, run_id: &str) -> bool {
        let Some(sh) = &self.shared else { return false };
        lock(&self.steps).contains_key(run_id)
            || self.batches.runs(run_id)
            || lock(&sh.armed).contains(run_id)
    }

    /// Releasing the run's lock: gives the lease back unless the run still needs this engine
    /// (a step runs, a due timer is armed).
    pub(super) fn settle(&self, run_id: &str) {
        let Some(sh) = &self.shared else { return };
        // A deferral is for the lease given back now: a run still busy has moved on.
        let deferral = lock(&sh.deferrals).remove(run_id);
        if self.busy_with(run_id) {
            return;
        }
        let lease = lock(&sh.leases).remove(run_id);
        if let Some(lease) = lease {
            let given = match deferral {
                Some(until) => self.store.defer(&lease, until),
                None => self.store.release(&lease),
            };
            if let Err(e) = given {
                // It lapses by itself.
                tracing::debug!(run_id, error = %e, "releasing a lease");
            }
        }
    }

    /// Shared mode, under the run's lock: the run was claimed without effect (a parent whose
    /// awaited children all still run); the lease is given back with a deferral, so that the
    /// claim rounds reach the other ready runs instead of claiming it again each round. The
    /// end of a child claims it by id at once (its worker, or the one its announcement
    /// reaches), which ends the deferral; polling finds it after the deferral otherwise.
    pub(super) fn defer_unproductive(&self, run_id: &str) {
        if let Some(sh) = &self.shared {
            let until = wall_ms().saturating_add(sh.deferral_ms());
            lock(&sh.deferrals).insert(run_id.to_owned(), until);
        }
    }

    /// After a step's attempt ended: gives the lease back if nothing else keeps it.
    pub(super) async fn shared_idle(&self, run_id: &str) {
        let held = self
            .shared
            .as_ref()
            .is_some_and(|sh| lock(&sh.leases).contains_key(run_id));
        if held {
            // Taking the lock and dropping it settles.
            drop(self.lock_run(run_id).await);
        }
    }

    /// Sets the fence of a checkpoint, and answers whether to announce the run once it is
    /// durable. A record write of an existing run needs the run's lease; a new run, a purge
    /// of an ended run and a write that leaves the record alone (a buffered signal, a trace
    /// event) do not. A new run of a workflow this engine drives gets its lease from the
    /// commit that creates it ([`CheckpointWrite::grant`]): no claim after the commit, and no
    /// other worker claims it in between.
    pub(super) fn fence(
        &self,
        write: &mut CheckpointWrite,
        creates: bool,
    ) -> Result<bool, StoreError> {
        let Some(sh) = &self.shared else {
            write.fence = Fence::Exclusive;
            return Ok(false);
        };
        if let Some(lease) = lock(&sh.leases).get(&write.run_id) {
            write.fence = lease.fence();
            return Ok(false);
        }
        if write.run.is_some() && !creates && !write.purge {
            return Err(StoreError::NotOwner {
                run_id: write.run_id.clone(),
            });
        }
        write.fence = Fence::Exclusive;
        let announce = match &write.run {
            Some(run) if creates => {
                let ours = self.registry().contains(&run.record.workflow);
                if ours && !write.purge {
                    match self.store.lease_new_run(&sh.claim(1), &write.run_id) {
                        // Held once the commit is durable ([`Inner::hold_granted`]): a
                        // creation refused because another process took the id grants nothing.
                        Ok(Some(lease)) => write.grant = Some(lease),
                        // Claimed after the commit instead.
                        Ok(None) => {}
                        Err(e) => {
                            tracing::debug!(run_id = %write.run_id, error = %e, "leasing a new run");
                        }
                    }
                }
                !ours
            }
            _ => write.buffer.is_some(),
        };
        // A new run is created only if its id is still free when the store commits it:
        // another process may start the same id at the same instant.
        if write.run.is_some() && creates && !write.purge {
            write.fence = Fence::Create;
        }
        Ok(announce)
    }

    /// A commit that created a run with a lease for this engine is durable: the lease is held.
    pub(super) fn hold_granted(&self, lease: Lease) {
        if let Some(sh) = &self.shared {
            sh.hold(lease);
        }
    }

    /// The fence this engine would write the run under now: its lease's, when it holds one;
    /// `Exclusive` in the single-process mode (and for a run it holds no lease of).
    pub(super) fn held_fence(&self, run_id: &str) -> Fence {
        match &self.shared {
            Some(sh) => lock(&sh.leases)
                .get(run_id)
                .map_or(Fence::Exclusive, Lease::fence),
            None => Fence::Exclusive,
        }
    }

    /// Tells the other workers about a run this engine will not drive.
    pub(super) fn announce(&self, run_id: &str) {
        if let Err(e) = self.store.announce(run_id) {
            tracing::debug!(run_id, error = %e, "announcing a run (polling finds it)");
        }
    }

    /// A commit failed. Refused for a lost lease (shared mode): forget the run. Failed for
    /// the backend (the connection to a database server was lost, perhaps during `COMMIT`),
    /// in either mode: the outcome is unknown, so the run is read again once the store
    /// answers, and continues from what it holds, instead of waiting for the next open with
    /// nothing in memory to drive it (its step's result, its timer are gone). A device
    /// failure of an embedded store has its own recovery, which resumes every run.
    pub(super) fn commit_failed(&self, run_id: &str, e: &StoreError) {
        match e {
            StoreError::NotOwner { .. } if self.shared.is_some() => self.lost(run_id),
            StoreError::Backend { .. } => {
                tokio::spawn(reattend(self.me.clone(), run_id.to_owned()));
            }
            _ => {}
        }
    }

    /// Another worker owns the run now: stop its step and forget it.
    fn lost(&self, run_id: &str) {
        let Some(sh) = &self.shared else { return };
        // A creation refused because the id was taken held no lease to lose.
        if lock(&sh.leases).remove(run_id).is_some() {
            tracing::info!(run_id, owner = %sh.owner, "lost the lease of run `{run_id}` to another worker");
        }
        lock(&sh.armed).remove(run_id);
        lock(&sh.deferrals).remove(run_id);
        self.forget_hot(run_id);
        if let Some(step) = lock(&self.steps).remove(run_id) {
            step.abort();
        }
        self.batches.abort(run_id);
    }

    /// Whether this engine may drive the run now: always in exclusive mode; in shared mode if
    /// it registers the workflow and holds (or can take) the lease.
    pub(super) fn may_drive(&self, run_id: &str, workflow: &str) -> bool {
        let Some(sh) = &self.shared else { return true };
        if !self.registry().contains(workflow) {
            return false;
        }
        if lock(&sh.leases).contains_key(run_id) {
            return true;
        }
        match self.store.claim_run(&sh.claim(1), run_id) {
            Ok(Some(lease)) => {
                sh.hold(lease);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(run_id, error = %e, "claiming a run");
                false
            }
        }
    }

    /// A wait or sleep was committed: shared mode arms its timer only when it is due before
    /// the next round (keeping the lease), else leaves it to whichever worker claims it then.
    /// Returns whether it handled the timer.
    pub(super) fn park(&self, run_id: &str, deadline_ms: u64, seq: u64) -> bool {
        let Some(sh) = &self.shared else { return false };
        let soon = self.clock.now_ms() + millis(sh.settings.poll_every);
        if deadline_ms <= soon && lock(&sh.leases).contains_key(run_id) {
            lock(&sh.armed).insert(run_id.to_owned());
            self.timers.arm(deadline_ms, run_id.to_owned(), seq);
        }
        true
    }

    /// A step's backoff timer is armed here: keep the lease until it fires.
    pub(super) fn note_armed(&self, run_id: &str) {
        if let Some(sh) = &self.shared {
            lock(&sh.armed).insert(run_id.to_owned());
        }
    }

    /// A timer fired: the lease no longer waits for it.
    pub(super) fn note_fired(&self, run_id: &str) {
        if let Some(sh) = &self.shared {
            lock(&sh.armed).remove(run_id);
        }
    }

    /// Shared mode, for `send`: whether the signal must be buffered rather than delivered,
    /// because this engine cannot drive the run (another worker holds it, or its workflow is
    /// not registered here), or because signals of the same name buffered by other processes
    /// wait in the inbox: they go first, in the order they were accepted.
    pub(super) fn must_buffer(
        &self,
        run_id: &str,
        workflow: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let Some(sh) = &self.shared else {
            return Ok(false);
        };
        if !self.registry().contains(workflow) || !lock(&sh.leases).contains_key(run_id) {
            return Ok(true);
        }
        Ok(self
            .store
            .inbox(run_id)?
            .iter()
            .any(|(_, e)| e.name == name))
    }

    /// Buffers a signal for a run this engine does not drive, and announces the run.
    pub(super) async fn send_buffered(
        &self,
        run_id: &str,
        rec: RunRecord,
        name: String,
        payload: Value,
        dedupe_key: Option<String>,
    ) -> Result<SignalOutcome, SignalError> {
        if let Some(d) = self.driver(&rec.workflow)
            && let Some(message) = d.refuse_payload(&name, &payload)
        {
            return Err(SignalError::PayloadMismatch {
                run_id: run_id.to_owned(),
                signal: name,
                message,
            });
        }
        let mut cp = Checkpoint::load(run_id, self.clock.now_ms(), rec);
        cp.buffer(InboxEntry::new(
            name.clone(),
            payload.clone(),
            dedupe_key.clone(),
        ));
        cp.trace(TraceKind::SignalBuffered {
            signal: name,
            payload,
            dedupe_key: dedupe_key.clone(),
        });
        if let Some(key) = dedupe_key {
            cp.dedupe(key);
        }
        self.commit(cp).await?;
        // Holding the run, deliver what its wait can take now, oldest first; otherwise the
        // commit announced the run to the worker that will.
        let held = self
            .shared
            .as_ref()
            .is_some_and(|sh| lock(&sh.leases).contains_key(run_id));
        if held {
            for _ in 0..64 {
                let Some(rec) = self.store.run(run_id)? else {
                    break;
                };
                if !self.deliver_buffered(run_id, rec).await? {
                    break;
                }
            }
        }
        Ok(SignalOutcome::Buffered)
    }

    /// Carries out what a claimed run is suspended on: delivers a buffered signal its wait
    /// is for, runs its step, arms a timer that is due soon. Under the run's lock.
    async fn attend(&self, run_id: &str) -> Result<(), StoreError> {
        let _lock = self.lock_run(run_id).await;
        // A signal whose payload the workflow refuses is dropped with a trace event, and the
        // next buffered one is offered.
        for _ in 0..64 {
            let Some(rec) = self.store.run(run_id)? else {
                return Ok(());
            };
            if !self.deliver_buffered(run_id, rec).await? {
                break;
            }
        }
        if let Some(rec) = self.store.run(run_id)? {
            self.drive_pending(run_id, &rec);
        }
        Ok(())
    }

    /// Delivers the first buffered signal the run's wait is for; whether one was there.
    async fn deliver_buffered(&self, run_id: &str, rec: RunRecord) -> Result<bool, StoreError> {
        let Some(Command::Wait { name, .. }) = &rec.pending else {
            return Ok(false);
        };
        if rec.is_finished() || !self.may_drive(run_id, &rec.workflow) {
            return Ok(false);
        }
        let inbox = self.store.inbox(run_id)?;
        let Some((index, entry)) = inbox.into_iter().find(|(_, e)| e.name == *name) else {
            return Ok(false);
        };
        let Ok((d, mut cp)) = self.prepare(run_id, rec).await? else {
            return Ok(false);
        };
        // A refusal is traced and the signal dropped, as for any buffered signal.
        cp.drive_buffered(&*d, &*self.store, index, entry)?;
        self.commit(cp).await?;
        Ok(true)
    }

    /// Starts what the stored run is suspended on, if this engine may drive it.
    fn drive_pending(&self, run_id: &str, rec: &RunRecord) {
        if rec.is_finished() {
            if let Some(n) = lock(&self.waiters).get(run_id) {
                n.notify_waiters();
            }
            return;
        }
        if !self.may_drive(run_id, &rec.workflow) {
            return;
        }
        if !matches!(
            self.registry().resolve(rec),
            Resolution::Ready(_) | Resolution::Migrate(..)
        ) {
            return;
        }
        match &rec.pending {
            Some(cmd @ Command::Step { .. }) => {
                self.launch_step(run_id, &rec.workflow, rec.seq, cmd);
            }
            Some(cmd @ Command::Batch { .. }) => {
                self.launch_batch(run_id, &rec.workflow, rec.seq, cmd);
            }
            // Under the run's lock: its children's outcomes are read by a task that takes it
            // after.
            Some(Command::Children { .. }) => self.wake_parent(run_id),
            Some(Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms })
                if !self.park(run_id, *deadline_ms, rec.seq) =>
            {
                self.timers.arm(*deadline_ms, run_id.to_owned(), rec.seq);
            }
            _ => {}
        }
    }

    /// One round of the poller: announced runs, ready runs, due timers.
    async fn claim_round(self: &Arc<Self>, sweep: bool) -> Result<(), StoreError> {
        let Some(sh) = self.shared.clone() else {
            return Ok(());
        };
        if self.registry().names().is_empty() {
            return Ok(());
        }
        if sweep {
            // One read, whose cost follows the buffered signals, not the parked runs.
            for wait in self.store.signalled_waits()? {
                if self.registry().contains(&wait.workflow) {
                    lock(&sh.wakes).entry(wait.run_id).or_insert(0);
                }
            }
        }
        // A lease granted here, outside the run's lock, is not taken into `leases`: the
        // holder's own claim keeps its token, so a claim that reached the store just before
        // a release of the same lease (sent by `settle`, under the run's lock, a moment
        // earlier) would leave this engine holding a token the store no longer has. Its next
        // commit would be refused, and the run's step, already done, would run again. The
        // attending task takes the lease under the run's lock instead, after any release.
        let woken: Vec<String> = lock(&sh.wakes).keys().cloned().collect();
        for run_id in woken {
            match self.store.claim_run(&sh.claim(1), &run_id)? {
                Some(_) => {
                    lock(&sh.wakes).remove(&run_id);
                    self.spawn_attend(run_id);
                }
                None => {
                    let mut wakes = lock(&sh.wakes);
                    if let Some(rounds) = wakes.get_mut(&run_id) {
                        *rounds += 1;
                        if *rounds > WAKE_ROUNDS {
                            wakes.remove(&run_id);
                        }
                    }
                }
            }
        }
        // Each claim round must make progress on every run this worker can drive, whatever
        // else is ready. Two kinds of runs would otherwise come first round after round and
        // use up `max_runs`: runs of workflows this worker does not register (claimed only to
        // be given back), which the claim leaves out by name; and parents awaiting children
        // that all still run (ready only in case a child's end went unannounced), which are
        // deferred once claimed without effect (`defer_unproductive`), so that the next rounds
        // reach the runs after them. A least-recently-claimed order alone would still spend
        // most of each round on them.
        let limit = sh.settings.max_runs;
        let mut names = self.registry().names();
        let ready_claim = Claim {
            workflows: Some(&names),
            ..sh.claim(limit)
        };
        let ready_runs = self.store.claim_ready(&ready_claim)?;
        for ready in ready_runs {
            if !self.registry().contains(&ready.workflow) {
                let _ = self.store.release(&ready.lease);
                continue;
            }
            if !self.busy_with(&ready.run_id) {
                self.spawn_attend(ready.run_id);
            }
        }
        let due_by = self.clock.now_ms() + millis(sh.settings.poll_every);
        // A schedule's timer is claimed by every worker and kept by the one that registers
        // the workflow it starts (see below).
        names.push(super::SCHEDULE_WORKFLOW);
        let timer_claim = Claim {
            workflows: Some(&names),
            ..sh.claim(limit)
        };
        for timer in self.store.claim_timers(&timer_claim, due_by)? {
            let ours = match timer.workflow == super::SCHEDULE_WORKFLOW {
                // A schedule's timer belongs to no workflow: the worker that registers the
                // workflow the schedule starts takes it, as it would a run's timer.
                true => self.fires_schedule(&timer.run_id),
                false => self.registry().contains(&timer.workflow),
            };
            if !ours {
                let _ = self.store.release(&timer.lease);
                continue;
            }
            // The firing takes the lease under the run's lock (see above); the claim keeps other
            // workers off the run until then, the timer being due within the lease.
            lock(&sh.armed).insert(timer.run_id.clone());
            self.timers.arm(timer.deadline_ms, timer.run_id, timer.seq);
        }
        Ok(())
    }

    fn spawn_attend(self: &Arc<Self>, run_id: String) {
        let inner = self.clone();
        let busy = self.busy.guard();
        tokio::spawn(async move {
            if let Err(e) = inner.attend(&run_id).await {
                report(&run_id, "a claimed run", &e);
            }
            drop(busy);
        });
    }

    /// Gives every lease back (a clean shutdown), so that other workers take the runs over at
    /// once instead of after the lease time.
    pub(super) fn release_all(&self) {
        let Some(sh) = &self.shared else { return };
        let leases: Vec<Lease> = lock(&sh.leases).drain().map(|(_, l)| l).collect();
        for lease in leases {
            let _ = self.store.release(&lease);
        }
    }

    /// Shared mode: how long `RunHandle::result` waits before reading the run again, since
    /// another worker may end it without this engine hearing of it.
    pub(super) fn result_poll(&self) -> Option<Duration> {
        self.shared.as_ref().map(|sh| sh.settings.poll_every)
    }
}

/// The poller: claim rounds, between which it waits for announcements or the interval.
async fn poll(me: Weak<Inner>) {
    let mut rounds: u64 = 0;
    let mut sweep = true;
    loop {
        let Some(inner) = me.upgrade() else { return };
        if *inner.shutdown.borrow() {
            return;
        }
        let Some(sh) = inner.shared.clone() else {
            return;
        };
        rounds += 1;
        if let Err(e) = inner
            .claim_round(sweep || rounds.is_multiple_of(SWEEP_ROUNDS))
            .await
        {
            tracing::warn!(error = %e, "claiming work from the shared store");
        } else {
            sweep = false;
        }
        let store = inner.store.clone();
        let mut shutdown = inner.shutdown.subscribe();
        let workers = !inner.registry().names().is_empty();
        drop(inner);
        tokio::select! {
            woken = store.wait_for_work(sh.settings.poll_every) => {
                sweep |= woken.lost;
                if workers {
                    let mut wakes = lock(&sh.wakes);
                    for run_id in woken.runs {
                        wakes.entry(run_id).or_insert(0);
                    }
                }
            }
            () = sh.kick.notified() => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

/// The renewer: extends the leases of the runs being driven, gives back the ones nothing
/// needs any more, and forgets the ones another worker took.
async fn renew(me: Weak<Inner>) {
    loop {
        let (every, mut shutdown) = {
            let Some(inner) = me.upgrade() else { return };
            let Some(sh) = &inner.shared else { return };
            (sh.settings.renew_every, inner.shutdown.subscribe())
        };
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
        let Some(inner) = me.upgrade() else { return };
        let Some(sh) = inner.shared.clone() else {
            return;
        };
        let held: Vec<Lease> = lock(&sh.leases).values().cloned().collect();
        let now = wall_ms();
        let mut due = Vec::new();
        for lease in held {
            let run_id = lease.run_id.clone();
            let locked = lock(&inner.locks).contains_key(&run_id);
            if !locked && !inner.busy_with(&run_id) {
                let idle = inner.clone();
                tokio::spawn(async move { idle.shared_idle(&run_id).await });
                continue;
            }
            // A lease granted or renewed within the last half-interval keeps most of its time:
            // renewing it too would cost a write (a WAL flush on a server) per run driven,
            // each round, for nothing. It is renewed next round, with the lease less one and a
            // half intervals left (half the lease at the default interval).
            let fresh_until = lease
                .expires_ms
                .saturating_sub(sh.lease_ms())
                .saturating_add(millis(sh.settings.renew_every) / 2);
            if now >= fresh_until {
                due.push(lease);
            }
        }
        if due.is_empty() {
            continue;
        }
        // One call for every lease due: a renewal per run, each waiting for its own round
        // trip and flush, kept a runtime thread busy for seconds under load.
        let answers = match inner.store.renew_all(&due, now, sh.lease_ms()) {
            Ok(answers) => answers,
            Err(e) => {
                tracing::warn!(error = %e, leases = due.len(), "renewing leases");
                continue;
            }
        };
        for (lease, answer) in due.into_iter().zip(answers) {
            let run_id = lease.run_id.clone();
            match answer {
                Ok(renewed) => {
                    let mut leases = lock(&sh.leases);
                    if let Some(l) = leases.get_mut(&run_id)
                        && l.token == renewed.token
                    {
                        *l = renewed;
                    }
                }
                Err(StoreError::NotOwner { .. }) => {
                    let still = lock(&sh.leases)
                        .get(&run_id)
                        .is_some_and(|l| l.token == lease.token);
                    if still {
                        inner.lost(&run_id);
                    }
                }
                Err(e) => tracing::warn!(run_id, error = %e, "renewing a lease"),
            }
        }
    }
}

/// After a commit whose outcome is unknown: reads the run once the store answers, and
/// continues from what it holds (a step whose result was committed is not run again; one
/// whose result was lost runs again, at least once as always).
async fn reattend(me: Weak<Inner>, run_id: String) {
    let mut backoff = Duration::from_millis(50);
    loop {
        tokio::time::sleep(backoff).await;
        let Some(inner) = me.upgrade() else { return };
        if *inner.shutdown.borrow() {
            return;
        }
        let _lock = inner.lock_run(&run_id).await;
        match inner.store.run(&run_id) {
            Ok(None) => return,
            Ok(Some(rec)) => {
                inner.drive_pending(&run_id, &rec);
                return;
            }
            Err(e) => {
                tracing::debug!(run_id, error = %e, "reading a run after a failed commit");
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
