//! Copying every run of one store into another: how a user moves from one backend to another
//! (the embedded file to PostgreSQL and back) without losing a parked run.
//!
//! A run is read out whole through the seam ([`Store::runs`], [`Store::inbox`],
//! [`Store::dedupe_keys`], [`Store::trace`]) and written into the destination with ordinary
//! checkpoints, so the destination derives its own index rows (ready runs, timers, waits) from
//! each record, as it does for the engine. Leases are not copied: they belong to the processes
//! of the source.
//!
//! The order of the writes makes an interrupted copy safe to run again: a run's buffered
//! signals and dedupe keys go first, its record and trace last, in one checkpoint. A run is
//! listed by [`Store::runs`] only once its record is there, and then it is complete; a run
//! whose record is missing may have some of its buffered signals already (always a prefix of
//! them, in order), which a second copy finds and does not write again.

use std::collections::BTreeMap;

use super::{CheckpointWrite, InboxEntry, Indexed, RunRecord, RunWrite, Store, StoreError};
use crate::trace::TraceEvent;

/// How [`copy_runs`] treats the destination.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::CopyOptions;
/// // Resume an interrupted copy, or check a finished one.
/// let options = CopyOptions::default().allow_non_empty(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOptions {
    allow_non_empty: bool,
    batch: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            allow_non_empty: false,
            batch: 256,
        }
    }
}

impl CopyOptions {
    /// Copies into a destination that already holds runs: a run it holds that reads the same
    /// as the source's is skipped, a run that differs fails the copy (naming it; nothing of it
    /// is overwritten), and runs only the destination holds are left alone. Without it, a
    /// destination holding any run is refused before anything is written.
    pub fn allow_non_empty(mut self, allow: bool) -> Self {
        self.allow_non_empty = allow;
        self
    }

    /// How many runs are written per round of commits (at least 1; 256 by default). Each
    /// round's checkpoints are queued together, so a store with group commit writes a round in
    /// a few transactions instead of one per run.
    pub fn batch(mut self, runs: usize) -> Self {
        self.batch = runs.max(1);
        self
    }
}

/// What [`copy_runs`] did.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (from, to) = (FileStore::open_memory()?, FileStore::open_memory()?);
/// let report = copy_runs(&from, &to, CopyOptions::default()).await?;
/// assert_eq!(report.copied, 0);
/// println!("{report}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyReport {
    /// Runs in the source.
    pub runs: usize,
    /// Runs written into the destination.
    pub copied: usize,
    /// Runs the destination already held, reading the same as the source's (a resumed or
    /// repeated copy).
    pub already_there: usize,
    /// Copied runs waiting for a signal.
    pub waiting: usize,
    /// Copied runs on a timer: asleep, or backing off before a retry.
    pub on_timer: usize,
    /// Copied runs with a step to execute.
    pub ready: usize,
    /// Copied runs that ended (their results stay readable).
    pub ended: usize,
    /// Copied runs parked as incompatible with the registered code.
    pub incompatible: usize,
    /// Buffered signals written.
    pub inbox_entries: usize,
    /// De-duplication keys written.
    pub dedupe_keys: usize,
    /// Trace events written.
    pub trace_events: usize,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "runs in the source: {}; copied: {}; already in the destination: {}",
            self.runs, self.copied, self.already_there
        )?;
        writeln!(
            f,
            "copied runs: {} waiting for a signal, {} on a timer, {} ready, {} ended, {} incompatible",
            self.waiting, self.on_timer, self.ready, self.ended, self.incompatible
        )?;
        write!(
            f,
            "rows written: {} buffered signals, {} dedupe keys, {} trace events",
            self.inbox_entries, self.dedupe_keys, self.trace_events
        )
    }
}

/// Why [`copy_runs`] stopped. Every variant leaves the destination a state a second copy with
/// [`CopyOptions::allow_non_empty`] completes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The destination holds runs, and the copy was not told to allow that.
    #[error(
        "the destination already holds {runs} run(s): copy into an empty store, or allow a \
         non-empty destination to resume or check an earlier copy"
    )]
    NotEmpty {
        /// How many runs it holds.
        runs: usize,
    },
    /// A run exists in both stores and differs; nothing of it was overwritten.
    #[error("run `{run_id}` exists in both stores with a different {what}; it was left as it is")]
    Differs {
        /// The run.
        run_id: String,
        /// What differs: `record`, `buffered signals`, `dedupe keys` or `trace`.
        what: &'static str,
    },
    /// A run read back from the destination after it was written differs from the source's:
    /// the destination does not keep what it acknowledged.
    #[error("run `{run_id}` reads back from the destination with a different {what}")]
    Unverified {
        /// The run.
        run_id: String,
        /// What differs, as in [`CopyError::Differs`].
        what: &'static str,
    },
    /// Reading the source failed.
    #[error("reading the source store failed")]
    Source(#[source] StoreError),
    /// Writing or reading the destination failed.
    #[error("writing the destination store failed")]
    Destination(#[source] StoreError),
}

/// One run read out whole.
#[derive(Debug, PartialEq)]
struct RunImage {
    record: RunRecord,
    inbox: Vec<InboxEntry>,
    dedupe: Vec<(String, u64)>,
    trace: Vec<TraceEvent>,
}

impl RunImage {
    fn read(
        store: &(impl Store + ?Sized),
        run_id: &str,
        record: RunRecord,
    ) -> Result<Self, StoreError> {
        Ok(RunImage {
            record,
            // Inbox indexes are the store's own numbering (the engine consumes what it read by
            // index); the destination numbers the entries afresh, in the same order.
            inbox: store
                .inbox(run_id)?
                .into_iter()
                .map(|(_, entry)| entry)
                .collect(),
            dedupe: store.dedupe_keys(run_id)?,
            trace: store.trace(run_id)?,
        })
    }

    /// The first part that differs, if any.
    fn difference(&self, other: &RunImage) -> Option<&'static str> {
        if self.record != other.record {
            Some("record")
        } else if self.inbox != other.inbox {
            Some("buffered signals")
        } else if self.dedupe != other.dedupe {
            Some("dedupe keys")
        } else if self.trace != other.trace {
            Some("trace")
        } else {
            None
        }
    }
}

/// Copies every run of `from` into `to`: records (state, pending command, results of ended
/// runs), buffered signals, dedupe keys and traces; the destination derives the ready runs,
/// timers and pending waits from the records. Stop every engine on both stores first: a run
/// that moves while it is copied is copied as it was when read. The source is only read.
///
/// Each copied run is read back from the destination and compared with the source.
///
/// # Errors
/// [`CopyError::NotEmpty`] before writing anything, unless allowed; [`CopyError::Differs`] for
/// a run that both stores hold differently; [`CopyError::Source`] and
/// [`CopyError::Destination`] for a store's failure (then the runs acknowledged so far are
/// in the destination, complete, and a second copy allowing a non-empty destination does the
/// rest).
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::*;
/// # fn main() {
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use serde_json::json;
/// let from = FileStore::open_memory()?;
/// let mut write = CheckpointWrite::new("order-1");
/// write.run = Some(RunWrite::new(RunRecord::new("checkout", json!("Start"), 1_000), None));
/// from.commit(write).await?;
///
/// let to = FileStore::open_memory()?;
/// let report = copy_runs(&from, &to, CopyOptions::default()).await?;
/// assert_eq!(report.copied, 1);
/// assert_eq!(to.run("order-1")?, from.run("order-1")?);
/// // A second copy is refused, unless told; then it finds everything there already.
/// assert!(matches!(
///     copy_runs(&from, &to, CopyOptions::default()).await,
///     Err(CopyError::NotEmpty { runs: 1 })
/// ));
/// let again = copy_runs(&from, &to, CopyOptions::default().allow_non_empty(true)).await?;
/// assert_eq!((again.copied, again.already_there), (0, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub async fn copy_runs<F, T>(
    from: &F,
    to: &T,
    options: CopyOptions,
) -> Result<CopyReport, CopyError>
where
    F: Store + ?Sized,
    T: Store + ?Sized,
{
    let source = from.runs().map_err(CopyError::Source)?;
    let present: BTreeMap<String, RunRecord> = to
        .runs()
        .map_err(CopyError::Destination)?
        .into_iter()
        .collect();
    if !present.is_empty() && !options.allow_non_empty {
        return Err(CopyError::NotEmpty {
            runs: present.len(),
        });
    }
    let mut report = CopyReport {
        runs: source.len(),
        ..CopyReport::default()
    };
    let mut source = source.into_iter().peekable();
    while source.peek().is_some() {
        let mut round = Vec::new();
        for (run_id, record) in source.by_ref().take(options.batch) {
            let image = RunImage::read(from, &run_id, record).map_err(CopyError::Source)?;
            if let Some(there) = present.get(&run_id) {
                let there =
                    RunImage::read(to, &run_id, there.clone()).map_err(CopyError::Destination)?;
                if let Some(what) = image.difference(&there) {
                    return Err(CopyError::Differs { run_id, what });
                }
                report.already_there += 1;
                continue;
            }
            round.push((run_id, image));
        }
        write_round(to, &round, &mut report).await?;
    }
    Ok(report)
}

/// Writes a round of runs: every run's buffered signals and dedupe keys first, then, once
/// those are durable, every run's record with its trace; then reads them back.
async fn write_round<T: Store + ?Sized>(
    to: &T,
    round: &[(String, RunImage)],
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let destination = CopyError::Destination;
    let mut acks = Vec::new();
    for (run_id, image) in round {
        // What an interrupted copy left of this run: a prefix of its buffered signals.
        let written = to.inbox(run_id).map_err(destination)?;
        let written: Vec<&InboxEntry> = written.iter().map(|(_, entry)| entry).collect();
        if written.len() > image.inbox.len()
            || image.inbox.iter().zip(&written).any(|(a, b)| a != *b)
        {
            return Err(CopyError::Differs {
                run_id: run_id.clone(),
                what: "buffered signals",
            });
        }
        for entry in &image.inbox[written.len()..] {
            let mut write = CheckpointWrite::new(run_id.clone());
            write.buffer = Some(entry.clone());
            acks.push(to.commit(write));
            report.inbox_entries += 1;
        }
        for key in &image.dedupe {
            // Writing a key again keeps one row, so a leftover of an interrupted copy is fine.
            let mut write = CheckpointWrite::new(run_id.clone());
            write.dedupe = Some(key.clone());
            acks.push(to.commit(write));
            report.dedupe_keys += 1;
        }
    }
    settle(acks).await?;
    let mut acks = Vec::new();
    for (run_id, image) in round {
        let mut write = CheckpointWrite::new(run_id.clone());
        write.run = Some(RunWrite::new(image.record.clone(), None));
        write.trace = image.trace.clone();
        acks.push(to.commit(write));
        report.trace_events += image.trace.len();
        match Indexed::of(run_id, &image.record) {
            Some(Indexed::Ready) => report.ready += 1,
            Some(Indexed::Timer(_)) => report.on_timer += 1,
            Some(Indexed::Wait(_)) => report.waiting += 1,
            None if image.record.is_purgeable() => report.ended += 1,
            None => report.incompatible += 1,
        }
    }
    settle(acks).await?;
    for (run_id, image) in round {
        let unverified = |what| CopyError::Unverified {
            run_id: run_id.clone(),
            what,
        };
        let record = to
            .run(run_id)
            .map_err(destination)?
            .ok_or_else(|| unverified("record"))?;
        let there = RunImage::read(to, run_id, record).map_err(destination)?;
        if let Some(what) = image.difference(&there) {
            return Err(CopyError::Unverified {
                run_id: run_id.clone(),
                what,
            });
        }
        report.copied += 1;
    }
    Ok(())
}

/// Awaits every acknowledgement; the first failure.
async fn settle(acks: Vec<super::Acknowledgement>) -> Result<(), CopyError> {
    let mut first = Ok(());
    for ack in acks {
        if let Err(e) = ack.await
            && first.is_ok()
        {
            first = Err(CopyError::Destination(e));
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::FileStore;

    async fn commit(store: &FileStore, write: CheckpointWrite) {
        store.commit(write).await.expect("the commit");
    }

    fn buffering(run_id: &str, name: &str) -> CheckpointWrite {
        let mut write = CheckpointWrite::new(run_id);
        write.buffer = Some(InboxEntry::new(name, json!(name), None));
        write
    }

    fn creating(run_id: &str, state: &str) -> CheckpointWrite {
        let mut write = CheckpointWrite::new(run_id);
        write.run = Some(RunWrite::new(
            RunRecord::new("wf", json!(state), 1_000),
            None,
        ));
        write
    }

    /// A copy interrupted after some of a run's buffered signals were written, before its
    /// record: the next copy writes only the missing ones.
    #[tokio::test]
    async fn an_interrupted_copy_is_completed_without_duplicates() {
        let from = FileStore::open_memory().expect("a store");
        commit(&from, creating("w", "Start")).await;
        for name in ["a", "b", "c"] {
            commit(&from, buffering("w", name)).await;
        }
        let to = FileStore::open_memory().expect("a store");
        commit(&to, buffering("w", "a")).await;
        let report = copy_runs(&from, &to, CopyOptions::default())
            .await
            .expect("the copy");
        assert_eq!((report.copied, report.inbox_entries), (1, 2));
        let names: Vec<String> = to
            .inbox("w")
            .expect("inbox")
            .into_iter()
            .map(|(_, e)| e.name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    /// A run both stores hold differently stops the copy and stays as it was.
    #[tokio::test]
    async fn a_run_that_differs_is_left_alone() {
        let from = FileStore::open_memory().expect("a store");
        let to = FileStore::open_memory().expect("a store");
        commit(&from, creating("r", "Start")).await;
        commit(&to, creating("r", "Elsewhere")).await;
        match copy_runs(&from, &to, CopyOptions::default().allow_non_empty(true)).await {
            Err(CopyError::Differs { run_id, what }) => {
                assert_eq!((run_id.as_str(), what), ("r", "record"));
            }
            other => panic!("the copy went on: {other:?}"),
        }
        let kept = to.run("r").expect("run").expect("the run");
        assert_eq!(kept.state, json!("Elsewhere"));
    }

    /// Leftover signals that are not a prefix of the source's mean the destination holds
    /// something else under that id: refused.
    #[tokio::test]
    async fn leftover_signals_that_do_not_match_are_refused() {
        let from = FileStore::open_memory().expect("a store");
        commit(&from, creating("w", "Start")).await;
        commit(&from, buffering("w", "a")).await;
        let to = FileStore::open_memory().expect("a store");
        commit(&to, buffering("w", "z")).await;
        assert!(matches!(
            copy_runs(&from, &to, CopyOptions::default()).await,
            Err(CopyError::Differs {
                what: "buffered signals",
                ..
            })
        ));
        assert!(to.run("w").expect("run").is_none());
    }
}
