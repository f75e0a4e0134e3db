//! `bench w1probe`: where W1's step time goes beyond its floor, piece by piece, each measured
//! in the same process and, where two things are compared, in interleaved rounds.
//!
//! 1. *The engine's own commit*: W1 on the file store with a tracing subscriber that listens
//!    to the committer's debug event alone (the time of its write transaction, fsync
//!    included), so that a step's p50 splits into the commit and everything around it.
//! 2. *The value a step commits*: the W1 run's trace read back from its store file, replayed
//!    into raw redb (the `runs` value of a record and its growing trace tail, moved to a
//!    `trace` table when full) with the tail capped at 0, 8 and 32 events, against the floor's
//!    one 100-byte value, in interleaved rounds.
//! 3. *The hand-off in W1's shape*: a tokio task sends to a thread that commits one floor
//!    value (an fsync) and answers; the task then works for a step's worth of CPU before the
//!    next. The round trip minus the thread's own commit time is what the hand-off costs after
//!    a wait as long as an fsync, with the thread blocking on its channel, with it spinning
//!    briefly for the next message first, and with the task spinning for the answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata};
use workflow_runtime::Engine;

use crate::flows::sequential;
use crate::stats::{self, Row, fmt_us, median, percentile};

/// The module whose debug event reports each write transaction's latency.
const COMMITTER: &str = "workflow_runtime::store::file::committer";

/// The latencies the committer reported, microseconds.
static COMMITS: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// A subscriber that enables the committer's events alone, so that nothing else in the engine
/// starts timing or formatting because someone listens.
struct CommitTimes;

fn wanted(meta: &Metadata<'_>) -> bool {
    meta.target() == COMMITTER
}

struct LatencyField(Option<u64>);

impl Visit for LatencyField {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "latency_us" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for CommitTimes {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut latency = LatencyField(None);
        event.record(&mut latency);
        if let Some(us) = latency.0 {
            COMMITS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(us as f64);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The trace of one W1 run as its store file holds it: the record's length and, per
/// checkpoint, the lengths of the encoded events it wrote.
struct Written {
    record_len: usize,
    events: BTreeMap<u64, Vec<usize>>,
}

/// Reads run `run_id`'s value and trace rows out of a closed store file (format v2: see
/// `workflow-runtime/src/store/file/value.rs`).
fn written(path: &Path, run_id: &str) -> Written {
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const TRACE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("trace");
    let db = Database::open(path).expect("open the W1 store");
    let txn = db.begin_read().expect("read");
    let value = txn
        .open_table(RUNS)
        .expect("runs")
        .get(run_id)
        .expect("get")
        .expect("the run is stored")
        .value()
        .to_vec();
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    if let Ok(trace) = txn.open_table(TRACE) {
        for row in trace
            .range((run_id, 0)..=(run_id, u64::MAX))
            .expect("range")
        {
            encoded.push(row.expect("row").1.value().to_vec());
        }
    }
    assert_eq!(value.first(), Some(&0xB2), "a format v2 value");
    let record_len = u32::from_le_bytes(value[1..5].try_into().expect("4 bytes")) as usize;
    let mut tail = &value[5 + record_len + 8..];
    while let Some((len, rest)) = tail.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        encoded.push(rest[..len].to_vec());
        tail = &rest[len..];
    }
    let mut events: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for e in &encoded {
        let v: serde_json::Value = serde_json::from_slice(e).expect("an event is JSON");
        let checkpoint = v["checkpoint"].as_u64().expect("a checkpoint number");
        events.entry(checkpoint).or_default().push(e.len());
    }
    Written { record_len, events }
}

/// One W1 repetition on the file store: every step's latency and every commit's, µs.
async fn w1_rep(dir: &Path, rep: usize) -> (Vec<f64>, Vec<f64>, Written) {
    let path = dir.join(format!("w1probe-{rep}.redb"));
    let engine = Engine::builder()
        .register(sequential)
        .open(&path)
        .await
        .expect("open");
    COMMITS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let steps = crate::w1::step_latencies(&engine).await;
    let commits = std::mem::take(&mut *COMMITS.lock().unwrap_or_else(|e| e.into_inner()));
    engine.shutdown().await;
    let written = written(&path, "w1-0");
    (steps, commits, written)
}

/// The tail bounds replayed: at most this many events (and 3 KiB, as the store's).
const CAPS: [usize; 3] = [0, 8, 32];
const TAIL_BYTES: usize = 3 * 1024;

/// Replays W1's write set into raw redb files, one per tail cap, beside the floor's one-value
/// commit, interleaved run by run; commit p50 of each (floor first), µs.
fn replay(dir: &Path, w: &Written, rep: usize) -> Vec<f64> {
    const FLOOR: TableDefinition<u64, &[u8]> = TableDefinition::new("floor");
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const READY: TableDefinition<&str, &str> = TableDefinition::new("ready");
    const TRACE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("trace");
    let record = vec![b'r'; w.record_len];
    let checkpoints: Vec<Vec<usize>> = w.events.values().cloned().collect();
    let dbs: Vec<Database> = (0..=CAPS.len())
        .map(|i| {
            let p = dir.join(format!("w1probe-replay-{rep}-{i}.redb"));
            Database::create(p).expect("create")
        })
        .collect();
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); dbs.len()];
    let mut key = 0u64;
    // 20 runs of warm-up, then W1's 200.
    for run in 0..220u64 {
        let id = format!("w1-{run}");
        // Per cap: the tail's bytes and count, and the next trace number.
        let mut tails: Vec<(Vec<u8>, usize, u64)> = vec![(Vec::new(), 0, 0); CAPS.len()];
        for (c, events) in checkpoints.iter().enumerate() {
            for (i, db) in dbs.iter().enumerate() {
                let t = Instant::now();
                let txn = db.begin_write().expect("begin");
                if i == 0 {
                    key += 1;
                    txn.open_table(FLOOR)
                        .expect("open")
                        .insert(key, [b'x'; 100].as_slice())
                        .expect("insert");
                } else {
                    let cap = CAPS[i - 1];
                    let (tail, count, next) = &mut tails[i - 1];
                    for &len in events {
                        tail.extend_from_slice(&(len as u32).to_le_bytes());
                        tail.extend(std::iter::repeat_n(b'e', len));
                        *count += 1;
                    }
                    if *count > cap || tail.len() > TAIL_BYTES {
                        let mut trace = txn.open_table(TRACE).expect("open");
                        let mut rest = tail.as_slice();
                        while let Some((len, r)) = rest.split_first_chunk::<4>() {
                            let len = u32::from_le_bytes(*len) as usize;
                            trace
                                .insert((id.as_str(), *next), &r[..len])
                                .expect("insert");
                            *next += 1;
                            rest = &r[len..];
                        }
                        tail.clear();
                        *count = 0;
                    }
                    let mut value = Vec::with_capacity(13 + record.len() + tail.len());
                    value.push(0xB2);
                    value.extend_from_slice(&(record.len() as u32).to_le_bytes());
                    value.extend_from_slice(&record);
                    value.extend_from_slice(&next.to_le_bytes());
                    value.extend_from_slice(tail);
                    txn.open_table(RUNS)
                        .expect("open")
                        .insert(id.as_str(), value.as_slice())
                        .expect("insert");
                    if c == 0 || c + 1 == checkpoints.len() {
                        let mut ready = txn.open_table(READY).expect("open");
                        if c == 0 {
                            ready.insert(id.as_str(), "sequential").expect("insert");
                        } else {
                            ready.remove(id.as_str()).expect("remove");
                        }
                    }
                }
                txn.commit().expect("commit");
                // A step's commit: W1 times steps, not starts.
                if run >= 20 && c > 0 {
                    lat[i].push(stats::us(t.elapsed()));
                }
            }
        }
    }
    lat.iter().map(|l| percentile(l, 50.0)).collect()
}

/// How the two sides of a hand-off wait for each other.
#[derive(Clone, Copy, PartialEq)]
enum Wait {
    /// The thread blocks on its channel; the task awaits the answer (the committer today).
    Block,
    /// The thread spins for up to 200 µs for the next message before it blocks.
    ThreadSpins,
    /// The task spins for the answer instead of yielding to the runtime.
    TaskSpins,
}

const WAITS: [(Wait, &str); 3] = [
    (
        Wait::Block,
        "the thread blocks, the task awaits (the committer)",
    ),
    (
        Wait::ThreadSpins,
        "the thread spins up to 200 µs for the next message",
    ),
    (Wait::TaskSpins, "the task spins for the answer"),
];

/// Burns about `d` of CPU on this thread, as a step's engine work would.
fn work(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One round of hand-offs in W1's shape: 300 trips, each a floor commit on the thread, then
/// 40 µs of work on the task. Returns (round trip − commit) per trip, µs.
async fn handoff_rep(dir: &Path, name: &str, wait: Wait) -> Vec<f64> {
    const FLOOR: TableDefinition<u64, &[u8]> = TableDefinition::new("floor");
    const TRIPS: u64 = 300;
    let db = Database::create(dir.join(format!("w1probe-handoff-{name}.redb"))).expect("create");
    let (tx, rx) = mpsc::channel::<(u64, tokio::sync::oneshot::Sender<f64>)>();
    let thread = std::thread::spawn(move || {
        loop {
            let msg = if wait == Wait::ThreadSpins {
                let t = Instant::now();
                let mut got = None;
                while t.elapsed() < Duration::from_micros(200) {
                    if let Ok(m) = rx.try_recv() {
                        got = Some(m);
                        break;
                    }
                    std::hint::spin_loop();
                }
                match got {
                    Some(m) => m,
                    None => match rx.recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let (k, ack) = msg;
            let t = Instant::now();
            let txn = db.begin_write().expect("begin");
            txn.open_table(FLOOR)
                .expect("open")
                .insert(k, [b'x'; 100].as_slice())
                .expect("insert");
            txn.commit().expect("commit");
            let _ = ack.send(stats::us(t.elapsed()));
        }
    });
    let mut excess = Vec::with_capacity(TRIPS as usize);
    for k in 0..TRIPS {
        let (ack, mut done) = tokio::sync::oneshot::channel();
        let t = Instant::now();
        tx.send((k, ack)).expect("send");
        let commit = if wait == Wait::TaskSpins {
            loop {
                match done.try_recv() {
                    Ok(c) => break c,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                        std::hint::spin_loop();
                    }
                    Err(e) => panic!("the thread answered nothing: {e}"),
                }
            }
        } else {
            done.await.expect("answer")
        };
        let trip = stats::us(t.elapsed());
        if k >= 20 {
            excess.push(trip - commit);
        }
        work(Duration::from_micros(40));
    }
    drop(tx);
    thread.join().expect("thread");
    excess
}

/// Runs the probe `reps` times.
pub(crate) async fn run(dir: &Path, reps: usize) -> Vec<Row> {
    // Global: the committer writes on its own thread. Only this workload installs it.
    if tracing::subscriber::set_global_default(CommitTimes).is_err() {
        println!("  (another subscriber is installed: commit times not captured)");
    }
    let mut floor_p50 = Vec::new();
    let mut step_p50 = Vec::new();
    let mut commit_p50 = Vec::new();
    let mut replays: Vec<Vec<f64>> = Vec::new();
    let mut handoffs: Vec<Vec<f64>> = vec![Vec::new(); WAITS.len()];
    for r in 0..reps {
        let f = crate::floor::latency_rep(dir, &format!("w1probe-{r}"));
        floor_p50.push(percentile(&f, 50.0));
        let (steps, commits, w) = w1_rep(dir, r).await;
        step_p50.push(percentile(&steps, 50.0));
        commit_p50.push(percentile(&commits, 50.0));
        println!(
            "  rep {r}: floor p50 {}; W1 step p50 {}, its commits ({}) p50 {}; outside the commit {}",
            fmt_us(floor_p50[r]),
            fmt_us(step_p50[r]),
            commits.len(),
            fmt_us(commit_p50[r]),
            fmt_us(step_p50[r] - commit_p50[r]),
        );
        if r == 0 {
            let mut total = w.record_len + 13;
            let sizes: Vec<String> = w
                .events
                .iter()
                .map(|(c, lens)| {
                    total += lens.iter().map(|l| l + 4).sum::<usize>();
                    format!("{c}: +{} events → {total} B", lens.len())
                })
                .collect();
            println!(
                "  run w1-0 as written: record {} B; value (uncapped tail) per checkpoint: {}",
                w.record_len,
                sizes.join(", ")
            );
        }
        let rp = replay(dir, &w, r);
        println!(
            "  replay of W1's write set in raw redb, commit p50: floor {}, {}",
            fmt_us(rp[0]),
            CAPS.iter()
                .zip(&rp[1..])
                .map(|(c, p)| format!("tail cap {c} events {}", fmt_us(*p)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        replays.push(rp);
        for (i, (wait, what)) in WAITS.iter().enumerate() {
            let e = handoff_rep(dir, &format!("{r}-{i}"), *wait).await;
            let p = percentile(&e, 50.0);
            println!("  hand-off after a floor commit, {what}: p50 {}", fmt_us(p));
            handoffs[i].push(p);
        }
    }
    let floor = median(&floor_p50);
    let step = median(&step_p50);
    let commit = median(&commit_p50);
    let mut rows = vec![
        Row::info("w1probe", "floor commit p50", fmt_us(floor)),
        Row::info("w1probe", "W1 step p50", fmt_us(step)).floor(fmt_us(floor), step / floor),
        Row::info(
            "w1probe",
            "W1's own commits p50 (committer's write transaction)",
            fmt_us(commit),
        )
        .floor(fmt_us(floor), commit / floor),
        Row::info(
            "w1probe",
            "W1 step p50 − its commits' p50",
            fmt_us(step - commit),
        ),
    ];
    let replay_floor = median(&replays.iter().map(|r| r[0]).collect::<Vec<_>>());
    for (i, cap) in CAPS.iter().enumerate() {
        let p = median(&replays.iter().map(|r| r[i + 1]).collect::<Vec<_>>());
        rows.push(
            Row::info(
                "w1probe",
                &format!("W1's write set in raw redb, tail cap {cap} events, commit p50"),
                fmt_us(p),
            )
            .floor(fmt_us(replay_floor), p / replay_floor),
        );
    }
    for (i, (_, what)) in WAITS.iter().enumerate() {
        rows.push(Row::info(
            "w1probe",
            &format!("hand-off around a floor commit, {what}, p50"),
            fmt_us(median(&handoffs[i])),
        ));
    }
    rows
}
