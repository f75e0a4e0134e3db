//! The conformance suite of the storage seam: one set of tests, written against the
//! [`Store`] trait, that every backend must pass.
//!
//! A backend provides a [`Harness`] that opens its store (the same store every time: opening
//! it again after dropping the last instance without [`Store::close`] is a restart after a
//! crash), and instantiates the suite with [`store_conformance!`](crate::store_conformance):
//!
//! ```
//! use workflow_runtime::store::{FileStore, MemoryDisk};
//! use workflow_runtime::testing::conformance::Harness;
//!
//! /// The embedded store on a memory disk that outlives each store instance.
//! #[derive(Default)]
//! struct OnMemoryDisk(MemoryDisk);
//!
//! impl Harness for OnMemoryDisk {
//!     type Store = FileStore;
//!     fn open(&self) -> FileStore {
//!         FileStore::open_disk(self.0.clone()).expect("the store opens")
//!     }
//! }
//!
//! workflow_runtime::store_conformance!(memory_disk, OnMemoryDisk::default());
//! # fn main() {}
//! ```
//!
//! Every test runs on its own fresh harness and uses the store's time only through the
//! `now_ms` values it passes, so none depends on the machine's speed.

use std::future::Future;

use serde_json::json;

use crate::model::Command;
use crate::store::{
    CheckpointWrite, Claim, Fence, InboxEntry, RunWrite, Store, StoreError, TraceEvent,
};
use crate::trace::TraceKind;
use crate::types::{RunRecord, RunStatus};

/// Opens the store under test.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::FileStore;
/// use workflow_runtime::testing::conformance::{self, Harness};
///
/// /// A fresh file in a directory of its own; reopening it is a restart.
/// struct OnFile(tempfile::TempDir);
///
/// impl Harness for OnFile {
///     type Store = FileStore;
///     fn open(&self) -> FileStore {
///         FileStore::open(self.0.path().join("store.db")).expect("the store opens")
///     }
/// }
///
/// conformance::run(OnFile(tempfile::tempdir().unwrap()), |h| async move {
///     conformance::a_reopened_store_keeps_everything_acknowledged(&h).await
/// });
/// ```
pub trait Harness {
    /// The backend.
    type Store: Store;

    /// Opens the harness's store: empty the first time, and the same store, with everything
    /// it acknowledged, every later time. The suite drops every instance before it opens the
    /// next one.
    fn open(&self) -> Self::Store;
}

/// Runs one test of the suite on a fresh harness, on a runtime of its own.
///
/// # Panics
/// When the test fails.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// // One test of the suite, as `store_conformance!` runs each.
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::the_inbox_keeps_arrival_order(&h).await
/// });
/// ```
pub fn run<H, F, Fut>(harness: H, test: F)
where
    H: Harness,
    F: FnOnce(H) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the conformance test")
        .block_on(test(harness));
}

/// Instantiates every test of the conformance suite for a backend, as `#[test]` functions in a
/// module named `$name`; `$harness` is evaluated once per test and must give a fresh store.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::FileStore;
/// use workflow_runtime::testing::conformance::Harness;
///
/// /// A fresh file in a directory of its own; reopening it is a restart.
/// struct OnFile(tempfile::TempDir);
///
/// impl Harness for OnFile {
///     type Store = FileStore;
///     fn open(&self) -> FileStore {
///         FileStore::open(self.0.path().join("store.db")).expect("the store opens")
///     }
/// }
///
/// // In a test file: one `#[test]` per test of the suite, in `mod on_file`, each on a new harness.
/// workflow_runtime::store_conformance!(on_file, OnFile(tempfile::tempdir().expect("a temp dir")));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($name:ident, $harness:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::store_conformance!(@tests $harness;
                acknowledged_commits_are_durable,
                index_rows_follow_the_record,
                timers_come_in_deadline_order,
                timers_are_read_in_pages,
                the_inbox_keeps_arrival_order,
                dedupe_keys_are_remembered,
                the_trace_is_numbered_in_order,
                claims_grant_each_run_to_one_owner_at_a_time,
                reads_claim_nothing,
                commits_under_a_stale_lease_are_refused,
                a_lone_checkpoint_writes_every_part_or_none,
                a_run_is_claimed_by_id,
                a_new_run_is_leased_by_the_commit_that_creates_it,
                concurrent_commits_are_acknowledged_one_by_one,
                a_reopened_store_keeps_everything_acknowledged,
                a_closed_store_refuses_work,
                purge_removes_an_ended_run_and_nothing_else,
                a_purge_with_a_record_replaces_the_run,
                dedupe_keys_are_listed_per_run,
                runs_are_copied_in_and_out_whole,
                a_checkpoint_creates_other_runs_with_it,
                a_new_run_is_created_once,
                claims_take_only_the_workflows_named,
                a_deferred_run_is_claimed_by_id_and_after_its_time,
                signalled_waits_are_the_waits_whose_signal_is_buffered,
            );
        }
    };
    (@tests $harness:expr; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::testing::conformance::run($harness, |h| async move {
                    $crate::testing::conformance::$test(&h).await
                });
            }
        )*
    };
}

fn step(name: &str) -> Command {
    Command::Step {
        name: name.to_owned(),
        input: json!({ "n": 1 }),
        retry: None,
        attempt: 1,
        not_before_ms: None,
    }
}

fn wait(name: &str, deadline_ms: u64) -> Command {
    Command::wait(name, deadline_ms, json!({ "for": name }))
}

fn sleep(deadline_ms: u64) -> Command {
    Command::Sleep { deadline_ms }
}

/// A record of workflow `wf` at `seq`, suspended on `pending`.
fn record(seq: u64, pending: Option<Command>) -> RunRecord {
    let mut rec = RunRecord::new("wf", json!({ "Step": seq }), 1_000);
    rec.seq = seq;
    rec.status = match &pending {
        Some(Command::Wait {
            name, deadline_ms, ..
        }) => RunStatus::Waiting {
            signal: name.clone(),
            wait_id: seq.to_string(),
            deadline_ms: *deadline_ms,
        },
        Some(Command::Sleep { deadline_ms }) => RunStatus::Sleeping {
            until_ms: *deadline_ms,
        },
        Some(_) => RunStatus::Running,
        None => RunStatus::Completed,
    };
    if pending.is_none() {
        rec.output = Some(json!({ "Ok": seq }));
    }
    rec.pending = pending;
    rec
}

fn event(kind: TraceKind) -> TraceEvent {
    TraceEvent {
        seq: 0,
        at_ms: 1_000,
        checkpoint: 0,
        kind,
    }
}

/// A checkpoint that moves `run` from `previous` to `rec`, with one trace event.
fn moves(run: &str, rec: RunRecord, previous: Option<Command>) -> CheckpointWrite {
    let mut cp = CheckpointWrite::new(run);
    cp.trace.push(event(TraceKind::Woke { until_ms: rec.seq }));
    cp.run = Some(RunWrite::new(rec, previous));
    cp
}

async fn commit(store: &impl Store, cp: CheckpointWrite) {
    let run = cp.run_id.clone();
    if let Err(e) = store.commit(cp).await {
        panic!("the checkpoint of `{run}` was not acknowledged: {e}");
    }
}

fn claim(owner: &str, now_ms: u64) -> Claim<'_> {
    Claim {
        owner,
        now_ms,
        lease_ms: 1_000,
        limit: usize::MAX,
        workflows: None,
    }
}

/// The ready runs, read without a claim; a claim by a fresh owner must grant the same runs.
fn ready_ids(store: &impl Store) -> Vec<String> {
    let read: Vec<String> = store
        .ready()
        .expect("ready")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    let claimed = store.claim_ready(&claim("reader", 0)).expect("claim_ready");
    for r in &claimed {
        store.release(&r.lease).expect("release");
    }
    let claimed: Vec<String> = claimed.into_iter().map(|r| r.run_id).collect();
    assert_eq!(read, claimed, "`ready` and `claim_ready` disagree");
    read
}

/// The timers due by `due_by_ms`, read without a claim; a claim must grant the same ones.
fn timers(store: &impl Store, due_by_ms: u64) -> Vec<(u64, String, u64)> {
    let read: Vec<(u64, String, u64)> = store
        .timers(due_by_ms)
        .expect("timers")
        .into_iter()
        .map(|t| (t.deadline_ms, t.run_id, t.seq))
        .collect();
    let claimed = store
        .claim_timers(&claim("reader", 0), due_by_ms)
        .expect("claim_timers");
    for t in &claimed {
        store.release(&t.lease).expect("release");
    }
    let claimed: Vec<(u64, String, u64)> = claimed
        .into_iter()
        .map(|t| (t.deadline_ms, t.run_id, t.seq))
        .collect();
    assert_eq!(read, claimed, "`timers` and `claim_timers` disagree");
    read
}

/// Reading the ready runs and timers claims nothing: another owner's claim right after gets
/// them all.
pub async fn reads_claim_nothing<H: Harness>(h: &H) {
    let store = h.open();
    commit(&store, moves("r1", record(1, Some(step("s"))), None)).await;
    commit(&store, moves("r2", record(1, Some(sleep(100))), None)).await;
    assert_eq!(store.ready().expect("ready").len(), 1);
    assert_eq!(store.timers(u64::MAX).expect("timers").len(), 1);
    assert!(store.timers(99).expect("timers").is_empty());
    assert_eq!(store.claim_ready(&claim("b", 0)).expect("claim").len(), 1);
    assert_eq!(
        store
            .claim_timers(&claim("b", 0), u64::MAX)
            .expect("claim")
            .len(),
        1
    );
}

/// An acknowledged checkpoint is readable at once and after a reopen; the store counts its
/// durable transactions.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::acknowledged_commits_are_durable(&h).await
/// });
/// ```
pub async fn acknowledged_commits_are_durable<H: Harness>(h: &H) {
    let rec = record(1, Some(step("charge")));
    {
        let store = h.open();
        assert_eq!(store.run("r1").expect("read"), None);
        let before = store.commit_count();
        commit(&store, moves("r1", rec.clone(), None)).await;
        assert!(store.commit_count() > before, "the commit was not counted");
        assert_eq!(store.run("r1").expect("read"), Some(rec.clone()));
        store.close().await.expect("close");
    }
    let store = h.open();
    assert_eq!(store.run("r1").expect("read"), Some(rec.clone()));
    let runs = store.runs().expect("runs");
    assert_eq!(runs, vec![("r1".to_owned(), rec)]);
    assert_eq!(store.trace("r1").expect("trace").len(), 1);
}

/// The store keeps the index rows of each record: a step to run is ready, a wait has a timer
/// and a pending-wait row, a sleep and a step in backoff have a timer, a finished run has none.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::index_rows_follow_the_record(&h).await
/// });
/// ```
pub async fn index_rows_follow_the_record<H: Harness>(h: &H) {
    let store = h.open();
    let s = step("charge");
    commit(&store, moves("r1", record(1, Some(s.clone())), None)).await;
    assert_eq!(ready_ids(&store), ["r1"]);
    assert_eq!(timers(&store, u64::MAX), []);
    assert!(store.pending_waits().expect("waits").is_empty());

    // The step's result arrives and the run waits for a signal.
    let w = wait("approval", 5_000);
    commit(&store, moves("r1", record(2, Some(w.clone())), Some(s))).await;
    assert!(ready_ids(&store).is_empty(), "a waiting run is not ready");
    assert_eq!(timers(&store, u64::MAX), [(5_000, "r1".to_owned(), 2)]);
    let waits = store.pending_waits().expect("waits");
    assert_eq!(waits.len(), 1);
    assert_eq!(
        (
            waits[0].run_id.as_str(),
            waits[0].workflow.as_str(),
            waits[0].wait_id.as_str(),
            waits[0].signal.as_str(),
            waits[0].deadline_ms
        ),
        ("r1", "wf", "2", "approval", 5_000)
    );
    assert_eq!(waits[0].metadata, json!({ "for": "approval" }));

    // The wait is answered and the run sleeps.
    let z = sleep(9_000);
    commit(&store, moves("r1", record(3, Some(z.clone())), Some(w))).await;
    assert_eq!(timers(&store, u64::MAX), [(9_000, "r1".to_owned(), 3)]);
    assert!(store.pending_waits().expect("waits").is_empty());

    // A step in backoff is indexed by its timer, not as ready.
    let backoff = Command::Step {
        name: "charge".to_owned(),
        input: json!(null),
        retry: None,
        attempt: 2,
        not_before_ms: Some(7_000),
    };
    commit(
        &store,
        moves("r1", record(4, Some(backoff.clone())), Some(z)),
    )
    .await;
    assert!(ready_ids(&store).is_empty());
    assert_eq!(timers(&store, u64::MAX), [(7_000, "r1".to_owned(), 4)]);

    // The run finishes: nothing is left to index.
    commit(&store, moves("r1", record(5, None), Some(backoff))).await;
    assert!(ready_ids(&store).is_empty());
    assert_eq!(timers(&store, u64::MAX), []);

    // A step that schedules the next step stays ready.
    let first = step("a");
    commit(&store, moves("r2", record(1, Some(first.clone())), None)).await;
    commit(&store, moves("r2", record(2, Some(step("b"))), Some(first))).await;
    assert_eq!(ready_ids(&store), ["r2"]);
}

/// Due timers come earliest deadline first (ties in run id order), only up to `due_by_ms`,
/// and at most `limit` of them.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::timers_come_in_deadline_order(&h).await
/// });
/// ```
pub async fn timers_come_in_deadline_order<H: Harness>(h: &H) {
    let store = h.open();
    for (run, deadline) in [("d", 30), ("c", 10), ("b", 20), ("a", 10), ("e", 40)] {
        commit(&store, moves(run, record(1, Some(sleep(deadline))), None)).await;
    }
    let due: Vec<(u64, String)> = timers(&store, 25)
        .into_iter()
        .map(|(d, r, _)| (d, r))
        .collect();
    assert_eq!(
        due,
        [
            (10, "a".to_owned()),
            (10, "c".to_owned()),
            (20, "b".to_owned())
        ]
    );
    let mut first_two = claim("limited", 0);
    first_two.limit = 2;
    let got = store.claim_timers(&first_two, u64::MAX).expect("claim");
    let got: Vec<&str> = got.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(got, ["a", "c"]);
}

/// [`Store::timers_page`] walks the timers in the order of [`Store::timers`], a page at a
/// time, resuming inside a deadline that several runs share, stopping at the due bound, and
/// claiming nothing; a timer armed behind the cursor is not read again, one armed ahead of it
/// is.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::timers_are_read_in_pages(&h).await
/// });
/// ```
pub async fn timers_are_read_in_pages<H: Harness>(h: &H) {
    let store = h.open();
    let armed = [
        ("e", 40),
        ("c", 10),
        ("b", 20),
        ("a", 10),
        ("d", 10),
        ("f", 50),
    ];
    for (run, deadline) in armed {
        commit(&store, moves(run, record(1, Some(sleep(deadline))), None)).await;
    }
    let page = |after: Option<(u64, &str)>, due_by: u64, limit: usize| -> Vec<(u64, String)> {
        store
            .timers_page(after, due_by, limit)
            .expect("timers_page")
            .into_iter()
            .map(|t| (t.deadline_ms, t.run_id))
            .collect()
    };
    let key = |d: u64, r: &str| (d, r.to_owned());
    assert_eq!(page(None, u64::MAX, 2), [key(10, "a"), key(10, "c")]);
    // Resumes inside deadline 10, after the last key read.
    assert_eq!(
        page(Some((10, "c")), u64::MAX, 2),
        [key(10, "d"), key(20, "b")]
    );
    // The due bound stops a page short of its limit.
    assert_eq!(page(Some((20, "b")), 45, 10), [key(40, "e")]);
    assert_eq!(page(Some((40, "e")), 45, 10), []);
    assert_eq!(page(None, 5, 10), []);
    // Walking the whole index a page at a time gives what one read gives.
    let mut walked = Vec::new();
    let mut after: Option<(u64, String)> = None;
    loop {
        let got = page(after.as_ref().map(|(d, r)| (*d, r.as_str())), u64::MAX, 4);
        let Some(last) = got.last().cloned() else {
            break;
        };
        walked.extend(got);
        after = Some(last);
    }
    let all: Vec<(u64, String)> = timers(&store, u64::MAX)
        .into_iter()
        .map(|(d, r, _)| (d, r))
        .collect();
    assert_eq!(walked, all);
    assert_eq!(all.len(), armed.len());
    // A timer armed behind the cursor is not read; one ahead of it is; a run that moved on
    // leaves the pages.
    commit(&store, moves("g", record(1, Some(sleep(15))), None)).await;
    commit(&store, moves("h", record(1, Some(sleep(45))), None)).await;
    commit(
        &store,
        moves("e", record(2, Some(step("next"))), Some(sleep(40))),
    )
    .await;
    assert_eq!(
        page(Some((20, "b")), u64::MAX, 10),
        [key(45, "h"), key(50, "f")]
    );
    // Reading pages claims nothing.
    let claimed = store
        .claim_timers(&claim("other", 0), u64::MAX)
        .expect("claim_timers");
    assert_eq!(claimed.len(), all.len() + 1);
}

/// Buffered signals come back in the order they arrived, consumed ones are gone, and a
/// finished run's inbox is cleared while a parked run keeps its own.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::the_inbox_keeps_arrival_order(&h).await
/// });
/// ```
pub async fn the_inbox_keeps_arrival_order<H: Harness>(h: &H) {
    let store = h.open();
    let w = wait("other", 50_000);
    commit(&store, moves("r1", record(1, Some(w.clone())), None)).await;
    commit(&store, moves("r2", record(1, Some(w.clone())), None)).await;
    for (i, name) in ["b", "a", "c"].into_iter().enumerate() {
        let mut cp = CheckpointWrite::new("r1");
        cp.buffer = Some(InboxEntry::new(name, json!(i), Some(format!("k{i}"))));
        commit(&store, cp).await;
    }
    let inbox = store.inbox("r1").expect("inbox");
    let names: Vec<&str> = inbox.iter().map(|(_, e)| e.name.as_str()).collect();
    assert_eq!(names, ["b", "a", "c"]);
    assert_eq!(inbox[1].1.payload, json!(1));
    assert_eq!(inbox[1].1.dedupe_key.as_deref(), Some("k1"));
    assert!(
        store.inbox("r2").expect("inbox").is_empty(),
        "inboxes are per run"
    );

    // Consuming the middle one keeps the order of the rest, and a new one comes last.
    let mut cp = CheckpointWrite::new("r1");
    cp.consumed.push(inbox[1].0);
    commit(&store, cp).await;
    let mut cp = CheckpointWrite::new("r1");
    cp.buffer = Some(InboxEntry::new("d", json!(3), None));
    commit(&store, cp).await;
    let names: Vec<String> = store
        .inbox("r1")
        .expect("inbox")
        .into_iter()
        .map(|(_, e)| e.name)
        .collect();
    assert_eq!(names, ["b", "c", "d"]);

    // A run parked as incompatible keeps its inbox; a finished one loses it.
    let mut cp = CheckpointWrite::new("r2");
    cp.buffer = Some(InboxEntry::new("x", json!(0), None));
    commit(&store, cp).await;
    let mut parked = record(1, Some(w.clone()));
    parked.status = RunStatus::Incompatible {
        reason: "test".to_owned(),
    };
    commit(&store, moves("r2", parked, Some(w.clone()))).await;
    assert_eq!(store.inbox("r2").expect("inbox").len(), 1);
    assert_eq!(
        timers(&store, u64::MAX).len(),
        1,
        "only r1 is still indexed"
    );
    commit(&store, moves("r1", record(2, None), Some(w))).await;
    assert!(store.inbox("r1").expect("inbox").is_empty());
}

/// An accepted de-duplication key is remembered per run, across a reopen.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::dedupe_keys_are_remembered(&h).await
/// });
/// ```
pub async fn dedupe_keys_are_remembered<H: Harness>(h: &H) {
    {
        let store = h.open();
        commit(&store, moves("r1", record(1, Some(wait("s", 9))), None)).await;
        assert!(!store.has_dedupe("r1", "key-1").expect("dedupe"));
        let mut cp = CheckpointWrite::new("r1");
        cp.dedupe = Some(("key-1".to_owned(), 1_234));
        commit(&store, cp).await;
        assert!(store.has_dedupe("r1", "key-1").expect("dedupe"));
    }
    let store = h.open();
    assert!(store.has_dedupe("r1", "key-1").expect("dedupe"));
    assert!(!store.has_dedupe("r1", "key-2").expect("dedupe"));
    assert!(!store.has_dedupe("r2", "key-1").expect("dedupe"));
}

/// Trace events are numbered by the store from 0 without gaps, across checkpoints, whatever
/// `seq` the writer gave them.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::the_trace_is_numbered_in_order(&h).await
/// });
/// ```
pub async fn the_trace_is_numbered_in_order<H: Harness>(h: &H) {
    let store = h.open();
    assert!(store.trace("r1").expect("trace").is_empty());
    assert_eq!(store.last_trace("r1").expect("trace"), None);
    let mut cp = moves("r1", record(1, Some(sleep(5))), None);
    cp.trace.push(event(TraceKind::Revived));
    commit(&store, cp).await;
    let mut cp = CheckpointWrite::new("r1");
    let mut late = event(TraceKind::SleepStarted { until_ms: 77 });
    late.seq = 99;
    cp.trace.push(late);
    commit(&store, cp).await;
    let trace = store.trace("r1").expect("trace");
    let seqs: Vec<u64> = trace.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(trace[1].kind, TraceKind::Revived);
    let last = store.last_trace("r1").expect("trace").expect("an event");
    assert_eq!(
        (last.seq, last.kind),
        (2, TraceKind::SleepStarted { until_ms: 77 })
    );
}

/// [`Store::claim_run`] grants one run, whatever it is suspended on, under the same rules as
/// the other claims: not while another owner's lease is live, the holder's own claim keeps its
/// token, a lapsed lease is taken over (and commits under it are refused); a missing run is
/// not granted.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_run_is_claimed_by_id(&h).await
/// });
/// ```
pub async fn a_run_is_claimed_by_id<H: Harness>(h: &H) {
    let store = h.open();
    commit(
        &store,
        moves("r1", record(1, Some(wait("go", 5_000))), None),
    )
    .await;
    assert_eq!(
        store.claim_run(&claim("a", 0), "missing").expect("claim"),
        None
    );
    let lease_a = store
        .claim_run(&claim("a", 0), "r1")
        .expect("claim")
        .expect("a parked run is granted by id");
    assert_eq!(
        (
            lease_a.run_id.as_str(),
            lease_a.owner.as_str(),
            lease_a.expires_ms
        ),
        ("r1", "a", 1_000)
    );
    assert_eq!(
        store.claim_run(&claim("b", 500), "r1").expect("claim"),
        None
    );
    let again = store
        .claim_run(&claim("a", 500), "r1")
        .expect("claim")
        .expect("the holder claims again");
    assert_eq!(again.token, lease_a.token, "the holder keeps its lease");
    let mut write = moves("r1", record(2, Some(step("s"))), Some(wait("go", 5_000)));
    write.fence = lease_a.fence();
    commit(&store, write).await;

    // The lease lapses: another owner takes the run over, and the old lease is stale.
    let lease_b = store
        .claim_run(&claim("b", 2_000), "r1")
        .expect("claim")
        .expect("a lapsed lease is taken over");
    assert_ne!(lease_b.token, lease_a.token);
    let mut stale = moves("r1", record(3, None), Some(step("s")));
    stale.fence = lease_a.fence();
    assert!(matches!(
        store.commit(stale).await,
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    assert_eq!(store.run("r1").expect("read").expect("r1").seq, 2);
}

/// [`Store::lease_new_run`] with [`CheckpointWrite::grant`]: the commit that creates a run
/// leaves it leased to its creator, so no other owner claims it while that lease is live; the
/// lease then behaves as a claimed one (kept by its holder's claim, lapsing, fencing). A run
/// that exists by the time of the creating commit keeps the lease it has. A backend that
/// grants no lease before the run exists answers `None`; the creator claims the run instead.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_new_run_is_leased_by_the_commit_that_creates_it(&h).await
/// });
/// ```
pub async fn a_new_run_is_leased_by_the_commit_that_creates_it<H: Harness>(h: &H) {
    let store = h.open();
    let s = step("s");
    let Some(lease) = store.lease_new_run(&claim("a", 0), "r1").expect("lease") else {
        commit(&store, moves("r1", record(1, Some(s)), None)).await;
        assert!(
            store
                .claim_run(&claim("a", 0), "r1")
                .expect("claim")
                .is_some(),
            "without a lease from its creation, the creator claims the new run"
        );
        return;
    };
    assert_eq!(
        (
            lease.run_id.as_str(),
            lease.owner.as_str(),
            lease.expires_ms
        ),
        ("r1", "a", 1_000)
    );
    let mut create = moves("r1", record(1, Some(s.clone())), None);
    create.grant = Some(lease.clone());
    commit(&store, create).await;
    assert!(
        store
            .claim_ready(&claim("b", 500))
            .expect("claim")
            .is_empty(),
        "a new run leased to its creator is not claimed by another owner"
    );
    assert_eq!(
        store.claim_run(&claim("b", 500), "r1").expect("claim"),
        None
    );
    let mut next = moves("r1", record(2, Some(s.clone())), Some(s.clone()));
    next.fence = lease.fence();
    commit(&store, next).await;
    let again = store
        .claim_run(&claim("a", 600), "r1")
        .expect("claim")
        .expect("the holder claims again");
    assert_eq!(again.token, lease.token, "the holder keeps its lease");

    // It lapses like any lease: another owner takes the run over, and the creator is fenced.
    let lease_b = store
        .claim_run(&claim("b", 2_000), "r1")
        .expect("claim")
        .expect("a lapsed lease is taken over");
    assert_ne!(lease_b.token, lease.token);
    let mut stale = moves("r1", record(3, None), Some(s.clone()));
    stale.fence = lease.fence();
    assert!(matches!(
        store.commit(stale).await,
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    assert_eq!(store.run("r1").expect("read").expect("r1").seq, 2);

    // A creation racing with one that got there first leaves the run's lease alone.
    if let Some(late) = store
        .lease_new_run(&claim("c", 2_100), "r1")
        .expect("lease")
    {
        assert_ne!(late.token, lease_b.token);
        let mut create = moves("r1", record(2, Some(s.clone())), None);
        create.grant = Some(late.clone());
        commit(&store, create).await;
        let mut fenced = moves("r1", record(3, None), Some(s.clone()));
        fenced.fence = late.fence();
        assert!(matches!(
            store.commit(fenced).await,
            Err(StoreError::NotOwner { run_id }) if run_id == "r1"
        ));
    }
    let mut done = moves("r1", record(3, None), Some(s));
    done.fence = lease_b.fence();
    commit(&store, done).await;
    assert!(store.run("r1").expect("read").expect("r1").is_finished());
}

/// A run is granted to one owner at a time: another owner's claim skips it until the lease
/// lapses or is released; the holder's own claim extends it; a lease taken over cannot be
/// renewed.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::claims_grant_each_run_to_one_owner_at_a_time(&h).await
/// });
/// ```
pub async fn claims_grant_each_run_to_one_owner_at_a_time<H: Harness>(h: &H) {
    let store = h.open();
    commit(&store, moves("r1", record(1, Some(step("s"))), None)).await;
    commit(&store, moves("r2", record(1, Some(sleep(100))), None)).await;

    let a = store.claim_ready(&claim("a", 0)).expect("claim");
    assert_eq!(a.len(), 1);
    let lease_a = a[0].lease.clone();
    assert_eq!(
        (lease_a.run_id.as_str(), lease_a.owner.as_str()),
        ("r1", "a")
    );
    assert_eq!(lease_a.expires_ms, 1_000);
    assert!(
        store
            .claim_ready(&claim("b", 500))
            .expect("claim")
            .is_empty()
    );
    let again = store.claim_ready(&claim("a", 500)).expect("claim");
    assert_eq!(
        again[0].lease.token, lease_a.token,
        "the holder keeps its lease"
    );
    let renewed = store.renew(&lease_a, 900, 1_000).expect("renew");
    assert_eq!((renewed.token, renewed.expires_ms), (lease_a.token, 1_900));

    // Timers follow the same rule, per run.
    let t = store.claim_timers(&claim("a", 0), 100).expect("claim");
    assert_eq!(t.len(), 1);
    assert!(
        store
            .claim_timers(&claim("b", 50), 100)
            .expect("claim")
            .is_empty()
    );

    // The lease lapses: another owner takes the run over, and the old lease is stale.
    let b = store.claim_ready(&claim("b", 2_000)).expect("claim");
    assert_eq!(b.len(), 1);
    assert_ne!(b[0].lease.token, lease_a.token);
    assert!(matches!(
        store.renew(&lease_a, 2_000, 1_000),
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    // Releasing a stale lease changes nothing; releasing the current one frees the run.
    store.release(&lease_a).expect("release");
    assert!(
        store
            .claim_ready(&claim("c", 2_100))
            .expect("claim")
            .is_empty()
    );
    store.release(&b[0].lease).expect("release");
    assert_eq!(
        store.claim_ready(&claim("c", 2_100)).expect("claim").len(),
        1
    );
}

/// A checkpoint written under a lease that is no longer the run's current one is refused with
/// [`StoreError::NotOwner`] and writes nothing, even when it shares a group commit with others.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::commits_under_a_stale_lease_are_refused(&h).await
/// });
/// ```
pub async fn commits_under_a_stale_lease_are_refused<H: Harness>(h: &H) {
    let store = h.open();
    let s = step("s");
    commit(&store, moves("r1", record(1, Some(s.clone())), None)).await;
    commit(&store, moves("r2", record(1, Some(s.clone())), None)).await;
    let a = store.claim_ready(&claim("a", 0)).expect("claim");
    let lease_a = a
        .iter()
        .find(|r| r.run_id == "r1")
        .expect("r1")
        .lease
        .clone();

    let mut cp = moves("r1", record(2, Some(sleep(10))), Some(s.clone()));
    cp.fence = lease_a.fence();
    commit(&store, cp).await;
    let moved = store.run("r1").expect("read");

    let b = store
        .claim_timers(&claim("b", 5_000), u64::MAX)
        .expect("claim");
    assert_eq!(b.len(), 1, "the lapsed lease lets b take r1 over");
    let trace_before = store.trace("r1").expect("trace");

    // The stale writer and a healthy one commit at the same time.
    let mut stale = moves("r1", record(3, None), Some(sleep(10)));
    stale.fence = lease_a.fence();
    stale.dedupe = Some(("stale".to_owned(), 1));
    let mut healthy = moves("r2", record(2, None), Some(s));
    healthy.fence = Fence::Exclusive;
    let (stale, healthy) = (store.commit(stale), store.commit(healthy));
    assert!(matches!(
        stale.await,
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    healthy
        .await
        .expect("the other checkpoint of the group is acknowledged");
    assert_eq!(store.run("r1").expect("read"), moved, "nothing was written");
    assert_eq!(store.trace("r1").expect("trace"), trace_before);
    assert!(!store.has_dedupe("r1", "stale").expect("dedupe"));
    assert!(store.run("r2").expect("read").expect("r2").is_finished());

    // The new owner writes.
    let mut cp = moves("r1", record(3, None), Some(sleep(10)));
    cp.fence = b[0].lease.fence();
    commit(&store, cp).await;
    assert!(store.run("r1").expect("read").expect("r1").is_finished());
}

/// A checkpoint committed alone (as every step of a run driven alone is) writes its record,
/// consumed signals, de-duplication key and trace events together under its lease, and none of
/// them once the lease is stale; with no lease, the same parts are written whether the run is
/// new or stored.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_lone_checkpoint_writes_every_part_or_none(&h).await
/// });
/// ```
pub async fn a_lone_checkpoint_writes_every_part_or_none<H: Harness>(h: &H) {
    let store = h.open();
    let w = wait("go", 50_000);
    // No lease: a new run, then the same run again, each with every part.
    let mut cp = moves("r1", record(1, Some(w.clone())), None);
    cp.dedupe = Some(("k0".to_owned(), 5));
    commit(&store, cp).await;
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let mut cp = CheckpointWrite::new("r1");
        cp.buffer = Some(InboxEntry::new(name, json!(i), None));
        commit(&store, cp).await;
    }
    let inbox = store.inbox("r1").expect("inbox");
    let mut cp = moves("r1", record(2, Some(w.clone())), Some(w.clone()));
    cp.consumed.push(inbox[0].0);
    cp.dedupe = Some(("k1".to_owned(), 6));
    cp.trace.push(event(TraceKind::Revived));
    commit(&store, cp).await;
    assert_eq!(store.run("r1").expect("read").expect("r1").seq, 2);
    let names = |store: &H::Store| -> Vec<String> {
        let inbox = store.inbox("r1").expect("inbox");
        inbox.into_iter().map(|(_, e)| e.name).collect()
    };
    assert_eq!(names(&store), ["b", "c"]);
    assert!(store.has_dedupe("r1", "k0").expect("dedupe"));
    assert!(store.has_dedupe("r1", "k1").expect("dedupe"));
    let kinds = |store: &H::Store| -> Vec<TraceKind> {
        let trace = store.trace("r1").expect("trace");
        let seqs: Vec<u64> = trace.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..trace.len() as u64).collect::<Vec<_>>());
        trace.into_iter().map(|e| e.kind).collect()
    };
    assert_eq!(
        kinds(&store),
        [
            TraceKind::Woke { until_ms: 1 },
            TraceKind::Woke { until_ms: 2 },
            TraceKind::Revived
        ]
    );

    // Under a lease: accepted while it is the run's.
    let lease_a = store
        .claim_run(&claim("a", 0), "r1")
        .expect("claim")
        .expect("r1 is granted");
    let inbox = store.inbox("r1").expect("inbox");
    let mut cp = moves("r1", record(3, Some(w.clone())), Some(w.clone()));
    cp.fence = lease_a.fence();
    cp.consumed.push(inbox[0].0);
    cp.dedupe = Some(("k2".to_owned(), 7));
    commit(&store, cp).await;
    assert_eq!(names(&store), ["c"]);
    assert!(store.has_dedupe("r1", "k2").expect("dedupe"));
    assert_eq!(kinds(&store).len(), 4);

    // Stale: refused, and nothing of it is written.
    let b = store
        .claim_run(&claim("b", 5_000), "r1")
        .expect("claim")
        .expect("the lapsed lease lets b take r1 over");
    let before = (
        store.run("r1").expect("read"),
        store.trace("r1").expect("trace"),
        store.inbox("r1").expect("inbox"),
    );
    let inbox = store.inbox("r1").expect("inbox");
    let mut stale = moves("r1", record(4, None), Some(w.clone()));
    stale.fence = lease_a.fence();
    stale.consumed.push(inbox[0].0);
    stale.dedupe = Some(("k3".to_owned(), 8));
    assert!(matches!(
        store.commit(stale).await,
        Err(StoreError::NotOwner { run_id }) if run_id == "r1"
    ));
    let after = (
        store.run("r1").expect("read"),
        store.trace("r1").expect("trace"),
        store.inbox("r1").expect("inbox"),
    );
    assert_eq!(after, before, "nothing of the stale checkpoint was written");
    assert!(!store.has_dedupe("r1", "k3").expect("dedupe"));

    // The new holder finishes the run: its inbox goes with it.
    let mut cp = moves("r1", record(4, None), Some(w));
    cp.fence = b.fence();
    commit(&store, cp).await;
    assert!(store.run("r1").expect("read").expect("r1").is_finished());
    assert!(store.inbox("r1").expect("inbox").is_empty());
    assert_eq!(kinds(&store).len(), 5);
}

/// Many checkpoints committed at once are each acknowledged, and each is durable.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::concurrent_commits_are_acknowledged_one_by_one(&h).await
/// });
/// ```
pub async fn concurrent_commits_are_acknowledged_one_by_one<H: Harness>(h: &H) {
    let store = h.open();
    let acks: Vec<_> = (0..64)
        .map(|i| {
            let mut cp = moves(&format!("r{i:02}"), record(1, Some(sleep(i))), None);
            cp.dedupe = Some((format!("k{i}"), i));
            store.commit(cp)
        })
        .collect();
    for (i, ack) in acks.into_iter().enumerate() {
        ack.await
            .unwrap_or_else(|e| panic!("checkpoint {i} was not acknowledged: {e}"));
    }
    assert_eq!(store.runs().expect("runs").len(), 64);
    assert_eq!(timers(&store, u64::MAX).len(), 64);
    assert!(store.has_dedupe("r63", "k63").expect("dedupe"));
}

/// Dropping the store without closing it (a crash) loses nothing acknowledged: records,
/// index rows, inbox, dedupe keys and traces are all there after a reopen.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_reopened_store_keeps_everything_acknowledged(&h).await
/// });
/// ```
pub async fn a_reopened_store_keeps_everything_acknowledged<H: Harness>(h: &H) {
    let s = step("s");
    {
        let store = h.open();
        commit(&store, moves("r1", record(1, Some(s.clone())), None)).await;
        commit(
            &store,
            moves("r2", record(1, Some(wait("go", 4_000))), None),
        )
        .await;
        let mut cp = CheckpointWrite::new("r2");
        cp.buffer = Some(InboxEntry::new("early", json!(true), Some("k".to_owned())));
        cp.dedupe = Some(("k".to_owned(), 5));
        commit(&store, cp).await;
        commit(&store, moves("r3", record(1, Some(s.clone())), None)).await;
        commit(&store, moves("r3", record(2, None), Some(s))).await;
        // No close: the instance just goes away.
    }
    let store = h.open();
    assert_eq!(ready_ids(&store), ["r1"]);
    assert_eq!(timers(&store, u64::MAX), [(4_000, "r2".to_owned(), 1)]);
    assert_eq!(store.pending_waits().expect("waits").len(), 1);
    assert_eq!(store.inbox("r2").expect("inbox").len(), 1);
    assert!(store.has_dedupe("r2", "k").expect("dedupe"));
    assert!(store.run("r3").expect("read").expect("r3").is_finished());
    assert_eq!(store.trace("r3").expect("trace").len(), 2);
    // Claims work on the reopened store, whoever held leases before.
    let claimed = store.claim_ready(&claim("new-owner", 0)).expect("claim");
    assert_eq!(claimed.len(), 1);
}

/// After [`Store::close`] every read and commit fails with [`StoreError::Closed`].
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_closed_store_refuses_work(&h).await
/// });
/// ```
pub async fn a_closed_store_refuses_work<H: Harness>(h: &H) {
    let store = h.open();
    commit(&store, moves("r1", record(1, Some(sleep(5))), None)).await;
    store.close().await.expect("close");
    assert!(matches!(store.run("r1"), Err(StoreError::Closed)));
    assert!(matches!(store.inbox("r1"), Err(StoreError::Closed)));
    assert!(matches!(
        store.commit(moves("r2", record(1, None), None)).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.claim_ready(&claim("a", 0)),
        Err(StoreError::Closed)
    ));
}

/// A purge removes an ended run with its record, trace, inbox and dedupe rows, durably, and
/// nothing of any other run (not even one whose id starts with the purged one); it refuses an
/// open run, writing nothing; purging a missing run changes nothing; the id can be used again,
/// its trace numbered from 0.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::purge_removes_an_ended_run_and_nothing_else(&h).await
/// });
/// ```
pub async fn purge_removes_an_ended_run_and_nothing_else<H: Harness>(h: &H) {
    {
        let store = h.open();
        for run in ["r2", "r2-other"] {
            let mut cp = moves(run, record(1, Some(wait("s", 9))), None);
            cp.dedupe = Some(("key".to_owned(), 1));
            cp.buffer = Some(InboxEntry::new("later", json!(1), None));
            commit(&store, cp).await;
        }
        match store.commit(CheckpointWrite::purging("r2")).await {
            Err(StoreError::NotPurgeable { run_id }) => assert_eq!(run_id, "r2"),
            other => panic!("an open run was not refused: {other:?}"),
        }
        assert!(store.run("r2").expect("run").is_some());
        assert_eq!(store.inbox("r2").expect("inbox").len(), 1);

        let mut ended = record(2, None);
        ended.status = RunStatus::Terminated {
            reason: "test".to_owned(),
        };
        commit(&store, moves("r2", ended, Some(wait("s", 9)))).await;
        // An entry that arrived after the end, so that the purge has an inbox to clear.
        let mut late = CheckpointWrite::new("r2");
        late.buffer = Some(InboxEntry::new("later", json!(2), None));
        commit(&store, late).await;
        assert!(!store.trace("r2").expect("trace").is_empty());

        commit(&store, CheckpointWrite::purging("r2")).await;
        commit(&store, CheckpointWrite::purging("missing")).await;
    }
    let store = h.open();
    assert_eq!(store.run("r2").expect("run"), None);
    assert!(store.trace("r2").expect("trace").is_empty());
    assert!(store.inbox("r2").expect("inbox").is_empty());
    assert!(!store.has_dedupe("r2", "key").expect("dedupe"));
    assert!(store.runs().expect("runs").iter().all(|(id, _)| id != "r2"));
    // The neighbour is whole.
    assert!(store.run("r2-other").expect("run").is_some());
    assert!(store.has_dedupe("r2-other", "key").expect("dedupe"));
    assert_eq!(store.inbox("r2-other").expect("inbox").len(), 1);
    assert_eq!(store.pending_waits().expect("waits").len(), 1);
    // The id starts afresh.
    commit(&store, moves("r2", record(1, Some(sleep(5))), None)).await;
    let trace = store.trace("r2").expect("trace");
    assert_eq!(trace.iter().map(|e| e.seq).collect::<Vec<_>>(), [0]);
}

/// A purge that carries a record and a trace (an erasure) replaces an ended run in one
/// transaction: its old trace, inbox and dedupe rows go, the new record and trace (numbered
/// from 0) stay, durably; an open run is refused, writing nothing.
pub async fn a_purge_with_a_record_replaces_the_run<H: Harness>(h: &H) {
    let replacing = |rec: RunRecord| {
        let mut cp = CheckpointWrite::purging("r3");
        cp.run = Some(RunWrite::new(rec, None));
        cp.trace.push(event(TraceKind::Revived));
        cp
    };
    {
        let store = h.open();
        let mut cp = moves("r3", record(1, Some(wait("s", 9))), None);
        cp.dedupe = Some(("key".to_owned(), 1));
        commit(&store, cp).await;
        match store.commit(replacing(record(2, None))).await {
            Err(StoreError::NotPurgeable { run_id }) => assert_eq!(run_id, "r3"),
            other => panic!("an open run was not refused: {other:?}"),
        }
        assert_eq!(store.run("r3").expect("run").map(|r| r.seq), Some(1));
        assert_eq!(store.pending_waits().expect("waits").len(), 1);

        commit(&store, moves("r3", record(2, None), Some(wait("s", 9)))).await;
        commit(&store, moves("r3", record(2, None), None)).await;
        assert_eq!(store.trace("r3").expect("trace").len(), 3);
        let mut replaced = record(2, None);
        replaced.state = json!(null).into();
        replaced.output = None;
        commit(&store, replacing(replaced)).await;
    }
    let store = h.open();
    let rec = store
        .run("r3")
        .expect("run")
        .expect("the run is replaced, not gone");
    assert_eq!(
        (rec.state.to_value(), rec.output, rec.seq),
        (json!(null), None, 2)
    );
    let trace = store.trace("r3").expect("trace");
    assert_eq!(
        trace
            .iter()
            .map(|e| (e.seq, e.kind.clone()))
            .collect::<Vec<_>>(),
        [(0, TraceKind::Revived)]
    );
    assert!(!store.has_dedupe("r3", "key").expect("dedupe"));
    assert!(store.pending_waits().expect("waits").is_empty());
    assert!(ready_ids(&store).is_empty());
}

/// [`Store::dedupe_keys`] lists a run's keys with their times, in key order, and no other
/// run's (a run id that is a prefix of another's included), across a reopen.
pub async fn dedupe_keys_are_listed_per_run<H: Harness>(h: &H) {
    {
        let store = h.open();
        for run in ["r1", "r10", "r2"] {
            commit(&store, moves(run, record(1, Some(wait("s", 9))), None)).await;
        }
        for (run, key, at_ms) in [("r1", "b", 2), ("r1", "a", 1), ("r10", "a", 3)] {
            let mut cp = CheckpointWrite::new(run);
            cp.dedupe = Some((key.to_owned(), at_ms));
            commit(&store, cp).await;
        }
    }
    let store = h.open();
    let keys = |run: &str| store.dedupe_keys(run).expect("dedupe_keys");
    assert_eq!(keys("r1"), [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    assert_eq!(keys("r10"), [("a".to_owned(), 3)]);
    assert!(keys("r2").is_empty());
    assert!(keys("r3").is_empty());
}

/// [`copy_runs`](crate::store::copy_runs) moves every run into this store and out of it again
/// without a difference: records, buffered signals, dedupe keys, traces, and the index rows
/// the records imply (a ready run, timers, a pending wait); a second copy is refused unless
/// allowed, and then writes nothing.
pub async fn runs_are_copied_in_and_out_whole<H: Harness>(h: &H) {
    use crate::store::{CopyError, CopyOptions, FileStore, copy_runs};

    let source = FileStore::open_memory().expect("a memory store");
    commit(&source, moves("ready", record(1, Some(step("s"))), None)).await;
    commit(&source, moves("asleep", record(2, Some(sleep(500))), None)).await;
    let mut cp = moves("waiting", record(3, Some(wait("approve", 900))), None);
    cp.trace.push(event(TraceKind::Woke { until_ms: 7 }));
    commit(&source, cp).await;
    for (name, key) in [
        ("note", Some("k-1")),
        ("note", None),
        ("other", Some("k-2")),
    ] {
        let mut cp = CheckpointWrite::new("waiting");
        cp.buffer = Some(InboxEntry::new(
            name,
            json!({ "n": name }),
            key.map(str::to_owned),
        ));
        cp.dedupe = key.map(|k| (k.to_owned(), 5));
        commit(&source, cp).await;
    }
    // The first buffered signal was consumed: the inbox starts past index 0.
    let mut cp = CheckpointWrite::new("waiting");
    cp.consumed = vec![0];
    commit(&source, cp).await;
    commit(&source, moves("ended", record(4, None), None)).await;

    let whole = |store: &dyn Store| {
        let runs = store.runs().expect("runs");
        let rows: Vec<_> = runs
            .iter()
            .map(|(run, _)| {
                let inbox: Vec<InboxEntry> = store
                    .inbox(run)
                    .expect("inbox")
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect();
                (
                    inbox,
                    store.dedupe_keys(run).expect("dedupe_keys"),
                    store.trace(run).expect("trace"),
                )
            })
            .collect();
        let mut timers: Vec<(u64, String, u64)> = store
            .timers(u64::MAX)
            .expect("timers")
            .into_iter()
            .map(|t| (t.deadline_ms, t.run_id, t.seq))
            .collect();
        timers.sort();
        let ready: Vec<String> = store
            .ready()
            .expect("ready")
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        (
            runs,
            rows,
            timers,
            ready,
            store.pending_waits().expect("waits"),
        )
    };
    let expected = whole(&source);
    assert_eq!(expected.1[3].0.len(), 2, "two buffered signals remain");

    {
        let store = h.open();
        let report = copy_runs(&source, &store, CopyOptions::default())
            .await
            .expect("the copy into this store");
        assert_eq!(
            (
                report.copied,
                report.ready,
                report.on_timer,
                report.waiting,
                report.ended
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!((report.inbox_entries, report.dedupe_keys), (2, 2));
        match copy_runs(&source, &store, CopyOptions::default()).await {
            Err(CopyError::NotEmpty { runs: 4 }) => {}
            other => panic!("a second copy was not refused: {other:?}"),
        }
        let again = copy_runs(
            &source,
            &store,
            CopyOptions::default().allow_non_empty(true),
        )
        .await
        .expect("a repeated copy");
        assert_eq!((again.copied, again.already_there), (0, 4));
    }
    let store = h.open();
    assert!(
        whole(&store) == expected,
        "the copy reads differently from its source"
    );
    let back = FileStore::open_memory().expect("a memory store");
    let report = copy_runs(&store, &back, CopyOptions::default().batch(1))
        .await
        .expect("the copy out of this store");
    assert_eq!(report.copied, 4);
    assert!(whole(&back) == expected, "the copy back reads differently");
}

/// A checkpoint's [`CheckpointWrite::others`] (the child runs a workflow starts) are written in
/// the same transaction as the checkpoint, each with its index rows and trace; if one of them
/// is refused (a stale fence), nothing of the checkpoint is written.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_checkpoint_creates_other_runs_with_it(&h).await
/// });
/// ```
pub async fn a_checkpoint_creates_other_runs_with_it<H: Harness>(h: &H) {
    use crate::children::ChildItem;
    let children = |ids: &[&str]| Command::Children {
        items: ids
            .iter()
            .map(|id| ChildItem::new("wf", *id, json!({ "n": 1 })))
            .collect(),
        detached: false,
    };
    {
        let store = h.open();
        commit(&store, moves("p", record(1, Some(step("s"))), None)).await;
        let mut cp = moves(
            "p",
            record(2, Some(children(&["p/c-2.0", "p/c-2.1"]))),
            Some(step("s")),
        );
        cp.others
            .push(moves("p/c-2.0", record(1, Some(step("t"))), None));
        cp.others
            .push(moves("p/c-2.1", record(1, Some(wait("go", 9_000))), None));
        commit(&store, cp).await;
        assert_eq!(
            ready_ids(&store),
            ["p", "p/c-2.0"],
            "a parent awaiting children is ready"
        );
        assert_eq!(timers(&store, u64::MAX), [(9_000, "p/c-2.1".to_owned(), 1)]);
        assert_eq!(store.pending_waits().expect("waits").len(), 1);
        assert_eq!(store.trace("p/c-2.0").expect("trace").len(), 1);
        assert_eq!(store.trace("p/c-2.0").expect("trace")[0].seq, 0);
        assert_eq!(store.trace("p").expect("trace").len(), 2);

        // One refused write among the others refuses the whole checkpoint.
        let mut cp = moves("q", record(1, Some(step("s"))), None);
        cp.others
            .push(moves("q/c", record(1, Some(step("t"))), None));
        let mut stale = moves("q/d", record(1, Some(step("t"))), None);
        stale.fence = Fence::Lease(u64::MAX);
        cp.others.push(stale);
        assert!(matches!(
            store.commit(cp).await,
            Err(StoreError::NotOwner { .. })
        ));
        for run in ["q", "q/c", "q/d"] {
            assert!(store.run(run).expect("read").is_none(), "{run} was written");
        }
    }
    // Durable, like any acknowledged write.
    let store = h.open();
    let child = store.run("p/c-2.1").expect("read").expect("the child");
    assert_eq!(child.seq, 1);
    assert!(matches!(
        store.run("p").expect("read").expect("the parent").pending,
        Some(Command::Children { .. })
    ));
    assert_eq!(ready_ids(&store), ["p", "p/c-2.0"]);
}

/// A checkpoint that creates a run ([`Fence::Create`]) is refused with
/// [`StoreError::NotOwner`], writing nothing, when the id is taken: by a stored run, by an
/// earlier checkpoint of the same group, or by one of the creations racing it, of which
/// exactly one is acknowledged. A creation among [`CheckpointWrite::others`] refuses the whole
/// checkpoint the same way.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_new_run_is_created_once(&h).await
/// });
/// ```
pub async fn a_new_run_is_created_once<H: Harness>(h: &H) {
    let creates = |run: &str, seq: u64| {
        let mut cp = moves(run, record(seq, Some(step("s"))), None);
        cp.fence = Fence::Create;
        cp
    };
    let store = h.open();
    commit(&store, creates("a", 1)).await;
    assert!(matches!(
        store.commit(creates("a", 7)).await,
        Err(StoreError::NotOwner { .. })
    ));
    let stored = store.run("a").expect("read").expect("the run");
    assert_eq!(stored.seq, 1, "the first creation stands");
    assert_eq!(store.trace("a").expect("trace").len(), 1);

    // Racing creations of one id, queued together: exactly one is acknowledged.
    for round in 0..8_u64 {
        let run = format!("race-{round}");
        let acks: Vec<_> = (1..=4)
            .map(|seq| store.commit(creates(&run, seq)))
            .collect();
        let mut won = Vec::new();
        for (seq, ack) in (1..=4).zip(acks) {
            match ack.await {
                Ok(()) => won.push(seq),
                Err(StoreError::NotOwner { .. }) => {}
                Err(e) => panic!("creation {seq} of {run} failed: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "{run}: created by {won:?}");
        let stored = store.run(&run).expect("read").expect("the run");
        assert_eq!(
            stored.seq, won[0],
            "{run}: the acknowledged creation is stored"
        );
        assert_eq!(store.trace(&run).expect("trace").len(), 1, "{run}");
    }

    // A child whose id is taken refuses its parent's checkpoint whole.
    let mut cp = moves("p", record(1, Some(step("s"))), None);
    let mut child = creates("a", 3);
    child.trace.clear();
    cp.others.push(creates("p/c", 1));
    cp.others.push(child);
    assert!(matches!(
        store.commit(cp).await,
        Err(StoreError::NotOwner { .. })
    ));
    for run in ["p", "p/c"] {
        assert!(store.run(run).expect("read").is_none(), "{run} was written");
    }
    assert_eq!(store.run("a").expect("read").expect("a").seq, 1);
}

/// A claim naming workflows ([`Claim::workflows`]) is granted only runs and timers of those,
/// and the runs of the others stay claimable by anyone.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::claims_take_only_the_workflows_named(&h).await
/// });
/// ```
pub async fn claims_take_only_the_workflows_named<H: Harness>(h: &H) {
    let store = h.open();
    let of = |workflow: &str, seq: u64, pending: Command| {
        let mut rec = record(seq, Some(pending));
        rec.workflow = workflow.to_owned();
        rec
    };
    commit(&store, moves("a1", of("a", 1, step("s")), None)).await;
    commit(&store, moves("a2", of("a", 1, sleep(100)), None)).await;
    commit(&store, moves("b1", of("b", 1, step("s")), None)).await;
    commit(&store, moves("b2", of("b", 1, sleep(100)), None)).await;

    let only_b = Claim {
        workflows: Some(&["b", "c"]),
        ..claim("worker-b", 0)
    };
    let ready: Vec<String> = store
        .claim_ready(&only_b)
        .expect("claim")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ready, ["b1"]);
    let timers: Vec<String> = store
        .claim_timers(&only_b, 100)
        .expect("claim")
        .into_iter()
        .map(|t| t.run_id)
        .collect();
    assert_eq!(timers, ["b2"]);
    let none = Claim {
        workflows: Some(&[]),
        ..claim("nobody", 0)
    };
    assert!(store.claim_ready(&none).expect("claim").is_empty());
    assert!(store.claim_timers(&none, 100).expect("claim").is_empty());

    // The others' runs were not touched: any claimant still gets them.
    let ready: Vec<String> = store
        .claim_ready(&claim("anyone", 0))
        .expect("claim")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ready, ["a1"]);
    let timers: Vec<String> = store
        .claim_timers(&claim("anyone", 0), 100)
        .expect("claim")
        .into_iter()
        .map(|t| t.run_id)
        .collect();
    assert_eq!(timers, ["a2"]);
}

/// [`Store::defer`] gives the lease back: the run is granted at once by id, and by
/// [`Store::claim_ready`] once the deferral has passed; a stale lease defers nothing. (Whether
/// `claim_ready` skips it before then is up to the backend: the default keeps no deferral.)
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::a_deferred_run_is_claimed_by_id_and_after_its_time(&h).await
/// });
/// ```
pub async fn a_deferred_run_is_claimed_by_id_and_after_its_time<H: Harness>(h: &H) {
    let store = h.open();
    commit(&store, moves("r1", record(1, Some(step("s"))), None)).await;
    let first = store.claim_ready(&claim("a", 0)).expect("claim");
    assert_eq!(first.len(), 1);
    store.defer(&first[0].lease, 5_000).expect("defer");
    let by_id = store
        .claim_run(&claim("b", 10), "r1")
        .expect("claim")
        .expect("a deferred run is granted by id");
    assert_ne!(by_id.token, first[0].lease.token);
    // The stale lease defers nothing and releases nothing.
    store.defer(&first[0].lease, 9_000).expect("defer");
    assert!(
        store
            .claim_ready(&claim("c", 20))
            .expect("claim")
            .is_empty()
    );
    store.defer(&by_id, 5_000).expect("defer");
    let after = store.claim_ready(&claim("c", 5_000)).expect("claim");
    assert_eq!(after.len(), 1, "the deferral has passed");
    assert_eq!(after[0].run_id, "r1");
    // The grant ended the deferral: released, the run is ready at once.
    store.release(&after[0].lease).expect("release");
    assert_eq!(store.claim_ready(&claim("d", 30)).expect("claim").len(), 1);
}

/// [`Store::signalled_waits`]: the pending waits whose inbox holds a signal of the name waited
/// for, in run id order; not a wait whose inbox holds other names, nor a buffered signal of a
/// run that does not wait.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::store::{FileStore, MemoryDisk};
/// # use workflow_runtime::testing::conformance::{self, Harness};
/// # #[derive(Default)]
/// # struct OnMemoryDisk(MemoryDisk);
/// # impl Harness for OnMemoryDisk {
/// #     type Store = FileStore;
/// #     fn open(&self) -> FileStore {
/// #         FileStore::open_disk(self.0.clone()).expect("the store opens")
/// #     }
/// # }
/// conformance::run(OnMemoryDisk::default(), |h| async move {
///     conformance::signalled_waits_are_the_waits_whose_signal_is_buffered(&h).await
/// });
/// ```
pub async fn signalled_waits_are_the_waits_whose_signal_is_buffered<H: Harness>(h: &H) {
    let store = h.open();
    let buffer = |run: &str, name: &str| {
        let mut cp = CheckpointWrite::new(run);
        cp.buffer = Some(InboxEntry::new(name, json!(1), None));
        cp
    };
    commit(
        &store,
        moves("r4", record(1, Some(wait("go", 9_000))), None),
    )
    .await;
    commit(
        &store,
        moves("r1", record(1, Some(wait("go", 9_000))), None),
    )
    .await;
    commit(
        &store,
        moves("r2", record(1, Some(wait("go", 9_000))), None),
    )
    .await;
    commit(
        &store,
        moves("r3", record(1, Some(wait("stop", 9_000))), None),
    )
    .await;
    commit(&store, moves("r5", record(1, Some(step("s"))), None)).await;
    assert!(store.signalled_waits().expect("read").is_empty());
    commit(&store, buffer("r4", "go")).await;
    commit(&store, buffer("r4", "go")).await;
    commit(&store, buffer("r1", "go")).await;
    commit(&store, buffer("r2", "stop")).await;
    commit(&store, buffer("r5", "go")).await;
    let found = store.signalled_waits().expect("read");
    let ids: Vec<&str> = found.iter().map(|w| w.run_id.as_str()).collect();
    assert_eq!(ids, ["r1", "r4"], "each wait once, in run id order");
    assert_eq!(found[0].signal, "go");
    assert_eq!(found[0].metadata, json!({ "for": "go" }));

    // Consumed, the signal no longer counts; a wait that moves on to another name is matched
    // against that one.
    let inbox = store.inbox("r1").expect("inbox");
    let mut cp = CheckpointWrite::new("r1");
    cp.consumed.push(inbox[0].0);
    commit(&store, cp).await;
    commit(
        &store,
        moves(
            "r2",
            record(2, Some(wait("stop", 9_000))),
            Some(wait("go", 9_000)),
        ),
    )
    .await;
    let ids: Vec<String> = store
        .signalled_waits()
        .expect("read")
        .into_iter()
        .map(|w| w.run_id)
        .collect();
    assert_eq!(ids, ["r2", "r4"]);
}
