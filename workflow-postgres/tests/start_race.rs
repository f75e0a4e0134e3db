//! Two processes creating one run id at the same instant, over one PostgreSQL database: two
//! `Engine::start` calls racing from two shared engines (two workers, or a worker and a front
//! end), `signal_with_start` racing `start`, and a parent creating a child under an id that an
//! `Engine::start` elsewhere takes at the same instant. Each race makes one run, started once
//! (one `started` event), and gives each caller the answer the exclusive engine gives for an
//! id that exists: the same run for the same workflow and input, a conflict otherwise.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Barrier;
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::prelude::*;
use workflow_runtime::{ChildErrorKind, LeaseSettings, StartError, TraceKind};

#[function]
async fn double(n: u64) -> Result<u64, StepError> {
    Ok(n * 2)
}

#[workflow]
async fn calc(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.step(double, n).await?)
}

#[workflow]
async fn inbox(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let extra = ctx
        .wait_for_signal::<u64>("add", Duration::from_secs(3_600), ())
        .await?;
    Ok(n + extra)
}

/// Awaits a child under a given id: `race-child-<n>`.
#[workflow]
async fn parent(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let out = ctx.child(calc, n).id(format!("race-child-{n}")).await;
    Ok(match out {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("{:?}", e.kind),
    })
}

const PATIENCE: Duration = Duration::from_secs(60);

async fn engine(url: &str, owner: &str, workflows: bool) -> Engine {
    let store = PgStore::open_async(url).await.expect("the store opens");
    let settings = LeaseSettings::new(Duration::from_secs(5))
        .poll_every(Duration::from_millis(50))
        .owner(owner);
    let builder = Engine::builder().shared(settings);
    let builder = match workflows {
        true => builder.register(calc).register(inbox).register(parent),
        false => builder,
    };
    builder.open_store(store).await.expect("the engine opens")
}

fn started(engine: &Engine, run: &str) -> usize {
    engine
        .trace(run)
        .expect("trace")
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::Started { .. }))
        .count()
}

async fn result<W: Workflow>(engine: &Engine, w: W, run: &str) -> W::Output {
    let handle = engine.handle(w, run).expect("a handle");
    tokio::time::timeout(PATIENCE, handle.result())
        .await
        .unwrap_or_else(|_| panic!("{run} did not finish"))
        .expect("a result")
}

/// Starts `run` on both engines at once, with inputs `x` and `y`; both answers.
async fn race(
    a: &Engine,
    b: &Engine,
    run: &str,
    x: u64,
    y: u64,
) -> [Result<String, StartError>; 2] {
    let gate = Arc::new(Barrier::new(2));
    let go = |e: &Engine, input: u64| {
        let (e, gate, run) = (e.clone(), gate.clone(), run.to_owned());
        tokio::spawn(async move {
            gate.wait().await;
            e.start(calc, run, input)
                .await
                .map(|h| h.run_id().to_owned())
        })
    };
    let (first, second) = (go(a, x), go(b, y));
    [
        first.await.expect("the first start"),
        second.await.expect("the second start"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_starts_of_one_id_make_one_run_and_one_answer_each() {
    let url = TestCluster::shared().create_database();
    let a = engine(&url, "a", true).await;
    let b = engine(&url, "b", true).await;
    let front = engine(&url, "front", false).await;
    let rounds = 40;
    let mut conflicts = 0;
    for i in 0..rounds {
        // Two workers, and a worker against a front end, in turns.
        let other = if i % 2 == 0 { &b } else { &front };
        // The same input: both get the one run.
        let same = format!("same-{i}");
        let [x, y] = race(&a, other, &same, i, i).await;
        assert_eq!(x.as_deref(), Ok(same.as_str()), "{same}");
        assert_eq!(y.as_deref(), Ok(same.as_str()), "{same}");
        assert_eq!(result(&a, calc, &same).await, Ok(2 * i));
        assert_eq!(started(&a, &same), 1, "{same} was started twice");

        // Another input: one creates the run, the other is told the id is taken.
        let clash = format!("clash-{i}");
        let [x, y] = race(&a, other, &clash, i, 1_000 + i).await;
        let winner = match (&x, &y) {
            (Ok(_), Err(StartError::Conflict { reason, .. }))
                if reason == "with a different input" =>
            {
                i
            }
            (Err(StartError::Conflict { reason, .. }), Ok(_))
                if reason == "with a different input" =>
            {
                1_000 + i
            }
            other => panic!("{clash}: two creations or no answer: {other:?}"),
        };
        conflicts += 1;
        assert_eq!(result(&a, calc, &clash).await, Ok(2 * winner), "{clash}");
        assert_eq!(started(&a, &clash), 1, "{clash} was started twice");
    }
    assert_eq!(conflicts, rounds);
    let stored = a
        .runs(&workflow_runtime::RunFilter {
            limit: Some(1_000),
            ..Default::default()
        })
        .expect("runs")
        .runs
        .len();
    assert_eq!(stored, 2 * rounds as usize, "one run per id");
    for e in [a, b, front] {
        e.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signal_with_start_racing_start_delivers_to_the_one_run() {
    let url = TestCluster::shared().create_database();
    let a = engine(&url, "a", true).await;
    let b = engine(&url, "b", true).await;
    for i in 0..20_u64 {
        let run = format!("sws-{i}");
        let gate = Arc::new(Barrier::new(2));
        let starting = {
            let (a, gate, run) = (a.clone(), gate.clone(), run.clone());
            tokio::spawn(async move {
                gate.wait().await;
                a.start(inbox, run, i).await.map(|_| ())
            })
        };
        let signalling = {
            let (b, gate, run) = (b.clone(), gate.clone(), run.clone());
            tokio::spawn(async move {
                gate.wait().await;
                b.signal_with_start(inbox, run, i, Signal::new("add", 5_u64))
                    .await
                    .map(|(_, outcome)| outcome)
            })
        };
        starting.await.expect("task").expect("the start");
        let outcome = signalling.await.expect("task").expect("the signal");
        assert!(
            matches!(outcome, SignalOutcome::Delivered | SignalOutcome::Buffered),
            "{run}: {outcome:?}"
        );
        assert_eq!(result(&a, inbox, &run).await, Ok(i + 5), "{run}");
        assert_eq!(started(&a, &run), 1, "{run} was started twice");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_child_id_taken_by_a_concurrent_start_is_adopted_or_refused_once() {
    let url = TestCluster::shared().create_database();
    let a = engine(&url, "a", true).await;
    let b = engine(&url, "b", true).await;
    let began = Instant::now();
    for i in 0..30_u64 {
        // Even rounds start the child's id with the child's own input (adopted by the parent),
        // odd rounds with another input (a conflict for whichever comes second).
        let child = format!("race-child-{i}");
        let input = if i % 2 == 0 { i } else { 1_000 + i };
        let gate = Arc::new(Barrier::new(2));
        let parenting = {
            let (a, gate) = (a.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                a.start(parent, format!("race-parent-{i}"), i)
                    .await
                    .map(|_| ())
            })
        };
        let starting = {
            let (b, gate, child) = (b.clone(), gate.clone(), child.clone());
            tokio::spawn(async move {
                gate.wait().await;
                b.start(calc, child, input).await.map(|_| ())
            })
        };
        parenting.await.expect("task").expect("the parent starts");
        let direct = starting.await.expect("task");
        let out = result(&a, parent, &format!("race-parent-{i}")).await;
        assert_eq!(started(&a, &child), 1, "{child} was started twice");
        let stored = result(&a, calc, &child).await;
        if i % 2 == 0 {
            direct.expect("the same run: adopted");
            assert_eq!(out, Ok(format!("ok {}", 2 * i)));
        } else {
            match direct {
                // The start came first: the parent's child is a conflict.
                Ok(()) => {
                    assert_eq!(out, Ok(format!("{:?}", ChildErrorKind::Conflict)));
                    assert_eq!(stored, Ok(2 * input));
                }
                // The parent came first: the start is refused.
                Err(StartError::Conflict { .. }) => {
                    assert_eq!(out, Ok(format!("ok {}", 2 * i)));
                    assert_eq!(stored, Ok(2 * i));
                }
                Err(e) => panic!("{child}: {e}"),
            }
        }
    }
    println!("30 child races in {:?}", began.elapsed());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_start_at_of_one_id_make_one_schedule_and_one_run() {
    let url = TestCluster::shared().create_database();
    let a = engine(&url, "a", true).await;
    let b = engine(&url, "b", true).await;
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("in range");
    for i in 0..20_u64 {
        let run = format!("at-{i}");
        let gate = Arc::new(Barrier::new(2));
        let go = |e: &Engine| {
            let (e, gate, run) = (e.clone(), gate.clone(), run.clone());
            tokio::spawn(async move {
                gate.wait().await;
                e.start_at(calc, run, i, now_ms).await.map(|_| ())
            })
        };
        let (x, y) = (go(&a), go(&b));
        x.await.expect("task").expect("the first start_at");
        y.await.expect("task").expect("the second start_at");
        // The schedule fires (its time has passed) on whichever worker claims its timer.
        let deadline = Instant::now() + PATIENCE;
        while a.status(&run).is_err() {
            assert!(Instant::now() < deadline, "{run} never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(result(&a, calc, &run).await, Ok(2 * i), "{run}");
        assert_eq!(started(&a, &run), 1, "{run} was started twice");
    }
    a.shutdown().await;
    b.shutdown().await;
}
