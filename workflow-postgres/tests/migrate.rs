//! The `workflow-migrate` command moves a store with parked runs from the embedded file store
//! to PostgreSQL and back, and the runs finish afterwards with the outcome they would have had
//! without the moves, each effect once: a run waiting for a signal gets it after the move, a
//! sleeping run's timer fires, a signal buffered before the move is consumed after it, a
//! dedupe key accepted before the move still refuses a re-sent signal, and ended runs keep
//! their results and traces. A source on which a worker holds a live lease is refused.

use std::process::{Command, Output};
use std::sync::Mutex;

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::prelude::*;
use workflow_runtime::store::{Claim, FileStore, Store};
use workflow_runtime::{ManualClock, Signal, SignalOutcome};

/// Every effect, as `effect run-id`; each must appear once.
static LEDGER: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_effect(entry: String) {
    LEDGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(entry);
}

#[function]
async fn pay(ctx: StepContext, cents: u64) -> Result<String, StepError> {
    record_effect(format!("pay {}", ctx.run_id()));
    Ok(format!("paid {cents}"))
}

#[function]
async fn notify(ctx: StepContext, days: u64) -> Result<String, StepError> {
    record_effect(format!("notify {}", ctx.run_id()));
    Ok(format!("reminded after {days} day(s)"))
}

#[workflow]
async fn refund(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let decision = ctx
        .wait_for_signal::<String>("decision", Duration::from_secs(7 * 86_400), ())
        .await?;
    if decision != "approve" {
        return Ok("rejected".to_owned());
    }
    let comment = ctx
        .wait_for_signal::<String>("comment", Duration::from_secs(86_400), ())
        .await?;
    let receipt = ctx.step(pay, cents).await?;
    Ok(format!("{receipt} ({comment})"))
}

#[workflow]
async fn reminder(ctx: &mut WorkflowContext, days: u64) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(days * 86_400)).await;
    let sent = ctx.step(notify, days).await?;
    Ok(sent)
}

async fn engine_on(store: impl Store, clock: &ManualClock) -> Engine {
    Engine::builder()
        .register(refund)
        .register(reminder)
        .clock(clock.clone())
        .open_store(store)
        .await
        .expect("the engine opens")
}

async fn on_postgres(url: &str, clock: &ManualClock) -> Engine {
    let store = PgStore::open_async(url).await.expect("the store opens");
    engine_on(store, clock).await
}

async fn on_file(path: &std::path::Path, clock: &ManualClock) -> Engine {
    engine_on(FileStore::open(path).expect("the store file opens"), clock).await
}

/// Polls until the run's status satisfies `done`; a generous bound only turns a hang into a
/// failure.
async fn until(engine: &Engine, run: &str, what: &str, done: impl Fn(&RunStatus) -> bool) {
    for _ in 0..12_000 {
        if done(&engine.status(run).expect("status")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run `{run}` never became {what}: {:?}", engine.status(run));
}

fn waiting_for(signal: &'static str) -> impl Fn(&RunStatus) -> bool {
    move |s| matches!(s, RunStatus::Waiting { signal: name, .. } if name == signal)
}

fn sleeping(s: &RunStatus) -> bool {
    matches!(s, RunStatus::Sleeping { .. })
}

async fn output<W: Workflow>(engine: &Engine, workflow: W, run: &str) -> String
where
    W::Output: std::fmt::Debug,
{
    let out = engine
        .handle(workflow, run)
        .expect("a handle")
        .result()
        .await
        .expect("a result");
    format!("{out:?}")
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workflow-migrate"))
        .args(["--from", from, "--to", to])
        .args(extra)
        .output()
        .expect("the command runs")
}

fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "workflow-migrate failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn comment(text: &str, key: &str) -> Signal {
    Signal::new("comment", text).dedupe_key(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_runs_move_to_postgres_and_back_and_finish_there() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (first, last) = (dir.path().join("first.db"), dir.path().join("last.db"));
    let url = TestCluster::shared().create_database();
    let clock = ManualClock::new(1_700_000_000_000);

    // On the embedded store: two refunds wait for a decision with a comment buffered, one
    // refund ends, a reminder sleeps for a day.
    let engine = on_file(&first, &clock).await;
    for (run, cents) in [("refund-1", 100), ("refund-2", 200), ("refund-3", 300)] {
        engine.start(refund, run, cents).await.expect("start");
        until(&engine, run, "waiting", waiting_for("decision")).await;
        let sent = engine
            .send(run, comment(&format!("note on {run}"), &format!("c-{run}")))
            .await
            .expect("send");
        assert_eq!(sent, SignalOutcome::Buffered);
    }
    engine
        .signal("refund-3", "decision", "approve")
        .await
        .expect("signal");
    let ended = output(&engine, refund, "refund-3").await;
    assert_eq!(ended, r#"Ok("paid 300 (note on refund-3)")"#);
    let ended_trace = engine.trace("refund-3").expect("trace");
    engine.start(reminder, "remind-1", 1).await.expect("start");
    until(&engine, "remind-1", "asleep", sleeping).await;
    engine.shutdown().await;
    drop(engine);

    // To PostgreSQL; a second run is refused, and allowed, finds everything there.
    let to_pg = succeeded(&migrate(&format!("file:{}", first.display()), &url, &[]));
    assert!(to_pg.contains("copied: 4;"), "{to_pg}");
    assert!(
        to_pg.contains("2 waiting for a signal, 1 on a timer, 0 ready, 1 ended"),
        "{to_pg}"
    );
    assert!(
        to_pg.contains("2 buffered signals, 3 dedupe keys"),
        "{to_pg}"
    );
    let again = migrate(&format!("file:{}", first.display()), &url, &[]);
    assert!(!again.status.success(), "a second copy was not refused");
    let refused = String::from_utf8_lossy(&again.stderr);
    assert!(refused.contains("already holds 4 run(s)"), "{refused}");
    let resumed = succeeded(&migrate(
        &format!("file:{}", first.display()),
        &url,
        &["--allow-non-empty"],
    ));
    assert!(
        resumed.contains("copied: 0; already in the destination: 4"),
        "{resumed}"
    );

    // On PostgreSQL: the dedupe key came along, the decision reaches refund-1, which consumes
    // the comment buffered before the move, and the reminder's timer fires.
    let engine = on_postgres(&url, &clock).await;
    let resent = engine
        .send("refund-1", comment("again", "c-refund-1"))
        .await
        .expect("send");
    assert_eq!(resent, SignalOutcome::Duplicate);
    until(&engine, "refund-2", "waiting", waiting_for("decision")).await;
    engine
        .signal("refund-1", "decision", "approve")
        .await
        .expect("signal");
    assert_eq!(
        output(&engine, refund, "refund-1").await,
        r#"Ok("paid 100 (note on refund-1)")"#
    );
    clock.advance(Duration::from_secs(86_400 + 1));
    assert_eq!(
        output(&engine, reminder, "remind-1").await,
        r#"Ok("reminded after 1 day(s)")"#
    );
    assert_eq!(output(&engine, refund, "refund-3").await, ended);
    assert_eq!(engine.trace("refund-3").expect("trace"), ended_trace);
    // A run started here parks too, and goes back with the others.
    engine.start(reminder, "remind-2", 2).await.expect("start");
    until(&engine, "remind-2", "asleep", sleeping).await;
    engine.shutdown().await;
    drop(engine);

    // A worker holding a live lease on the source is driving runs: the copy is refused until
    // the lease is given back (or lapses).
    let (holder, lease) = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let store = PgStore::open(&url).expect("the store opens");
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis() as u64;
            let claim = Claim {
                owner: "worker-elsewhere",
                now_ms,
                lease_ms: 3_600_000,
                limit: 1,
                workflows: None,
            };
            let timer = store
                .claim_timers(&claim, u64::MAX)
                .expect("claim")
                .pop()
                .expect("a timer to claim");
            (store, timer.lease)
        })
        .await
        .expect("the claim thread")
    };
    let leased = migrate(&url, &format!("file:{}", last.display()), &[]);
    assert!(
        !leased.status.success(),
        "a source with a live lease was copied"
    );
    let refused = String::from_utf8_lossy(&leased.stderr);
    assert!(refused.contains("leased by a live worker"), "{refused}");
    assert!(!last.exists(), "nothing was created for the refused copy");
    holder.release(&lease).expect("release");
    holder.close().await.expect("close");

    // Back to the embedded store, where the last parked runs finish.
    let back = succeeded(&migrate(&url, &format!("file:{}", last.display()), &[]));
    assert!(back.contains("copied: 5;"), "{back}");
    assert!(
        back.contains("1 waiting for a signal, 1 on a timer, 0 ready, 3 ended"),
        "{back}"
    );
    let engine = on_file(&last, &clock).await;
    let resent = engine
        .send("refund-2", comment("again", "c-refund-2"))
        .await
        .expect("send");
    assert_eq!(resent, SignalOutcome::Duplicate);
    engine
        .signal("refund-2", "decision", "approve")
        .await
        .expect("signal");
    assert_eq!(
        output(&engine, refund, "refund-2").await,
        r#"Ok("paid 200 (note on refund-2)")"#
    );
    clock.advance(Duration::from_secs(2 * 86_400 + 1));
    assert_eq!(
        output(&engine, reminder, "remind-2").await,
        r#"Ok("reminded after 2 day(s)")"#
    );
    assert_eq!(
        output(&engine, refund, "refund-1").await,
        r#"Ok("paid 100 (note on refund-1)")"#
    );
    assert_eq!(output(&engine, refund, "refund-3").await, ended);
    engine.shutdown().await;

    let mut ledger = LEDGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    ledger.sort();
    assert_eq!(
        ledger,
        [
            "notify remind-1",
            "notify remind-2",
            "pay refund-1",
            "pay refund-2",
            "pay refund-3"
        ],
        "each effect once"
    );
}
