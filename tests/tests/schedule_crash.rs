//! Schedules under real process deaths: a worker process (`src/bin/schedule_worker.rs`) keeps a
//! schedule that starts a run every second; the test kills it with SIGKILL, keeps it down for
//! a few seconds (ticks come due meanwhile), restarts it, kills it again at unplanned moments,
//! and finally reads the store: every tick's run was started once, the ticks missed while down
//! went as the catch-up policy says, and no tick was lost without a trace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use workflow_runtime::{Engine, RunFilter, RunStatus, TraceKind, schedule_run_id};

const SECOND: u64 = 1_000;

struct Worker {
    child: Child,
    lines: Receiver<String>,
}

impl Worker {
    fn spawn(path: &Path, policy: &str) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_schedule_worker"))
            .arg(path)
            .arg(policy)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Worker { child, lines }
    }

    /// Waits until the worker reports at least `n` runs started, and returns its count.
    fn wait_started(&self, n: u64) -> u64 {
        loop {
            // A guard against a hung worker, not a timing assertion.
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .expect("the worker reports its progress");
            if let Some(count) = line.strip_prefix("started ") {
                let count: u64 = count.parse().unwrap();
                if count >= n {
                    return count;
                }
            }
        }
    }

    fn kill9(mut self) {
        // `Child::kill` sends SIGKILL on Unix: no destructor, no shutdown, no flush.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A pseudo-random delay under a second, so that kills land at unplanned points of the
/// schedule's one-second cycle.
fn jitter(seed: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis((u64::from(nanos) ^ seed.wrapping_mul(0x9e37_79b9)) % 1_000)
}

/// What the store holds once the worker is dead for good.
struct Outcome {
    /// The runs of the schedule, by tick.
    runs: BTreeSet<u64>,
    /// `(tick, outcome)` of every `schedule_fired` event, in order.
    fired: Vec<(u64, String)>,
    /// `(count, first, last)` of every `schedule_missed` event, in order.
    missed: Vec<(u64, u64, u64)>,
    /// The last tick the schedule handled.
    last_tick: u64,
}

async fn read(path: &Path) -> Outcome {
    // No workflow registered: the schedule's timer fires at open and finds nothing to start,
    // so the store is read as the worker left it.
    let engine = Engine::open(path).await.unwrap();
    let mut fired = Vec::new();
    let mut missed = Vec::new();
    for event in engine.trace("@schedule/tick").unwrap() {
        match event.kind {
            TraceKind::ScheduleFired {
                tick_ms, outcome, ..
            } => fired.push((tick_ms, outcome)),
            TraceKind::ScheduleMissed {
                count,
                first_ms,
                last_ms,
            } => missed.push((count, first_ms, last_ms)),
            _ => {}
        }
    }
    let mut tick_of: BTreeMap<String, u64> = fired
        .iter()
        .map(|(tick, _)| (schedule_run_id("tick", *tick), *tick))
        .collect();
    // A kill between a run's start and the commit recording it leaves the tick in the
    // schedule's decided list, started again (found) at the next open.
    let record = engine.inspect("@schedule/tick").unwrap();
    let mut pending = Vec::new();
    for decided in record.state["starting"].as_array().into_iter().flatten() {
        let tick = decided[0].as_u64().unwrap();
        tick_of.insert(decided[1].as_str().unwrap().to_owned(), tick);
        pending.push(tick);
    }
    let mut filter = RunFilter {
        workflow: Some("tick_job".to_owned()),
        limit: Some(workflow_runtime::MAX_PAGE),
        ..RunFilter::default()
    };
    let mut runs = BTreeSet::new();
    loop {
        let page = engine.runs(&filter).unwrap();
        for run in &page.runs {
            let trace = engine.trace(&run.run_id).unwrap();
            let starts = trace.iter().filter(|e| e.kind.name() == "started").count();
            assert_eq!(starts, 1, "run {} was started {starts} times", run.run_id);
            assert_eq!(engine.status(&run.run_id).unwrap(), RunStatus::Completed);
            let tick = tick_of
                .get(&run.run_id)
                .unwrap_or_else(|| panic!("run {} is in no firing of the schedule", run.run_id));
            assert!(runs.insert(*tick), "two runs for tick {tick}");
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    let info = engine.schedule_info("tick").unwrap().unwrap();
    engine.shutdown().await;
    // Accounted for as fired: their outcome is the next open's to record.
    fired.extend(pending.into_iter().map(|t| (t, "decided".to_owned())));
    Outcome {
        runs,
        fired,
        missed,
        last_tick: info.last_tick_ms.unwrap(),
    }
}

/// Runs the worker through one long outage and a few kills at unplanned moments, then checks
/// what every policy promises: each run started once, each tick accounted for exactly once
/// (a run, or in a missed range, or skipped as an overlap), and no run inside a missed range.
fn run_kills(policy: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedules.redb");

    let worker = Worker::spawn(&path, policy);
    let started = worker.wait_started(3);
    worker.kill9();
    // Down for several ticks.
    std::thread::sleep(Duration::from_millis(4_500));

    let mut started = started;
    for round in 0..3u64 {
        let worker = Worker::spawn(&path, policy);
        started = worker.wait_started(started + 2);
        std::thread::sleep(jitter(round));
        worker.kill9();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(read(&path));

    // Every tick from the first handled to the last is accounted for exactly once.
    let first = outcome
        .fired
        .first()
        .map(|f| f.0)
        .into_iter()
        .chain(outcome.missed.iter().map(|m| m.1))
        .min()
        .unwrap();
    let mut accounted: Vec<u64> = outcome.fired.iter().map(|f| f.0).collect();
    for &(count, from, to) in &outcome.missed {
        let range: Vec<u64> = (from..=to).step_by(SECOND as usize).collect();
        assert_eq!(range.len() as u64, count, "missed range {from}..={to}");
        for tick in &range {
            assert!(
                !outcome.runs.contains(tick),
                "tick {tick} was dropped as missed but has a run"
            );
        }
        accounted.extend(range);
    }
    accounted.sort_unstable();
    let expected: Vec<u64> = (first..=outcome.last_tick)
        .step_by(SECOND as usize)
        .collect();
    assert_eq!(accounted, expected, "each tick handled exactly once");
    // The runs are exactly the ticks fired as started or found.
    let fired_runs: BTreeSet<u64> = outcome
        .fired
        .iter()
        .filter(|(_, o)| o == "started" || o == "existed")
        .map(|f| f.0)
        .collect();
    // A decided tick whose outcome is not recorded may or may not have its run yet.
    let decided: BTreeSet<u64> = outcome
        .fired
        .iter()
        .filter(|(_, o)| o == "decided")
        .map(|f| f.0)
        .collect();
    let undecided_runs: BTreeSet<u64> = outcome.runs.difference(&decided).copied().collect();
    assert_eq!(fired_runs, undecided_runs);
    assert!(
        outcome.missed.iter().any(|m| m.0 >= 2),
        "the outage made ticks missed: {:?}",
        outcome.missed
    );
    outcome
}

#[test]
fn catch_up_latest_under_kill9_starts_one_run_for_the_latest_missed_tick() {
    let outcome = run_kills("latest");
    // After each outage, the latest due tick (the one right after those dropped) starts.
    for &(_, _, last) in &outcome.missed {
        let latest = last + SECOND;
        assert!(
            outcome
                .fired
                .iter()
                .any(|(t, o)| *t == latest && o != "overlap" && !o.starts_with("failed")),
            "the latest missed tick {latest} started no run: {:?}",
            outcome.fired
        );
    }
}

#[test]
fn catch_up_skip_under_kill9_starts_no_run_for_a_tick_missed_while_down() {
    let outcome = run_kills("skip");
    // Every tick that came due while the worker was down was dropped: after the long outage,
    // at least four ticks (the 4.5 s) are in one missed range.
    assert!(
        outcome.missed.iter().any(|m| m.0 >= 4),
        "{:?}",
        outcome.missed
    );
}
