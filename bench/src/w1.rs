//! W1, step latency: runs one after another, each a chain of no-op steps, so that every step
//! waits for its own commit and group commit cannot help.

use std::path::Path;
use std::time::Instant;

use workflow_runtime::Engine;

use crate::floor::{self, Latency};
use crate::flows::{sequential, ticks};
use crate::stats::{Row, ThreadsUsage, fmt_us, median, percentile, us};

pub(crate) const RUNS: usize = 200;
pub(crate) const STEPS: u64 = 10;

/// One repetition: the latency of every step of every run, in microseconds.
///
/// A step's latency is the time from the moment it began executing to the moment the next
/// step began executing (for the last step: to the run's result being returned). It covers
/// the step's completion, its durable checkpoint, and scheduling what comes next.
///
/// With `dir` set to `None` the store is redb's in-memory backend: no I/O, so what remains is
/// the engine's own cost per step (tasks, thread hand-offs, encoding, redb's B-tree work).
async fn rep(dir: Option<&Path>, rep: usize) -> Vec<f64> {
    rep_with_usage(dir, rep).await.0
}

/// [`rep`], with the CPU time and context switches of the process's threads while the steps
/// ran (the engine opened before and shut down after).
async fn rep_with_usage(dir: Option<&Path>, rep: usize) -> (Vec<f64>, ThreadsUsage) {
    let builder = Engine::builder().register(sequential);
    let engine = match dir {
        Some(dir) => builder.open(dir.join(format!("w1-{rep}.redb"))).await,
        None => builder.open_in_memory().await,
    }
    .expect("open");
    let before = ThreadsUsage::now();
    let latencies = step_latencies(&engine).await;
    let usage = ThreadsUsage::now().since(before);
    engine.shutdown().await;
    (latencies, usage)
}

/// The latency of every step of `RUNS` runs of `STEPS` steps, one run after another, on an
/// engine that registers [`sequential`], whatever its store; microseconds.
pub(crate) async fn step_latencies(engine: &Engine) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(RUNS * STEPS as usize);
    runs_into(engine, 0..RUNS, &mut latencies).await;
    latencies
}

/// Runs `w1-{r}` for every `r` in `runs`, one after another, appending the latency of every
/// step to `latencies`.
pub(crate) async fn runs_into(
    engine: &Engine,
    runs: std::ops::Range<usize>,
    latencies: &mut Vec<f64>,
) {
    for r in runs {
        ticks().lock().expect("ticks").clear();
        let run = engine
            .start(sequential, format!("w1-{r}"), STEPS)
            .await
            .expect("start");
        assert_eq!(run.result().await.expect("result"), Ok(STEPS));
        let done = Instant::now();
        let mut marks = std::mem::take(&mut *ticks().lock().expect("ticks"));
        assert_eq!(marks.len(), STEPS as usize, "one tick per step");
        marks.push(done);
        latencies.extend(marks.windows(2).map(|w| us(w[1] - w[0])));
    }
}

/// How many blocks a repetition of [`run`] alternates: floor commits, then W1 runs, and so on.
const BLOCKS: usize = 10;

/// One repetition on the file store with the floor interleaved: `BLOCKS` times, a tenth of
/// the floor's commits (in a file of its own on the same file system, kept open), then a
/// tenth of the runs (on an engine kept open). Returns the step latencies and the floor's.
///
/// Measured in two phases one after the other, the floor and W1 saw the disk of different
/// seconds, and this disk's fsync latency drifts by 15 % between them; alternating blocks
/// of about 40 ms and 0.7 s gives both the same disk. Neither side's work changes: every
/// step still waits for its own durable commit, and every floor commit is one fsync.
async fn rep_interleaved(dir: &Path, rep: usize) -> (Vec<f64>, Vec<f64>) {
    let engine = Engine::builder()
        .register(sequential)
        .open(dir.join(format!("w1-{rep}.redb")))
        .await
        .expect("open");
    let mut floor = floor::LatencyBlocks::create(dir, &format!("w1-{rep}"));
    let mut latencies = Vec::with_capacity(RUNS * STEPS as usize);
    for b in 0..BLOCKS {
        floor.block(BLOCKS as u64);
        let per = RUNS / BLOCKS;
        runs_into(&engine, b * per..(b + 1) * per, &mut latencies).await;
    }
    engine.shutdown().await;
    (latencies, floor.latencies)
}

/// W1 on the in-memory backend alone (`bench w1mem`): no disk and no floor, so that a profile
/// of it (callgrind) holds only the engine's own work per step.
pub(crate) async fn run_memory(reps: usize) -> Vec<Row> {
    let mut memory_p50 = Vec::new();
    let mut cpu_per_step = Vec::new();
    for r in 0..reps {
        let (l, usage) = rep_with_usage(None, r).await;
        memory_p50.push(percentile(&l, 50.0));
        let steps = l.len() as f64;
        // Wall time per step against CPU time per step tells whether a step waits (wake-ups,
        // hand-offs) or computes; the runs' starts and results are in both.
        let wall: f64 = l.iter().sum::<f64>() / steps;
        cpu_per_step.push(usage.cpu_ns as f64 / 1e3 / steps);
        println!(
            "  w1 in memory rep {r}: p50 {}; mean {} wall, {} CPU (all threads), {:.2} context switches per step",
            fmt_us(memory_p50[r]),
            fmt_us(wall),
            fmt_us(cpu_per_step[r]),
            usage.switches as f64 / steps
        );
    }
    let commit = floor::memory_step_commit(reps);
    let p50 = median(&memory_p50);
    println!(
        "  the same write set in raw redb in memory, one transition per commit: p50 {}",
        fmt_us(commit)
    );
    vec![
        Row::info(
            "W1",
            "step latency p50, in-memory backend (no I/O)",
            fmt_us(p50),
        )
        .floor(
            format!("{} (in-memory commit p50)", fmt_us(commit)),
            p50 / commit,
        ),
        Row::info(
            "W1",
            "CPU per step, in-memory backend (all threads, starts and results included)",
            fmt_us(median(&cpu_per_step)),
        ),
    ]
}

/// Runs W1 `reps` times and compares its p50 with the floor's single-commit p50.
///
/// Each repetition interleaves the floor's commits with the workload in blocks (see
/// [`rep_interleaved`]), so that both see the same disk: on a shared virtual disk fsync latency
/// drifts by tens of percent within minutes.
pub(crate) async fn run(dir: &Path, reps: usize) -> Vec<Row> {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut floor_p50 = Vec::new();
    let mut floor_p99 = Vec::new();
    for r in 0..reps {
        let (l, f) = rep_interleaved(dir, r).await;
        floor_p50.push(percentile(&f, 50.0));
        floor_p99.push(percentile(&f, 99.0));
        p50.push(percentile(&l, 50.0));
        p99.push(percentile(&l, 99.0));
        println!(
            "  w1 rep {r}: {} steps, p50 {} p99 {}; floor interleaved: p50 {} p99 {}; ratio {:.3}",
            l.len(),
            fmt_us(p50[r]),
            fmt_us(p99[r]),
            fmt_us(floor_p50[r]),
            fmt_us(floor_p99[r]),
            p50[r] / floor_p50[r]
        );
    }
    let mut memory_p50 = Vec::new();
    for r in 0..reps {
        memory_p50.push(percentile(&rep(None, r).await, 50.0));
    }
    let memory_p50 = median(&memory_p50);
    println!("  w1 on the in-memory backend: p50 {}", fmt_us(memory_p50));
    let (handoff_p50, handoff_p99) = floor::handoff(reps).await;
    println!(
        "  hand-off round trip task → thread → task: p50 {} p99 {}",
        fmt_us(handoff_p50),
        fmt_us(handoff_p99)
    );
    // Each repetition's ratio pairs a p50 with the floor of the same minutes; the table keeps
    // the ratio of the medians, as before the interleaving, and this is printed beside it.
    let paired: Vec<f64> = p50.iter().zip(&floor_p50).map(|(s, f)| s / f).collect();
    println!(
        "  w1 median of the per-repetition ratios: {:.3}",
        median(&paired)
    );
    let (p50, p99) = (median(&p50), median(&p99));
    let floor = Latency {
        p50_us: median(&floor_p50),
        p99_us: median(&floor_p99),
    };
    let ratio = p50 / floor.p50_us;
    vec![
        Row::info("W1", "step latency p50", fmt_us(p50))
            .floor(format!("{} (commit p50)", fmt_us(floor.p50_us)), ratio)
            .target("≤ 1.2× floor p50", ratio <= 1.2),
        Row::info("W1", "step latency p99", fmt_us(p99)).floor(
            format!("{} (commit p99)", fmt_us(floor.p99_us)),
            p99 / floor.p99_us,
        ),
        Row::info(
            "W1",
            "step latency p50, in-memory backend (no I/O)",
            fmt_us(memory_p50),
        ),
        Row::info(
            "W1",
            "hand-off round trip task → thread → task, p50 (no engine)",
            fmt_us(handoff_p50),
        ),
    ]
}
