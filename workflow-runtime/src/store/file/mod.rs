//! The embedded file backend: one redb database file, locked to one process.
//!
//! This directory is the only place that names redb. Reads go straight to the database (redb
//! readers are concurrent); writes go through the group-commit thread of `committer` (for the
//! store in memory, which waits for no device, the committer writes on the caller's thread
//! instead; on a file, a lone commit on a multi-threaded runtime is written by its caller too,
//! see `Committer::commit`). Index rows are derived here from each checkpoint's record, on the caller's thread,
//! so that the committer only writes.
//!
//! After a device failure redb refuses every later write (`PreviousIo`), so the committer
//! recovers by itself: it rewrites the file from what reads show, syncs it, and opens the
//! database again in the slot the readers share (see `committer::recover`). Reads go on from the
//! old database until then.
//!
//! | table    | key                        | value                                   |
//! |----------|----------------------------|-----------------------------------------|
//! | `meta`   | `&str`                     | `&str`: the format marker               |
//! | `runs`   | run id                     | [`RunRecord`] as JSON, trace tail (v2)  |
//! | `ready`  | run id                     | workflow name: a step must be executed  |
//! | `timers` | `(deadline_ms, run id)`    | `(seq, workflow name)`                  |
//! | `waits`  | run id                     | [`PendingWait`] as JSON                 |
//! | `inbox`  | `(run id, index)`          | [`InboxEntry`] as JSON                  |
//! | `dedupe` | `(run id, dedupe key)`     | time first seen, ms                     |
//! | `trace`  | `(run id, index)`          | [`TraceEvent`] as JSON                  |
//!
//! A run's latest trace events ride in its `runs` value and move to `trace` in bulk (format
//! v2, `value.rs`): most transitions write one row of one table. Its trace reads as its
//! `trace` rows followed by that tail.
//!
//! Leases live in memory: the file is locked to one process, whose leases end with it.

mod committer;
mod memory;
mod power;
mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use redb::backends::InMemoryBackend;
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, StorageBackend,
    StorageError, TableDefinition, TableHandle,
};
use serde::de::DeserializeOwned;

use self::committer::{Committer, Job};
pub use self::memory::MemoryDisk;
pub use self::power::{CutMode, CutReport, DiskFault, DiskFaults, PowerLossDisk};
use super::{
    Acknowledgement, ArmedTimer, CheckpointWrite, Claim, DueTimer, InboxEntry, Lease, PendingWait,
    ReadyEntry, ReadyRun, RunRecord, Store, StoreError, TraceEvent,
};
use crate::error::{CodecError, OpenError};
use crate::model::Command;
use crate::types::{RunStatus, panic_text};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
const READY: TableDefinition<&str, &str> = TableDefinition::new("ready");
const TIMERS: TableDefinition<(u64, &str), (u64, &str)> = TableDefinition::new("timers");
const WAITS: TableDefinition<&str, &[u8]> = TableDefinition::new("waits");
const INBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("inbox");
const DEDUPE: TableDefinition<(&str, &str), u64> = TableDefinition::new("dedupe");
const TRACE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("trace");

const FORMAT_KEY: &str = "format";
/// Written when a store is created and checked at every open; bump it when the layout changes.
const FORMAT: &str = "workflow-runtime store v2";
/// The format before trace tails rode in the `runs` values. Its values are valid v2 values
/// (a record without a tail, `value.rs`), so opening such a store upgrades it by rewriting the
/// marker alone: an older release then refuses the file, whose values it could not read.
const FORMAT_V1: &str = "workflow-runtime store v1";

/// The embedded store: one database file (or memory), owned by one process, with group commit.
///
/// ```no_run
/// # async fn demo() -> Result<(), workflow_runtime::EngineError> {
/// use workflow_runtime::Engine;
/// use workflow_runtime::store::FileStore;
///
/// let store = FileStore::open("shop.db")?;
/// let engine = Engine::builder().open_store(store).await?;
/// # Ok(()) }
/// ```
pub struct FileStore {
    label: String,
    shared: Arc<Shared>,
    committer: Committer,
    leases: Arc<Leases>,
}

/// How a store's commits are written.
enum Writing {
    /// By the committer thread, which reopens the database through the source, if any, after
    /// a device failure.
    Thread(Option<Source>),
    /// On the caller's thread: a store in memory, whose commits wait for no device.
    Inline,
}

/// What the readers share with the committer: the open database, which the committer replaces
/// when it reopens it after a device failure.
pub(crate) struct Shared {
    db: RwLock<Option<Arc<Database>>>,
    /// Set by `close`: reads fail with `Closed` from then on, while the committer still
    /// finishes what was queued.
    closed: AtomicBool,
    /// How many times the committer reopened the database ([`Store::epoch`]).
    pub(crate) epoch: AtomicU64,
}

impl Shared {
    fn slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Database>>> {
        self.db.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// How to open the store's database again, for a store that can be reopened (not a fresh
/// in-memory one).
pub(crate) struct Source {
    label: String,
    /// The store's bytes, for rewriting them in place.
    bytes: Box<dyn Fn() -> io::Result<Box<dyn StorageBackend>> + Send + Sync>,
    /// Opens the database.
    open: Box<OpenFn>,
}

type OpenFn = dyn Fn(&redb::Builder) -> Result<Database, DatabaseError> + Send + Sync;

impl Source {
    fn of(
        label: &str,
        bytes: impl Fn() -> io::Result<Box<dyn StorageBackend>> + Send + Sync + 'static,
        open: impl Fn(&redb::Builder) -> Result<Database, DatabaseError> + Send + Sync + 'static,
    ) -> Source {
        Source {
            label: label.to_owned(),
            bytes: Box::new(bytes),
            open: Box::new(open),
        }
    }

    /// Rewrites every byte of the store as reads show it and syncs, the first page (redb's
    /// header, which names the live commit) last.
    ///
    /// After a failed `fsync`, Linux may mark the pages it failed to write clean: reads keep
    /// showing them while the disk holds something else, and a later successful `fsync` does
    /// not write them. A database reopened on top of those pages would build new commits on
    /// data that is not on the disk. Written again and synced, what reads show is what the disk
    /// holds; the body goes first, so that a power cut in between leaves the old header, to
    /// which the rewritten pages are free space.
    pub(crate) fn rewrite(&self) -> io::Result<()> {
        const HEADER: u64 = 4096;
        const CHUNK: u64 = 1 << 20;
        let bytes = (self.bytes)()?;
        let len = bytes.len()?;
        let head = len.min(HEADER);
        let mut buf = vec![0; CHUNK.min(len) as usize];
        let mut at = head;
        while at < len {
            let n = (len - at).min(CHUNK) as usize;
            bytes.read(at, &mut buf[..n])?;
            bytes.write(at, &buf[..n])?;
            at += n as u64;
        }
        bytes.sync_data()?;
        if head > 0 {
            bytes.read(0, &mut buf[..head as usize])?;
            bytes.write(0, &buf[..head as usize])?;
            bytes.sync_data()?;
        }
        Ok(())
    }

    /// A database over the store's bytes that never writes to them: what an open writes stays
    /// in memory. For the readers while the device fails.
    pub(crate) fn read_view(&self) -> Result<Database, StoreError> {
        let base = (self.bytes)().map_err(|e| StoreError::io("opening a read view", e))?;
        let len = base
            .len()
            .map_err(|e| StoreError::io("opening a read view", e))?;
        let view = ReadView {
            base,
            local: Mutex::new(Local {
                len,
                writes: Vec::new(),
            }),
        };
        open_db(&self.label, |b| b.create_with_backend(view)).map_err(|e| match e {
            OpenError::Storage { source, .. } => source,
            other => StoreError::backend("opening a read view", other),
        })
    }

    /// Opens the database again and checks its format marker.
    pub(crate) fn reopen(&self) -> Result<Database, StoreError> {
        open_db(&self.label, |b| (self.open)(b)).map_err(|e| match e {
            OpenError::Storage { source, .. } => source,
            other => StoreError::backend("reopening the store after a device failure", other),
        })
    }
}

/// The store's bytes, read-only, with writes kept in memory on top: see [`Source::read_view`].
struct ReadView {
    base: Box<dyn StorageBackend>,
    local: Mutex<Local>,
}

struct Local {
    len: u64,
    /// Writes, oldest first; an open writes little.
    writes: Vec<(u64, Vec<u8>)>,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadView")
    }
}

impl ReadView {
    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StorageBackend for ReadView {
    fn len(&self) -> io::Result<u64> {
        Ok(self.local().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let local = self.local();
        let end = offset + out.len() as u64;
        if end > local.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the read view",
            ));
        }
        out.fill(0);
        let base_len = self.base.len()?.min(local.len);
        if offset < base_len {
            let n = (base_len - offset).min(out.len() as u64) as usize;
            self.base.read(offset, &mut out[..n])?;
        }
        for (at, data) in &local.writes {
            let w_end = at + data.len() as u64;
            if *at >= end || w_end <= offset {
                continue;
            }
            let (from, to) = (offset.max(*at), end.min(w_end));
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.local().len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut local = self.local();
        local.len = local.len.max(offset + data.len() as u64);
        local.writes.push((offset, data.to_vec()));
        Ok(())
    }
}

/// The store file itself, for [`Source::rewrite`].
struct PlainFile(std::fs::File);

impl std::fmt::Debug for PlainFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainFile")
    }
}

impl StorageBackend for PlainFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
}

/// A read transaction, holding the database slot so that the committer does not swap the
/// database while the read is under way.
pub(crate) struct Reading<'a> {
    txn: ReadTransaction,
    _slot: RwLockReadGuard<'a, Option<Arc<Database>>>,
}

impl std::ops::Deref for Reading<'_> {
    type Target = ReadTransaction;

    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.label)
            .finish_non_exhaustive()
    }
}

/// The live leases, by run. Shared with the committer thread, which checks fences against it.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    rows: Mutex<HashMap<String, LeaseRow>>,
    next_token: AtomicU64,
}

#[derive(Debug, Clone)]
pub(crate) struct LeaseRow {
    owner: String,
    token: u64,
    expires_ms: u64,
}

impl Leases {
    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, LeaseRow>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Grants `run_id` to the claimant unless another owner's lease is live.
    fn grant(
        rows: &mut HashMap<String, LeaseRow>,
        next_token: &AtomicU64,
        run_id: &str,
        claim: &Claim<'_>,
    ) -> Option<Lease> {
        let expires_ms = claim.now_ms.saturating_add(claim.lease_ms);
        match rows.get_mut(run_id) {
            Some(row) if row.owner == claim.owner => {
                row.expires_ms = row.expires_ms.max(expires_ms);
                Some(Lease::new(run_id, claim.owner, row.token, row.expires_ms))
            }
            Some(row) if row.expires_ms > claim.now_ms => None,
            _ => {
                let token = next_token.fetch_add(1, Ordering::Relaxed) + 1;
                rows.insert(
                    run_id.to_owned(),
                    LeaseRow {
                        owner: claim.owner.to_owned(),
                        token,
                        expires_ms,
                    },
                );
                Some(Lease::new(run_id, claim.owner, token, expires_ms))
            }
        }
    }

    /// Whether `token` is the run's current lease.
    pub(crate) fn holds(rows: &HashMap<String, LeaseRow>, run_id: &str, token: u64) -> bool {
        rows.get(run_id).is_some_and(|row| row.token == token)
    }
}

impl FileStore {
    /// Opens or creates the store file at `path`; blocking (open it from
    /// `tokio::task::spawn_blocking` in async code, as [`crate::EngineBuilder::open`] does).
    ///
    /// # Errors
    /// [`OpenError::AlreadyOpen`] if another process or engine holds the file,
    /// [`OpenError::NotAStore`] or [`OpenError::Corrupt`] for a file that is not a healthy
    /// store, [`OpenError::Storage`] for I/O failures.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::OpenError;
    /// use workflow_runtime::store::FileStore;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("shop.db");
    /// let store = FileStore::open(&path)?;
    /// // The file is locked to its first opener.
    /// assert!(matches!(FileStore::open(&path), Err(OpenError::AlreadyOpen { .. })));
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, OpenError> {
        let path = path.as_ref();
        if !path.exists() {
            Self::create_file(path)?;
        }
        let label = path.display().to_string();
        let (p, q): (PathBuf, PathBuf) = (path.to_owned(), path.to_owned());
        let source = Source::of(
            &label,
            move || {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&p)?;
                Ok(Box::new(PlainFile(file)) as Box<dyn StorageBackend>)
            },
            move |b| b.create(&q),
        );
        Self::open_with(&label, |b| b.create(path), Writing::Thread(Some(source)))
    }

    /// Whether a lone checkpoint may be written on the thread that commits it (the default:
    /// `true`).
    ///
    /// When nothing else is being written or queued and checkpoints come one at a time (a
    /// run's steps, one after another), the engine's task writes its checkpoint itself
    /// instead of handing it to the store's committer thread and waiting to be woken: on
    /// machines whose idle CPUs are slow to wake (virtual machines especially) that saves two
    /// wake-ups per step, a third of a step's time above its fsync (BENCHMARKS.md, "Round
    /// 4"). The price is that the tokio worker running that task blocks for the fsync; it is
    /// taken only on a multi-threaded runtime with two workers or more, whose other workers
    /// carry on meanwhile, and never while commits queue up (then the committer thread groups
    /// them as always). Turn it off where a worker must never block for a write, for example
    /// when the disk's fsync takes milliseconds and the same runtime serves latency-sensitive
    /// requests; every commit then goes through the committer thread. Durability and grouping
    /// are the same either way. Has no effect on a store in memory, whose commits are always
    /// written by their caller.
    ///
    /// ```
    /// use workflow_runtime::store::FileStore;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = FileStore::open(dir.path().join("shop.db"))?.caller_commits(false);
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn caller_commits(self, allowed: bool) -> FileStore {
        self.committer.set_caller_commits(allowed);
        self
    }

    /// A fresh store in memory, gone when closed.
    ///
    /// Its commits are written on the caller's thread and acknowledged at once, with no group
    /// commit: with no device to wait for, the hand-off to a thread would cost more than the
    /// commit.
    ///
    /// # Errors
    /// [`OpenError::Storage`] if it cannot be initialised.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{FileStore, Store};
    /// let store = FileStore::open_memory().expect("memory is always there");
    /// assert!(store.runs().expect("readable").is_empty());
    /// ```
    pub fn open_memory() -> Result<FileStore, OpenError> {
        Self::open_with(
            "<in-memory store>",
            |b| b.create_with_backend(InMemoryBackend::new()),
            Writing::Inline,
        )
    }

    /// Opens or creates a store on a [`MemoryDisk`], whose bytes outlive the store: closing
    /// and opening again on the same disk is a restart.
    ///
    /// # Errors
    /// As [`FileStore::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{FileStore, MemoryDisk, Store};
    /// let disk = MemoryDisk::new();
    /// let first = FileStore::open_disk(disk.clone()).expect("a new store");
    /// first.close_blocking();
    /// // Opened again on the same bytes, as a restarted process would.
    /// let again = FileStore::open_disk(disk).expect("the same store");
    /// ```
    pub fn open_disk(disk: MemoryDisk) -> Result<FileStore, OpenError> {
        Self::open_backend("<memory disk>", disk)
    }

    /// Opens a backend whose clones share its bytes, so that the committer can open it again.
    fn open_backend(
        label: &str,
        disk: impl StorageBackend + Clone,
    ) -> Result<FileStore, OpenError> {
        let (bytes, again) = (disk.clone(), disk.clone());
        let source = Source::of(
            label,
            move || Ok(Box::new(bytes.clone()) as Box<dyn StorageBackend>),
            move |b| b.create_with_backend(again.clone()),
        );
        Self::open_with(
            label,
            |b| b.create_with_backend(disk),
            Writing::Thread(Some(source)),
        )
    }

    /// Opens a store through a [`PowerLossDisk`], a test instrument that loses every write not
    /// yet synced when the process dies and can cut the power at a chosen store operation (the
    /// crash torture's power-loss mode). The file must exist: create it with
    /// [`FileStore::open`] first.
    ///
    /// # Errors
    /// As [`FileStore::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{FileStore, PowerLossDisk};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("torture.db");
    /// drop(FileStore::open(&path)?);
    /// let disk = PowerLossDisk::open(&path, 42, 0, |_| unreachable!("cut_at 0 never cuts"))?;
    /// let store = FileStore::open_power_loss(disk)?;
    /// # Ok(()) }
    /// ```
    pub fn open_power_loss(disk: PowerLossDisk) -> Result<FileStore, OpenError> {
        Self::open_backend("<power-loss disk>", disk)
    }

    /// Creates the store under a temporary name beside `path` and links it into place once it
    /// is complete. redb writes its magic number last and refuses a non-empty file without it,
    /// so a process killed while creating the file in place left a file that no later open
    /// accepted (found by the crash torture, `torture/`); killed here, it leaves only the
    /// temporary file, which the next creation replaces.
    fn create_file(path: &Path) -> Result<(), OpenError> {
        let io = |operation: &'static str, e: std::io::Error| OpenError::Storage {
            path: path.display().to_string(),
            source: StoreError::io(operation, e),
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".creating");
        let tmp = path.with_file_name(tmp_name);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("removing a stale partial store beside it", e));
            }
            _ => {}
        }
        drop(Self::open_with(
            &tmp.display().to_string(),
            |b| b.create(&tmp),
            Writing::Thread(None),
        )?);
        // A hard link never replaces a store another process created in the meantime; a
        // rename is the fallback on file systems without hard links.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(_) if path.exists() => {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(_) => {
                std::fs::rename(&tmp, path).map_err(|e| io("moving the new store into place", e))?
            }
        }
        // The new name must survive a power cut too; where a directory cannot be synced the
        // file is still complete, only perhaps not yet named.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// Grants `claim` a lease on `run_id` if the run's existence is `exists`: a claim is for a
    /// run that exists, a lease for a new run is not (see [`Store::lease_new_run`]).
    fn grant_if(
        &self,
        claim: &Claim<'_>,
        run_id: &str,
        exists: bool,
    ) -> Result<Option<Lease>, StoreError> {
        if self.run(run_id)?.is_some() != exists {
            return Ok(None);
        }
        let mut rows = self.leases.rows();
        Ok(Leases::grant(
            &mut rows,
            &self.leases.next_token,
            run_id,
            claim,
        ))
    }

    /// Opens the database `create` makes, checks or writes the format marker, and starts the
    /// committer, which reopens the database through `source` after a device failure.
    fn open_with(
        label: &str,
        create: impl FnOnce(&redb::Builder) -> Result<Database, DatabaseError>,
        writing: Writing,
    ) -> Result<FileStore, OpenError> {
        let db = Arc::new(open_db(label, create)?);
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(db.clone())),
            closed: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        });
        let leases = Arc::new(Leases::default());
        let committer = match writing {
            Writing::Inline => Committer::inline(db, shared.clone(), leases.clone()),
            Writing::Thread(source) => Committer::spawn(db, shared.clone(), source, leases.clone())
                .map_err(|e| OpenError::Storage {
                    path: label.to_owned(),
                    source: e,
                })?,
        };
        Ok(FileStore {
            label: label.to_owned(),
            shared,
            committer,
            leases,
        })
    }

    fn reader(&self) -> Result<Reading<'_>, StoreError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let slot = self.shared.db.read().unwrap_or_else(|e| e.into_inner());
        // Empty only while a reopen after a device failure has not succeeded yet.
        let db = slot.as_ref().ok_or_else(|| {
            StoreError::io(
                "starting a read",
                io::Error::other("the store is being reopened after a device failure"),
            )
        })?;
        let txn = db.begin_read().ctx("starting a read")?;
        Ok(Reading { txn, _slot: slot })
    }

    /// Runs a read. One that fails on the device is tried again from the database the
    /// committer swaps in next (after a failed write, a read view: redb fails every read of a
    /// database whose device failed, except from its cache; after a recovery, the reopened
    /// database), as long as swaps follow within a second.
    fn read<T>(
        &self,
        mut f: impl FnMut(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut waited = 0;
        loop {
            let epoch = self.shared.epoch.load(Ordering::SeqCst);
            let result = {
                let reading = self.reader()?;
                f(&reading)
            };
            match result {
                Err(e) if e.is_device_failure() && waited < 1_000 => {
                    // The swap follows the failed write at once; the bound keeps a read view
                    // that failed itself from holding the caller for long.
                    while self.shared.epoch.load(Ordering::SeqCst) == epoch && waited < 1_000 {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        waited += 1;
                    }
                }
                other => return other,
            }
        }
    }

    /// Makes reads fail with `Closed`; the committer closes the database once it has
    /// committed what was queued.
    fn close_reads(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }
}

/// Opens the database `create` makes and checks or writes the format marker.
///
/// A panic inside redb (it trusts files it wrote and may panic on one damaged outside of it) is
/// reported as [`OpenError::Corrupt`].
fn open_db(
    label: &str,
    create: impl FnOnce(&redb::Builder) -> Result<Database, DatabaseError>,
) -> Result<Database, OpenError> {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let db = create(&Database::builder()).map_err(|e| open_error(label, e))?;
        init_or_check_format(&db, label)?;
        Ok::<_, OpenError>(db)
    }));
    match opened {
        Ok(result) => result,
        Err(panic) => Err(OpenError::Corrupt {
            path: label.to_owned(),
            reason: format!("redb panicked while opening it: {}", panic_text(&*panic)),
        }),
    }
}

/// Maps a redb error to a [`StoreError`] for `operation`, keeping a device error matchable.
pub(crate) fn failed(operation: &'static str, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(io) => StoreError::io(operation, io),
        // The database refuses writes after an earlier device failure until it is reopened:
        // a device failure too, so that the committer recovers.
        redb::Error::PreviousIo => StoreError::io(
            operation,
            io::Error::other("an earlier write to the device failed"),
        ),
        other => StoreError::backend(operation, other),
    }
}

/// Names the operation a redb call was part of.
pub(crate) trait Context<T> {
    fn ctx(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> Context<T> for Result<T, E> {
    fn ctx(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| failed(operation, e))
    }
}

fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    crate::codec::from_bytes(bytes).map_err(|e| StoreError::Codec(CodecError::decoding(what(), e)))
}

fn open_error(label: &str, e: DatabaseError) -> OpenError {
    let path = label.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen { path },
        DatabaseError::UpgradeRequired(v) => OpenError::NotAStore {
            path,
            reason: format!("it is a redb file in the old file format {v}"),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            OpenError::NotAStore {
                path,
                reason: format!("it is not a redb database ({io})"),
            }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => {
            OpenError::Corrupt { path, reason }
        }
        other => OpenError::Storage {
            path,
            source: failed("opening the database", other),
        },
    }
}

fn init_or_check_format(db: &Database, label: &str) -> Result<(), OpenError> {
    let storage = |source| OpenError::Storage {
        path: label.to_owned(),
        source,
    };
    let txn = db
        .begin_write()
        .ctx("initialising the store")
        .map_err(storage)?;
    let tables: Vec<String> = txn
        .list_tables()
        .ctx("initialising the store")
        .map_err(storage)?
        .map(|t| t.name().to_owned())
        .collect();
    if tables.is_empty() {
        txn.open_table(META)
            .ctx("initialising the store")
            .map_err(storage)?
            .insert(FORMAT_KEY, FORMAT)
            .ctx("initialising the store")
            .map_err(storage)?;
    } else {
        let found = if tables.iter().any(|t| t == META.name()) {
            let meta = txn
                .open_table(META)
                .ctx("initialising the store")
                .map_err(storage)?;
            meta.get(FORMAT_KEY)
                .ctx("initialising the store")
                .map_err(storage)?
                .map(|v| v.value().to_owned())
        } else {
            None
        };
        match found {
            Some(f) if f == FORMAT => {}
            Some(f) if f == FORMAT_V1 => {
                txn.open_table(META)
                    .ctx("upgrading the store")
                    .map_err(storage)?
                    .insert(FORMAT_KEY, FORMAT)
                    .ctx("upgrading the store")
                    .map_err(storage)?;
                tracing::info!(
                    store = label,
                    "upgraded the store from `{FORMAT_V1}` to `{FORMAT}`"
                );
            }
            Some(f) => {
                return Err(OpenError::NotAStore {
                    path: label.to_owned(),
                    reason: format!("its format marker is `{f}`, this library reads `{FORMAT}`"),
                });
            }
            None => {
                return Err(OpenError::NotAStore {
                    path: label.to_owned(),
                    reason: format!(
                        "it is a redb database without the format marker (tables: {})",
                        tables.join(", ")
                    ),
                });
            }
        }
    }
    // Creating every table up front lets readers assume they exist.
    (|| {
        txn.open_table(RUNS)?;
        txn.open_table(READY)?;
        txn.open_table(TIMERS)?;
        txn.open_table(WAITS)?;
        txn.open_table(INBOX)?;
        txn.open_table(DEDUPE)?;
        txn.open_table(TRACE)?;
        Ok::<_, redb::TableError>(())
    })()
    .ctx("initialising the store")
    .map_err(storage)?;
    txn.commit().ctx("initialising the store").map_err(storage)
}

impl Store for FileStore {
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(RUNS).ctx("reading the store")?;
            let Some(bytes) = table.get(run_id).ctx("reading the store")? else {
                return Ok(None);
            };
            let record = value::split(run_id, bytes.value())?.record;
            decode(record, || format!("the record of run `{run_id}`")).map(Some)
        })
    }

    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(RUNS).ctx("reading the store")?;
            let mut out = Vec::new();
            for row in table.iter().ctx("reading the store")? {
                let (k, v) = row.ctx("reading the store")?;
                let record = value::split(k.value(), v.value())?.record;
                let rec = decode(record, || format!("the record of run `{}`", k.value()))?;
                out.push((k.value().to_owned(), rec));
            }
            Ok(out)
        })
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(INBOX).ctx("reading the store")?;
            let mut out = Vec::new();
            for entry in table
                .range((run_id, 0)..=(run_id, u64::MAX))
                .ctx("reading the store")?
            {
                let (k, v) = entry.ctx("reading the store")?;
                let e = decode(v.value(), || format!("a buffered signal of run `{run_id}`"))?;
                out.push((k.value().1, e));
            }
            Ok(out)
        })
    }

    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(DEDUPE).ctx("reading the store")?;
            Ok(table.get((run_id, key)).ctx("reading the store")?.is_some())
        })
    }

    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(DEDUPE).ctx("reading the store")?;
            let mut out = Vec::new();
            // Keys sort by run id first, so the run's keys are one range from the empty key.
            for entry in table.range((run_id, "")..).ctx("reading the store")? {
                let (k, v) = entry.ctx("reading the store")?;
                let (run, key) = k.value();
                if run != run_id {
                    break;
                }
                out.push((key.to_owned(), v.value()));
            }
            Ok(out)
        })
    }

    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        self.read(|txn| {
            let event = |bytes: &[u8]| decode(bytes, || format!("a trace event of run `{run_id}`"));
            let table = txn.open_table(TRACE).ctx("reading the store")?;
            let mut out = table
                .range((run_id, 0)..=(run_id, u64::MAX))
                .ctx("reading the store")?
                .map(|e| event(e.ctx("reading the store")?.1.value()))
                .collect::<Result<Vec<TraceEvent>, _>>()?;
            // The tail follows the rows: the committer moves whole tails, oldest first.
            let runs = txn.open_table(RUNS).ctx("reading the store")?;
            if let Some(v) = runs.get(run_id).ctx("reading the store")? {
                for e in value::events(run_id, value::split(run_id, v.value())?.tail) {
                    out.push(event(e?)?);
                }
            }
            Ok(out)
        })
    }

    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
        self.read(|txn| {
            let runs = txn.open_table(RUNS).ctx("reading the store")?;
            if let Some(v) = runs.get(run_id).ctx("reading the store")?
                && let Some(last) =
                    value::events(run_id, value::split(run_id, v.value())?.tail).last()
            {
                return decode(last?, || format!("a trace event of run `{run_id}`")).map(Some);
            }
            let table = txn.open_table(TRACE).ctx("reading the store")?;
            let Some(last) = table
                .range((run_id, 0)..=(run_id, u64::MAX))
                .ctx("reading the store")?
                .next_back()
            else {
                return Ok(None);
            };
            let (_, v) = last.ctx("reading the store")?;
            decode(v.value(), || format!("a trace event of run `{run_id}`")).map(Some)
        })
    }

    fn pending_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(WAITS).ctx("reading the store")?;
            table
                .iter()
                .ctx("reading the store")?
                .map(|e| {
                    let (k, v) = e.ctx("reading the store")?;
                    decode(v.value(), || {
                        format!("the pending wait of run `{}`", k.value())
                    })
                })
                .collect()
        })
    }

    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(READY).ctx("reading the ready runs")?;
            table
                .iter()
                .ctx("reading the ready runs")?
                .map(|row| {
                    let (k, v) = row.ctx("reading the ready runs")?;
                    Ok(ReadyEntry::new(k.value(), v.value()))
                })
                .collect()
        })
    }

    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
        self.timers_page(None, due_by_ms, usize::MAX)
    }

    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(TIMERS).ctx("reading the armed timers")?;
            let rows = match after {
                None => table.iter(),
                Some(key) => table.range::<(u64, &str)>((Bound::Excluded(key), Bound::Unbounded)),
            }
            .ctx("reading the armed timers")?;
            let mut out = Vec::new();
            for row in rows {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row.ctx("reading the armed timers")?;
                let (deadline_ms, run_id) = k.value();
                if deadline_ms > due_by_ms {
                    break;
                }
                let (seq, workflow) = v.value();
                out.push(ArmedTimer::new(deadline_ms, run_id, seq, workflow));
            }
            Ok(out)
        })
    }

    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(READY).ctx("claiming ready runs")?;
            let mut rows = self.leases.rows();
            let mut out = Vec::new();
            for row in table.iter().ctx("claiming ready runs")? {
                if out.len() >= claim.limit {
                    break;
                }
                let (k, v) = row.ctx("claiming ready runs")?;
                let run_id = k.value();
                if !claim.wants(v.value()) {
                    continue;
                }
                if let Some(lease) =
                    Leases::grant(&mut rows, &self.leases.next_token, run_id, claim)
                {
                    out.push(ReadyRun {
                        run_id: run_id.to_owned(),
                        workflow: v.value().to_owned(),
                        lease,
                    });
                }
            }
            Ok(out)
        })
    }

    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(TIMERS).ctx("claiming due timers")?;
            let mut rows = self.leases.rows();
            let mut out = Vec::new();
            for row in table.iter().ctx("claiming due timers")? {
                if out.len() >= claim.limit {
                    break;
                }
                let (k, v) = row.ctx("claiming due timers")?;
                let (deadline_ms, run_id) = k.value();
                if deadline_ms > due_by_ms {
                    break;
                }
                let (seq, workflow) = v.value();
                if !claim.wants(workflow) {
                    continue;
                }
                if let Some(lease) =
                    Leases::grant(&mut rows, &self.leases.next_token, run_id, claim)
                {
                    out.push(DueTimer {
                        deadline_ms,
                        run_id: run_id.to_owned(),
                        seq,
                        workflow: workflow.to_owned(),
                        lease,
                    });
                }
            }
            Ok(out)
        })
    }

    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.grant_if(claim, run_id, true)
    }

    /// Granted at once: the leases live in this process's memory, so the lease holds from
    /// now, and the commit that creates the run has nothing to add. Not for a run that exists:
    /// a creation that finds its id taken is refused, and its lease would keep the run from
    /// other owners until it lapsed.
    fn lease_new_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.grant_if(claim, run_id, false)
    }

    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
        let mut rows = self.leases.rows();
        match rows.get_mut(&lease.run_id) {
            Some(row) if row.token == lease.token => {
                row.expires_ms = now_ms.saturating_add(lease_ms);
                Ok(Lease::new(
                    lease.run_id.clone(),
                    row.owner.clone(),
                    row.token,
                    row.expires_ms,
                ))
            }
            _ => Err(StoreError::NotOwner {
                run_id: lease.run_id.clone(),
            }),
        }
    }

    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut rows = self.leases.rows();
        if Leases::holds(&rows, &lease.run_id, lease.token) {
            rows.remove(&lease.run_id);
        }
        Ok(())
    }

    fn commit(&self, checkpoint: CheckpointWrite) -> Acknowledgement {
        match Job::encode(checkpoint) {
            Ok(job) => self.committer.commit(job),
            Err(e) => Acknowledgement::ready(Err(e)),
        }
    }

    fn commit_count(&self) -> u64 {
        self.committer.commits()
    }

    fn probe_writes(&self) -> Acknowledgement {
        self.committer.probe()
    }

    fn epoch(&self) -> u64 {
        // Read under the slot's lock, which the reopen holds while it moves the epoch.
        let _slot = self.shared.db.read().unwrap_or_else(|e| e.into_inner());
        self.shared.epoch.load(Ordering::SeqCst)
    }

    fn close(&self) -> Acknowledgement {
        self.close_reads();
        self.committer.stop()
    }

    fn close_blocking(&self) {
        self.close_reads();
        drop(self.committer.stop());
        self.committer.join();
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.close_blocking();
    }
}

/// The index rows of a command, as the tables hold them.
pub(crate) fn index_of(cmd: &Command) -> Index {
    match cmd {
        // A step in backoff is indexed by its timer, so that a restart re-arms it.
        Command::Step {
            not_before_ms: Some(deadline_ms),
            ..
        } => Index::Timer(*deadline_ms),
        // A run awaiting children is looked at again at every open: their outcomes are read
        // from their records.
        Command::Step { .. } | Command::Batch { .. } | Command::Children { .. } => Index::Ready,
        Command::Wait { deadline_ms, .. } => Index::Wait(*deadline_ms),
        Command::Sleep { deadline_ms } => Index::Timer(*deadline_ms),
    }
}

/// Which index rows a suspended run has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// A `ready` row.
    Ready,
    /// A `timers` row at this deadline.
    Timer(u64),
    /// A `timers` row at this deadline and a `waits` row.
    Wait(u64),
}

/// Whether a record's inbox goes with this checkpoint: a finished run accepts no signal, but
/// a parked one may be revived and keeps what it had buffered.
pub(crate) fn clears_inbox(rec: &RunRecord) -> bool {
    rec.is_finished() && !matches!(rec.status, RunStatus::Incompatible { .. })
}
