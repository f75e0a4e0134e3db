//! W3, recovery: many runs parked on a signal wait, a process that exits, a process that opens
//! the store again; then a process killed with SIGKILL and one that signals a slice of the runs.
//!
//! Every measurement that involves opening the store runs in a fresh child process (this same
//! binary, `__child ...`), so that its resident memory starts from nothing and the kill is real.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use workflow_runtime::Engine;

use crate::floor::Throughput;
use crate::flows::parked;
use crate::stats::{Row, hwm_kib, median, rss_kib};

/// The engine's index of deadlines (see `workflow-runtime/src/store.rs`): the floor scans it
/// the way the engine must at open.
const TIMERS: TableDefinition<(u64, &str), (u64, &str)> = TableDefinition::new("timers");
/// How many starts are in flight while the parked runs are created.
const CREATE_CONCURRENCY: usize = 1000;
/// Durable transitions per signalled run: the signal (up to the step), the step's result.
pub(crate) const TRANSITIONS_PER_SIGNAL: u64 = 2;

pub(crate) fn run_id(i: u64) -> String {
    format!("parked-{i:07}")
}

/// Runs `bench __child <args>` and returns the JSON it printed after `RESULT `.
pub(crate) fn child(args: &[String]) -> Value {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .arg("__child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {args:?} printed no result: {stdout}"));
    serde_json::from_str(line).expect("child result is JSON")
}

/// Starts a child that opens the store and says `READY`, then kills it with SIGKILL.
pub(crate) fn open_and_kill(spec: &str) {
    let mut c = Command::new(std::env::current_exe().expect("own path"))
        .args(["__child", "serve", spec])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = c.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        if line.expect("child output") == "READY" {
            break;
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no shutdown, no close of the file.
    c.kill().expect("kill -9");
    c.wait().expect("reap");
}

pub(crate) fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no `{key}` in {v}"))
}

/// Runs W3: `parked` runs, `reps` clean opens, `reps` crash cycles each signalling `signalled`
/// runs.
pub(crate) fn run(
    dir: &Path,
    reps: usize,
    parked_runs: u64,
    signalled: u64,
    floor: &[Throughput],
) -> Vec<Row> {
    let path = dir.join("w3.redb");
    let p = path.display().to_string();
    let created = child(&["create".into(), p.clone(), parked_runs.to_string()]);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "  w3 created {parked_runs} parked runs in {:.1} s ({:.0} starts/s, {} commits); file {:.1} MiB",
        f(&created, "seconds"),
        parked_runs as f64 / f(&created, "seconds"),
        created["commits"],
        size as f64 / 1048576.0
    );

    let mut open_ms = Vec::new();
    let mut per_run_b = Vec::new();
    let mut floor_open_ms = Vec::new();
    let mut floor_scan_ms = Vec::new();
    let mut floor_per_run_b = Vec::new();
    for r in 0..reps {
        let o = child(&["open".into(), p.clone(), parked_runs.to_string()]);
        open_ms.push(f(&o, "open_ms"));
        let grown = f(&o, "rss_settled_kib") - f(&o, "rss_before_kib");
        per_run_b.push(grown * 1024.0 / parked_runs as f64);
        let fl = child(&["floor-open".into(), p.clone()]);
        floor_open_ms.push(f(&fl, "open_ms"));
        floor_scan_ms.push(f(&fl, "open_scan_ms"));
        floor_per_run_b.push(f(&fl, "rss_grown_kib") * 1024.0 / parked_runs as f64);
        println!(
            "  w3 clean open rep {r}: engine ready in {:.1} ms (RSS {} → {} KiB at return, {} KiB \
             settled: {:.0} B/run); redb open {:.1} ms, open + timer scan {:.1} ms ({:.0} B/run)",
            open_ms[r],
            o["rss_before_kib"],
            o["rss_open_kib"],
            o["rss_settled_kib"],
            per_run_b[r],
            floor_open_ms[r],
            floor_scan_ms[r],
            floor_per_run_b[r]
        );
    }

    let mut crash_open_ms = Vec::new();
    let mut crash_floor_open_ms = Vec::new();
    let mut crash_floor_commit_ms = Vec::new();
    let mut crash_floor_scan_ms = Vec::new();
    let mut finish_ms = Vec::new();
    let mut restart_to_done_ms = Vec::new();
    let mut finish_tps = Vec::new();
    let mut finish_cpt = Vec::new();
    let cycles = reps.min(usize::try_from(parked_runs / signalled.max(1)).unwrap_or(usize::MAX));
    for r in 0..cycles {
        // The floor first: redb alone opening a file whose writer was killed.
        open_and_kill(&p);
        let fl = child(&["floor-open".into(), p.clone()]);
        crash_floor_open_ms.push(f(&fl, "open_ms"));
        crash_floor_scan_ms.push(f(&fl, "open_scan_ms"));
        crash_floor_commit_ms.push(f(&fl, "first_commit_ms"));
        open_and_kill(&p);
        let from = r as u64 * signalled;
        let s = child(&[
            "signal".into(),
            p.clone(),
            from.to_string(),
            signalled.to_string(),
        ]);
        crash_open_ms.push(f(&s, "open_ms"));
        finish_ms.push(f(&s, "finish_ms"));
        restart_to_done_ms.push(f(&s, "open_ms") + f(&s, "finish_ms"));
        let transitions = (signalled * TRANSITIONS_PER_SIGNAL) as f64;
        finish_tps.push(transitions / (f(&s, "finish_ms") / 1e3));
        finish_cpt.push(f(&s, "commits") / transitions);
        println!(
            "  w3 crash rep {r}: after kill -9, redb open {:.1} ms (open + timer scan {:.1} ms, \
             then its first commit {:.1} ms), engine ready {:.1} ms; {signalled} runs signalled \
             and finished in {:.1} ms ({:.0} transitions/s, {} commits)",
            crash_floor_open_ms[r],
            crash_floor_scan_ms[r],
            crash_floor_commit_ms[r],
            crash_open_ms[r],
            finish_ms[r],
            finish_tps[r],
            s["commits"]
        );
    }

    let open = median(&open_ms);
    let floor_scan = median(&floor_scan_ms);
    let mem = median(&per_run_b);
    let crash_open = median(&crash_open_ms);
    let crash_floor = median(&crash_floor_scan_ms);
    let tps = median(&finish_tps);
    let mut rows = vec![
        Row::info(
            "W3",
            &format!("create {parked_runs} parked runs (once)"),
            format!(
                "{:.0} starts/s",
                parked_runs as f64 / f(&created, "seconds")
            ),
        ),
        Row::info("W3", "open and ready, clean exit", format!("{open:.0} ms"))
            .floor(
                format!("{floor_scan:.0} ms (redb open + timer scan)"),
                open / floor_scan,
            )
            .target("≤ 1 s", open <= 1000.0),
        Row::info(
            "W3",
            "resident memory per parked run",
            format!("{mem:.0} B"),
        )
        .floor(
            format!("{:.0} B (redb open + timer scan)", median(&floor_per_run_b)),
            mem / median(&floor_per_run_b).max(1.0),
        )
        .target("< 1 KiB", mem < 1024.0),
        Row::info(
            "W3",
            "open and ready after kill -9",
            format!("{crash_open:.0} ms"),
        )
        .floor(
            format!("{crash_floor:.0} ms (redb open after kill -9 + timer scan)"),
            crash_open / crash_floor,
        ),
    ];
    let fin = Row::info(
        "W3",
        &format!("{signalled} signalled after restart: all finished"),
        format!(
            "{:.0} ms from the first signal, {:.0} ms from the restart ({tps:.0} transitions/s, \
             {:.3} commits/transition)",
            median(&finish_ms),
            median(&restart_to_done_ms),
            median(&finish_cpt)
        ),
    );
    let per_commit = 1.0 / median(&finish_cpt);
    let near = floor.iter().min_by(|a, b| {
        let d = |t: &Throughput| ((t.batch as f64).ln() - per_commit.ln()).abs();
        d(a).total_cmp(&d(b))
    });
    rows.push(match near {
        Some(t) => fin.floor(
            format!("{:.0} values/s (batches of {})", t.values_per_s, t.batch),
            tps / t.values_per_s,
        ),
        None => fin,
    });
    rows
}

/// W3 at several sizes (`--scales`): for each, a store of that many parked runs, then `reps`
/// clean opens, each in a fresh child: time to open and ready, resident memory (`VmRSS`) before
/// the open, when it returned and 500 ms later, and the peak (`VmHWM`), beside redb alone
/// opening the same file and scanning its timers. Flat memory shows as the same growth at every
/// size.
pub(crate) fn scale(dir: &Path, reps: usize, sizes: &[u64]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &n in sizes {
        let path = dir.join(format!("w3-scale-{n}.redb"));
        let p = path.display().to_string();
        let created = child(&["create".into(), p.clone(), n.to_string()]);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "  w3 scale {n}: created in {:.1} s ({:.0} starts/s); file {:.1} MiB",
            f(&created, "seconds"),
            n as f64 / f(&created, "seconds"),
            size as f64 / 1048576.0
        );
        let (mut open_ms, mut grown, mut hwm, mut settled) = (vec![], vec![], vec![], vec![]);
        let (mut floor_ms, mut floor_grown) = (vec![], vec![]);
        for r in 0..reps {
            let o = child(&["open".into(), p.clone(), n.to_string()]);
            open_ms.push(f(&o, "open_ms"));
            grown.push(f(&o, "rss_settled_kib") - f(&o, "rss_before_kib"));
            settled.push(f(&o, "rss_settled_kib"));
            hwm.push(f(&o, "hwm_kib"));
            let fl = child(&["floor-open".into(), p.clone()]);
            floor_ms.push(f(&fl, "open_scan_ms"));
            floor_grown.push(f(&fl, "rss_grown_kib"));
            println!(
                "  w3 scale {n} rep {r}: engine ready in {:.1} ms; RSS {} KiB before, {} at \
                 return, {} settled (+{:.0} KiB), peak {} KiB; redb open + timer scan {:.1} ms \
                 (+{:.0} KiB)",
                open_ms[r],
                o["rss_before_kib"],
                o["rss_open_kib"],
                o["rss_settled_kib"],
                grown[r],
                o["hwm_kib"],
                floor_ms[r],
                floor_grown[r],
            );
        }
        let open = median(&open_ms);
        rows.push(
            Row::info(
                "W3",
                &format!("{n} parked: open and ready"),
                format!("{open:.0} ms"),
            )
            .floor(
                format!("{:.0} ms (redb open + timer scan)", median(&floor_ms)),
                open / median(&floor_ms).max(0.001),
            )
            .target("≤ 1 s", open <= 1000.0),
        );
        rows.push(
            Row::info(
                "W3",
                &format!("{n} parked: resident memory grown by the open (settled; peak)"),
                format!(
                    "{:.0} KiB ({:.1} B per parked run); {:.0} KiB settled, peak {:.0} KiB",
                    median(&grown),
                    median(&grown) * 1024.0 / n as f64,
                    median(&settled),
                    median(&hwm)
                ),
            )
            .floor(
                format!("{:.0} KiB (redb open + timer scan)", median(&floor_grown)),
                median(&grown) / median(&floor_grown).max(1.0),
            ),
        );
        let _ = std::fs::remove_file(&path);
    }
    rows
}

/// The child side: `create STORE N`, `open STORE N`, `floor-open PATH`, `serve STORE`,
/// `signal STORE FROM COUNT`, where STORE is a redb file's path or a `postgres://` URL (see
/// [`open_engine`]); `pg-floor-open URL` is PostgreSQL's floor. Prints `RESULT {json}`.
pub(crate) fn child_main(args: &[String]) {
    let mode = args.first().map_or("", String::as_str);
    let spec = args.get(1).expect("a store path or URL").as_str();
    let path = PathBuf::from(spec);
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} of {args:?} must be a number"))
    };
    let result = if mode == "floor-open" {
        floor_open(&path)
    } else if mode == "pg-floor-open" {
        crate::pg::floor_open(spec)
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            match mode {
                "create" => create(spec, num(2)).await,
                "open" => open(spec, num(2)).await,
                "serve" => serve(spec).await,
                "signal" => signal(spec, num(2), num(3)).await,
                other => panic!("unknown child mode `{other}`"),
            }
        })
    };
    println!("RESULT {result}");
}

/// An engine that registers [`parked`] on the store `spec` names: a PostgreSQL database for a
/// `postgres://` URL, else a redb file at that path.
pub(crate) async fn open_engine(spec: &str) -> Engine {
    let builder = Engine::builder().register(parked);
    if spec.starts_with("postgres://") {
        let url = spec.to_owned();
        let store = tokio::task::spawn_blocking(move || workflow_postgres::PgStore::open(&url))
            .await
            .expect("the open thread")
            .expect("the PostgreSQL store opens");
        builder.open_store(store).await.expect("open")
    } else {
        builder.open(spec).await.expect("open")
    }
}

async fn create(spec: &str, n: u64) -> Value {
    let engine = open_engine(spec).await;
    let slots = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            engine.start(parked, run_id(i), ()).await.expect("start");
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.expect("start task");
    }
    let seconds = t.elapsed().as_secs_f64();
    let commits = engine.commit_count();
    engine.shutdown().await;
    json!({ "seconds": seconds, "commits": commits })
}

async fn open(spec: &str, expected: u64) -> Value {
    let rss_before_kib = rss_kib();
    let t = Instant::now();
    let engine = open_engine(spec).await;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_open_kib = rss_kib();
    // The timer task pages in what is due soon in the background; let it finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_settled_kib = rss_kib();
    let hwm_kib = hwm_kib();
    // A sanity check after the measurement: every run is still parked. Counted from the
    // timers index once the engine is gone, rather than with `pending()`, which would load
    // every wait into memory (a million of them in the largest case).
    let waiting = if spec.starts_with("postgres://") {
        let waiting = engine.pending().expect("pending").len() as u64;
        engine.shutdown().await;
        waiting
    } else {
        engine.shutdown().await;
        let db = Database::create(spec).expect("redb open");
        let txn = db.begin_read().expect("read");
        txn.open_table(TIMERS)
            .expect("timers table")
            .len()
            .expect("len")
    };
    assert!(waiting >= expected / 2, "only {waiting} runs wait");
    json!({
        "open_ms": open_ms,
        "rss_before_kib": rss_before_kib,
        "rss_open_kib": rss_open_kib,
        "rss_settled_kib": rss_settled_kib,
        "hwm_kib": hwm_kib,
        "waiting": waiting,
    })
}

/// redb alone: open the file, then read the timers index the way the engine must at open.
fn floor_open(path: &Path) -> Value {
    let rss_before = rss_kib();
    let t = Instant::now();
    let db = Database::create(path).expect("redb open");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(TIMERS).expect("timers table");
    let mut n = 0_u64;
    for entry in table.range::<(u64, &str)>(..).expect("range") {
        let (k, v) = entry.expect("entry");
        std::hint::black_box((k.value(), v.value()));
        n += 1;
    }
    assert_eq!(n, table.len().expect("len"));
    let open_scan_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_grown_kib = rss_kib().saturating_sub(rss_before);
    drop(table);
    drop(txn);
    // The engine's open also makes one write transaction (its format check); after a crash
    // that first commit is not the cheapest.
    let t = Instant::now();
    db.begin_write().expect("write").commit().expect("commit");
    let first_commit_ms = t.elapsed().as_secs_f64() * 1e3;
    json!({
        "open_ms": open_ms,
        "open_scan_ms": open_scan_ms,
        "rss_grown_kib": rss_grown_kib,
        "timers": n,
        "first_commit_ms": first_commit_ms,
    })
}

async fn serve(spec: &str) -> Value {
    let _engine = open_engine(spec).await;
    println!("READY");
    // Waits to be killed; the result line is never printed.
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    json!({})
}

async fn signal(spec: &str, from: u64, count: u64) -> Value {
    let rss_before_kib = rss_kib();
    let t = Instant::now();
    let engine = open_engine(spec).await;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_open_kib = rss_kib();
    let before = engine.commit_count();
    let t = Instant::now();
    let tasks: Vec<_> = (from..from + count)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let id = run_id(i);
                engine.signal(&id, "go", 7_u64).await.expect("signal");
                let run = engine.handle(parked, id).expect("handle");
                run.result().await.expect("result").expect("ok")
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("signal task"), 7);
    }
    let finish_ms = t.elapsed().as_secs_f64() * 1e3;
    let commits = engine.commit_count() - before;
    engine.shutdown().await;
    json!({
        "open_ms": open_ms,
        "finish_ms": finish_ms,
        "commits": commits,
        "rss_before_kib": rss_before_kib,
        "rss_open_kib": rss_open_kib,
    })
}
