//! Parallel steps, `wait_for_any` and `signal_with_start` under real process deaths: a worker
//! process (`src/bin/primitives_worker.rs`) drives one run while the test kills it with
//! SIGKILL at chosen moments, starts it again, and at the end compares the run's output with a
//! crash-free run's and the side-effect ledger with the trace's checkpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use workflow_runtime::{Engine, TraceEvent, TraceKind};

/// A guard against a hung worker, not a timing assertion.
const HUNG: Duration = Duration::from_secs(180);

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Worker {
    fn spawn(args: &[&str]) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_primitives_worker"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Worker {
            child,
            stdin,
            lines,
        }
    }

    /// The next line that starts with `prefix`, without the prefix.
    fn wait_line(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(HUNG)
                .unwrap_or_else(|_| panic!("the worker printed no `{prefix}` line"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    fn send(&mut self, command: &str) -> String {
        self.send_only(command);
        self.wait_line("outcome ")
    }

    fn send_only(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    fn finished(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    fn kill9(mut self) {
        // `Child::kill` sends SIGKILL on Unix: no destructor, no shutdown, no flush.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn exit(mut self) {
        drop(self.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

/// `(idempotency key, what)` of each line of a ledger file, in order.
fn ledger(dir: &Path, file: &str) -> Vec<(String, String)> {
    let text = match std::fs::read_to_string(dir.join(file)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{file}: {e}"),
    };
    text.lines()
        .map(|l| {
            let (k, w) = l.split_once('\t').expect("a ledger line is key\\twhat");
            (k.to_owned(), w.to_owned())
        })
        .collect()
}

/// The run's trace as the dead worker left it. No workflow is registered here, so opening
/// the store resumes nothing.
fn trace(store: &Path, run_id: &str) -> Vec<TraceEvent> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = Engine::open(store).await.unwrap();
        let trace = engine.trace(run_id).unwrap_or_default();
        engine.shutdown().await;
        trace
    })
}

/// The effect (as the ledger spells it) of every step whose result is checkpointed.
fn checkpointed(trace: &[TraceEvent]) -> Vec<String> {
    trace
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::StepCompleted {
                step,
                result: Ok(out),
                ..
            } => Some(match step.as_str() {
                "process" => format!("item {}", out[0]),
                "fetch_ticket" => format!(
                    "ticket {}",
                    out.as_str().unwrap().trim_start_matches("ticket ")
                ),
                "fetch_customer" => "customer 42".to_owned(),
                other => panic!("unexpected step {other}"),
            }),
            _ => None,
        })
        .collect()
}

const ITEMS: u32 = 50;
const ITEMS_ARG: &str = "50";
const LIMIT: &str = "5";

#[test]
fn a_fan_out_and_a_join_under_kill9_rerun_only_unfinished_steps_and_apply_each_effect_once() {
    // The crash-free output.
    let clean = tempfile::tempdir().unwrap();
    let store = clean.path().join("store.redb");
    let args = |store: &Path, dir: &Path| {
        vec![
            "fanout".to_owned(),
            store.display().to_string(),
            dir.display().to_string(),
            ITEMS_ARG.to_owned(),
            LIMIT.to_owned(),
        ]
    };
    let a = args(&store, clean.path());
    let w = Worker::spawn(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = w.wait_line("done ");
    w.exit();
    assert!(
        expected.starts_with("Ok(\"ticket T-9 / 420 / [(0, 1), (1, 2), (2, 5)"),
        "{expected}"
    );

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let a = args(&store, dir.path());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // Kill once the execution log has grown by this many lines since the restart: the first
    // lands inside the join or the first items, the others with items in flight.
    let kills = [1, 9, 14, 7, 12];
    // After each kill: how long the execution log was, and what was checkpointed.
    let mut at_kill: Vec<(usize, BTreeSet<String>)> = Vec::new();
    for grow in kills {
        let base = ledger(dir.path(), "exec.log").len();
        let mut w = Worker::spawn(&a);
        let started = Instant::now();
        while ledger(dir.path(), "exec.log").len() < base + grow {
            assert!(!w.finished(), "the run ended before the kill");
            assert!(started.elapsed() < HUNG, "the worker is stuck");
            std::thread::sleep(Duration::from_millis(1));
        }
        w.kill9();
        let done: BTreeSet<String> = checkpointed(&trace(&store, "fan-1")).into_iter().collect();
        assert!(
            done.len() < ITEMS as usize + 2,
            "the kill landed after the run was over"
        );
        at_kill.push((ledger(dir.path(), "exec.log").len(), done));
    }
    let w = Worker::spawn(&a);
    let output = w.wait_line("done ");
    w.exit();
    assert_eq!(output, expected, "the output after 5 kills differs");

    let exec = ledger(dir.path(), "exec.log");
    let effects = ledger(dir.path(), "effects.log");
    let all: BTreeSet<String> = (0..ITEMS)
        .map(|i| format!("item {i}"))
        .chain(["ticket T-9".to_owned(), "customer 42".to_owned()])
        .collect();
    // Every effect is applied once, under one key per step.
    let applied: Vec<&String> = effects.iter().map(|(_, w)| w).collect();
    assert_eq!(applied.len(), all.len(), "{applied:?}");
    assert_eq!(
        applied.iter().copied().cloned().collect::<BTreeSet<_>>(),
        all
    );
    let mut key_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, what) in &exec {
        let k = key_of.entry(what).or_insert(key);
        assert_eq!(k, key, "`{what}` ran under two idempotency keys");
    }
    // Each step's result is checkpointed once.
    let final_trace = trace(&store, "fan-1");
    let done = checkpointed(&final_trace);
    assert_eq!(done.len(), all.len());
    assert_eq!(done.iter().cloned().collect::<BTreeSet<_>>(), all);
    // A step checkpointed before a kill never runs again: only the unfinished ones re-run.
    for (n, (len, checkpointed)) in at_kill.iter().enumerate() {
        for (_, what) in &exec[*len..] {
            assert!(
                !checkpointed.contains(what),
                "`{what}` was checkpointed before kill {} and ran again",
                n + 1
            );
        }
    }
    println!(
        "{} executions for {} steps; checkpointed at each kill: {:?}",
        exec.len(),
        all.len(),
        at_kill.iter().map(|k| k.1.len()).collect::<Vec<_>>()
    );
    // The kills did land while steps were in flight: some ran twice.
    assert!(
        exec.len() > all.len(),
        "no step was interrupted: {} executions",
        exec.len()
    );
}

fn count(trace: &[TraceEvent], what: impl Fn(&TraceKind) -> bool) -> usize {
    trace.iter().filter(|e| what(&e.kind)).count()
}

#[test]
fn a_retried_webhook_across_kill9_starts_the_run_once_and_a_wait_for_any_leaves_the_other_name_buffered()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let store_arg = store.display().to_string();
    let dir_arg = dir.path().display().to_string();
    let args = ["webhook", store_arg.as_str(), dir_arg.as_str()];
    let approve = r#"sws approve evt-1 {"amount":5}"#;

    // The webhook creates the run; its first step holds (no gate yet), so the signal waits in
    // the inbox. Killed as soon as the call returned.
    let mut w = Worker::spawn(&args);
    w.wait_line("ready");
    assert_eq!(w.send(approve), "Buffered");
    w.kill9();
    let after_first = trace(&store, "wh-1");
    assert_eq!(
        count(&after_first, |k| matches!(k, TraceKind::Started { .. })),
        1
    );

    // The sender did not hear back and retries the same event; then another event comes, and
    // the worker is killed while it handles that one (before or after its commit).
    let mut w = Worker::spawn(&args);
    w.wait_line("ready");
    assert_eq!(w.send(approve), "Duplicate");
    let reject = r#"sws reject evt-2 {"reason":"late"}"#;
    w.send_only(reject);
    std::thread::sleep(Duration::from_micros(u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 3_000,
    )));
    w.kill9();

    // That one is retried too; then the gate opens: the first wait takes one of the two
    // buffered signals and the step that acts on it runs; killed once its effect is in the
    // ledger, before or after its checkpoint.
    let mut w = Worker::spawn(&args);
    w.wait_line("ready");
    let retried = w.send(reject);
    println!("the rejection retried after the kill: {retried}");
    assert!(
        retried == "Buffered" || retried == "Duplicate",
        "the retried rejection: {retried}"
    );
    std::fs::write(dir.path().join("gate"), "").unwrap();
    let started = Instant::now();
    while !ledger(dir.path(), "effects.log")
        .iter()
        .any(|(_, what)| what.starts_with("act on"))
    {
        assert!(started.elapsed() < HUNG, "the worker is stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    w.kill9();

    // The last life finishes the run: the second wait takes the name the first left.
    let w = Worker::spawn(&args);
    let output = w.wait_line("done ");
    w.exit();
    let expected: Result<Result<String, ()>, ()> = Ok(Ok(
        r#"case wh-1: act on Approve { amount: 5 }; then Reject { reason: "late" }"#.to_owned(),
    ));
    assert_eq!(output, format!("{expected:?}"));

    let trace = trace(&store, "wh-1");
    assert_eq!(
        count(&trace, |k| matches!(k, TraceKind::Started { .. })),
        1,
        "the run was created once"
    );
    assert_eq!(
        count(&trace, |k| matches!(
            k,
            TraceKind::SignalReceived { signal, .. } if signal == "approve"
        )),
        1,
        "the approval was delivered once"
    );
    assert_eq!(
        count(&trace, |k| matches!(
            k,
            TraceKind::SignalDuplicate { dedupe_key, .. } if dedupe_key == "evt-1"
        )),
        1,
        "the retried webhook was seen as a duplicate"
    );
    assert_eq!(
        count(&trace, |k| matches!(
            k,
            TraceKind::SignalDuplicate { dedupe_key, .. } if dedupe_key == "evt-2"
        )),
        usize::from(retried == "Duplicate"),
        "the retried rejection is a duplicate exactly when the first one was committed"
    );
    assert_eq!(
        count(&trace, |k| matches!(
            k,
            TraceKind::SignalReceived { signal, from_inbox: true, .. } if signal == "reject"
        )),
        1,
        "the rejection stayed buffered for the second wait"
    );
    let effects = ledger(dir.path(), "effects.log");
    let acted: Vec<&String> = effects
        .iter()
        .map(|(_, w)| w)
        .filter(|w| w.starts_with("act on"))
        .collect();
    assert_eq!(acted, ["act on Approve { amount: 5 }"], "acted on once");
    let opened: BTreeSet<String> = ledger(dir.path(), "exec.log")
        .into_iter()
        .filter(|(_, w)| w == "open wh-1")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        opened.len(),
        1,
        "the first step ran under one key: {opened:?}"
    );
}
