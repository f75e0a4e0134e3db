//! W1–W3 on PostgreSQL ([`PgStore`]), each beside PostgreSQL's own floor measured in the same
//! run: one small-row `INSERT` committed with `synchronous_commit = on` (the setting the store
//! requires), alone for latency and in batches for throughput.
//!
//! The server is a throwaway cluster started by [`TestCluster`] (the repository's
//! `scripts/pg-test-cluster`: `initdb` in the temporary directory, so on the disk the redb
//! figures use, default settings but `max_connections`, `fsync` on) on 127.0.0.1; the bench
//! talks to it over TCP loopback. Every repetition gets a fresh database.
//!
//! # Workers
//!
//! Every workload runs on [`WORKERS`] engine(s), each with its own [`PgStore`] (its own
//! connections). Today that is one: an engine claims nothing and writes with
//! `Fence::Exclusive`, so two engines on one database would drive the same runs. When the
//! engine's shared mode lands (several workers claiming runs under leases), [`workers`] is the
//! one place to change: open each engine in that mode, take the count from a `--workers`
//! option, and W2 (which already spreads its starts and signals round-robin over the engines,
//! see [`crate::w2::measure`]) measures three workers against one. Workers in one process
//! share its cores, as three processes on this 2-core machine would; W3's children already
//! run one engine per process.

use std::time::Instant;

use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::{Engine, EngineBuilder};

use crate::floor::{Latency, Throughput};
use crate::flows::{fan_in, sequential};
use crate::stats::{self, Row, fmt_us, median, percentile};
use crate::w3::{TRANSITIONS_PER_SIGNAL, child, f, open_and_kill};

/// Engines per workload; see the module docs for the step to three.
pub(crate) const WORKERS: usize = 1;

/// "One small row": as the redb floor's value, about the size of a short trace event.
const VALUE: [u8; 100] = [b'x'; 100];
const WARMUP: i64 = 20;
const LATENCY_COMMITS: i64 = 1000;
/// Rows per commit, with how many commits each repetition makes (as the redb floor).
const BATCHES: [(i64, i64); 4] = [(1, 500), (10, 300), (100, 100), (1000, 20)];

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the bench's PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(
            "SET synchronous_commit = on;
             CREATE TABLE IF NOT EXISTS floor_rows (id bigint PRIMARY KEY, v bytea NOT NULL)",
        )
        .await
        .expect("the floor's table");
    client
}

/// Times `LATENCY_COMMITS` single-row inserts, each its own transaction; microseconds.
async fn floor_latency_rep(url: &str) -> Vec<f64> {
    let client = connect(url).await;
    let insert = client
        .prepare("INSERT INTO floor_rows (id, v) VALUES ($1, $2)")
        .await
        .expect("prepare");
    let value = VALUE.as_slice();
    for k in 0..WARMUP {
        client
            .execute(&insert, &[&k, &value])
            .await
            .expect("insert");
    }
    let mut out = Vec::with_capacity(LATENCY_COMMITS as usize);
    for k in WARMUP..WARMUP + LATENCY_COMMITS {
        let t = Instant::now();
        client
            .execute(&insert, &[&k, &value])
            .await
            .expect("insert");
        out.push(stats::us(t.elapsed()));
    }
    out
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
async fn workers(url: &str, builder: impl Fn() -> EngineBuilder) -> Vec<Engine> {
    let mut engines = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let url = url.to_owned();
        let store = tokio::task::spawn_blocking(move || PgStore::open(&url))
            .await
            .expect("the open thread")
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

/// Runs the floor, W1, W2 and W3 on a throwaway PostgreSQL server.
pub(crate) async fn run(reps: usize, parked_runs: u64, signalled: u64) -> Vec<Row> {
    let cluster =
        tokio::task::spawn_blocking(|| TestCluster::start().expect("a PostgreSQL cluster"))
            .await
            .expect("the cluster thread");
    println!("PostgreSQL: {} ({WORKERS} worker)", cluster.url());

    let mut rows = Vec::new();
    let mut floor_p50 = Vec::new();
    let mut floor_p99 = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    println!("W1 on PostgreSQL: 200 runs one after another, 10 no-op steps each");
    for r in 0..reps {
        let url = cluster.create_database();
        let floor = floor_latency_rep(&url).await;
        floor_p50.push(percentile(&floor, 50.0));
        floor_p99.push(percentile(&floor, 99.0));
        let engines = workers(&url, || Engine::builder().register(sequential)).await;
        let l = crate::w1::step_latencies(&engines[0]).await;
        shutdown(engines).await;
        p50.push(percentile(&l, 50.0));
        p99.push(percentile(&l, 99.0));
        println!(
            "  pg w1 rep {r}: {} steps, p50 {} p99 {}; INSERT floor just before: p50 {} p99 {}",
            l.len(),
            fmt_us(p50[r]),
            fmt_us(p99[r]),
            fmt_us(floor_p50[r]),
            fmt_us(floor_p99[r])
        );
    }
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

    println!(
        "W3 on PostgreSQL: {parked_runs} parked runs; clean reopen; kill -9, restart, {signalled} signalled"
    );
    let url = cluster.create_database();
    rows.extend(
        tokio::task::spawn_blocking(move || w3(&url, reps, parked_runs, signalled))
            .await
            .expect("the W3 thread"),
    );
    rows
}

async fn w2(cluster: &TestCluster, reps: usize, floor: &[Throughput]) -> Vec<Row> {
    use crate::w2::{RUNS, TRANSITIONS_PER_RUN, measure};
    let transitions = (RUNS * TRANSITIONS_PER_RUN) as f64;
    let (mut tps, mut cpt, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..reps {
        let url = cluster.create_database();
        let engines = workers(&url, || Engine::builder().register(fan_in)).await;
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
    let cycles = reps.min(usize::try_from(parked_runs / signalled.max(1)).unwrap_or(usize::MAX));
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
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(connection);
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
