//! W1–W3 on PostgreSQL ([`PgStore`]), each beside PostgreSQL's own floor measured in the same
//! run: one small-row `INSERT` committed with `synchronous_commit = on` (the setting the store
//! requires), alone for latency and in batches for throughput.
//!
//! The server is a throwaway cluster started by [`TestCluster`] (the repository's
//! `scripts/pg-test-cluster`: `initdb` in the temporary directory, so on the disk the redb
//! figures use, default settings but `max_connections`, `fsync` on) on 127.0.0.1; the bench
//! talks to it over TCP loopback. Every repetition gets a fresh database.
//!
//! W1 also prints, per repetition, the WAL per floor `INSERT` and per step (record by record,
//! `pg_walinspect`), the CPU per `INSERT` and per step of this process and of the server's
//! backends (`schedstat`), and runs once more with the floor interleaved in blocks (as `bench
//! w1` on redb), so that a step is compared with the floor of the same seconds; see
//! BENCHMARKS.md, "PostgreSQL: W1's excess over the floor by WAL and CPU".
//!
//! # Workers
//!
//! The single-worker rows run on one engine in the default (exclusive) mode in the bench's
//! process, as they always did. `--workers N` adds the shared mode ([`LeaseSettings`]), with
//! every worker a process of its own (`bench __pg_worker`, [`worker_main`]) holding its own
//! [`PgStore`]: processes rather than engines in one process, because that is what the claim
//! is about (several processes, their own connections and runtimes, meeting only in the
//! database), and because engines in one process would share its runtime threads and hide
//! the cost of the hand-offs between processes.
//!
//! - **W1, shared**: the bench's process is worker 0 and measures the step latency of its own
//!   runs while the other `N - 1` workers poll the database; run before the exclusive W1 of
//!   the same repetition, after the same floor.
//! - **W2, shared**: with 1 and with `N` worker processes (the same harness, so the ratio is
//!   the scaling): each worker starts and signals its share of the 1,000 runs (round-robin)
//!   and drives what it holds; the bench watches the database and measures, per transition,
//!   the workers' CPU, the server's CPU (its postmaster's children from `/proc`), the
//!   server's transactions and WAL flushes (`pg_stat_database`, `pg_stat_wal`).
//! - **W3, shared**: after the single-process W3 (same database, same parked runs), `N`
//!   worker processes open on it at once: the time until every one is ready and each one's
//!   resident memory beside workers opened on an empty database; then all `N` are killed with
//!   SIGKILL, `N` new ones start (ready time again), and each signals its share of a fresh
//!   slice of the parked runs and waits for their results. A shared worker holds no parked
//!   run at open (it claims runs as they come due or are signalled), so neither figure should
//!   grow with the parked runs.

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::{Engine, EngineBuilder, LeaseSettings};

use crate::floor::{Latency, Throughput};
use crate::flows::{fan_in, parked, sequential, ticks};
use crate::stats::{self, Row, ThreadsUsage, cpu_ms, fmt_us, median, percentile};
use crate::w1::{RUNS as W1_RUNS, STEPS as W1_STEPS};
use crate::w3::{TRANSITIONS_PER_SIGNAL, child, f, open_and_kill};

/// Engines of the single-worker workloads: one, in the default (exclusive) mode.
const WORKERS: usize = 1;

/// "One small row": as the redb floor's value, about the size of a short trace event.
const VALUE: [u8; 100] = [b'x'; 100];
const WARMUP: i64 = 20;
const LATENCY_COMMITS: i64 = 1000;
/// Rows per commit, with how many commits each repetition makes (as the redb floor).
const BATCHES: [(i64, i64); 4] = [(1, 500), (10, 300), (100, 100), (1000, 20)];

async fn connect(url: &str) -> Client {
    let client = open_client(url).await;
    client
        .batch_execute(
            "SET synchronous_commit = on;
             CREATE TABLE IF NOT EXISTS floor_rows (id bigint PRIMARY KEY, v bytea NOT NULL)",
        )
        .await
        .expect("the floor's table");
    client
}

/// CPU time in nanoseconds, of this process's threads and of the server's backends, spent
/// while a phase ran: load-independent where wall times are not (a thread waiting for a
/// core or the disk is not charged), so the excess of a step over a floor `INSERT` can be
/// split between the client and the server however busy the machine is.
#[derive(Clone, Copy, Default)]
struct PhaseCpu {
    client_ns: u64,
    backend_ns: u64,
}

/// The CPU time of the server processes `pids` so far, in nanoseconds (`schedstat`).
fn pids_cpu_ns(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The backends connected to the database `monitor` is on, but `monitor`'s own.
async fn backend_pids(monitor: &Client) -> Vec<i32> {
    monitor
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Prints `cpu` per `unit` (`units` of them).
fn print_cpu(cpu: PhaseCpu, units: usize, unit: &str) {
    let n = units.max(1) as f64;
    println!(
        "    CPU per {unit}: {} in this process (all threads), {} in the server's backends",
        fmt_us(cpu.client_ns as f64 / 1e3 / n),
        fmt_us(cpu.backend_ns as f64 / 1e3 / n),
    );
}

/// The floor's one-row `INSERT`, prepared on a connection of its own.
struct FloorInserts {
    client: Client,
    insert: tokio_postgres::Statement,
}

impl FloorInserts {
    async fn connect(url: &str) -> FloorInserts {
        let client = connect(url).await;
        let insert = client
            .prepare("INSERT INTO floor_rows (id, v) VALUES ($1, $2)")
            .await
            .expect("prepare");
        FloorInserts { client, insert }
    }

    /// Inserts row `k` and commits it (one statement, `synchronous_commit = on`).
    async fn insert(&self, k: i64) {
        let value = VALUE.as_slice();
        self.client
            .execute(&self.insert, &[&k, &value])
            .await
            .expect("insert");
    }

    /// Inserts the rows of `ids`, pushing each one's latency in microseconds to `out`.
    async fn timed(&self, ids: std::ops::Range<i64>, out: &mut Vec<f64>) {
        for k in ids {
            let t = Instant::now();
            self.insert(k).await;
            out.push(stats::us(t.elapsed()));
        }
    }
}

/// Times `LATENCY_COMMITS` single-row inserts, each its own transaction; microseconds. Also
/// answers the CPU they cost, warm-up included.
async fn floor_latency_rep(url: &str) -> (Vec<f64>, PhaseCpu) {
    let floor = FloorInserts::connect(url).await;
    let pid: i32 = floor
        .client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("the backend's pid")
        .get(0);
    let (client_before, backend_before) = (ThreadsUsage::now(), pids_cpu_ns(&[pid]));
    for k in 0..WARMUP {
        floor.insert(k).await;
    }
    let mut out = Vec::with_capacity(LATENCY_COMMITS as usize);
    floor
        .timed(WARMUP..WARMUP + LATENCY_COMMITS, &mut out)
        .await;
    let cpu = PhaseCpu {
        client_ns: ThreadsUsage::now().since(client_before).cpu_ns,
        backend_ns: pids_cpu_ns(&[pid]).saturating_sub(backend_before),
    };
    (out, cpu)
}

/// The floor's `INSERT`s issued as `PgStore` issued its commits before it polled the commit
/// connection on the caller's runtime: each request sent to a thread of its own (a
/// current-thread runtime owning the connection), which runs the statement and answers on a
/// oneshot channel. The difference from [`floor_latency_rep`] (the connection polled on the
/// caller's runtime) is the cost of the two extra cross-thread wake-ups per commit; see
/// BENCHMARKS.md, "PostgreSQL: the commit connection on the engine's runtime".
/// Also answers the voluntary context switches per `INSERT` of this process, the thread's
/// included (counted before it exits: an exited thread's count leaves `/proc`).
async fn floor_handoff_rep(url: &str) -> (Vec<f64>, f64) {
    type Request = (i64, tokio::sync::oneshot::Sender<()>);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
    let url = url.to_owned();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the hand-off thread's runtime");
        rt.block_on(async move {
            let floor = FloorInserts::connect(&url).await;
            while let Some((k, done)) = rx.recv().await {
                floor.insert(k).await;
                let _ = done.send(());
            }
        });
    });
    // Ids after the direct floor's, in the same table.
    let first = 10 * (WARMUP + LATENCY_COMMITS);
    let switches = voluntary_switches();
    let mut out = Vec::with_capacity(LATENCY_COMMITS as usize);
    for k in first..first + WARMUP + LATENCY_COMMITS {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let t = Instant::now();
        tx.send((k, done_tx)).expect("the hand-off thread");
        done.await.expect("the hand-off thread answers");
        if k >= first + WARMUP {
            out.push(stats::us(t.elapsed()));
        }
    }
    let switches = voluntary_switches().saturating_sub(switches);
    drop(tx);
    tokio::task::spawn_blocking(move || thread.join().expect("the hand-off thread"))
        .await
        .expect("join");
    (out, switches as f64 / (WARMUP + LATENCY_COMMITS) as f64)
}

/// One repetition of W1 with the floor interleaved, as `bench w1` does on redb: `BLOCKS`
/// times, a tenth of the floor's `INSERT`s (on a connection kept open), then a tenth of the
/// runs (on an engine kept open), so that both see the server and disk of the same seconds.
/// Returns the step latencies and the floor's, in microseconds.
async fn w1_interleaved(url: &str) -> (Vec<f64>, Vec<f64>) {
    const BLOCKS: usize = 10;
    let floor_rows = FloorInserts::connect(url).await;
    for k in 0..WARMUP {
        floor_rows.insert(k).await;
    }
    let engines = engines(url, || Engine::builder().register(sequential)).await;
    let per_block = LATENCY_COMMITS / BLOCKS as i64;
    let per_runs = W1_RUNS / BLOCKS;
    let mut floor = Vec::with_capacity(LATENCY_COMMITS as usize);
    let mut steps = Vec::with_capacity(W1_RUNS * W1_STEPS as usize);
    for b in 0..BLOCKS {
        let first = WARMUP + b as i64 * per_block;
        floor_rows.timed(first..first + per_block, &mut floor).await;
        crate::w1::runs_into(&engines[0], b * per_runs..(b + 1) * per_runs, &mut steps).await;
    }
    shutdown(engines).await;
    (steps, floor)
}

/// Voluntary context switches of every thread of this process so far: each one is a thread
/// that went to sleep waiting (for a channel, a socket, a lock), so their count per step is
/// the number of sleeps, and so of wake-ups, a step costs, whatever the machine's load.
fn voluntary_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Rows per second for each batch size: one statement per transaction, inserting the batch.
async fn floor_throughput(cluster: &TestCluster, reps: usize) -> Vec<Throughput> {
    let mut out = Vec::new();
    for (batch, commits) in BATCHES {
        let mut rows_per_s = Vec::new();
        for _ in 0..reps {
            let client = connect(&cluster.create_database()).await;
            let insert = client
                .prepare(
                    "INSERT INTO floor_rows (id, v) SELECT * FROM unnest($1::bigint[], $2::bytea[])",
                )
                .await
                .expect("prepare");
            let values = vec![VALUE.to_vec(); batch as usize];
            let commit = |c: i64| {
                let ids: Vec<i64> = (c * batch..(c + 1) * batch).collect();
                let (client, insert, values) = (&client, &insert, &values);
                async move {
                    client
                        .execute(insert, &[&ids, values])
                        .await
                        .expect("insert");
                }
            };
            for c in 0..WARMUP {
                commit(c).await;
            }
            let t = Instant::now();
            for c in WARMUP..WARMUP + commits {
                commit(c).await;
            }
            rows_per_s.push((batch * commits) as f64 / t.elapsed().as_secs_f64());
        }
        let values_per_s = median(&rows_per_s);
        println!("  pg floor batch {batch:>4}: {values_per_s:>10.0} rows/s");
        out.push(Throughput {
            batch: batch as u64,
            values_per_s,
            commits_per_s: values_per_s / batch as f64,
        });
    }
    out
}

/// The engines of one workload on the database at `url`; see the module docs.
async fn engines(url: &str, builder: impl Fn() -> EngineBuilder) -> Vec<Engine> {
    let mut engines = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let store = PgStore::open_async(url)
            .await
            .expect("the PostgreSQL store opens");
        engines.push(builder().open_store(store).await.expect("open"));
    }
    engines
}

async fn shutdown(engines: Vec<Engine>) {
    for engine in engines {
        engine.shutdown().await;
    }
}

/// Whether `--statements` asked for the server's per-statement counts after each W1 and
/// shared W2 repetition (`pg_stat_statements`, loaded by restarting the cluster once).
static STATEMENTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `--statements`: a connection to `url` whose database's statement counts were just
/// reset, for [`print_statements`] once the workload ends.
async fn statements_reset(url: &str) -> Option<Client> {
    if !STATEMENTS.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let monitor = open_client(url).await;
    reset_statements(&monitor).await;
    Some(monitor)
}

/// A connection of the bench's own, beside the engines', its I/O driven by a task.
async fn open_client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the bench's PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Zeroes the server's per-statement counts (loading `pg_stat_statements` if needed).
async fn reset_statements(monitor: &Client) {
    monitor
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             SELECT pg_stat_statements_reset()",
        )
        .await
        .expect("pg_stat_statements");
}

/// Whether `--w1-only` asked `pg` to stop after W1 (the WAL and interleaved measurements
/// without the minutes of W2 and W3).
pub(crate) static W1_ONLY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// A position in the server's WAL, as text (`pg_lsn`), read on `monitor`.
async fn wal_position(monitor: &Client) -> String {
    monitor
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .expect("the WAL position")
        .get(0)
}

/// The WAL written between `start` and now, read back record by record (`pg_walinspect`):
/// exact and load-independent, unlike the cumulative `pg_stat_wal`, whose counts a backend
/// reports only when it goes idle for a second or exits. Cluster-wide, so the background
/// writer's and autovacuum's records of those seconds are in it too (few: see the table).
/// Prints the totals and the largest record types per `unit` (`units` of them), and answers
/// the bytes per unit.
async fn print_wal(monitor: &Client, start: &str, units: usize, unit: &str) -> f64 {
    // Every commit measured was flushed before it answered, so the flush position covers it.
    let rows = monitor
        .query(
            "SELECT \"resource_manager/record_type\", count, record_size, fpi_size, combined_size
             FROM pg_get_wal_stats($1::text::pg_lsn, pg_current_wal_flush_lsn(), true)
             WHERE count > 0 ORDER BY combined_size DESC",
            &[&start],
        )
        .await
        .expect("pg_get_wal_stats");
    let n = units.max(1) as f64;
    let (mut records, mut bytes, mut fpi) = (0_i64, 0_i64, 0_i64);
    for row in &rows {
        records += row.get::<_, i64>(1);
        fpi += row.get::<_, i64>(3);
        bytes += row.get::<_, i64>(4);
    }
    println!(
        "    WAL per {unit}: {:.2} records, {:.0} bytes ({:.0} of them full-page images) \
         over {units} {unit}s",
        records as f64 / n,
        bytes as f64 / n,
        fpi as f64 / n,
    );
    for row in rows.iter().take(8) {
        println!(
            "      {:<28} {:>6.2} records {:>7.0} bytes ({:.0} full-page) per {unit}",
            row.get::<_, String>(0),
            row.get::<_, i64>(1) as f64 / n,
            row.get::<_, i64>(4) as f64 / n,
            row.get::<_, i64>(3) as f64 / n,
        );
    }
    bytes as f64 / n
}

/// A monitor connection to `url` with `pg_walinspect` installed (its own WAL written before
/// any measured position is read).
async fn wal_monitor(url: &str) -> Client {
    let monitor = open_client(url).await;
    monitor
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .await
        .expect("pg_walinspect");
    monitor
}

/// Runs the floor, W1, W2 and W3 on a throwaway PostgreSQL server; W1 and W2 also with
/// `workers` engines in shared mode when `workers > 1` (see the module docs).
pub(crate) async fn run(
    reps: usize,
    parked_runs: u64,
    signalled: u64,
    workers: usize,
    statements: bool,
) -> Vec<Row> {
    STATEMENTS.store(statements, std::sync::atomic::Ordering::Relaxed);
    let cluster = tokio::task::spawn_blocking(move || {
        let cluster = TestCluster::start().expect("a PostgreSQL cluster");
        if statements {
            cluster
                .execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
                .expect("preload pg_stat_statements");
            cluster.halt().expect("stop the cluster");
            cluster.resume().expect("restart the cluster");
        }
        cluster
    })
    .await
    .expect("the cluster thread");
    println!(
        "PostgreSQL: {} (1 worker; {workers} in shared mode)",
        cluster.url()
    );

    let mut rows = Vec::new();
    let mut floor_p50 = Vec::new();
    let mut floor_p99 = Vec::new();
    let mut handoff_p50 = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let (mut shared_p50, mut shared_p99, mut shared_moved) = (Vec::new(), Vec::new(), 0);
    let (mut floor_wal, mut step_wal) = (Vec::new(), Vec::new());
    let (mut floor_cpu, mut step_cpu) = (Vec::<PhaseCpu>::new(), Vec::<PhaseCpu>::new());
    let (mut mixed_p50, mut mixed_floor_p50) = (Vec::new(), Vec::new());
    println!("W1 on PostgreSQL: 200 runs one after another, 10 no-op steps each");
    for r in 0..reps {
        let url = cluster.create_database();
        let wal = wal_monitor(&url).await;
        // The floor's table is created before the measured WAL begins.
        drop(connect(&url).await);
        let per_insert = |switches: u64| switches as f64 / (WARMUP + LATENCY_COMMITS) as f64;
        let monitor = statements_reset(&url).await;
        let start = wal_position(&wal).await;
        let switches = voluntary_switches();
        let (floor, cpu) = floor_latency_rep(&url).await;
        let floor_switches = per_insert(voluntary_switches().saturating_sub(switches));
        let inserts = (WARMUP + LATENCY_COMMITS) as usize;
        println!("  pg floor rep {r}:");
        floor_wal.push(print_wal(&wal, &start, inserts, "INSERT").await);
        print_cpu(cpu, inserts, "INSERT");
        floor_cpu.push(cpu);
        if let Some(monitor) = monitor {
            print_statements(&monitor, "the floor's INSERTs").await;
        }
        floor_p50.push(percentile(&floor, 50.0));
        floor_p99.push(percentile(&floor, 99.0));
        let (handoff, handoff_switches) = floor_handoff_rep(&url).await;
        handoff_p50.push(percentile(&handoff, 50.0));
        println!(
            "  pg floor rep {r}: INSERT p50 {} ({floor_switches:.2} voluntary context switches \
             per INSERT); the same through a thread hand-off: p50 {} ({handoff_switches:.2})",
            fmt_us(floor_p50[r]),
            fmt_us(handoff_p50[r])
        );
        if workers > 1 {
            let (l, moved, switches) = w1_shared(&cluster.create_database(), workers).await;
            let switches = switches as f64 / l.len().max(1) as f64;
            shared_p50.push(percentile(&l, 50.0));
            shared_p99.push(percentile(&l, 99.0));
            shared_moved += moved;
            println!(
                "  pg w1 shared, {workers} workers, rep {r}: {} steps, p50 {} p99 {} ({moved} \
                 runs partly driven by another worker, not counted); this process's voluntary \
                 context switches per step {switches:.2}",
                l.len(),
                fmt_us(shared_p50[r]),
                fmt_us(shared_p99[r]),
            );
        }
        let engines = engines(&url, || Engine::builder().register(sequential)).await;
        let monitor = statements_reset(&url).await;
        let start = wal_position(&wal).await;
        // The store opens its write connection at its first commit: a backend that appears
        // during the phase is charged from its start (its connection set-up included, a few
        // milliseconds over the repetition's 2,000 steps).
        let before: Vec<(i32, u64)> = backend_pids(&wal)
            .await
            .into_iter()
            .map(|pid| (pid, pids_cpu_ns(&[pid])))
            .collect();
        let client_before = ThreadsUsage::now();
        let switches = voluntary_switches();
        let l = crate::w1::step_latencies(&engines[0]).await;
        let switches = voluntary_switches().saturating_sub(switches);
        let client_ns = ThreadsUsage::now().since(client_before).cpu_ns;
        let backend_ns = backend_pids(&wal)
            .await
            .into_iter()
            .map(|pid| {
                let was = before
                    .iter()
                    .find(|(p, _)| *p == pid)
                    .map_or(0, |(_, ns)| *ns);
                pids_cpu_ns(&[pid]).saturating_sub(was)
            })
            .sum();
        let cpu = PhaseCpu {
            client_ns,
            backend_ns,
        };
        println!("  pg w1 rep {r}, one exclusive engine:");
        step_wal.push(print_wal(&wal, &start, l.len(), "step").await);
        print_cpu(cpu, l.len(), "step");
        step_cpu.push(cpu);
        if let Some(monitor) = monitor {
            print_statements(&monitor, "W1, one exclusive engine").await;
        }
        shutdown(engines).await;
        p50.push(percentile(&l, 50.0));
        p99.push(percentile(&l, 99.0));
        println!(
            "  pg w1 rep {r}: {} steps, p50 {} p99 {}; INSERT floor just before: p50 {} p99 {}; \
             {:.2} voluntary context switches per step",
            l.len(),
            fmt_us(p50[r]),
            fmt_us(p99[r]),
            fmt_us(floor_p50[r]),
            fmt_us(floor_p99[r]),
            switches as f64 / l.len().max(1) as f64,
        );
        let (l, f) = w1_interleaved(&cluster.create_database()).await;
        mixed_p50.push(percentile(&l, 50.0));
        mixed_floor_p50.push(percentile(&f, 50.0));
        println!(
            "  pg w1 interleaved rep {r}: {} steps, p50 {}; floor interleaved: {} INSERTs, \
             p50 {}; ratio {:.3}",
            l.len(),
            fmt_us(mixed_p50[r]),
            f.len(),
            fmt_us(mixed_floor_p50[r]),
            mixed_p50[r] / mixed_floor_p50[r]
        );
    }
    println!(
        "  WAL bytes, medians over the repetitions: {:.0} per floor INSERT, {:.0} per W1 step",
        median(&floor_wal),
        median(&step_wal)
    );
    let per = |cpu: &[PhaseCpu], n: usize, f: fn(&PhaseCpu) -> u64| {
        median(
            &cpu.iter()
                .map(|c| f(c) as f64 / 1e3 / n as f64)
                .collect::<Vec<_>>(),
        )
    };
    let (inserts, steps) = (
        (WARMUP + LATENCY_COMMITS) as usize,
        W1_RUNS * W1_STEPS as usize,
    );
    println!(
        "  CPU, medians over the repetitions: per floor INSERT {} here, {} in its backend; \
         per W1 step {} here, {} in the engine's backends",
        fmt_us(per(&floor_cpu, inserts, |c| c.client_ns)),
        fmt_us(per(&floor_cpu, inserts, |c| c.backend_ns)),
        fmt_us(per(&step_cpu, steps, |c| c.client_ns)),
        fmt_us(per(&step_cpu, steps, |c| c.backend_ns)),
    );
    let latency = Latency {
        p50_us: median(&floor_p50),
        p99_us: median(&floor_p99),
    };
    let (p50, p99) = (median(&p50), median(&p99));
    rows.push(Row::info(
        "PG floor",
        "1-row INSERT, synchronous_commit = on, latency p50",
        fmt_us(latency.p50_us),
    ));
    rows.push(Row::info(
        "PG floor",
        "1-row INSERT, synchronous_commit = on, latency p99",
        fmt_us(latency.p99_us),
    ));
    let handoff = median(&handoff_p50);
    rows.push(
        Row::info(
            "PG floor",
            "the same INSERT through a thread hand-off (probe), p50",
            fmt_us(handoff),
        )
        .floor(
            format!("{} (INSERT p50)", fmt_us(latency.p50_us)),
            handoff / latency.p50_us,
        ),
    );
    let ratio = p50 / latency.p50_us;
    rows.push(
        Row::info("PG W1", "step latency p50", fmt_us(p50))
            .floor(format!("{} (INSERT p50)", fmt_us(latency.p50_us)), ratio)
            .target("≤ 1.5× floor p50", ratio <= 1.5),
    );
    rows.push(Row::info("PG W1", "step latency p99", fmt_us(p99)).floor(
        format!("{} (INSERT p99)", fmt_us(latency.p99_us)),
        p99 / latency.p99_us,
    ));
    if workers > 1 {
        let (p50, p99) = (median(&shared_p50), median(&shared_p99));
        let ratio = p50 / latency.p50_us;
        rows.push(
            Row::info(
                "PG W1",
                &format!("step latency p50, shared mode, {workers} workers"),
                fmt_us(p50),
            )
            .floor(format!("{} (INSERT p50)", fmt_us(latency.p50_us)), ratio)
            .target("≤ 1.5× floor p50", ratio <= 1.5),
        );
        rows.push(
            Row::info(
                "PG W1",
                &format!(
                    "step latency p99, shared mode, {workers} workers ({shared_moved} runs moved)"
                ),
                fmt_us(p99),
            )
            .floor(
                format!("{} (INSERT p99)", fmt_us(latency.p99_us)),
                p99 / latency.p99_us,
            ),
        );
    }

    // Each repetition's ratio pairs a p50 with the floor of the same minutes; the table also
    // keeps the ratio of the medians.
    let paired: Vec<f64> = mixed_p50
        .iter()
        .zip(&mixed_floor_p50)
        .map(|(s, f)| s / f)
        .collect();
    println!(
        "  pg w1 interleaved, median of the per-repetition ratios: {:.3}",
        median(&paired)
    );
    let (mixed, mixed_floor) = (median(&mixed_p50), median(&mixed_floor_p50));
    rows.push(
        Row::info(
            "PG W1",
            "step latency p50, floor interleaved in blocks",
            fmt_us(mixed),
        )
        .floor(
            format!("{} (interleaved INSERT p50)", fmt_us(mixed_floor)),
            mixed / mixed_floor,
        )
        .target("≤ 1.5× floor p50", mixed / mixed_floor <= 1.5),
    );
    if W1_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return rows;
    }

    println!("PostgreSQL floor: batched INSERTs, {reps} repetitions");
    let throughput = floor_throughput(&cluster, reps).await;
    for t in &throughput {
        rows.push(Row::info(
            "PG floor",
            &format!("{} rows per INSERT, throughput", t.batch),
            format!(
                "{:.0} rows/s ({:.0} commits/s)",
                t.values_per_s, t.commits_per_s
            ),
        ));
    }

    println!("W2 on PostgreSQL: 1000 concurrent runs, 3 steps, a signal wait, 1 step");
    rows.extend(w2(&cluster, reps, &throughput).await);
    if workers > 1 {
        println!("W2 on PostgreSQL, shared mode: 1 worker process, then {workers}");
        let (one, one_rows) = w2_workers(&cluster, reps, 1).await;
        let (many, many_rows) = w2_workers(&cluster, reps, workers).await;
        rows.extend(one_rows);
        rows.extend(many_rows);
        let ratio = many.tps / one.tps;
        rows.push(
            Row::info(
                "PG W2",
                &format!("{workers} worker processes against 1 (shared mode)"),
                format!("{ratio:.2}×"),
            )
            .target("≥ 2× when the database is not the bottleneck", ratio >= 2.0),
        );
        // The server runs on the same cores as the workers: twice one worker process's
        // throughput takes twice its CPU, the server's included, unless adding workers made
        // each transition cheaper.
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        rows.push(Row::info(
            "PG W2",
            "cores that twice 1 worker process's throughput takes at its CPU per transition \
             (workers + server)",
            format!(
                "{:.2} of this machine's {cores} ({:.0} µs per transition)",
                2.0 * one.tps * one.cpu_us / 1e6,
                one.cpu_us
            ),
        ));
    }

    println!(
        "W3 on PostgreSQL: {parked_runs} parked runs; clean reopen; kill -9, restart, {signalled} signalled"
    );
    let url = cluster.create_database();
    let u = url.clone();
    rows.extend(
        tokio::task::spawn_blocking(move || w3(&u, reps, parked_runs, signalled))
            .await
            .expect("the W3 thread"),
    );
    if workers > 1 {
        println!(
            "W3 on PostgreSQL, shared mode: {workers} worker processes on the same {parked_runs} parked runs"
        );
        let empty = cluster.create_database();
        rows.extend(
            tokio::task::spawn_blocking(move || {
                w3_shared(&url, &empty, reps, workers, parked_runs, signalled)
            })
            .await
            .expect("the shared W3 thread"),
        );
    }
    rows
}

async fn w2(cluster: &TestCluster, reps: usize, floor: &[Throughput]) -> Vec<Row> {
    use crate::w2::{RUNS, TRANSITIONS_PER_RUN, measure};
    let transitions = (RUNS * TRANSITIONS_PER_RUN) as f64;
    let (mut tps, mut cpt, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..reps {
        let url = cluster.create_database();
        let engines = engines(&url, || Engine::builder().register(fan_in)).await;
        let x = measure(&engines).await;
        shutdown(engines).await;
        let total = (x.to_waiting + x.to_done).as_secs_f64();
        tps.push(transitions / total);
        cpt.push(x.commits as f64 / transitions);
        cpu_us.push(x.cpu_ms * 1e3 / transitions);
        println!(
            "  pg w2 rep {r}: all waiting after {:.0} ms, all done {:.0} ms after the first \
             signal; {:.0} transitions/s, {} commits ({:.1} transitions per commit); \
             engine process CPU {:.0} µs per transition",
            x.to_waiting.as_secs_f64() * 1e3,
            x.to_done.as_secs_f64() * 1e3,
            tps[r],
            x.commits,
            transitions / x.commits.max(1) as f64,
            cpu_us[r]
        );
    }
    let (tps, cpt) = (median(&tps), median(&cpt));
    let per_commit = 1.0 / cpt;
    let near = floor.iter().min_by(|a, b| {
        let d = |t: &Throughput| ((t.batch as f64).ln() - per_commit.ln()).abs();
        d(a).total_cmp(&d(b))
    });
    let row = Row::info(
        "PG W2",
        &format!("durable transitions per second, {WORKERS} worker"),
        format!("{tps:.0}"),
    );
    vec![
        match near {
            Some(t) => row.floor(
                format!("{:.0} rows/s (INSERTs of {})", t.values_per_s, t.batch),
                tps / t.values_per_s,
            ),
            None => row,
        },
        Row::info(
            "PG W2",
            "commits per transition",
            format!("{cpt:.4} ({per_commit:.1} transitions per commit)"),
        ),
        Row::info(
            "PG W2",
            "engine process CPU per transition (the server's not included)",
            format!("{:.0} µs", median(&cpu_us)),
        ),
    ]
}

/// W3 through child processes, as on redb; the floor is a fresh process that connects and
/// reads every armed timer, as the engine's open must.
fn w3(url: &str, reps: usize, parked_runs: u64, signalled: u64) -> Vec<Row> {
    let u = url.to_owned();
    let created = child(&["create".into(), u.clone(), parked_runs.to_string()]);
    println!(
        "  pg w3 created {parked_runs} parked runs in {:.1} s ({:.0} starts/s, {} commits)",
        f(&created, "seconds"),
        parked_runs as f64 / f(&created, "seconds"),
        created["commits"],
    );
    let (mut open_ms, mut per_run_b, mut floor_ms, mut floor_b) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..reps {
        let o = child(&["open".into(), u.clone(), parked_runs.to_string()]);
        open_ms.push(f(&o, "open_ms"));
        per_run_b.push(
            (f(&o, "rss_settled_kib") - f(&o, "rss_before_kib")) * 1024.0 / parked_runs as f64,
        );
        let fl = child(&["pg-floor-open".into(), u.clone()]);
        floor_ms.push(f(&fl, "open_scan_ms"));
        floor_b.push(f(&fl, "rss_grown_kib") * 1024.0 / parked_runs as f64);
        println!(
            "  pg w3 clean open rep {r}: engine ready in {:.1} ms ({:.0} B/run); connect + \
             timer scan {:.1} ms ({:.0} B/run)",
            open_ms[r], per_run_b[r], floor_ms[r], floor_b[r]
        );
    }
    let (mut crash_open_ms, mut finish_ms, mut finish_tps) = (Vec::new(), Vec::new(), Vec::new());
    let cycles = w3_cycles(reps, parked_runs, signalled, 0);
    for r in 0..cycles {
        open_and_kill(&u);
        let from = r as u64 * signalled;
        let s = child(&[
            "signal".into(),
            u.clone(),
            from.to_string(),
            signalled.to_string(),
        ]);
        crash_open_ms.push(f(&s, "open_ms"));
        finish_ms.push(f(&s, "finish_ms"));
        let transitions = (signalled * TRANSITIONS_PER_SIGNAL) as f64;
        finish_tps.push(transitions / (f(&s, "finish_ms") / 1e3));
        println!(
            "  pg w3 crash rep {r}: after kill -9 of the engine's process, engine ready {:.1} ms; \
             {signalled} runs signalled and finished in {:.1} ms ({:.0} transitions/s, {} commits)",
            crash_open_ms[r], finish_ms[r], finish_tps[r], s["commits"]
        );
    }
    let (open, floor) = (median(&open_ms), median(&floor_ms));
    let (mem, mem_floor) = (median(&per_run_b), median(&floor_b));
    vec![
        Row::info(
            "PG W3",
            &format!("create {parked_runs} parked runs (once)"),
            format!(
                "{:.0} starts/s",
                parked_runs as f64 / f(&created, "seconds")
            ),
        ),
        Row::info(
            "PG W3",
            "open and ready, clean exit",
            format!("{open:.0} ms"),
        )
        .floor(
            format!("{floor:.0} ms (connect + timer scan)"),
            open / floor,
        )
        .target("≤ 1 s", open <= 1000.0),
        Row::info(
            "PG W3",
            "resident memory per parked run",
            format!("{mem:.0} B"),
        )
        .floor(
            format!("{mem_floor:.0} B (connect + timer scan)"),
            mem / mem_floor.max(1.0),
        )
        .target("< 1 KiB", mem < 1024.0),
        Row::info(
            "PG W3",
            "open and ready after kill -9 of the engine",
            format!("{:.0} ms", median(&crash_open_ms)),
        )
        .floor(
            format!("{floor:.0} ms (connect + timer scan)"),
            median(&crash_open_ms) / floor,
        ),
        Row::info(
            "PG W3",
            &format!("{signalled} signalled after restart: all finished"),
            format!(
                "{:.0} ms from the first signal ({:.0} transitions/s)",
                median(&finish_ms),
                median(&finish_tps)
            ),
        ),
    ]
}

/// How many slices of `signalled` runs W3 can signal in `reps` repetitions when the first
/// `used` slices are taken.
fn w3_cycles(reps: usize, parked_runs: u64, signalled: u64, used: usize) -> usize {
    let slices = usize::try_from(parked_runs / signalled.max(1)).unwrap_or(usize::MAX);
    reps.min(slices.saturating_sub(used))
}

/// W3 with `n` worker processes in shared mode on the database at `url`, whose parked runs
/// [`w3`] created (and whose first slices it signalled); `empty` is a database without runs,
/// for the workers' memory without parked runs.
fn w3_shared(
    url: &str,
    empty: &str,
    reps: usize,
    n: usize,
    parked_runs: u64,
    signalled: u64,
) -> Vec<Row> {
    let used = w3_cycles(reps, parked_runs, signalled, 0);
    let cycles = w3_cycles(reps, parked_runs, signalled, used);
    let mut ready_ms = Vec::new();
    let mut grown_b = Vec::new();
    let mut crash_ready_ms = Vec::new();
    let mut finish_ms = Vec::new();
    let mut finish_tps = Vec::new();
    for r in 0..reps {
        let (_, base) = w3_open_workers(empty, n);
        let base_kib = base.rss_kib();
        base.kill();
        let (ms, workers) = w3_open_workers(url, n);
        let kib = workers.rss_kib();
        ready_ms.push(ms);
        grown_b.push((kib - base_kib) * 1024.0 / parked_runs as f64);
        workers.kill();
        println!(
            "  pg w3 shared rep {r}: {n} workers ready in {ms:.1} ms, {:.1} MiB resident each \
             ({:.1} MiB on an empty database); all killed with SIGKILL",
            kib / n as f64 / 1024.0,
            base_kib / n as f64 / 1024.0
        );
        if r < cycles {
            let (ms, mut workers) = w3_open_workers(url, n);
            crash_ready_ms.push(ms);
            let from = (used + r) as u64 * signalled;
            let t = Instant::now();
            workers.send_all(&format!("w3signal {from} {signalled}"));
            workers.expect_all("DONE");
            let elapsed = t.elapsed().as_secs_f64() * 1e3;
            finish_ms.push(elapsed);
            let transitions = (signalled * TRANSITIONS_PER_SIGNAL) as f64;
            finish_tps.push(transitions / (elapsed / 1e3));
            let commits = workers.stop();
            println!(
                "  pg w3 shared crash rep {r}: {n} new workers ready in {ms:.1} ms; {signalled} \
                 runs signalled and finished in {elapsed:.1} ms ({:.0} transitions/s, {commits} \
                 commits)",
                finish_tps[r]
            );
        }
    }
    let mut rows = vec![
        Row::info(
            "PG W3",
            &format!("{n} shared workers: open and ready, all of them"),
            format!("{:.0} ms", median(&ready_ms)),
        )
        .target("≤ 1 s", median(&ready_ms) <= 1000.0),
        Row::info(
            "PG W3",
            &format!("{n} shared workers: resident memory per parked run, all workers together"),
            format!("{:.0} B", median(&grown_b)),
        )
        .target("< 1 KiB", median(&grown_b) < 1024.0),
    ];
    if !crash_ready_ms.is_empty() {
        rows.push(Row::info(
            "PG W3",
            &format!("{n} shared workers: ready after kill -9 of all of them"),
            format!("{:.0} ms", median(&crash_ready_ms)),
        ));
        rows.push(Row::info(
            "PG W3",
            &format!("{n} shared workers: {signalled} signalled after restart, all finished"),
            format!(
                "{:.0} ms from the first signal ({:.0} transitions/s)",
                median(&finish_ms),
                median(&finish_tps)
            ),
        ));
    }
    rows
}

/// Starts `n` shared workers on `url` and times them until every one is ready.
fn w3_open_workers(url: &str, n: usize) -> (f64, Workers) {
    let t = Instant::now();
    let workers = Workers::spawn(url, 0, n, n);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // The timer task pages in what is due soon in the background; let it settle.
    std::thread::sleep(Duration::from_millis(500));
    (ms, workers)
}

/// The floor of W3's open, in a fresh child process: connect, then read every armed timer the
/// way the store's `timers` read does.
pub(crate) fn floor_open(url: &str) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let rss_before = stats::rss_kib();
        let t = Instant::now();
        let client = open_client(url).await;
        let rows = client
            .query(
                "SELECT timer_ms, run_id, seq, workflow FROM runs WHERE timer_ms <= $1
                 ORDER BY timer_ms, run_id",
                &[&i64::MAX],
            )
            .await
            .expect("the timers");
        let mut n = 0_u64;
        for row in &rows {
            std::hint::black_box((
                row.get::<_, i64>(0),
                row.get::<_, &str>(1),
                row.get::<_, i64>(2),
                row.get::<_, &str>(3),
            ));
            n += 1;
        }
        let open_scan_ms = t.elapsed().as_secs_f64() * 1e3;
        let rss_grown_kib = stats::rss_kib().saturating_sub(rss_before);
        json!({ "open_scan_ms": open_scan_ms, "rss_grown_kib": rss_grown_kib, "timers": n })
    })
}

// ---------------------------------------------------------------------------------------------
// Several workers: one process per worker, each an engine in shared mode on one database.

/// The lease settings of every shared-mode engine of the bench. The poll interval is on no
/// measured path when every worker starts and signals its own runs (it only paces the search
/// for runs nobody holds), so it is left at a quarter second: shorter polls cost server CPU
/// that the workers' commits compete for on this machine.
fn lease_settings() -> LeaseSettings {
    LeaseSettings::new(Duration::from_secs(10)).poll_every(Duration::from_millis(250))
}

/// CPU time (user + system) of process `pid`, with that of its reaped children when
/// `reaped` is set, in milliseconds; from `/proc/PID/stat` (USER_HZ ticks, 100 per second).
fn proc_cpu_ms(pid: u32, reaped: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17: the 12th-15th after the name.
    let at = |i: usize| fields.get(i).copied().unwrap_or(0.0);
    let own = at(11) + at(12);
    (if reaped { own + at(13) + at(14) } else { own }) * 10.0
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU the bench's PostgreSQL server has used so far, in milliseconds: the postmaster's
/// own and its reaped children's, plus every live child's (its backends, the WAL writer, the
/// checkpointer...). Other clusters on the machine are not counted: only this postmaster's
/// children are.
fn server_cpu_ms(cluster: &TestCluster) -> f64 {
    let pid_file = cluster.dir().join("data/postmaster.pid");
    let Some(postmaster) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
    else {
        return 0.0;
    };
    let mut ms = proc_cpu_ms(postmaster, true);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if parent_of(pid) == Some(postmaster) {
                ms += proc_cpu_ms(pid, false);
            }
        }
    }
    ms
}

/// The server's own counters for the bench's database: transactions committed (every
/// statement outside a transaction block counts: reads, claims, renewals as well as the
/// engine's commits) and WAL flushes (`pg_stat_wal.wal_sync`, the fsyncs commits waited for).
/// The statistics reach these views up to a second late, so the caller lets the server idle
/// first.
#[derive(Clone, Copy, Default)]
struct ServerCounters {
    xacts: i64,
    wal_syncs: i64,
}

async fn server_counters(client: &Client) -> ServerCounters {
    let row = client
        .query_one(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                    (SELECT wal_sync FROM pg_stat_wal)",
            &[],
        )
        .await
        .expect("the server's statistics");
    ServerCounters {
        xacts: row.get(0),
        wal_syncs: row.get(1),
    }
}

/// Worker processes of one repetition, spoken to line by line on their standard input and
/// output (see [`worker_main`]).
struct Workers {
    children: Vec<(Child, ChildStdin, Lines<BufReader<ChildStdout>>)>,
}

impl Workers {
    /// Starts `n` workers on the database at `url`, `index`es `first..first + n` of `of`, and
    /// waits until each has opened its engine.
    fn spawn(url: &str, first: usize, n: usize, of: usize) -> Workers {
        let mut children = Vec::with_capacity(n);
        for k in first..first + n {
            let mut child = Command::new(std::env::current_exe().expect("own path"))
                .args(["__pg_worker", url, &k.to_string(), &of.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn a worker process");
            let stdin = child.stdin.take().expect("piped");
            let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
            children.push((child, stdin, lines));
        }
        let mut workers = Workers { children };
        workers.expect_all("READY");
        workers
    }

    fn send_all(&mut self, command: &str) {
        for (_, stdin, _) in &mut self.children {
            writeln!(stdin, "{command}").expect("a worker's stdin");
            stdin.flush().expect("a worker's stdin");
        }
    }

    /// Waits for `word` from every worker, returning what followed it on each one's line.
    fn expect_all(&mut self, word: &str) -> Vec<String> {
        self.children
            .iter_mut()
            .map(|(_, _, lines)| {
                loop {
                    let line = lines
                        .next()
                        .expect("a worker exited early")
                        .expect("a worker's stdout");
                    if let Some(rest) = line.strip_prefix(word) {
                        break rest.trim().to_owned();
                    }
                }
            })
            .collect()
    }

    /// The workers' resident memory together, in KiB.
    fn rss_kib(&self) -> f64 {
        self.children
            .iter()
            .map(|(c, _, _)| stats::rss_kib_of(c.id()) as f64)
            .sum()
    }

    /// Kills every worker with SIGKILL (no shutdown runs) and reaps it.
    fn kill(self) {
        for (mut child, stdin, _) in self.children {
            drop(stdin);
            child.kill().expect("SIGKILL a worker");
            child.wait().expect("reap a worker");
        }
    }

    fn cpu_ms(&self) -> f64 {
        self.children
            .iter()
            .map(|(c, _, _)| proc_cpu_ms(c.id(), false))
            .sum()
    }

    /// Shuts every worker down cleanly; the commits each made.
    fn stop(mut self) -> u64 {
        self.send_all("stop");
        let commits = self
            .expect_all("STOPPED")
            .iter()
            .map(|c| c.parse::<u64>().expect("a commit count"))
            .sum();
        for (mut child, stdin, _) in self.children {
            drop(stdin);
            child.wait().expect("reap a worker");
        }
        commits
    }
}

/// The worker side, `__pg_worker URL K N`: an engine in shared mode that registers the bench's
/// workflows, driven by lines on stdin. `start` starts the W2 runs `i` with `i % N == K`;
/// `signal` signals them and waits for their results (`DONE`); `stop` shuts the engine down
/// (`STOPPED <commits>`). Other workers' runs are driven here too whenever this engine claims
/// them.
pub(crate) fn worker_main(args: &[String]) {
    let url = args.first().expect("a URL").clone();
    let k: u64 = args.get(1).and_then(|s| s.parse().ok()).expect("K");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).expect("N");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let engine = shared_engine(&url, &format!("bench-worker-{k}")).await;
        println!("READY");
        // tokio's stdin is not among the features the workspace enables; a thread does it.
        let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mine: Vec<u64> = (0..crate::w2::RUNS).filter(|i| i % n == k).collect();
        let mut handles = Vec::new();
        while let Some(line) = commands.recv().await {
            match line.trim() {
                "start" => {
                    let starts: Vec<_> = mine
                        .iter()
                        .map(|i| {
                            let engine = engine.clone();
                            let id = format!("w2-{i}");
                            tokio::spawn(async move {
                                engine.start(fan_in, id, ()).await.expect("start")
                            })
                        })
                        .collect();
                    for s in starts {
                        handles.push(s.await.expect("start task"));
                    }
                    println!("STARTED");
                }
                "signal" => {
                    let finishes: Vec<_> = std::mem::take(&mut handles)
                        .into_iter()
                        .map(|run| {
                            let engine = engine.clone();
                            tokio::spawn(async move {
                                let outcome = engine
                                    .signal(run.run_id(), "go", 1_u64)
                                    .await
                                    .expect("signal");
                                let out = run.result().await.expect("result").expect("ok");
                                (out, outcome == workflow_runtime::SignalOutcome::Buffered)
                            })
                        })
                        .collect();
                    let mut buffered = 0;
                    for f in finishes {
                        let (out, was_buffered) = f.await.expect("finish task");
                        assert_eq!(out, 1);
                        buffered += usize::from(was_buffered);
                    }
                    // A buffered signal waits for a claim round to be delivered.
                    eprintln!("  worker {k}: {buffered} of its signals were buffered");
                    println!("DONE");
                }
                "stop" => break,
                other if other.starts_with("w3signal ") => {
                    let mut words = other
                        .split_whitespace()
                        .skip(1)
                        .map(|w| w.parse::<u64>().expect("a number after w3signal"));
                    let (from, count) = (words.next().expect("FROM"), words.next().expect("COUNT"));
                    let tasks: Vec<_> = (from..from + count)
                        .filter(|i| i % n == k)
                        .map(|i| {
                            let engine = engine.clone();
                            tokio::spawn(async move {
                                let id = crate::w3::run_id(i);
                                engine.signal(&id, "go", 7_u64).await.expect("signal");
                                let run = engine.handle(parked, id).expect("handle");
                                run.result().await.expect("result").expect("ok")
                            })
                        })
                        .collect();
                    for task in tasks {
                        assert_eq!(task.await.expect("signal task"), 7);
                    }
                    println!("DONE");
                }
                other => panic!("unknown worker command `{other}`"),
            }
        }
        let commits = engine.commit_count();
        engine.shutdown().await;
        println!("STOPPED {commits}");
    });
}

async fn shared_engine(url: &str, owner: &str) -> Engine {
    let store = PgStore::open_async(url)
        .await
        .expect("the PostgreSQL store opens");
    Engine::builder()
        .register(fan_in)
        .register(sequential)
        .register(parked)
        .shared(lease_settings().owner(owner))
        .open_store(store)
        .await
        .expect("open")
}

/// One repetition of W2 on `n` worker processes; see [`w2_workers`].
struct WorkersRep {
    to_waiting: Duration,
    to_done: Duration,
    commits: u64,
    workers_cpu_ms: f64,
    server_cpu_ms: f64,
    bench_cpu_ms: f64,
    server: ServerCounters,
}

async fn w2_workers_rep(cluster: &TestCluster, n: usize) -> WorkersRep {
    use crate::w2::RUNS;
    let url = cluster.create_database();
    let u = url.clone();
    let mut workers = tokio::task::spawn_blocking(move || Workers::spawn(&u, 0, n, n))
        .await
        .expect("the spawn thread");
    let monitor = open_client(&url).await;
    let statements = STATEMENTS.load(std::sync::atomic::Ordering::Relaxed);
    if statements {
        reset_statements(&monitor).await;
    }
    let counters_before = server_counters(&monitor).await;
    let (cpu0, server0, bench0) = (workers.cpu_ms(), server_cpu_ms(cluster), cpu_ms());
    let t0 = Instant::now();
    workers.send_all("start");
    // Every run is durably waiting once its wait column is set; the runs of one worker may be
    // driven by another, so the database is asked rather than the workers.
    loop {
        let waiting: i64 = monitor
            .query_one("SELECT count(*) FROM runs WHERE wait IS NOT NULL", &[])
            .await
            .expect("count the waits")
            .get(0);
        if waiting as u64 >= RUNS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let to_waiting = t0.elapsed();
    let mut workers = tokio::task::spawn_blocking(move || {
        workers.expect_all("STARTED");
        workers
    })
    .await
    .expect("the workers thread");
    let t1 = Instant::now();
    workers.send_all("signal");
    let workers = tokio::task::spawn_blocking(move || {
        workers.expect_all("DONE");
        workers
    })
    .await
    .expect("the workers thread");
    let to_done = t1.elapsed();
    let (cpu1, server1, bench1) = (workers.cpu_ms(), server_cpu_ms(cluster), cpu_ms());
    // The statistics views lag by up to a second; idle workers poll a few times meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counters_after = server_counters(&monitor).await;
    if statements {
        let workers = format!("W2, {n} worker process(es)");
        print_statements(&monitor, &workers).await;
    }
    let commits = tokio::task::spawn_blocking(move || workers.stop())
        .await
        .expect("the workers thread");
    WorkersRep {
        to_waiting,
        to_done,
        commits,
        workers_cpu_ms: cpu1 - cpu0,
        server_cpu_ms: server1 - server0,
        bench_cpu_ms: bench1 - bench0,
        server: ServerCounters {
            xacts: counters_after.xacts - counters_before.xacts,
            wal_syncs: counters_after.wal_syncs - counters_before.wal_syncs,
        },
    }
}

/// The statements the workers ran most often during the repetition, with their time in the
/// server (execution only: a commit's WAL flush is not in it).
async fn print_statements(monitor: &Client, what: &str) {
    let rows = monitor
        .query(
            "SELECT calls, total_exec_time, rows, query FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat%'
             ORDER BY calls DESC LIMIT 16",
            &[],
        )
        .await
        .expect("pg_stat_statements");
    println!("    statements, {what}: calls, ms executing, µs per call, rows, statement");
    for row in rows {
        let query: String = row.get(3);
        let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let (calls, ms) = (row.get::<_, i64>(0), row.get::<_, f64>(1));
        println!(
            "    {calls:>7} {ms:>9.1} {:>6.1} {:>7} {}",
            ms * 1e3 / calls.max(1) as f64,
            row.get::<_, i64>(2),
            query.chars().take(110).collect::<String>()
        );
    }
}

/// W2 on `n` worker processes in shared mode, each starting and signalling its share of the
/// runs (round-robin, as the in-process W2 spreads them over its engines) and driving whatever
/// it holds; the bench process only watches the database. Returns the median transitions per
/// second, the CPU per transition and the rows.
async fn w2_workers(cluster: &TestCluster, reps: usize, n: usize) -> (W2Workers, Vec<Row>) {
    use crate::w2::{RUNS, TRANSITIONS_PER_RUN};
    let transitions = (RUNS * TRANSITIONS_PER_RUN) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()) as f64;
    let (mut tps, mut cpt, mut worker_us, mut server_us, mut xpt, mut spt, mut busy) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for r in 0..reps {
        let x = w2_workers_rep(cluster, n).await;
        let total = (x.to_waiting + x.to_done).as_secs_f64();
        tps.push(transitions / total);
        cpt.push(x.commits as f64 / transitions);
        worker_us.push(x.workers_cpu_ms * 1e3 / transitions);
        server_us.push(x.server_cpu_ms * 1e3 / transitions);
        xpt.push(x.server.xacts as f64 / transitions);
        spt.push(x.server.wal_syncs as f64 / transitions);
        let cpu = x.workers_cpu_ms + x.server_cpu_ms + x.bench_cpu_ms;
        busy.push(cpu / (total * 1e3 * cores));
        println!(
            "  pg w2 {n} worker process(es) rep {r}: waiting after {:.0} ms, done {:.0} ms \
             later; {:.0} transitions/s; {} engine commits ({:.1} transitions per commit); \
             CPU per transition: workers {:.0} µs, server {:.0} µs, bench {:.0} µs; \
             server transactions {} ({:.2} per transition), WAL flushes {} ({:.3} per \
             transition); {:.0} % of {cores} cores busy with this run",
            x.to_waiting.as_secs_f64() * 1e3,
            x.to_done.as_secs_f64() * 1e3,
            tps[r],
            x.commits,
            transitions / x.commits.max(1) as f64,
            worker_us[r],
            server_us[r],
            x.bench_cpu_ms * 1e3 / transitions,
            x.server.xacts,
            xpt[r],
            x.server.wal_syncs,
            spt[r],
            busy[r] * 100.0
        );
    }
    let t = median(&tps);
    let label = |what: &str| {
        format!(
            "{what}, {n} worker process{}",
            if n == 1 { "" } else { "es" }
        )
    };
    let rows = vec![
        Row::info(
            "PG W2",
            &label("durable transitions per second"),
            format!("{t:.0}"),
        ),
        Row::info(
            "PG W2",
            &label("engine commits per transition"),
            format!("{:.4}", median(&cpt)),
        ),
        Row::info(
            "PG W2",
            &label("CPU per transition: workers / server"),
            format!(
                "{:.0} µs / {:.0} µs",
                median(&worker_us),
                median(&server_us)
            ),
        ),
        Row::info(
            "PG W2",
            &label("server transactions / WAL flushes per transition"),
            format!("{:.2} / {:.3}", median(&xpt), median(&spt)),
        ),
        Row::info(
            "PG W2",
            &label("share of the machine's cores busy with the run"),
            format!("{:.0} %", median(&busy) * 100.0),
        ),
    ];
    let cpu_us = median(&worker_us) + median(&server_us);
    (W2Workers { tps: t, cpu_us }, rows)
}

/// What [`w2_workers`] measured: the median transitions per second and CPU per transition,
/// the workers' and the server's together (µs).
struct W2Workers {
    tps: f64,
    cpu_us: f64,
}

/// W1 on an engine in shared mode in this process while `n - 1` worker processes poll the
/// same database: the latency of each step, in microseconds, and how many runs another worker
/// took over part of (their steps are not counted: their ticks were in another process).
///
/// Also answers this process's voluntary context switches during the runs, counted before the
/// engine shuts down (an exited thread's count leaves `/proc`).
async fn w1_shared(url: &str, n: usize) -> (Vec<f64>, usize, u64) {
    let u = url.to_owned();
    let others = tokio::task::spawn_blocking(move || Workers::spawn(&u, 1, n - 1, n))
        .await
        .expect("the spawn thread");
    let engine = shared_engine(url, "bench-worker-0").await;
    let monitor = statements_reset(url).await;
    let (mut latencies, mut moved) = (Vec::new(), 0);
    let switches = voluntary_switches();
    for r in 0..W1_RUNS {
        ticks().lock().expect("ticks").clear();
        let run = engine
            .start(sequential, format!("w1-{r}"), W1_STEPS)
            .await
            .expect("start");
        assert_eq!(run.result().await.expect("result"), Ok(W1_STEPS));
        let done = Instant::now();
        let mut marks = std::mem::take(&mut *ticks().lock().expect("ticks"));
        if marks.len() != W1_STEPS as usize {
            moved += 1;
            continue;
        }
        marks.push(done);
        latencies.extend(marks.windows(2).map(|w| stats::us(w[1] - w[0])));
    }
    let switches = voluntary_switches().saturating_sub(switches);
    if let Some(monitor) = monitor {
        print_statements(&monitor, &format!("W1, shared mode, {n} workers")).await;
    }
    engine.shutdown().await;
    tokio::task::spawn_blocking(move || others.stop())
        .await
        .expect("the workers thread");
    (latencies, moved, switches)
}
