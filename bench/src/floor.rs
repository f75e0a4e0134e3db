//! The floor: raw redb write transactions at redb's default durability (`Immediate`, the one
//! the engine commits with), with nothing of the engine around them.

use std::path::Path;
use std::time::Instant;

use redb::{Database, TableDefinition};

use crate::stats::{self, Row, fmt_us, median, percentile};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("floor");
/// "One small value": about the size of a short trace event.
const VALUE: [u8; 100] = [b'x'; 100];
/// Commits made before timing, so that the file's first allocations are not measured.
const WARMUP: u64 = 20;
/// Commits timed per repetition of the latency measurement.
const LATENCY_COMMITS: u64 = 1000;
/// Values per commit, with how many commits each repetition makes.
const BATCHES: [(u64, u64); 4] = [(1, 500), (10, 300), (100, 100), (1000, 20)];

/// The single-commit latency floor, medians over the repetitions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// The throughput floor for one batch size, medians over the repetitions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throughput {
    pub(crate) batch: u64,
    pub(crate) values_per_s: f64,
    pub(crate) commits_per_s: f64,
}

fn commit_values(db: &Database, first_key: u64, count: u64) {
    let txn = db.begin_write().expect("begin write");
    {
        let mut t = txn.open_table(TABLE).expect("open table");
        for k in first_key..first_key + count {
            t.insert(k, VALUE.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

/// Times `LATENCY_COMMITS` commits of one value each in a fresh file; microseconds.
pub(crate) fn latency_rep(dir: &Path, name: &str) -> Vec<f64> {
    let db = Database::create(dir.join(format!("floor-latency-{name}.redb"))).expect("create");
    for k in 0..WARMUP {
        commit_values(&db, k, 1);
    }
    (WARMUP..WARMUP + LATENCY_COMMITS)
        .map(|k| {
            let t = Instant::now();
            commit_values(&db, k, 1);
            stats::us(t.elapsed())
        })
        .collect()
}

/// The floor's single-value commits in a file that stays open, timed in blocks that a caller
/// interleaves with the workload it compares with (see `w1::run`), so that both see the disk
/// of the same minutes.
pub(crate) struct LatencyBlocks {
    db: Database,
    next: u64,
    /// Every commit timed so far, in microseconds.
    pub(crate) latencies: Vec<f64>,
}

impl LatencyBlocks {
    /// A fresh file, warmed up as [`latency_rep`]'s.
    pub(crate) fn create(dir: &Path, name: &str) -> Self {
        let db = Database::create(dir.join(format!("floor-latency-{name}.redb"))).expect("create");
        for k in 0..WARMUP {
            commit_values(&db, k, 1);
        }
        Self {
            db,
            next: WARMUP,
            latencies: Vec::with_capacity(LATENCY_COMMITS as usize),
        }
    }

    /// Times `LATENCY_COMMITS / blocks` more commits.
    pub(crate) fn block(&mut self, blocks: u64) {
        for _ in 0..LATENCY_COMMITS / blocks {
            let t = Instant::now();
            commit_values(&self.db, self.next, 1);
            self.latencies.push(stats::us(t.elapsed()));
            self.next += 1;
        }
    }
}

/// Measures the single-commit latency `reps` times.
pub(crate) fn latency(dir: &Path, reps: usize) -> Latency {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for rep in 0..reps {
        let l = latency_rep(dir, &rep.to_string());
        p50.push(percentile(&l, 50.0));
        p99.push(percentile(&l, 99.0));
        println!(
            "  floor latency rep {rep}: p50 {} p99 {}",
            fmt_us(p50[rep]),
            fmt_us(p99[rep])
        );
    }
    Latency {
        p50_us: median(&p50),
        p99_us: median(&p99),
    }
}

/// Measures values per second for each batch size, `reps` times each.
pub(crate) fn throughput(dir: &Path, reps: usize) -> Vec<Throughput> {
    BATCHES
        .iter()
        .map(|&(batch, commits)| {
            let mut vps = Vec::new();
            for rep in 0..reps {
                let db = Database::create(dir.join(format!("floor-batch-{batch}-{rep}.redb")))
                    .expect("create");
                for k in 0..WARMUP {
                    commit_values(&db, k * batch, batch);
                }
                let t = Instant::now();
                for c in WARMUP..WARMUP + commits {
                    commit_values(&db, c * batch, batch);
                }
                vps.push((batch * commits) as f64 / t.elapsed().as_secs_f64());
            }
            let values_per_s = median(&vps);
            println!("  floor batch {batch:>4}: {values_per_s:>10.0} values/s");
            Throughput {
                batch,
                values_per_s,
                commits_per_s: values_per_s / batch as f64,
            }
        })
        .collect()
}

/// The rows of the floor itself.
pub(crate) fn rows(latency: Latency, throughput: &[Throughput]) -> Vec<Row> {
    let mut rows = vec![
        Row::info(
            "floor",
            "1 value per commit, latency p50",
            fmt_us(latency.p50_us),
        ),
        Row::info(
            "floor",
            "1 value per commit, latency p99",
            fmt_us(latency.p99_us),
        ),
    ];
    for t in throughput {
        rows.push(Row::info(
            "floor",
            &format!(
                "{} value{} per commit, throughput",
                t.batch,
                if t.batch == 1 { "" } else { "s" }
            ),
            format!(
                "{:.0} values/s ({:.0} commits/s)",
                t.values_per_s, t.commits_per_s
            ),
        ));
    }
    rows
}

/// The write sets [`shapes`] compares, from the floor's to a step transition's.
const SHAPES: [&str; 5] = [
    "1 value in 1 table (the floor)",
    "record + 2 trace events in 1 table",
    "record + 2 trace events in 2 tables (a step transition, store format v1)",
    "as above + delete and insert in a 3rd table",
    "record + 1,000 B trace tail in 1 value (a step transition, store format v2)",
];

/// Diagnostic: the commit latency of write sets shaped like the engine's (a 500-byte run
/// record, two 200-byte trace events, an index row), in rounds that interleave the shapes so
/// that all see the same disk. It shows what the engine's write set costs beyond the floor.
pub(crate) fn shapes(dir: &Path, reps: usize) -> Vec<Row> {
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const READY: TableDefinition<&str, &str> = TableDefinition::new("ready");
    const TRACE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("trace");
    const PER_ROUND: u64 = 50;
    let record = [b'r'; 500];
    let event = [b'e'; 200];
    // Format v2 keeps a run's latest trace events in its record's value: on average about
    // five 200-byte events ride along (the tail moves to the trace table at 3 KiB).
    let with_tail = [b't'; 1500];
    let dbs: Vec<Database> = (0..SHAPES.len())
        .map(|s| Database::create(dir.join(format!("shape-{s}.redb"))).expect("create"))
        .collect();
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); SHAPES.len()];
    for round in 0..=reps * 4 {
        for (shape, db) in dbs.iter().enumerate() {
            for j in 0..PER_ROUND {
                let k = round as u64 * PER_ROUND + j;
                // Ten transitions per run, like W1.
                let run = format!("run-{}", k / 10);
                let t = Instant::now();
                let txn = db.begin_write().expect("begin write");
                if shape == 0 {
                    let mut t = txn.open_table(TABLE).expect("open");
                    t.insert(k, VALUE.as_slice()).expect("insert");
                } else if shape == 4 {
                    let mut r = txn.open_table(RUNS).expect("open");
                    r.insert(run.as_str(), with_tail.as_slice())
                        .expect("insert");
                } else if shape == 1 {
                    let mut t = txn.open_table(TRACE).expect("open");
                    t.insert((run.as_str(), 2 * k), event.as_slice())
                        .expect("insert");
                    t.insert((run.as_str(), 2 * k + 1), event.as_slice())
                        .expect("insert");
                    t.insert((run.as_str(), u64::MAX), record.as_slice())
                        .expect("insert");
                } else {
                    let mut r = txn.open_table(RUNS).expect("open");
                    let mut t = txn.open_table(TRACE).expect("open");
                    r.insert(run.as_str(), record.as_slice()).expect("insert");
                    t.insert((run.as_str(), 2 * k), event.as_slice())
                        .expect("insert");
                    t.insert((run.as_str(), 2 * k + 1), event.as_slice())
                        .expect("insert");
                    if shape == 3 {
                        let mut q = txn.open_table(READY).expect("open");
                        q.remove(run.as_str()).expect("remove");
                        q.insert(run.as_str(), "sequential").expect("insert");
                    }
                }
                txn.commit().expect("commit");
                // The first round only warms the files up.
                if round > 0 {
                    lat[shape].push(stats::us(t.elapsed()));
                }
            }
        }
    }
    let base = percentile(&lat[0], 50.0);
    SHAPES
        .iter()
        .zip(&lat)
        .map(|(name, l)| {
            let p50 = percentile(l, 50.0);
            println!(
                "  shape `{name}`: p50 {} p90 {}",
                fmt_us(p50),
                fmt_us(percentile(l, 90.0))
            );
            Row::info("shapes", &format!("commit p50, {name}"), fmt_us(p50))
                .floor(fmt_us(base), p50 / base)
        })
        .collect()
}

/// The hand-off the committer adds to every commit, without the commit: a tokio task sends a
/// message to a dedicated thread over a std channel, and the thread answers over a tokio
/// oneshot. Returns the round trip's p50 and p99 in microseconds, medians over `reps`.
pub(crate) async fn handoff(reps: usize) -> (f64, f64) {
    const TRIPS: usize = 2000;
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for _ in 0..reps {
        let (tx, rx) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
        let thread = std::thread::spawn(move || {
            while let Ok(ack) = rx.recv() {
                let _ = ack.send(());
            }
        });
        let mut trips = Vec::with_capacity(TRIPS);
        for _ in 0..TRIPS {
            let (ack, done) = tokio::sync::oneshot::channel();
            let t = Instant::now();
            tx.send(ack).expect("send");
            done.await.expect("answer");
            trips.push(stats::us(t.elapsed()));
            // Like a step between commits: the thread has gone back to sleep by the next one.
            tokio::time::sleep(std::time::Duration::from_micros(100)).await;
        }
        drop(tx);
        thread.join().expect("thread");
        p50.push(percentile(&trips, 50.0));
        p99.push(percentile(&trips, 99.0));
    }
    (median(&p50), median(&p99))
}

/// The floor under W2's CPU per transition: the store's write set of W2's 6,000 transitions
/// (store format v2) written with raw redb, `per_commit` transitions per commit (what group
/// commit achieved in the same run), without an engine, encoding or hand-off. Per run: the
/// start writes its record and a `ready` row; two step results write the record; the step
/// that parks writes the record, deletes `ready` and inserts a `timers` and a `waits` row;
/// the signal writes the record, deletes both and inserts `ready`; the last step writes the
/// record and deletes `ready`. The record's value grows by two 200-byte trace events per
/// transition (its trace tail). Returns the calling thread's CPU time per transition, µs.
// Not inlined, so that a profile (callgrind) names each floor apart.
#[inline(never)]
pub(crate) fn w2_write_set(dir: &Path, runs: u64, per_commit: usize) -> f64 {
    write_set(dir, runs, per_commit, true)
}

/// [`w2_write_set`] without the index rows: only the record's value, written once per
/// transition. No store layout that keeps a run's record in a B-tree writes less per
/// transition, so this is the floor under W2's CPU whatever the layout of the index rows.
#[inline(never)]
pub(crate) fn w2_records_only(dir: &Path, runs: u64, per_commit: usize) -> f64 {
    write_set(dir, runs, per_commit, false)
}

fn write_set(dir: &Path, runs: u64, per_commit: usize, index_rows: bool) -> f64 {
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const READY: TableDefinition<&str, &str> = TableDefinition::new("ready");
    const TIMERS: TableDefinition<(u64, &str), (u64, &str)> = TableDefinition::new("timers");
    const WAITS: TableDefinition<&str, &[u8]> = TableDefinition::new("waits");
    const PHASES: usize = 6;
    let path = dir.join("w2-write-set.redb");
    let _ = std::fs::remove_file(&path);
    let db = Database::create(&path).expect("create");
    let ids: Vec<String> = (0..runs).map(|i| format!("w2-{i}")).collect();
    let value = vec![b'r'; 600 + 400 * PHASES];
    let wait = [b'w'; 200];
    let deadline = 1_800_000_000_000_u64;
    // This thread's own CPU time, in nanoseconds: the whole write set takes about 60 ms,
    // which the process's 10 ms ticks would read to ±17 %.
    let cpu_before = stats::ThreadsUsage::this_thread_cpu_ns();
    for phase in 0..PHASES {
        for chunk in ids.chunks(per_commit.max(1)) {
            let txn = db.begin_write().expect("begin write");
            {
                let mut records = txn.open_table(RUNS).expect("open");
                let mut ready = txn.open_table(READY).expect("open");
                let mut timers = txn.open_table(TIMERS).expect("open");
                let mut waits = txn.open_table(WAITS).expect("open");
                for id in chunk {
                    let id = id.as_str();
                    records
                        .insert(id, &value[..600 + 400 * (phase + 1)])
                        .expect("insert");
                    match phase {
                        _ if !index_rows => {}
                        0 => {
                            ready.insert(id, "fan_in").expect("insert");
                        }
                        3 => {
                            ready.remove(id).expect("remove");
                            timers
                                .insert((deadline, id), (4, "fan_in"))
                                .expect("insert");
                            waits.insert(id, wait.as_slice()).expect("insert");
                        }
                        4 => {
                            timers.remove((deadline, id)).expect("remove");
                            waits.remove(id).expect("remove");
                            ready.insert(id, "fan_in").expect("insert");
                        }
                        5 => {
                            ready.remove(id).expect("remove");
                        }
                        _ => {}
                    }
                }
            }
            txn.commit().expect("commit");
        }
    }
    let cpu_ns = stats::ThreadsUsage::this_thread_cpu_ns().saturating_sub(cpu_before);
    drop(db);
    let _ = std::fs::remove_file(&path);
    cpu_ns as f64 / 1e3 / (runs * PHASES as u64) as f64
}

/// The floor under W1's in-memory step: the write set of W1's 2,000 step transitions (store
/// format v2: one run value of a record with its trace tail; a `ready` row at each start and
/// removed at each end) committed one transition per write transaction on redb's in-memory
/// backend, at the durability the in-memory store uses (none, except one commit in 64 that
/// lets redb reuse freed pages). No engine, encoding or task around it. Returns the commit
/// latency p50 in microseconds, the median over `reps`.
pub(crate) fn memory_step_commit(reps: usize) -> f64 {
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const READY: TableDefinition<&str, &str> = TableDefinition::new("ready");
    const DURABLE_EVERY: u64 = 64;
    let with_tail = [b't'; 1500];
    let mut p50 = Vec::new();
    for _ in 0..reps {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("create in memory");
        let mut lat = Vec::with_capacity(2000);
        let mut n = 0u64;
        for run in 0..(crate::w1::RUNS as u64 + WARMUP) {
            let id = format!("w1-{run}");
            for step in 0..=crate::w1::STEPS {
                n += 1;
                let t = Instant::now();
                let mut txn = db.begin_write().expect("begin write");
                if !n.is_multiple_of(DURABLE_EVERY) {
                    txn.set_durability(redb::Durability::None)
                        .expect("durability");
                }
                {
                    let mut r = txn.open_table(RUNS).expect("open");
                    r.insert(id.as_str(), with_tail.as_slice()).expect("insert");
                    if step == 0 || step == crate::w1::STEPS {
                        let mut q = txn.open_table(READY).expect("open");
                        if step == 0 {
                            q.insert(id.as_str(), "sequential").expect("insert");
                        } else {
                            q.remove(id.as_str()).expect("remove");
                        }
                    }
                }
                txn.commit().expect("commit");
                if run >= WARMUP && step > 0 {
                    lat.push(stats::us(t.elapsed()));
                }
            }
        }
        p50.push(percentile(&lat, 50.0));
    }
    median(&p50)
}
