//! Child workflows on engines in shared mode over one PostgreSQL database, in one process:
//! every form (an awaited child, a detached one, a fan-out, a child of a child) started by a
//! front end and driven by two workers; a child that ends on one worker while its parent is
//! leased by another process, or driven by nobody until a worker that registers it opens;
//! cancel and terminate of a parent whose children another worker may hold. Each child is
//! created once (one `started` event, one run per id) and each effect happens once per
//! idempotency key. The process-death test is `children_workers.rs`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::prelude::*;
use workflow_runtime::store::{Claim, Store};
use workflow_runtime::{LeaseSettings, TraceKind};

/// Which engine a step ran on.
struct WorkerName(&'static str);

/// Every effect by idempotency key, with the workers that applied it (the external system's
/// view: a repeated key is one effect).
fn effects() -> &'static Mutex<HashMap<String, Vec<&'static str>>> {
    static EFFECTS: std::sync::OnceLock<Mutex<HashMap<String, Vec<&'static str>>>> =
        std::sync::OnceLock::new();
    EFFECTS.get_or_init(Mutex::default)
}

#[function]
async fn price(ctx: StepContext, sku: String) -> Result<u64, StepError> {
    let worker = ctx.data::<WorkerName>()?.0;
    tokio::time::sleep(Duration::from_millis(5)).await;
    effects()
        .lock()
        .unwrap()
        .entry(ctx.idempotency_key())
        .or_default()
        .push(worker);
    Ok(sku.len() as u64 * 100)
}

#[workflow]
async fn quote(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    Ok(ctx.step(price, sku).await?)
}

#[workflow]
async fn line_review(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    let cents = ctx.step(price, sku.clone()).await?;
    let ok = ctx
        .wait_for_signal::<bool>("approve", Duration::from_secs(3_600), cents)
        .await?;
    if !ok {
        return Err(WorkflowError::new(format!("{sku} was rejected")));
    }
    // Runs on whichever worker took the signal.
    let checked = ctx.step(price, format!("{sku}!")).await?;
    Ok(cents + checked)
}

/// Steps that have begun, by idempotency key.
fn begun() -> &'static Mutex<Vec<String>> {
    static BEGUN: std::sync::OnceLock<Mutex<Vec<String>>> = std::sync::OnceLock::new();
    BEGUN.get_or_init(Mutex::default)
}

#[function]
async fn slow_price(ctx: StepContext, sku: String) -> Result<u64, StepError> {
    begun().lock().unwrap().push(ctx.idempotency_key());
    tokio::time::sleep(Duration::from_millis(400)).await;
    price(ctx, sku).await
}

#[workflow]
async fn slow_review(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    // The slow step is the second: its worker keeps the record its commit scheduled it with
    // and does not read the run again before it writes the step's result.
    let first = ctx.step(price, sku.clone()).await?;
    let slow = ctx.step(slow_price, sku).await?;
    let cents: u64 = first + slow;
    let ok = ctx
        .wait_for_signal::<bool>("approve", Duration::from_secs(3_600), cents)
        .await?;
    Ok(if ok { cents } else { 0 })
}

#[workflow]
async fn slow_order(ctx: &mut WorkflowContext, skus: Vec<String>) -> Result<u64, WorkflowError> {
    let results = ctx.fan_out_children(slow_review, skus).await;
    let mut sum = 0;
    for r in results {
        sum += r?;
    }
    Ok(sum)
}

#[workflow]
async fn single(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let cents = ctx.child(quote, sku.clone()).await?;
    Ok(format!("{sku}: {cents}"))
}

#[workflow]
async fn fire(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let child = ctx.start_child(quote, sku).await;
    let cents = ctx.step(price, "after".to_owned()).await?;
    Ok(format!("{child} {cents}"))
}

#[workflow]
async fn nested(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let inner = ctx.child(single, sku).await?;
    Ok(format!("[{inner}]"))
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, skus: Vec<String>) -> Result<Vec<String>, WorkflowError> {
    let results = ctx.fan_out_children(line_review, skus).await;
    let total = ctx.step(price, "total".to_owned()).await?;
    let mut lines: Vec<String> = results
        .into_iter()
        .map(|r| match r {
            Ok(cents) => cents.to_string(),
            Err(e) => format!("{:?}", e.kind),
        })
        .collect();
    lines.push(total.to_string());
    Ok(lines)
}

fn settings(owner: &str) -> LeaseSettings {
    LeaseSettings::new(Duration::from_secs(3))
        .renew_every(Duration::from_millis(500))
        .poll_every(Duration::from_millis(50))
        .owner(owner)
}

async fn open(url: &str) -> PgStore {
    PgStore::open_async(url).await.expect("the store opens")
}

/// A worker that registers every workflow of this file.
async fn worker(url: &str, name: &'static str) -> Engine {
    Engine::builder()
        .register(quote)
        .register(line_review)
        .register(single)
        .register(fire)
        .register(nested)
        .register(order)
        .register(slow_review)
        .register(slow_order)
        .data(WorkerName(name))
        .shared(settings(name))
        .open_store(open(url).await)
        .await
        .expect("the worker opens")
}

/// A worker that drives the reviews only, never their parents.
async fn review_worker(url: &str, name: &'static str) -> Engine {
    Engine::builder()
        .register(line_review)
        .data(WorkerName(name))
        .shared(settings(name))
        .open_store(open(url).await)
        .await
        .expect("the review worker opens")
}

async fn front_end(url: &str) -> Engine {
    Engine::builder()
        .shared(settings("front"))
        .open_store(open(url).await)
        .await
        .expect("the front end opens")
}

const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `n` reviews whose run id starts with `prefix` wait for their approval; their
/// run ids.
async fn reviews_waiting(engine: &Engine, prefix: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut waiting: Vec<String> = engine
            .pending()
            .expect("pending")
            .into_iter()
            .filter(|w| w.workflow == "line_review" && w.run_id.starts_with(prefix))
            .map(|w| w.run_id)
            .collect();
        if waiting.len() >= n {
            waiting.sort();
            assert_eq!(waiting.len(), n, "{waiting:?}");
            return waiting;
        }
        assert!(Instant::now() < deadline, "only {waiting:?} waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn result_of<W: Workflow>(engine: &Engine, w: W, run: &str) -> W::Output {
    let handle = engine.handle(w, run).expect("a handle");
    tokio::time::timeout(PATIENCE, handle.result())
        .await
        .unwrap_or_else(|_| panic!("run {run} did not finish"))
        .expect("a result")
}

/// Every run under `prefix` was created once (one `started` event), there are `runs` of them,
/// and the effects under `prefix` are `keys` distinct idempotency keys.
fn assert_once(engine: &Engine, prefix: &str, runs: usize, keys: usize) {
    let stored: Vec<String> = engine
        .runs(&workflow_runtime::RunFilter {
            limit: Some(500),
            ..Default::default()
        })
        .expect("runs")
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .filter(|id| id.starts_with(prefix))
        .collect();
    assert_eq!(stored.len(), runs, "{stored:?}");
    for run in &stored {
        let started = engine
            .trace(run)
            .expect("trace")
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Started { .. }))
            .count();
        assert_eq!(started, 1, "{run} was started {started} times");
    }
    let effects = effects().lock().unwrap();
    let mine: Vec<&String> = effects.keys().filter(|k| k.starts_with(prefix)).collect();
    assert_eq!(mine.len(), keys, "{mine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_of_child_runs_across_two_workers() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    let b = worker(&url, "b").await;
    let front = front_end(&url).await;

    for i in 0..4 {
        front
            .start(single, format!("every-s{i}"), "abc".into())
            .await
            .expect("start");
        // A detached child is created by the transition that starts it, so by a process
        // that registers its workflow: a worker starts these.
        a.start(fire, format!("every-f{i}"), "xy".into())
            .await
            .expect("start");
        front
            .start(nested, format!("every-n{i}"), "q".into())
            .await
            .expect("start");
        front
            .start(order, format!("every-o{i}"), vec!["a".into(), "bb".into()])
            .await
            .expect("start");
    }
    // The front end drives nothing: the reviews' approvals are buffered for the workers.
    for review in reviews_waiting(&front, "every-o", 8).await {
        let outcome = front
            .signal(&review, "approve", true)
            .await
            .expect("signal");
        assert_eq!(outcome, SignalOutcome::Buffered);
    }
    for i in 0..4 {
        assert_eq!(
            result_of(&front, single, &format!("every-s{i}")).await,
            Ok("abc: 300".to_owned())
        );
        assert_eq!(
            result_of(&front, fire, &format!("every-f{i}")).await,
            Ok(format!("every-f{i}/quote-1 500"))
        );
        assert_eq!(
            result_of(&front, nested, &format!("every-n{i}")).await,
            Ok("[q: 100]".to_owned())
        );
        assert_eq!(
            result_of(&front, order, &format!("every-o{i}")).await,
            Ok(vec!["300".into(), "500".into(), "500".into()])
        );
        // The detached child ends on its own.
        assert_eq!(
            result_of(&front, quote, &format!("every-f{i}/quote-1")).await,
            Ok(200)
        );
    }
    // Per group of four: single 2 runs 1 key; fire 2 runs 2 keys; nested 3 runs 1 key;
    // order 3 runs 5 keys (each review prices twice, the parent once).
    assert_once(&front, "every-", 4 * (2 + 2 + 3 + 3), 4 * (1 + 2 + 1 + 5));
    let by_worker = effects()
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("every-"))
        .flat_map(|(_, w)| w.clone())
        .fold(HashMap::<&str, usize>::new(), |mut m, w| {
            *m.entry(w).or_default() += 1;
            m
        });
    println!("effects by worker: {by_worker:?}");
    front.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

fn ended(status: &RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Completed
            | RunStatus::Failed { .. }
            | RunStatus::Cancelled { .. }
            | RunStatus::Terminated { .. }
    )
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_ending_on_another_worker_reaches_a_parent_leased_elsewhere() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    let b = review_worker(&url, "b").await;
    a.start(order, "held-1", vec!["abc".into()])
        .await
        .expect("start");
    let reviews = reviews_waiting(&a, "held-1", 1).await;

    // Another process holds the parent's lease (a worker in the middle of something) while
    // the child ends on b, which does not even register the parent's workflow.
    let holder = open(&url).await;
    let claim = Claim {
        owner: "holder",
        now_ms: wall_ms(),
        lease_ms: 2_000,
        limit: 1,
        workflows: None,
    };
    let deadline = Instant::now() + PATIENCE;
    while holder.claim_run(&claim, "held-1").expect("claim").is_none() {
        assert!(Instant::now() < deadline, "the parent was never free");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.signal(&reviews[0], "approve", true)
        .await
        .expect("signal");
    // The review's last step ran on b, and its outcome reached the parent, which a drove to
    // its end once the holder's lease lapsed.
    assert_eq!(
        result_of(&a, order, "held-1").await,
        Ok(vec!["700".into(), "500".into()])
    );
    let checked = format!("{}:price:", reviews[0]);
    let ran_on: Vec<&str> = effects()
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with(&checked))
        .flat_map(|(_, w)| w.clone())
        .collect();
    assert!(ran_on.contains(&"b"), "{ran_on:?}");
    assert_once(&a, "held-", 2, 3);
    let ended = a
        .trace("held-1")
        .expect("trace")
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::ChildEnded { .. }))
        .count();
    assert_eq!(ended, 1, "the outcome reached the parent once");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_nobody_drives_gets_its_childs_outcome_from_the_next_worker() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    a.start(order, "alone-1", vec!["abc".into(), "d".into()])
        .await
        .expect("start");
    let reviews = reviews_waiting(&a, "alone-1", 2).await;
    // The only worker that registers the parent goes away.
    a.shutdown().await;
    let b = review_worker(&url, "b").await;
    b.signal(&reviews[0], "approve", true)
        .await
        .expect("signal");
    b.signal(&reviews[1], "approve", false)
        .await
        .expect("signal");
    let deadline = Instant::now() + PATIENCE;
    while reviews
        .iter()
        .any(|r| !ended(&b.status(r).expect("status")))
    {
        assert!(Instant::now() < deadline, "the reviews never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The children ended on b; the parent still waits for a worker that can drive it.
    assert!(!ended(&b.status("alone-1").expect("status")));
    let c = worker(&url, "c").await;
    assert_eq!(
        result_of(&c, order, "alone-1").await,
        Ok(vec!["700".into(), "Failed".into(), "500".into()])
    );
    // abc: price twice; d: price once (rejected); total once.
    assert_once(&c, "alone-", 3, 4);
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_terminate_reach_children_across_workers() {
    let url = TestCluster::shared().create_database();
    let a = worker(&url, "a").await;
    let b = worker(&url, "b").await;
    a.start(order, "cancel-1", vec!["a".into(), "bb".into()])
        .await
        .expect("start");
    a.start(order, "term-1", vec!["a".into(), "bb".into()])
        .await
        .expect("start");
    let cancelled = reviews_waiting(&a, "cancel-1", 2).await;
    let terminated = reviews_waiting(&a, "term-1", 2).await;

    // Cancelled through b: the children are cancelled, and their outcomes reach the parent.
    b.cancel("cancel-1", "customer left").await.expect("cancel");
    let handle = a.handle(order, "cancel-1").expect("a handle");
    let out = tokio::time::timeout(PATIENCE, handle.result())
        .await
        .expect("the parent ends");
    assert!(
        matches!(
            out,
            Err(workflow_runtime::ResultError::Stopped {
                status: RunStatus::Cancelled { .. },
                ..
            })
        ),
        "{out:?}"
    );
    let ended = a
        .trace("cancel-1")
        .expect("trace")
        .iter()
        .filter(|e| matches!(&e.kind, TraceKind::ChildEnded { result: Err(e), .. } if e.kind == workflow_runtime::ChildErrorKind::Cancelled))
        .count();
    assert_eq!(ended, 2, "both cancellations reached the parent, once each");
    for child in &cancelled {
        assert!(
            matches!(
                a.status(child).expect("status"),
                RunStatus::Cancelled { .. }
            ),
            "{child}"
        );
    }
    // Terminated through a: parent and children end in one commit.
    a.terminate("term-1", "fraud").await.expect("terminate");
    assert!(matches!(
        b.status("term-1").expect("status"),
        RunStatus::Terminated { .. }
    ));
    for child in &terminated {
        assert!(
            matches!(
                b.status(child).expect("status"),
                RunStatus::Terminated { .. }
            ),
            "{child}"
        );
    }
    // Nothing moves them afterwards.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for child in &terminated {
        assert!(matches!(
            a.status(child).expect("status"),
            RunStatus::Terminated { .. }
        ));
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_waits_for_a_child_step_another_worker_runs() {
    let url = TestCluster::shared().create_database();
    // The reviews' steps run on a, the only worker; the front end terminates their parent.
    let a = worker(&url, "a").await;
    let b = front_end(&url).await;
    a.start(slow_order, "busy-1", vec!["abc".into(), "de".into()])
        .await
        .expect("start");
    let deadline = Instant::now() + PATIENCE;
    while begun()
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.starts_with("busy-1/"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the reviews' steps never began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.terminate("busy-1", "fraud").await.expect("terminate");
    let children: Vec<String> = a
        .runs(&workflow_runtime::RunFilter {
            workflow: Some("slow_review".into()),
            ..Default::default()
        })
        .expect("runs")
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(children.len(), 2, "{children:?}");
    // The worker that ran a child's step could not write over its termination afterwards.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(matches!(
        a.status("busy-1").expect("status"),
        RunStatus::Terminated { .. }
    ));
    for child in &children {
        assert!(
            matches!(
                a.status(child).expect("status"),
                RunStatus::Terminated { .. }
            ),
            "{child}: {:?}",
            a.status(child)
        );
        let after = a
            .trace(child)
            .expect("trace")
            .into_iter()
            .skip_while(|e| !matches!(e.kind, TraceKind::Terminated { .. }))
            .count();
        assert_eq!(
            after, 1,
            "{child}: nothing was written after its termination"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}
