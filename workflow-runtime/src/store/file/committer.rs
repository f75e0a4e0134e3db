//! Group commit: one writer, driven by one thread, and every durable transaction it makes
//! carries all the checkpoints that were queued while the previous one was being written.
//!
//! The thread blocks on its channel when idle and drains it completely when woken, so there is
//! no fixed delay: a lone checkpoint is committed at once, and under load one fsync serves many
//! runs. It never runs user code. A lone checkpoint arriving while the thread is idle is written
//! by its caller instead, on a multi-threaded runtime (see [`Committer::commit`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};

use super::value::{self, Tail};
use super::{
    Context, DEDUPE, INBOX, Index, Leases, READY, RUNS, Shared, Source, TIMERS, TRACE, WAITS,
    clears_inbox, index_of,
};
use crate::codec;
use crate::error::CodecError;
use crate::store::{
    Acknowledgement, Acknowledger, CheckpointWrite, Fence, PendingWait, StoreError,
};
use crate::trace::TraceEvent;

/// One checkpoint, encoded on the caller's thread, with its index rows derived.
pub(crate) struct Job {
    run_id: String,
    fence: Fence,
    /// The encoded record.
    record: Option<Vec<u8>>,
    workflow: String,
    seq: u64,
    unindex: Option<Index>,
    index: Option<Index>,
    /// The encoded [`PendingWait`] of a new wait.
    wait: Option<Vec<u8>>,
    clear_inbox: bool,
    buffer: Option<Vec<u8>>,
    consumed: Vec<u64>,
    dedupe: Option<(String, u64)>,
    /// Numbered and encoded in the write transaction, which knows the run's last event.
    trace: Vec<TraceEvent>,
    /// Remove the run and everything of it instead.
    purge: bool,
    /// The store's epoch the checkpoint was computed in.
    epoch: Option<u64>,
    /// Checkpoints of other runs written in the same transaction (child runs).
    others: Vec<Job>,
}

impl Job {
    /// Encodes a checkpoint; an encoding error reaches the caller before anything is queued.
    pub(crate) fn encode(cp: CheckpointWrite) -> Result<Job, StoreError> {
        let CheckpointWrite {
            run_id,
            fence,
            run,
            buffer,
            consumed,
            dedupe,
            trace,
            purge,
            epoch,
            others,
            // Granted in memory by `lease_new_run` already.
            grant: _,
        } = cp;
        let encode = |what: &str, e| {
            StoreError::Codec(CodecError::encoding(
                format!("the {what} of run `{run_id}`"),
                e,
            ))
        };
        let mut job = Job {
            fence,
            record: None,
            workflow: String::new(),
            seq: 0,
            unindex: None,
            index: None,
            wait: None,
            clear_inbox: false,
            buffer: None,
            consumed,
            dedupe,
            trace,
            purge,
            epoch,
            run_id: String::new(),
            others: Vec::new(),
        };
        for other in others {
            if !other.others.is_empty() {
                return Err(StoreError::backend(
                    "committing a checkpoint",
                    std::io::Error::other("a checkpoint's other writes cannot have their own"),
                ));
            }
            job.others.push(Job::encode(other)?);
        }
        if let Some(write) = run {
            let rec = &write.record;
            job.unindex = write.previous.as_ref().map(index_of);
            if let Some(cmd) = rec.indexed_command() {
                job.index = Some(index_of(cmd));
                if let crate::model::Command::Wait {
                    name,
                    deadline_ms,
                    metadata,
                    any_of,
                } = cmd
                {
                    let wait = PendingWait {
                        run_id: run_id.clone(),
                        workflow: rec.workflow.clone(),
                        wait_id: rec.seq.to_string(),
                        signal: name.clone(),
                        metadata: metadata.clone(),
                        deadline_ms: *deadline_ms,
                        any_of: any_of.clone(),
                    };
                    job.wait = Some(codec::to_bytes(&wait).map_err(|e| encode("pending wait", e))?);
                }
            }
            job.clear_inbox = clears_inbox(rec);
            job.record = Some(codec::to_bytes(rec).map_err(|e| encode("record", e))?);
            job.seq = rec.seq;
            job.workflow.clone_from(&rec.workflow);
        }
        if let Some(entry) = &buffer {
            job.buffer = Some(codec::to_bytes(entry).map_err(|e| encode("buffered signal", e))?);
        }
        job.run_id = run_id;
        Ok(job)
    }
}

// A commit travels by value: boxing it would cost an allocation per checkpoint, and the
// channel moves it once.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Commit(Job, Acknowledger),
    /// Asks whether writes are accepted, recovering first if they were not.
    Probe(Acknowledger),
    Stop(Acknowledger),
}

/// The handle to the committer thread, or to the writer itself when commits run inline.
pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The writer, locked by whichever thread writes: the committer thread, or a caller (see
    /// [`Committer::commit`]); `None` inside once stopped.
    writer: Arc<Mutex<Option<Writer>>>,
    /// Whether commits always run on the caller's thread (see [`Committer::inline`]).
    inline: bool,
    /// Messages sent to the thread and not yet taken up by it.
    queued: Arc<AtomicU64>,
    /// Whether the last commit group held one checkpoint at most.
    lone: Arc<AtomicBool>,
    /// Whether a caller may write a lone commit itself ([`Committer::set_caller_commits`]).
    caller_commits: AtomicBool,
    commits: Arc<AtomicU64>,
    shared: Arc<Shared>,
}

/// The first pause between two recoveries while the device keeps failing; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// How many commits the committer's own read transaction spans (see [`Writer::pin`]).
const RECLAIM_EVERY: u32 = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One commit in this many of an inline (in-memory) committer is durable (see
/// [`Writer::durability`]).
const DURABLE_EVERY: u32 = 64;

impl Committer {
    /// Starts the thread, which writes to `db` and, after a device failure, reopens the
    /// database through `source` into the slot it shares with the readers.
    pub(crate) fn spawn(
        db: Arc<Database>,
        shared: Arc<Shared>,
        source: Option<Source>,
        leases: Arc<Leases>,
    ) -> Result<Committer, StoreError> {
        let (tx, rx) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let lone = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            db: Some(db),
            shared: shared.clone(),
            source,
            leases,
            commits: commits.clone(),
            lone: lone.clone(),
            broken: None,
            backoff: FIRST_BACKOFF,
            pin: None,
            lazy: None,
            tails: Tails::default(),
        };
        let writer = Arc::new(Mutex::new(Some(writer)));
        let queued = Arc::new(AtomicU64::new(0));
        let thread = {
            let writer = writer.clone();
            let queued = queued.clone();
            std::thread::Builder::new()
                .name("workflow-committer".to_owned())
                .spawn(move || run(&writer, &rx, &queued))
                .map_err(|e| StoreError::io("starting the committer thread", e))?
        };
        Ok(Committer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            writer,
            inline: false,
            queued,
            lone,
            caller_commits: AtomicBool::new(true),
            commits,
            shared,
        })
    }

    /// A committer without a thread, for a store whose commits never wait for a device (redb's
    /// in-memory backend): each commit is written on the caller's thread, under a lock, and is
    /// acknowledged before the call returns.
    ///
    /// The thread exists to keep an fsync off the async runtime and to group the commits that
    /// queue while one is being synced. Without an fsync there is nothing to keep off and
    /// nothing to group, and the hand-off to the thread and the wake-up back cost more than
    /// the commit itself (two cross-thread wake-ups per step, BENCHMARKS.md).
    pub(crate) fn inline(db: Arc<Database>, shared: Arc<Shared>, leases: Arc<Leases>) -> Committer {
        let commits = Arc::new(AtomicU64::new(0));
        let lone = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            db: Some(db),
            shared: shared.clone(),
            source: None,
            leases,
            commits: commits.clone(),
            lone: lone.clone(),
            broken: None,
            backoff: FIRST_BACKOFF,
            pin: None,
            lazy: Some(0),
            tails: Tails::default(),
        };
        Committer {
            tx: Mutex::new(None),
            thread: Mutex::new(None),
            writer: Arc::new(Mutex::new(Some(writer))),
            inline: true,
            queued: Arc::new(AtomicU64::new(0)),
            lone,
            caller_commits: AtomicBool::new(true),
            commits,
            shared,
        }
    }

    /// Queues `job`; the acknowledgement resolves once it is committed, or with the error that
    /// prevented it (then nothing of it was written, unless the device failed to sync).
    ///
    /// *A lone commit is written on the caller's thread.* When nothing is queued for the
    /// thread, nobody is writing, and the last group held one checkpoint at most (commits come
    /// one at a time, as a run's steps do), the caller takes the writer and commits itself,
    /// acknowledged before this returns; otherwise the job goes to the thread, which groups
    /// whatever queues meanwhile. Handing a lone commit to the thread cost two thread
    /// wake-ups per step, each after a sleep as long as an fsync: on a virtual machine whose
    /// idle CPUs halt, about 55-100 µs per step, a third of the commit itself (`bench
    /// w1probe`, BENCHMARKS.md). The caller's thread then blocks for the fsync, which the
    /// thread existed to avoid, so this is done only on a multi-threaded tokio runtime with two
    /// workers or more (the others run and steal the blocked worker's tasks meanwhile), never
    /// on a current-thread runtime or outside one; a burst of commits finds the writer busy or
    /// the last group large and queues for one group commit as before.
    pub(crate) fn commit(&self, job: Job) -> Acknowledgement {
        self.send(|ack| Msg::Commit(job, ack))
    }

    /// Allows or forbids callers to write lone commits themselves (see [`Committer::commit`]);
    /// forbidden, every commit goes to the thread.
    pub(crate) fn set_caller_commits(&self, allowed: bool) {
        self.caller_commits.store(allowed, Ordering::Relaxed);
    }

    /// Resolves once the committer has checked that writes are accepted: at once if no device
    /// failure is outstanding, else after one attempt to recover.
    pub(crate) fn probe(&self) -> Acknowledgement {
        self.send(Msg::Probe)
    }

    fn send(&self, msg: impl FnOnce(Acknowledger) -> Msg) -> Acknowledgement {
        let (ack, done) = Acknowledgement::channel();
        if self.inline {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            match writer.as_mut() {
                Some(w) => {
                    if w.handle(msg(ack)) {
                        *writer = None;
                    }
                }
                None => ack.acknowledge(Err(StoreError::Closed)),
            }
            return done;
        }
        let msg = msg(ack);
        if matches!(msg, Msg::Commit(..))
            && self.caller_commits.load(Ordering::Relaxed)
            && self.lone.load(Ordering::Relaxed)
            && self.queued.load(Ordering::SeqCst) == 0
            && may_block()
            && let Ok(mut writer) = self.writer.try_lock()
            && let Some(w) = writer.as_mut()
            && w.broken.is_none()
        {
            w.handle(msg);
            return done;
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            // A send to a stopped thread drops the acknowledger, which answers `Closed`.
            Some(tx) => {
                self.queued.fetch_add(1, Ordering::SeqCst);
                drop(tx.send(msg));
            }
            None => match msg {
                Msg::Commit(_, ack) | Msg::Probe(ack) | Msg::Stop(ack) => {
                    ack.acknowledge(Err(StoreError::Closed));
                }
            },
        }
        done
    }

    /// How many write transactions were committed.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits what is queued, then stops the thread, which closes the database. Resolves once
    /// that is done.
    pub(crate) fn stop(&self) -> Acknowledgement {
        if self.inline {
            return self.send(Msg::Stop);
        }
        let (ack, done) = Acknowledgement::channel();
        // Counted before the sender goes, so that no caller takes the writer for a commit of
        // its own once the stop is asked for (the count stays up if there is no thread).
        self.queued.fetch_add(1, Ordering::SeqCst);
        // Dropping the sender too makes later commits fail fast with `Closed`.
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(
                    Msg::Stop(ack) | Msg::Commit(_, ack) | Msg::Probe(ack),
                )) = tx.send(Msg::Stop(ack))
                {
                    close(self.shared.slot().take());
                    ack.acknowledge(Ok(()));
                }
            }
            None => {
                close(self.shared.slot().take());
                ack.acknowledge(Ok(()));
            }
        }
        done
    }

    /// Waits for the thread to end; call after [`Committer::stop`].
    pub(crate) fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // The thread runs no user code, so a panic there is a bug in this crate or redb;
            // there is nobody left to report it to.
            let _ = thread.join();
        }
    }
}

/// Whether the calling thread may block on an fsync (see [`Committer::commit`]): a worker of
/// a multi-threaded tokio runtime with another worker to go on meanwhile, or a thread blocking
/// on one. With a single worker, as on a current-thread runtime, nothing could queue for the
/// thread while the caller commits, and every commit would be a lone one: no group commit.
fn may_block() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|h| {
        h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            && h.metrics().num_workers() >= 2
    })
}

/// Closes a database the caller holds the last reference to; otherwise it closes when the last
/// reference drops.
fn close(db: Option<Arc<Database>>) {
    if let Some(db) = db
        && let Ok(db) = Arc::try_unwrap(db)
    {
        // Closing can only fail while a write transaction is alive, and the committer, the
        // only writer, has stopped; the file is released either way.
        let _ = db.close();
    }
}

/// The committer thread's state.
struct Writer {
    /// The database written to; `None` only while a reopen has not succeeded.
    db: Option<Arc<Database>>,
    shared: Arc<Shared>,
    source: Option<Source>,
    leases: Arc<Leases>,
    commits: Arc<AtomicU64>,
    /// Whether the last group held one checkpoint at most (see [`Committer::commit`]).
    lone: Arc<AtomicBool>,
    /// The device failure that stopped writes, until a recovery succeeds.
    broken: Option<StoreError>,
    backoff: Duration,
    /// A read transaction held across [`RECLAIM_EVERY`] commits, and how many it has spanned.
    ///
    /// redb frees the pages a commit replaced at the next commit that no live reader needs
    /// them for, and each commit that frees pages pays an epilogue: it rewrites redb's
    /// freed-page table and stages one more (non-durable) commit, whose pages the next fsync
    /// writes. With every read ended before the engine's next commit, as the engine's reads
    /// are, that epilogue ran at every commit (a quarter more CPU in redb's commit under
    /// callgrind, pages added to every fsync of a step). Held here, the pin defers the freeing
    /// so that one commit in `RECLAIM_EVERY` frees what the others replaced. The file keeps
    /// that many commits' worth of replaced pages a little longer; nothing else changes.
    pin: Option<(ReadTransaction, u32)>,
    /// An inline committer's commits since its last durable one (see [`Writer::durability`]);
    /// `None` for the committer thread, whose every commit is durable.
    lazy: Option<u32>,
    /// The trace tail (and next trace number) of the runs written lately.
    ///
    /// A checkpoint appends its trace events to the tail inside the run's `runs` value
    /// (`value.rs`), which it would otherwise have to read back first (a B-tree descent per
    /// transition). This writer is the store's only one, so the tails it wrote stay right;
    /// they are taken out while a transaction uses them, taken in again only after it
    /// commits, and all forgotten after any failed commit (a failed sync may or may not have
    /// left the rows on the disk).
    tails: Tails,
}

/// See [`Writer::tails`].
#[derive(Default)]
struct Tails {
    runs: HashMap<String, Tail>,
    /// The bytes of events the tails hold.
    bytes: usize,
}

/// How many runs [`Tails`] remembers before it starts over, well above the runs that move at
/// once in a busy process, and how many bytes of events: bounds on its memory.
const TAILS_LIMIT: usize = 16_384;
const TAILS_BYTES_LIMIT: usize = 8 << 20;

impl Tails {
    /// Takes a run's tail out, for a transaction to extend.
    fn take(&mut self, run_id: &str) -> Option<Tail> {
        let tail = self.runs.remove(run_id)?;
        self.bytes -= tail.bytes.len();
        Some(tail)
    }

    /// Takes in the tails a successful commit left.
    fn learn(&mut self, written: HashMap<&str, Tail>) {
        let adding: usize = written.values().map(|t| t.bytes.len()).sum();
        if self.runs.len() + written.len() > TAILS_LIMIT || self.bytes + adding > TAILS_BYTES_LIMIT
        {
            self.forget();
        }
        for (run_id, tail) in written {
            self.bytes += tail.bytes.len();
            if let Some(old) = self.runs.insert(run_id.to_owned(), tail) {
                self.bytes -= old.bytes.len();
            }
        }
    }

    fn forget(&mut self) {
        self.runs.clear();
        self.bytes = 0;
    }
}

/// The committer thread's loop.
fn run(writer: &Mutex<Option<Writer>>, rx: &mpsc::Receiver<Msg>, queued: &AtomicU64) {
    let lock = || writer.lock().unwrap_or_else(|e| e.into_inner());
    let mut stop = None;
    while stop.is_none() {
        // While broken, the thread wakes up by itself to retry, so that writes resume when
        // the device recovers even if nobody writes or asks.
        let backoff = lock()
            .as_ref()
            .and_then(|w| w.broken.as_ref().map(|_| w.backoff));
        let first = match backoff {
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            },
            Some(backoff) => match rx.recv_timeout(backoff) {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(w) = lock().as_mut() {
                        w.recover();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut jobs = Vec::new();
        let mut probes = Vec::new();
        for msg in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            queued.fetch_sub(1, Ordering::SeqCst);
            match msg {
                Msg::Commit(job, ack) => jobs.push((job, ack)),
                Msg::Probe(ack) => probes.push(ack),
                Msg::Stop(ack) => {
                    stop = Some(ack);
                    break;
                }
            }
        }
        match lock().as_mut() {
            Some(w) => w.serve(jobs, probes),
            None => break,
        }
    }
    // Whatever is still queued arrived after the stop; its acknowledgers drop with the
    // channel and answer `Closed`.
    let mut w = lock();
    match w.as_mut() {
        Some(writer) => writer.stop(stop),
        None => {
            if let Some(ack) = stop {
                ack.acknowledge(Ok(()));
            }
        }
    }
    *w = None;
}

impl Writer {
    /// Commits `jobs` as one group and answers `probes`, recovering first from a device
    /// failure if anyone is waiting.
    fn serve(&mut self, jobs: Vec<(Job, Acknowledger)>, probes: Vec<Acknowledger>) {
        if self.broken.is_some() && !(jobs.is_empty() && probes.is_empty()) {
            self.recover();
        }
        match self.broken.clone() {
            // One clear error for every waiting caller: nothing of theirs was written.
            Some(e) => {
                for (_, ack) in jobs {
                    ack.acknowledge(Err(e.clone()));
                }
            }
            None => self.commit_group(jobs),
        }
        for ack in probes {
            ack.acknowledge(self.broken.clone().map_or(Ok(()), Err));
        }
    }

    /// Closes the database and answers the stop request, if there is one.
    fn stop(&mut self, ack: Option<Acknowledger>) {
        self.pin = None;
        self.db = None;
        close(self.shared.slot().take());
        if let Some(ack) = ack {
            ack.acknowledge(Ok(()));
        }
    }

    /// One message, served on the caller's thread (an inline committer); whether it stopped
    /// the writer.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Commit(job, ack) => self.serve(vec![(job, ack)], Vec::new()),
            Msg::Probe(ack) => self.serve(Vec::new(), vec![ack]),
            Msg::Stop(ack) => {
                self.stop(Some(ack));
                return true;
            }
        }
        false
    }

    /// After a device failure: checks that the device takes writes again by rewriting the
    /// store in place and syncing it ([`Source::rewrite`], which also makes sure that what a
    /// failed sync left in the page cache is on the disk), then swaps in a freshly opened
    /// database, which recovers from what the file holds. Until then the readers keep the
    /// old database, which still reads.
    fn recover(&mut self) {
        let Some(source) = &self.source else {
            return;
        };
        if let Err(e) = source.rewrite() {
            self.still_broken(StoreError::io(
                "rewriting the store after a device failure",
                e,
            ));
            return;
        }
        // The old database must be closed before the file is opened again (it holds the
        // file's lock); readers wait for the swap rather than see it closed.
        let shared = self.shared.clone();
        let mut slot = shared.slot();
        self.pin = None;
        self.db = None;
        close(slot.take());
        match source.reopen() {
            Ok(db) => {
                let db = Arc::new(db);
                *slot = Some(db.clone());
                // Under the slot's lock: a reader that sees the new database sees the new
                // epoch too.
                self.shared.epoch.fetch_add(1, Ordering::SeqCst);
                drop(slot);
                self.db = Some(db);
                tracing::info!("the store accepts writes again after a device failure");
                self.broken = None;
                self.backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                drop(slot);
                self.still_broken(e);
            }
        }
    }

    fn still_broken(&mut self, e: StoreError) {
        tracing::debug!(error = %e, "the store could not recover from a device failure yet");
        // A failure of the recovery that is not the device's own (say, a file another process
        // locked) is still reported as the device failure callers can act on.
        if e.is_device_failure() {
            self.broken = Some(e);
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// After a write failed on the device: refuses writes until [`Writer::recover`] succeeds,
    /// and hands the readers a read view of the store.
    ///
    /// redb fails every later access to a database whose device failed, reads of pages it has
    /// not cached included, so the readers cannot stay on it. The view is a second database
    /// over the same bytes whose own writes (the recovery an open makes) stay in memory.
    fn failed_device(&mut self, e: &StoreError) {
        tracing::warn!(error = %e, "a write to the store failed; it refuses writes until the device recovers");
        self.broken = Some(e.clone());
        self.backoff = FIRST_BACKOFF;
        let view = self.source.as_ref().map(Source::read_view);
        let shared = self.shared.clone();
        let mut slot = shared.slot();
        self.pin = None;
        self.db = None;
        close(slot.take());
        match view {
            Some(Ok(view)) => *slot = Some(Arc::new(view)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "no read view of the store; reads fail until it recovers");
            }
            None => {}
        }
        shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The durability of the next commit: always `Immediate` for the committer thread.
    ///
    /// An inline committer serves a store in memory, which nothing outlives, so a durable
    /// commit buys nothing there, and it costs: redb's durable commit rewrites its freed-page
    /// table and header at every commit, the larger part of a step's CPU on that backend
    /// (callgrind, BENCHMARKS.md). Its commits are non-durable (visible to every later read
    /// all the same), except one in [`DURABLE_EVERY`], which lets redb reuse the pages the
    /// non-durable ones freed, so that memory does not grow with the number of commits.
    fn durability(&mut self) -> Durability {
        match &mut self.lazy {
            None => Durability::Immediate,
            Some(n) if *n + 1 >= DURABLE_EVERY => {
                *n = 0;
                Durability::Immediate
            }
            Some(n) => {
                *n += 1;
                Durability::None
            }
        }
    }

    fn commit_group(&mut self, jobs: Vec<(Job, Acknowledger)>) {
        if jobs.is_empty() {
            return;
        }
        self.lone.store(jobs.len() == 1, Ordering::Relaxed);
        let Some(db) = self.db.clone() else {
            for (_, ack) in jobs {
                ack.acknowledge(Err(StoreError::Closed));
            }
            return;
        };
        // Held until the group is durable, so that no claim slips in between checking a fence
        // and writing under it.
        let leases = self.leases.clone();
        let rows = leases.rows();
        let mut accepted = Vec::with_capacity(jobs.len());
        // The runs created by this group's accepted checkpoints ([`Fence::Create`]).
        let mut created = HashSet::new();
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        for (job, ack) in jobs {
            if job.epoch.is_some_and(|e| e != epoch) {
                ack.acknowledge(Err(StoreError::io(
                    "committing a checkpoint",
                    std::io::Error::other(
                        "the store was reopened after a device failure while this checkpoint \
                         was being prepared; nothing of it was written",
                    ),
                )));
                continue;
            }
            match refusal(&db, &rows, &job, &mut created) {
                Ok(Some(run_id)) => ack.acknowledge(Err(StoreError::NotOwner { run_id })),
                Ok(None) => accepted.push((job, ack)),
                Err(e) => ack.acknowledge(Err(e)),
            }
        }
        if accepted.is_empty() {
            return;
        }
        let group: Vec<&Job> = accepted.iter().map(|(job, _)| job).collect();
        // Released before the commit that is to free what the pin kept.
        if self.pin.as_ref().is_some_and(|(_, n)| *n >= RECLAIM_EVERY) {
            self.pin = None;
        }
        // The clock is read only when someone listens at debug level.
        let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
        let mut device = None;
        let durability = self.durability();
        match write(&db, &group, durability, &mut self.tails) {
            Ok(next) => {
                self.tails.learn(next);
                if let Some(started) = started {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    tracing::debug!(
                        checkpoints = accepted.len(),
                        latency_us = micros,
                        "committed {} checkpoint(s) in one durable transaction",
                        accepted.len()
                    );
                }
                self.commits.fetch_add(1, Ordering::Relaxed);
                for (_, ack) in accepted {
                    ack.acknowledge(Ok(()));
                }
                self.pin = match self.pin.take() {
                    Some((txn, n)) => Some((txn, n + 1)),
                    // Not for an inline committer: its commits are mostly non-durable, and
                    // without the pin its commit took 5,700 instructions fewer (callgrind,
                    // `bench w1mem`, BENCHMARKS.md).
                    None if self.lazy.is_some() => None,
                    // A read that cannot start only loses the batching.
                    None => db.begin_read().ok().map(|txn| (txn, 0)),
                };
            }
            Err(e) if e.is_device_failure() => {
                self.tails.forget();
                // The device, not a checkpoint: every one of the group gets the same error, and
                // nothing is written until the store recovers.
                for (_, ack) in accepted {
                    ack.acknowledge(Err(e.clone()));
                }
                device = Some(e);
            }
            Err(e) if accepted.len() == 1 => {
                self.tails.forget();
                let (_, ack) = accepted.into_iter().next().expect("one job");
                ack.acknowledge(Err(e));
            }
            Err(_) => {
                self.tails.forget();
                // One bad checkpoint (say, a value over redb's size limit) must not fail the
                // others it happened to be grouped with: retry each on its own.
                for (job, ack) in accepted {
                    let result = match &device {
                        Some(e) => Err(e.clone()),
                        None => write(&db, &[&job], durability, &mut self.tails),
                    };
                    let result = match result {
                        Ok(next) => {
                            self.tails.learn(next);
                            Ok(())
                        }
                        Err(e) => {
                            self.tails.forget();
                            Err(e)
                        }
                    };
                    match &result {
                        Ok(()) => {
                            self.commits.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.is_device_failure() && device.is_none() => {
                            device = Some(e.clone());
                        }
                        Err(_) => {}
                    }
                    ack.acknowledge(result);
                }
            }
        }
        // Readers take the database slot, then the leases (claims); the slot is taken here
        // only once the leases are let go.
        drop(rows);
        if let Some(e) = device {
            self.failed_device(&e);
        }
    }
}

/// Writes several checkpoints in one transaction; blocking. Returns the trace tail of each
/// run it wrote, to be remembered once the commit succeeded (the caller forgets every tail
/// after a failure: those this took out of `known` are then gone too).
/// The run of `job` (or of its other writes) whose fence refuses it: a lease that is no longer
/// the run's, or a new run whose id is stored already or created earlier in the group.
fn refusal(
    db: &Database,
    rows: &HashMap<String, super::LeaseRow>,
    job: &Job,
    created: &mut HashSet<String>,
) -> Result<Option<String>, StoreError> {
    let every = || std::iter::once(job).chain(&job.others);
    for j in every() {
        let ok = match j.fence {
            Fence::Lease(token) => Leases::holds(rows, &j.run_id, token),
            Fence::Create => !created.contains(&j.run_id) && !stored(db, &j.run_id)?,
            _ => true,
        };
        if !ok {
            return Ok(Some(j.run_id.clone()));
        }
    }
    created.extend(
        every()
            .filter(|j| j.fence == Fence::Create)
            .map(|j| j.run_id.clone()),
    );
    Ok(None)
}

/// Whether run `run_id` is stored.
fn stored(db: &Database, run_id: &str) -> Result<bool, StoreError> {
    let ctx = "checking that a new run's id is free";
    let txn = db.begin_read().ctx(ctx)?;
    let runs = match txn.open_table(RUNS) {
        Ok(runs) => runs,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(e).ctx(ctx),
    };
    Ok(runs.get(run_id).ctx(ctx)?.is_some())
}

fn write<'j>(
    db: &Database,
    jobs: &[&'j Job],
    durability: Durability,
    known: &mut Tails,
) -> Result<HashMap<&'j str, Tail>, StoreError> {
    let mut txn = db.begin_write().ctx("starting a write transaction")?;
    if matches!(durability, Durability::None) {
        txn.set_durability(durability).map_err(|e| {
            StoreError::io("starting a write transaction", std::io::Error::other(e))
        })?;
    }
    let next = apply(&txn, jobs, known)?;
    // `Durability::Immediate` is redb's default: the commit returns after fsync.
    txn.commit().ctx("committing a checkpoint")?;
    Ok(next)
}

type Bytes<'t, K> = redb::Table<'t, K, &'static [u8]>;
/// `(deadline_ms, run id)` to `(seq, workflow)`.
type TimerTable<'t> = redb::Table<'t, (u64, &'static str), (u64, &'static str)>;

/// The tables of one write transaction, each opened when a checkpoint first touches it. A
/// table opened for writing costs two catalog lookups and a staged root update at commit even
/// when nothing in it changed, and a step-to-step checkpoint touches only `runs` and `trace`.
struct Tables<'t> {
    txn: &'t WriteTransaction,
    runs: Option<Bytes<'t, &'static str>>,
    ready: Option<redb::Table<'t, &'static str, &'static str>>,
    timers: Option<TimerTable<'t>>,
    waits: Option<Bytes<'t, &'static str>>,
    inbox: Option<Bytes<'t, (&'static str, u64)>>,
    dedupe: Option<redb::Table<'t, (&'static str, &'static str), u64>>,
    trace: Option<Bytes<'t, (&'static str, u64)>>,
}

/// The table in `slot`, opened on first use.
fn opened<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
    slot: &'s mut Option<redb::Table<'t, K, V>>,
    txn: &'t WriteTransaction,
    definition: redb::TableDefinition<'static, K, V>,
) -> Result<&'s mut redb::Table<'t, K, V>, StoreError> {
    if slot.is_none() {
        *slot = Some(txn.open_table(definition).ctx("writing a checkpoint")?);
    }
    Ok(slot.as_mut().expect("the table was opened just above"))
}

impl<'t> Tables<'t> {
    fn new(txn: &'t WriteTransaction) -> Self {
        Tables {
            txn,
            runs: None,
            ready: None,
            timers: None,
            waits: None,
            inbox: None,
            dedupe: None,
            trace: None,
        }
    }

    fn runs(&mut self) -> Result<&mut Bytes<'t, &'static str>, StoreError> {
        opened(&mut self.runs, self.txn, RUNS)
    }

    fn ready(&mut self) -> Result<&mut redb::Table<'t, &'static str, &'static str>, StoreError> {
        opened(&mut self.ready, self.txn, READY)
    }

    fn timers(&mut self) -> Result<&mut TimerTable<'t>, StoreError> {
        opened(&mut self.timers, self.txn, TIMERS)
    }

    fn waits(&mut self) -> Result<&mut Bytes<'t, &'static str>, StoreError> {
        opened(&mut self.waits, self.txn, WAITS)
    }

    fn inbox(&mut self) -> Result<&mut Bytes<'t, (&'static str, u64)>, StoreError> {
        opened(&mut self.inbox, self.txn, INBOX)
    }

    fn dedupe(
        &mut self,
    ) -> Result<&mut redb::Table<'t, (&'static str, &'static str), u64>, StoreError> {
        opened(&mut self.dedupe, self.txn, DEDUPE)
    }

    fn trace(&mut self) -> Result<&mut Bytes<'t, (&'static str, u64)>, StoreError> {
        opened(&mut self.trace, self.txn, TRACE)
    }
}

fn apply<'j>(
    txn: &WriteTransaction,
    jobs: &[&'j Job],
    known: &mut Tails,
) -> Result<HashMap<&'j str, Tail>, StoreError> {
    let mut t = Tables::new(txn);
    // The trace tail of each run this transaction wrote or purged.
    let mut tails: HashMap<&str, Tail> = HashMap::new();
    // The last write to each `ready` row. A step that schedules the next step deletes and
    // re-inserts the same row; applying only the net effect, and skipping a row that already
    // holds it, keeps that table out of the commit (each table written costs pages per fsync).
    let mut ready_net: HashMap<&str, Option<&str>> = HashMap::new();
    // A checkpoint's other writes (its child runs) follow it, in the same transaction.
    let all = jobs
        .iter()
        .flat_map(|job| std::iter::once(*job).chain(&job.others));
    for job in all {
        let run_id = job.run_id.as_str();
        if job.purge {
            purge(&mut t, run_id)?;
            known.take(run_id);
            tails.insert(run_id, Tail::default());
            // A purged run leaves no `ready` row behind; an earlier job of this group may
            // have planned one.
            ready_net.insert(run_id, None);
            // A purge with a record replaces the run (an erasure): it is written anew below,
            // its trace numbered from 0.
            if job.record.is_none() {
                continue;
            }
        }
        // A step that schedules the next step keeps the run's `ready` row as it is (the
        // committer wrote it with the previous step): unless an earlier job of this group
        // changed the row, there is nothing to write, nor to read back to compare.
        let keeps_ready = matches!(
            (job.unindex, job.index),
            (Some(Index::Ready), Some(Index::Ready))
        ) && !ready_net.contains_key(run_id);
        match job.unindex {
            _ if keeps_ready => {}
            Some(Index::Ready) => {
                ready_net.insert(run_id, None);
            }
            Some(Index::Timer(deadline_ms)) => {
                t.timers()?
                    .remove((deadline_ms, run_id))
                    .ctx("writing a checkpoint")?;
            }
            Some(Index::Wait(deadline_ms)) => {
                t.timers()?
                    .remove((deadline_ms, run_id))
                    .ctx("writing a checkpoint")?;
                t.waits()?.remove(run_id).ctx("writing a checkpoint")?;
            }
            None => {}
        }
        match job.index {
            _ if keeps_ready => {}
            Some(Index::Ready) => {
                ready_net.insert(run_id, Some(job.workflow.as_str()));
            }
            Some(Index::Timer(deadline_ms) | Index::Wait(deadline_ms)) => {
                t.timers()?
                    .insert((deadline_ms, run_id), (job.seq, job.workflow.as_str()))
                    .ctx("writing a checkpoint")?;
            }
            None => {}
        }
        if let Some(wait) = &job.wait {
            t.waits()?
                .insert(run_id, wait.as_slice())
                .ctx("writing a checkpoint")?;
        }
        if job.clear_inbox {
            let inbox = t.inbox()?;
            let indexes = inbox
                .range((run_id, 0)..=(run_id, u64::MAX))
                .ctx("writing a checkpoint")?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<Vec<_>, _>>()
                .ctx("writing a checkpoint")?;
            for index in indexes {
                inbox.remove((run_id, index)).ctx("writing a checkpoint")?;
            }
        }
        if job.record.is_some() || !job.trace.is_empty() {
            write_run(&mut t, job, &mut tails, known)?;
        }
        if !job.consumed.is_empty() {
            let inbox = t.inbox()?;
            for index in &job.consumed {
                inbox.remove((run_id, *index)).ctx("writing a checkpoint")?;
            }
        }
        if let Some(entry) = &job.buffer {
            let inbox = t.inbox()?;
            let next = next_index(inbox, run_id).ctx("writing a checkpoint")?;
            inbox
                .insert((run_id, next), entry.as_slice())
                .ctx("writing a checkpoint")?;
        }
        if let Some((key, at_ms)) = &job.dedupe {
            t.dedupe()?
                .insert((run_id, key.as_str()), *at_ms)
                .ctx("writing a checkpoint")?;
        }
    }
    if ready_net.is_empty() {
        return Ok(tails);
    }
    let ready = t.ready()?;
    for (run_id, workflow) in ready_net {
        // Compared in place: reading the row into a `String` would allocate per checkpoint.
        let holds = {
            let stored = ready.get(run_id).ctx("writing a checkpoint")?;
            stored.as_ref().map(|v| v.value()) == workflow
        };
        match workflow {
            _ if holds => {}
            Some(wf) => {
                ready.insert(run_id, wf).ctx("writing a checkpoint")?;
            }
            None => {
                ready.remove(run_id).ctx("writing a checkpoint")?;
            }
        }
    }
    Ok(tails)
}

/// Writes a job's record and trace events: the events join the run's tail in its `runs` value,
/// and the tail moves to `trace` once full.
fn write_run<'j>(
    t: &mut Tables<'_>,
    job: &'j Job,
    tails: &mut HashMap<&'j str, Tail>,
    known: &mut Tails,
) -> Result<(), StoreError> {
    let run_id = job.run_id.as_str();
    let ctx = "writing a checkpoint";
    // The record to store: the job's, else the stored one (read below, only for a checkpoint
    // that traces without moving the run).
    let mut stored_record: Option<Vec<u8>> = None;
    let mut tail = match tails.remove(run_id).or_else(|| known.take(run_id)) {
        Some(tail) => tail,
        None => {
            let runs = t.runs()?;
            let stored = runs.get(run_id).ctx(ctx)?;
            let (next, tail) = match &stored {
                Some(v) => {
                    let split = value::split(run_id, v.value())?;
                    if job.record.is_none() {
                        stored_record = Some(split.record.to_vec());
                    }
                    let count =
                        value::events(run_id, split.tail).try_fold(0, |n, e| e.map(|_| n + 1))?;
                    (split.next, Some((count, split.tail.to_vec())))
                }
                None => (None, None),
            };
            drop(stored);
            // A value of format v1, or no value at all: the run's trace is all in `trace`.
            let next = match next {
                Some(n) => n,
                None => next_index(t.trace()?, run_id).ctx(ctx)?,
            };
            let (count, bytes) = tail.unwrap_or_default();
            Tail { next, count, bytes }
        }
    };
    for event in &job.trace {
        tail.push_event(event.at_ms, event.checkpoint, &event.kind)
            .map_err(|e| {
                StoreError::Codec(CodecError::encoding(
                    format!("a trace event of run `{run_id}`"),
                    e,
                ))
            })?;
    }
    if job.record.is_none() && stored_record.is_none() {
        // A tail remembered, but the record is only in the table.
        if let Some(v) = t.runs()?.get(run_id).ctx(ctx)? {
            stored_record = Some(value::split(run_id, v.value())?.record.to_vec());
        }
    }
    let record = job.record.as_deref().or(stored_record.as_deref());
    // Without a record (events for a run that has none) there is no value to carry a tail.
    if tail.full() || record.is_none() {
        let trace = t.trace()?;
        let first = tail.first();
        for (seq, event) in (first..).zip(value::events(run_id, &tail.bytes)) {
            trace.insert((run_id, seq), event?).ctx(ctx)?;
        }
        tail.clear();
    }
    if let Some(record) = record {
        let bytes = value::join(record, &tail);
        t.runs()?.insert(run_id, bytes.as_slice()).ctx(ctx)?;
    }
    tails.insert(run_id, tail);
    Ok(())
}

/// Removes an ended run: its record, trace, inbox and dedupe rows. An ended run has no index
/// rows (only open runs are indexed), and refusing an open one keeps it that way.
fn purge(t: &mut Tables<'_>, run_id: &str) -> Result<(), StoreError> {
    let runs = t.runs()?;
    let Some(stored) = runs.get(run_id).ctx("purging a run")? else {
        return Ok(());
    };
    let rec: crate::types::RunRecord =
        codec::from_bytes(value::split(run_id, stored.value())?.record).map_err(|e| {
            StoreError::Codec(CodecError::decoding(
                format!("the record of run `{run_id}`"),
                e,
            ))
        })?;
    drop(stored);
    if !rec.is_purgeable() {
        return Err(StoreError::NotPurgeable {
            run_id: run_id.to_owned(),
        });
    }
    runs.remove(run_id).ctx("purging a run")?;
    for trace_rows in [false, true] {
        let table = if trace_rows { t.trace()? } else { t.inbox()? };
        let keys = table
            .range((run_id, 0)..=(run_id, u64::MAX))
            .ctx("purging a run")?
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<Result<Vec<_>, _>>()
            .ctx("purging a run")?;
        for key in keys {
            table.remove((run_id, key)).ctx("purging a run")?;
        }
    }
    let dedupe = t.dedupe()?;
    let keys = dedupe
        .range((run_id, "")..)
        .ctx("purging a run")?
        .map(|e| e.map(|(k, _)| (k.value().0.to_owned(), k.value().1.to_owned())))
        .take_while(|k| k.as_ref().map_or(true, |(run, _)| run == run_id))
        .collect::<Result<Vec<_>, _>>()
        .ctx("purging a run")?;
    for (_, key) in keys {
        dedupe.remove((run_id, key.as_str())).ctx("purging a run")?;
    }
    Ok(())
}

/// The index the run's next row of an `(run id, index)` table gets.
fn next_index(
    table: &redb::Table<'_, (&'static str, u64), &'static [u8]>,
    run_id: &str,
) -> Result<u64, redb::StorageError> {
    let last = table.range((run_id, 0)..=(run_id, u64::MAX))?.next_back();
    Ok(match last {
        Some(e) => e?.0.value().1 + 1,
        None => 0,
    })
}
