//! The order-review example: an order fans out to one child review per line, each waiting for
//! a human decision. In-process tests drive it with the testing toolkit (every path, a crash
//! at every commit); the process test runs the example binary, kills it with SIGKILL while the
//! children are in flight (once inside a step, after its effect and before its checkpoint;
//! once while every review waits; once between decisions), restarts it on the same directory
//! and checks that each child was started once and each effect happened once.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use examples::order_review::{
    Ledger, LineDecision, OrderOutcome, demo_order, line_review, order_review, review_run,
};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Script, TestEngine, crash_test};
use workflow_runtime::{RunFilter, TraceKind};

fn decision(approve: bool) -> LineDecision {
    LineDecision {
        approve,
        reviewer: "rev-1".into(),
        reason: if approve { "ok" } else { "no" }.into(),
    }
}

fn builder(dir: &std::path::Path) -> workflow_runtime::testing::TestEngineBuilder {
    TestEngine::builder()
        .register(order_review)
        .register(line_review)
        .data(Ledger::new(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_charges_once_for_the_approved_lines() {
    let dir = tempfile::tempdir().unwrap();
    let te = builder(dir.path()).build().await;
    let run = te
        .start(order_review, "O-1", demo_order("O-1"))
        .await
        .unwrap();
    te.run_until_idle().await;
    assert_eq!(te.engine().pending().unwrap().len(), 3);
    for (i, approve) in [true, false, true].into_iter().enumerate() {
        te.signal(&review_run("O-1", i), "line_decision", decision(approve))
            .await
            .unwrap();
    }
    match run.result().await.unwrap().unwrap() {
        OrderOutcome::Charged {
            total_cents,
            approved,
            rejected,
            ..
        } => {
            assert_eq!(total_cents, 4_000 + 4_500);
            assert_eq!(approved.len(), 2);
            assert_eq!(rejected[0].sku, "office-chair");
        }
        other => panic!("{other:?}"),
    }
    let effects = Ledger::new(dir.path()).effects().unwrap();
    assert_eq!(effects.len(), 4, "{effects:?}");
    assert_eq!(
        effects.get("O-1:charge_order:2").map(String::as_str),
        Some("charged cust-42 8500 cents for O-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_charged_when_every_line_is_rejected_or_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let te = builder(dir.path()).build().await;
    let run = te
        .start(order_review, "O-2", demo_order("O-2"))
        .await
        .unwrap();
    te.run_until_idle().await;
    te.signal(&review_run("O-2", 0), "line_decision", decision(false))
        .await
        .unwrap();
    // The other two reviewers never answer.
    te.advance(Duration::from_secs(7 * 86_400 + 1)).await;
    match run.result().await.unwrap().unwrap() {
        OrderOutcome::NothingApproved { rejected } => {
            assert_eq!(rejected.len(), 3);
            assert_eq!(rejected[1].reason, "timed out waiting for a signal");
        }
        other => panic!("{other:?}"),
    }
    let effects = Ledger::new(dir.path()).effects().unwrap();
    assert!(
        effects.values().all(|e| !e.starts_with("charged")),
        "{effects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_survives_a_crash_at_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    // The reviews are children: the script's signals go to the order, so here every review
    // times out, and the order ends with nothing charged after the same steps in every case.
    let report = crash_test(
        builder(dir.path()),
        order_review,
        demo_order("crash-test"),
        Script::new().advance(Duration::from_secs(7 * 86_400 + 1)),
    )
    .await;
    report.assert_ok();
    assert!(report.commits >= 8, "{}", report.commits);
}

/// The example binary, built first (`cargo test --test order_review` alone does not build
/// examples).
fn exe() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let exe = deps.parent().unwrap().join("examples").join("order_review");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "examples", "--example", "order_review"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the example failed");
        exe
    })
}

/// A running worker and the lines it printed.
struct Worker {
    child: Child,
    lines: Receiver<String>,
}

impl Worker {
    fn spawn(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut cmd = Command::new(exe());
        cmd.arg("serve").arg("--dir").arg(dir).args(args);
        cmd.envs(env.iter().copied()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("the worker starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Worker { child, lines }
    }

    /// Waits for a line that starts with `prefix`; every line read on the way is returned too.
    fn wait_for(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no `{prefix}` line in 60 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("the worker ended before `{prefix}`"),
            }
        }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn killed_workers_start_each_child_once_and_apply_each_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1. The first worker dies inside a review's step, right after the second reservation
    //    reached the ledger and before its checkpoint.
    let mut w = Worker::spawn(d, &["--place", "O-9"], &[("ORDER_REVIEW_ABORT_AFTER", "2")]);
    let status = w.child.wait().unwrap();
    assert!(!status.success(), "the fault point ends the worker");

    // 2. A new worker resumes the three children; it is killed while all of them wait.
    let w = Worker::spawn(d, &[], &[]);
    let mut waiting: Vec<String> = (0..3).map(|_| w.wait_for("waiting ")).collect();
    waiting.sort();
    let reviews: Vec<String> = (0..3).map(|i| review_run("O-9", i)).collect();
    assert_eq!(
        waiting,
        reviews
            .iter()
            .map(|r| format!("waiting {r}"))
            .collect::<Vec<_>>()
    );
    w.kill9();

    // 3. Two decisions, then a kill.
    let a = format!("{}=approve", reviews[0]);
    let b = format!("{}=reject", reviews[1]);
    let w = Worker::spawn(d, &["--decide", &a, "--decide", &b], &[]);
    w.wait_for(&format!("decided {}", reviews[1]));
    w.kill9();

    // 4. The last decision (the first one sent again: a duplicate) ends the order.
    let c = format!("{}=approve", reviews[2]);
    let w = Worker::spawn(
        d,
        &["--decide", &a, "--decide", &c, "--exit-when-done", "O-9"],
        &[],
    );
    let outcome = w.wait_for("outcome O-9 ");
    assert!(outcome.contains("\"total_cents\":8500"), "{outcome}");
    drop(w);

    // Each child was started once, by the order, and each effect happened once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = Engine::open(d.join("orders.redb")).await.unwrap();
        let mut runs: Vec<String> = engine
            .runs(&RunFilter::default())
            .unwrap()
            .runs
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        runs.sort();
        let mut want = vec!["O-9".to_owned()];
        want.extend(reviews.iter().cloned());
        assert_eq!(runs, want);
        let order = engine.trace("O-9").unwrap();
        let started = order
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::ChildStarted { .. }))
            .count();
        let ended = order
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::ChildEnded { .. }))
            .count();
        assert_eq!((started, ended), (3, 3));
        for review in &reviews {
            let trace = engine.trace(review).unwrap();
            let names: Vec<&str> = trace.iter().map(|e| e.kind.name()).collect();
            assert_eq!(names.iter().filter(|n| **n == "started").count(), 1);
            assert_eq!(names[1], "started_by_parent");
            assert_eq!(
                engine.inspect(review).unwrap().parent.as_deref(),
                Some("O-9")
            );
        }
        engine.shutdown().await;
    });
    let ledger = Ledger::new(d);
    let effects = ledger.effects().unwrap();
    let lines = std::fs::read_to_string(d.join("effects.log")).unwrap();
    assert_eq!(
        lines.lines().count(),
        effects.len(),
        "an effect was applied twice"
    );
    let mut keys: Vec<&String> = effects.keys().collect();
    keys.sort();
    let mut want: Vec<String> = reviews
        .iter()
        .map(|r| format!("{r}:reserve_line:1"))
        .collect();
    want.insert(0, "O-9:charge_order:2".to_owned());
    want.sort();
    assert_eq!(keys, want.iter().collect::<Vec<_>>());
    // The step that died after its effect ran again, under the same key.
    let attempts = ledger.attempts().unwrap();
    assert!(attempts.len() > effects.len(), "{attempts:?}");
}
