//! The redb file: table layout, the run envelope, reads, and the writes a checkpoint is made of.
//!
//! This is the only module that names redb tables. Writes are described as [`Op`]s so that the
//! committer can apply the checkpoints of many runs in one transaction.
//!
//! | table    | key                        | value                                   |
//! |----------|----------------------------|-----------------------------------------|
//! | `meta`   | `&str`                     | `&str`: the format marker               |
//! | `runs`   | run id                     | [`RunRecord`] as JSON                   |
//! | `ready`  | run id                     | workflow name: a step must be executed  |
//! | `timers` | `(deadline_ms, run id)`    | `(seq, workflow name)`                  |
//! | `waits`  | run id                     | [`PendingWait`] as JSON                 |
//! | `inbox`  | `(run id, index)`          | [`InboxEntry`] as JSON                  |
//! | `dedupe` | `(run id, dedupe key)`     | time first seen, ms                     |
//! | `trace`  | `(run id, index)`          | [`TraceEvent`] as JSON                  |

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::backends::InMemoryBackend;
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableHandle, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec;
use crate::engine::{PendingWait, RunStatus, panic_text};
use crate::error::EngineError;
use crate::model::Command;
use crate::trace::TraceEvent;

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
const FORMAT: &str = "workflow-runtime store v1";
/// The version of the [`RunRecord`] encoding.
pub(crate) const ENVELOPE_FORMAT: u32 = 1;

/// The stored form of a run: the checkpoint envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// [`ENVELOPE_FORMAT`] when written.
    pub(crate) format: u32,
    pub(crate) workflow: String,
    pub(crate) version: u32,
    pub(crate) layout_hash: u64,
    pub(crate) body_hash: u64,
    /// The sequence number of the last transition checkpointed.
    pub(crate) seq: u64,
    pub(crate) status: RunStatus,
    /// The last good state, as JSON.
    pub(crate) state: Value,
    /// What the run is suspended on; `None` once finished.
    pub(crate) pending: Option<Command>,
    /// The workflow's output (`{"Ok": ..}` or `{"Err": ..}`) once it returned.
    pub(crate) output: Option<Value>,
    /// FNV-1a of the input's JSON, to tell a repeated start from a conflicting one.
    pub(crate) input_hash: u64,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
}

impl RunRecord {
    /// Whether the run will never move again.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(
            self.status,
            RunStatus::Completed | RunStatus::Failed { .. } | RunStatus::Incompatible { .. }
        )
    }
}

/// A signal that arrived before a wait for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InboxEntry {
    pub(crate) name: String,
    pub(crate) payload: Value,
    pub(crate) dedupe_key: Option<String>,
}

/// A timer as stored: the run's pending wait or sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimerRow {
    pub(crate) deadline_ms: u64,
    pub(crate) run_id: String,
    pub(crate) seq: u64,
    pub(crate) workflow: String,
}

/// One write of a checkpoint. Values are already encoded, so that encoding errors reach the
/// caller before anything is queued.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    PutRun {
        run_id: String,
        record: Vec<u8>,
    },
    PutReady {
        run_id: String,
        workflow: String,
    },
    DelReady {
        run_id: String,
    },
    PutTimer(TimerRow),
    DelTimer {
        deadline_ms: u64,
        run_id: String,
    },
    PutWait {
        run_id: String,
        wait: Vec<u8>,
    },
    DelWait {
        run_id: String,
    },
    PutInbox {
        run_id: String,
        index: u64,
        entry: Vec<u8>,
    },
    DelInbox {
        run_id: String,
        index: u64,
    },
    ClearInbox {
        run_id: String,
    },
    PutDedupe {
        run_id: String,
        key: String,
        at_ms: u64,
    },
    PutTrace {
        run_id: String,
        index: u64,
        event: Vec<u8>,
    },
}

/// The open database. Reads go straight to it (redb readers are concurrent); writes go through
/// the committer, which holds its own reference.
pub(crate) struct Store {
    db: RwLock<Option<Arc<Database>>>,
}

impl Store {
    /// Opens or creates the store file at `path`; blocking.
    pub(crate) fn open_file(path: &Path) -> Result<(Store, Arc<Database>), EngineError> {
        if !path.exists() {
            Self::create_file(path)?;
        }
        Self::open_with(&path.display().to_string(), |b| b.create(path))
    }

    /// Creates the store under a temporary name beside `path` and links it into place once it
    /// is complete. redb writes its magic number last and refuses a non-empty file without it,
    /// so a process killed while creating the file in place left a file that no later open
    /// accepted (found by the crash torture, `torture/`); killed here, it leaves only the
    /// temporary file, which the next creation replaces.
    fn create_file(path: &Path) -> Result<(), EngineError> {
        let io = |what: &str, e: std::io::Error| {
            EngineError::Storage(format!("{what} {}: {e}", path.display()))
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".creating");
        let tmp = path.with_file_name(tmp_name);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("removing a stale partial store beside", e));
            }
            _ => {}
        }
        drop(Self::open_with(&tmp.display().to_string(), |b| {
            b.create(&tmp)
        })?);
        // A hard link never replaces a store another process created in the meantime; a
        // rename is the fallback on file systems without hard links.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(_) if path.exists() => {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(_) => std::fs::rename(&tmp, path)
                .map_err(|e| io("moving the new store into place at", e))?,
        }
        // The new name must survive a power cut too; where a directory cannot be synced the
        // file is still complete, only perhaps not yet named.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// Creates a store in memory.
    pub(crate) fn open_memory() -> Result<(Store, Arc<Database>), EngineError> {
        Self::open_with("<in-memory store>", |b| {
            b.create_with_backend(InMemoryBackend::new())
        })
    }

    /// Opens or creates a store on any redb backend (fault injection, test engines).
    pub(crate) fn open_backend(
        backend: impl redb::StorageBackend,
    ) -> Result<(Store, Arc<Database>), EngineError> {
        Self::open_with("<test backend>", |b| b.create_with_backend(backend))
    }

    /// Opens the database `create` makes and checks or writes the format marker.
    ///
    /// A panic inside redb (it trusts files it wrote and may panic on one damaged outside of
    /// it) is reported as [`EngineError::Corrupt`].
    fn open_with(
        label: &str,
        create: impl FnOnce(&redb::Builder) -> Result<Database, DatabaseError>,
    ) -> Result<(Store, Arc<Database>), EngineError> {
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let db = create(&Database::builder()).map_err(|e| open_error(label, e))?;
            init_or_check_format(&db, label)?;
            Ok::<_, EngineError>(db)
        }));
        let db = match opened {
            Ok(result) => Arc::new(result?),
            Err(panic) => {
                return Err(EngineError::Corrupt {
                    path: label.to_owned(),
                    reason: format!("redb panicked while opening it: {}", panic_text(&*panic)),
                });
            }
        };
        let store = Store {
            db: RwLock::new(Some(db.clone())),
        };
        Ok((store, db))
    }

    /// Starts a consistent read of the whole store.
    pub(crate) fn reader(&self) -> Result<Reader, EngineError> {
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        let db = guard.as_ref().ok_or(EngineError::ShutDown)?;
        Ok(Reader {
            txn: db.begin_read()?,
        })
    }

    /// Takes the database out so that it closes once the committer has let go of it too.
    pub(crate) fn take(&self) -> Option<Arc<Database>> {
        self.db.write().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Closes a database the caller holds the last reference to; otherwise it closes when the last
/// reference drops.
pub(crate) fn close(db: Arc<Database>) {
    if let Ok(db) = Arc::try_unwrap(db) {
        // Closing can only fail while a write transaction is alive, and the committer, the only
        // writer, has stopped; the file is released either way.
        let _ = db.close();
    }
}

fn open_error(label: &str, e: DatabaseError) -> EngineError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => EngineError::AlreadyOpen {
            path: label.to_owned(),
        },
        DatabaseError::UpgradeRequired(v) => EngineError::NotAStore {
            path: label.to_owned(),
            reason: format!("it is a redb file in the old file format {v}"),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            EngineError::NotAStore {
                path: label.to_owned(),
                reason: format!("it is not a redb database ({io})"),
            }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => EngineError::Corrupt {
            path: label.to_owned(),
            reason,
        },
        other => EngineError::Storage(format!("cannot open {label}: {other}")),
    }
}

fn init_or_check_format(db: &Database, label: &str) -> Result<(), EngineError> {
    let txn = db.begin_write()?;
    let tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
    if tables.is_empty() {
        txn.open_table(META)?.insert(FORMAT_KEY, FORMAT)?;
    } else {
        let found = if tables.iter().any(|t| t == META.name()) {
            let meta = txn.open_table(META)?;
            meta.get(FORMAT_KEY)?.map(|v| v.value().to_owned())
        } else {
            None
        };
        match found {
            Some(f) if f == FORMAT => {}
            Some(f) => {
                return Err(EngineError::NotAStore {
                    path: label.to_owned(),
                    reason: format!("its format marker is `{f}`, this library reads `{FORMAT}`"),
                });
            }
            None => {
                return Err(EngineError::NotAStore {
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
    txn.open_table(RUNS)?;
    txn.open_table(READY)?;
    txn.open_table(TIMERS)?;
    txn.open_table(WAITS)?;
    txn.open_table(INBOX)?;
    txn.open_table(DEDUPE)?;
    txn.open_table(TRACE)?;
    txn.commit()?;
    Ok(())
}

/// Writes the ops of several checkpoints in one durable transaction; blocking.
pub(crate) fn commit(db: &Database, batches: &[&[Op]]) -> Result<(), EngineError> {
    let txn = db.begin_write()?;
    apply(&txn, batches)?;
    // `Durability::Immediate` is redb's default: the commit returns after fsync.
    txn.commit()?;
    Ok(())
}

fn apply(txn: &WriteTransaction, batches: &[&[Op]]) -> Result<(), EngineError> {
    let mut runs = txn.open_table(RUNS)?;
    let mut ready = txn.open_table(READY)?;
    let mut timers = txn.open_table(TIMERS)?;
    let mut waits = txn.open_table(WAITS)?;
    let mut inbox = txn.open_table(INBOX)?;
    let mut dedupe = txn.open_table(DEDUPE)?;
    let mut trace = txn.open_table(TRACE)?;
    // The last write to each `ready` row. A step that schedules the next step deletes and
    // re-inserts the same row; applying only the net effect, and skipping a row that already
    // holds it, keeps that table out of the commit (each table written costs pages per fsync).
    let mut ready_net: HashMap<&str, Option<&str>> = HashMap::new();
    for op in batches.iter().flat_map(|b| b.iter()) {
        match op {
            Op::PutRun { run_id, record } => {
                runs.insert(run_id.as_str(), record.as_slice())?;
            }
            Op::PutReady { run_id, workflow } => {
                ready_net.insert(run_id, Some(workflow));
            }
            Op::DelReady { run_id } => {
                ready_net.insert(run_id, None);
            }
            Op::PutTimer(t) => {
                timers.insert(
                    (t.deadline_ms, t.run_id.as_str()),
                    (t.seq, t.workflow.as_str()),
                )?;
            }
            Op::DelTimer {
                deadline_ms,
                run_id,
            } => {
                timers.remove((*deadline_ms, run_id.as_str()))?;
            }
            Op::PutWait { run_id, wait } => {
                waits.insert(run_id.as_str(), wait.as_slice())?;
            }
            Op::DelWait { run_id } => {
                waits.remove(run_id.as_str())?;
            }
            Op::PutInbox {
                run_id,
                index,
                entry,
            } => {
                inbox.insert((run_id.as_str(), *index), entry.as_slice())?;
            }
            Op::DelInbox { run_id, index } => {
                inbox.remove((run_id.as_str(), *index))?;
            }
            Op::ClearInbox { run_id } => {
                let indexes = inbox
                    .range((run_id.as_str(), 0)..=(run_id.as_str(), u64::MAX))?
                    .map(|e| e.map(|(k, _)| k.value().1))
                    .collect::<Result<Vec<_>, _>>()?;
                for index in indexes {
                    inbox.remove((run_id.as_str(), index))?;
                }
            }
            Op::PutDedupe { run_id, key, at_ms } => {
                dedupe.insert((run_id.as_str(), key.as_str()), *at_ms)?;
            }
            Op::PutTrace {
                run_id,
                index,
                event,
            } => {
                trace.insert((run_id.as_str(), *index), event.as_slice())?;
            }
        }
    }
    for (run_id, workflow) in ready_net {
        let stored = ready.get(run_id)?.map(|v| v.value().to_owned());
        match workflow {
            Some(w) if stored.as_deref() != Some(w) => {
                ready.insert(run_id, w)?;
            }
            None if stored.is_some() => {
                ready.remove(run_id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A consistent snapshot of the store.
pub(crate) struct Reader {
    txn: ReadTransaction,
}

impl Reader {
    /// The run's envelope, if the run exists.
    pub(crate) fn run(&self, run_id: &str) -> Result<Option<RunRecord>, EngineError> {
        let table = self.txn.open_table(RUNS)?;
        let Some(bytes) = table.get(run_id)? else {
            return Ok(None);
        };
        codec::from_bytes(bytes.value())
            .map(Some)
            .map_err(|e| EngineError::Encode(format!("the record of run `{run_id}`: {e}")))
    }

    /// Every run record, in run id order.
    pub(crate) fn runs(&self) -> Result<Vec<(String, RunRecord)>, EngineError> {
        let table = self.txn.open_table(RUNS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let rec = codec::from_bytes(v.value()).map_err(|e| {
                EngineError::Encode(format!("the record of run `{}`: {e}", k.value()))
            })?;
            out.push((k.value().to_owned(), rec));
        }
        Ok(out)
    }

    /// Whether the run exists, without decoding its record.
    pub(crate) fn exists(&self, run_id: &str) -> Result<bool, EngineError> {
        Ok(self.txn.open_table(RUNS)?.get(run_id)?.is_some())
    }

    /// The run's buffered signals, oldest first.
    pub(crate) fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, EngineError> {
        let table = self.txn.open_table(INBOX)?;
        let mut out = Vec::new();
        for entry in table.range((run_id, 0)..=(run_id, u64::MAX))? {
            let (k, v) = entry?;
            let e = codec::from_bytes(v.value()).map_err(|e| {
                EngineError::Encode(format!("a buffered signal of run `{run_id}`: {e}"))
            })?;
            out.push((k.value().1, e));
        }
        Ok(out)
    }

    /// The index the next buffered signal of the run gets.
    pub(crate) fn next_inbox_index(&self, run_id: &str) -> Result<u64, EngineError> {
        self.next_index(INBOX, run_id)
    }

    /// Whether the run has already accepted a signal with this de-duplication key.
    pub(crate) fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, EngineError> {
        Ok(self.txn.open_table(DEDUPE)?.get((run_id, key))?.is_some())
    }

    /// The index the run's next trace event gets.
    pub(crate) fn next_trace_index(&self, run_id: &str) -> Result<u64, EngineError> {
        self.next_index(TRACE, run_id)
    }

    fn next_index(
        &self,
        table: TableDefinition<(&str, u64), &[u8]>,
        run_id: &str,
    ) -> Result<u64, EngineError> {
        let table = self.txn.open_table(table)?;
        let last = table.range((run_id, 0)..=(run_id, u64::MAX))?.next_back();
        Ok(match last {
            Some(e) => e?.0.value().1 + 1,
            None => 0,
        })
    }

    /// The run's trace.
    pub(crate) fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, EngineError> {
        let table = self.txn.open_table(TRACE)?;
        table
            .range((run_id, 0)..=(run_id, u64::MAX))?
            .map(|e| {
                let (_, v) = e?;
                codec::from_bytes(v.value()).map_err(|e| {
                    EngineError::Encode(format!("a trace event of run `{run_id}`: {e}"))
                })
            })
            .collect()
    }

    /// The last event of the run's trace.
    pub(crate) fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, EngineError> {
        let table = self.txn.open_table(TRACE)?;
        let Some(last) = table.range((run_id, 0)..=(run_id, u64::MAX))?.next_back() else {
            return Ok(None);
        };
        let (_, v) = last?;
        codec::from_bytes(v.value())
            .map(Some)
            .map_err(|e| EngineError::Encode(format!("a trace event of run `{run_id}`: {e}")))
    }

    /// Every wait for a signal, in run id order.
    pub(crate) fn pending(&self) -> Result<Vec<PendingWait>, EngineError> {
        let table = self.txn.open_table(WAITS)?;
        table
            .iter()?
            .map(|e| {
                let (k, v) = e?;
                codec::from_bytes(v.value()).map_err(|e| {
                    EngineError::Encode(format!("the pending wait of run `{}`: {e}", k.value()))
                })
            })
            .collect()
    }

    /// Runs whose next step must be executed, with their workflow.
    pub(crate) fn ready(&self) -> Result<Vec<(String, String)>, EngineError> {
        let table = self.txn.open_table(READY)?;
        table
            .iter()?
            .map(|e| {
                let (k, v) = e?;
                Ok((k.value().to_owned(), v.value().to_owned()))
            })
            .collect()
    }

    /// Every armed timer, earliest first.
    pub(crate) fn timers(&self) -> Result<Vec<TimerRow>, EngineError> {
        let table = self.txn.open_table(TIMERS)?;
        table
            .iter()?
            .map(|e| {
                let (k, v) = e?;
                let (deadline_ms, run_id) = k.value();
                let (seq, workflow) = v.value();
                Ok(TimerRow {
                    deadline_ms,
                    run_id: run_id.to_owned(),
                    seq,
                    workflow: workflow.to_owned(),
                })
            })
            .collect()
    }
}

impl From<redb::Error> for EngineError {
    fn from(e: redb::Error) -> Self {
        EngineError::Storage(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    fn put(run: &str, workflow: &str) -> Op {
        Op::PutReady {
            run_id: run.to_owned(),
            workflow: workflow.to_owned(),
        }
    }

    fn del(run: &str) -> Op {
        Op::DelReady {
            run_id: run.to_owned(),
        }
    }

    fn ready(store: &Store) -> Vec<(String, String)> {
        store.reader().unwrap().ready().unwrap()
    }

    /// `ready` rows are written as the net effect of the ops in order, across the checkpoints
    /// of one group.
    #[test]
    fn ready_rows_get_the_net_effect_of_the_ops_in_order() {
        let (store, db) = Store::open_memory().unwrap();
        commit(&db, &[&[put("a", "w"), put("b", "w")]]).unwrap();
        // A step scheduling the next step: delete and re-insert, the row stays.
        commit(&db, &[&[del("a"), put("a", "w")]]).unwrap();
        assert_eq!(
            ready(&store),
            [("a".into(), "w".into()), ("b".into(), "w".into())]
        );
        // Two checkpoints in one group: the later one wins; a new value replaces the old.
        commit(
            &db,
            &[&[del("b")], &[put("b", "v"), put("c", "w")], &[del("c")]],
        )
        .unwrap();
        assert_eq!(
            ready(&store),
            [("a".into(), "w".into()), ("b".into(), "v".into())]
        );
        // Deleting a row that is not there is not an error.
        commit(&db, &[&[del("a"), del("zz")]]).unwrap();
        assert_eq!(ready(&store), [("b".into(), "v".into())]);
    }
}
