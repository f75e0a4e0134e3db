//! W2, throughput: many runs at once, so that group commit has something to group.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use workflow_runtime::Engine;

use crate::floor::Throughput;
use crate::flows::{ARRIVED, arrivals, fan_in};
use crate::stats::{Row, ThreadsUsage, cpu_ms, median};

pub(crate) const RUNS: u64 = 1000;
/// Durable transitions per run: the start (up to the first step), three step results (the
/// third ends at the wait), the signal (up to the last step), the last step's result.
pub(crate) const TRANSITIONS_PER_RUN: u64 = 6;

pub(crate) struct Rep {
    /// From the first start to every run waiting.
    pub(crate) to_waiting: Duration,
    /// From the first signal to every run finished.
    pub(crate) to_done: Duration,
    pub(crate) commits: u64,
    /// CPU time of the whole process over both phases.
    pub(crate) cpu_ms: f64,
    /// CPU time and context switches of the threads alive before and after both phases, read
    /// to the nanosecond (`cpu_ms` comes in 10 ms ticks but counts every thread).
    pub(crate) threads: ThreadsUsage,
}

async fn rep(dir: &Path, rep: usize) -> Rep {
    let engine = Engine::builder()
        .register(fan_in)
        .open(dir.join(format!("w2-{rep}.redb")))
        .await
        .expect("open");
    let measured = measure(std::slice::from_ref(&engine)).await;
    engine.shutdown().await;
    measured
}

/// One repetition of W2 on engines that register [`fan_in`], whatever their store: runs are
/// started and signalled round-robin through `engines` (one engine today; the engines of
/// several workers sharing one database once they can), and awaited through the engine that
/// started each. The caller shuts the engines down.
pub(crate) async fn measure(engines: &[Engine]) -> Rep {
    let engine = &engines[0];
    ARRIVED.store(0, Ordering::SeqCst);
    let before: u64 = engines.iter().map(Engine::commit_count).sum();
    let cpu_before = cpu_ms();
    let threads_before = ThreadsUsage::now();

    let t0 = Instant::now();
    let starts: Vec<_> = (0..RUNS)
        .map(|i| {
            let engine = engines[i as usize % engines.len()].clone();
            tokio::spawn(async move {
                engine
                    .start(fan_in, format!("w2-{i}"), ())
                    .await
                    .expect("start")
            })
        })
        .collect();
    let mut handles = Vec::with_capacity(starts.len());
    for s in starts {
        handles.push(s.await.expect("start task"));
    }
    // Every run has executed the step before its wait; the wait is durable once the step's
    // checkpoint is, which `pending` shows. Polling only starts when it is nearly true.
    loop {
        let notified = arrivals().notified();
        if ARRIVED.load(Ordering::SeqCst) >= RUNS {
            break;
        }
        notified.await;
    }
    while (engine.pending().expect("pending").len() as u64) < RUNS {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let to_waiting = t0.elapsed();

    let t1 = Instant::now();
    let finishes: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            let engine = engines[i % engines.len()].clone();
            tokio::spawn(async move {
                engine
                    .signal(run.run_id(), "go", 1_u64)
                    .await
                    .expect("signal");
                run.result().await.expect("result").expect("ok")
            })
        })
        .collect();
    for f in finishes {
        assert_eq!(f.await.expect("finish task"), 1);
    }
    let to_done = t1.elapsed();
    let cpu_ms = cpu_ms() - cpu_before;
    let threads = ThreadsUsage::now().since(threads_before);
    let commits = engines.iter().map(Engine::commit_count).sum::<u64>() - before;
    Rep {
        to_waiting,
        to_done,
        commits,
        cpu_ms,
        threads,
    }
}

/// Runs W2 `reps` times and compares it with the floor's batched throughput.
pub(crate) async fn run(dir: &Path, reps: usize, floor: &[Throughput]) -> Vec<Row> {
    let transitions = (RUNS * TRANSITIONS_PER_RUN) as f64;
    let mut runs_s = Vec::new();
    let mut tps = Vec::new();
    let mut cpt = Vec::new();
    let mut waiting_s = Vec::new();
    let mut done_s = Vec::new();
    let mut cpu_us = Vec::new();
    for r in 0..reps {
        let x = rep(dir, r).await;
        let total = (x.to_waiting + x.to_done).as_secs_f64();
        runs_s.push(RUNS as f64 / total);
        tps.push(transitions / total);
        cpt.push(x.commits as f64 / transitions);
        waiting_s.push(x.to_waiting.as_secs_f64());
        done_s.push(x.to_done.as_secs_f64());
        cpu_us.push(x.cpu_ms * 1e3 / transitions);
        println!(
            "  w2 rep {r}: all waiting after {:.0} ms, all done {:.0} ms after the first \
             signal; {:.0} runs/s, {:.0} transitions/s, {} commits ({:.4} per transition, \
             {:.1} transitions per commit); CPU {:.0} ms, {:.0} µs per transition (threads \
             alive throughout: {:.1} µs, {:.2} context switches per transition)",
            x.to_waiting.as_secs_f64() * 1e3,
            x.to_done.as_secs_f64() * 1e3,
            runs_s[r],
            tps[r],
            x.commits,
            cpt[r],
            transitions / x.commits as f64,
            x.cpu_ms,
            cpu_us[r],
            x.threads.cpu_ns as f64 / 1e3 / transitions,
            x.threads.switches as f64 / transitions
        );
    }
    let (tps, cpt) = (median(&tps), median(&cpt));
    // The floor at the batch size closest to what group commit achieved.
    let per_commit = 1.0 / cpt;
    let write_set: Vec<f64> = (0..reps)
        .map(|_| crate::floor::w2_write_set(dir, RUNS, per_commit.round() as usize))
        .collect();
    let records_only: Vec<f64> = (0..reps)
        .map(|_| crate::floor::w2_records_only(dir, RUNS, per_commit.round() as usize))
        .collect();
    println!(
        "  w2 write set in raw redb, {per_commit:.0} transitions per commit: CPU {:.1} µs per \
         transition (median of {reps}); the records alone, without index rows: {:.1} µs",
        median(&write_set),
        median(&records_only)
    );
    let near = floor
        .iter()
        .min_by(|a, b| {
            let d = |t: &Throughput| ((t.batch as f64).ln() - per_commit.ln()).abs();
            d(a).total_cmp(&d(b))
        })
        .copied();
    let total_s = median(&waiting_s) + median(&done_s);
    let mut rows = vec![
        Row::info("W2", "runs per second", format!("{:.0}", median(&runs_s))),
        Row::info(
            "W2",
            "CPU time per transition (process, all threads)",
            format!(
                "{:.0} µs ({:.2} cores busy)",
                median(&cpu_us),
                median(&cpu_us) * transitions / 1e6 / total_s
            ),
        )
        // The floor: the same transitions' store write set alone, in raw redb.
        .floor(
            format!("{:.1} µs (write set in raw redb)", median(&write_set)),
            median(&cpu_us) / median(&write_set),
        ),
        Row::info(
            "W2",
            "phases: all waiting / all done after signals",
            format!(
                "{:.0} ms / {:.0} ms",
                median(&waiting_s) * 1e3,
                median(&done_s) * 1e3
            ),
        ),
    ];
    let tps_row = Row::info("W2", "durable transitions per second", format!("{tps:.0}"));
    rows.push(match near {
        Some(t) => tps_row.floor(
            format!("{:.0} values/s (batches of {})", t.values_per_s, t.batch),
            tps / t.values_per_s,
        ),
        None => tps_row,
    });
    let last = rows.len() - 1;
    rows[last] = rows[last].clone().target("≥ 10,000/s", tps >= 10_000.0);
    rows.push(
        Row::info(
            "W2",
            "commits per transition",
            format!("{cpt:.4} ({per_commit:.1} transitions per commit)"),
        )
        .target("≤ 0.05", cpt <= 0.05),
    );
    rows
}
