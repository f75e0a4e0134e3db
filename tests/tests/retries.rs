//! Step retries on the engine: a flaky step that succeeds on its third attempt with one effect,
//! permanent errors that reach the workflow, exhausted retries, per-attempt timeouts, panics,
//! per-call policies, a restart in the middle of a backoff, and a crash at every commit of a
//! run whose step is retried. The clock is a `ManualClock`: backoffs pass in an instant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use workflow_runtime::TraceKind;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::Command;
use workflow_runtime::testing::{Script, TestEngine, crash_test};

// ------------------------------------------------------------------- a payment provider

/// A stand-in payment provider that de-duplicates on the idempotency key, as real ones do:
/// the number of payments made per key.
fn payments() -> &'static Mutex<HashMap<String, u32>> {
    static PAID: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    PAID.get_or_init(Default::default)
}

fn pay_once(key: &str) -> String {
    let mut paid = payments().lock().unwrap();
    paid.entry(key.to_owned()).or_insert(1);
    format!("receipt:{key}")
}

fn paid(key: &str) -> u32 {
    payments().lock().unwrap().get(key).copied().unwrap_or(0)
}

/// Attempt 1: the provider is unreachable (nothing paid). Attempt 2: it pays, but the response
/// is lost. Attempt 3: it recognises the key and returns the original receipt.
#[function(max_attempts = 5, initial_backoff = "1s", multiplier = 2.0)]
async fn flaky_charge(ctx: StepContext, amount: u64) -> Result<String, StepError> {
    match ctx.attempt() {
        1 => Err(StepError::retryable("connection refused")),
        2 => {
            pay_once(&ctx.idempotency_key());
            Err(StepError::retryable("read timed out").with_details(json!({ "amount": amount })))
        }
        _ => Ok(pay_once(&ctx.idempotency_key())),
    }
}

#[workflow]
async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    let receipt = ctx.step(flaky_charge, amount).await?;
    Ok(receipt)
}

fn kinds(te: &TestEngine, run: &str) -> Vec<TraceKind> {
    te.engine()
        .trace(run)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The attempt events of a trace: `(attempt, Ok(()) or Err(message), duration_ms)`.
fn attempts(te: &TestEngine, run: &str) -> Vec<(u32, Result<(), String>, u64)> {
    kinds(te, run)
        .into_iter()
        .filter_map(|k| match k {
            TraceKind::StepAttemptFailed {
                attempt,
                error,
                duration_ms,
                ..
            } => Some((attempt, Err(error.message), duration_ms)),
            TraceKind::StepCompleted {
                attempt,
                result,
                duration_ms,
                ..
            } => Some((
                attempt,
                result.map(drop).map_err(|e| e.message),
                duration_ms,
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_step_succeeds_on_its_third_attempt_and_pays_once() {
    let te = TestEngine::builder().register(checkout).build().await;
    let run = te.start(checkout, "flaky-1", 40).await.unwrap();
    let key = "flaky-1:flaky_charge:1";

    // The first attempt failed; the second waits out a durable backoff of 1 s.
    let t0 = te.now_ms();
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Retrying {
            step: "flaky_charge".into(),
            attempt: 2,
            not_before_ms: t0 + 1_000,
        }
    );
    assert_eq!(te.calls_of::<flaky_charge>("flaky-1"), 1);
    te.advance(Duration::from_millis(999)).await;
    assert_eq!(te.calls_of::<flaky_charge>("flaky-1"), 1);
    te.advance(Duration::from_millis(1)).await;
    // The second attempt paid and lost the response; the third comes 2 s later.
    assert_eq!(te.calls_of::<flaky_charge>("flaky-1"), 2);
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { attempt: 3, not_before_ms, .. } if not_before_ms == t0 + 3_000
    ));
    te.advance(Duration::from_secs(2)).await;

    assert_eq!(run.result().await.unwrap(), Ok(format!("receipt:{key}")));
    assert_eq!(paid(key), 1, "one effect");
    let calls = te.step_calls();
    let seen: Vec<(u32, &str)> = calls
        .iter()
        .map(|c| (c.attempt, c.idempotency_key.as_str()))
        .collect();
    assert_eq!(seen, [(1, key), (2, key), (3, key)]);
    assert_eq!(
        attempts(&te, "flaky-1"),
        [
            (1, Err("connection refused".to_owned()), 0),
            (2, Err("read timed out".to_owned()), 0),
            (3, Ok(()), 0),
        ]
    );
    // The failed attempt keeps its details in the trace, and the line says when the next runs.
    let lines: Vec<String> = te
        .engine()
        .trace("flaky-1")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let failed = lines
        .iter()
        .find(|l| l.contains("attempt 2 error=\"read timed out\""))
        .unwrap();
    assert!(
        failed.contains("(Retryable)") && failed.contains("next attempt at"),
        "{failed}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("(attempt 3)")),
        "{lines:#?}"
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_a_checkpoint_at_the_same_position_with_the_same_state() {
    let te = TestEngine::builder().register(checkout).build().await;
    te.start(checkout, "cp-1", 7).await.unwrap();
    let cps = te.checkpoints("cp-1");
    assert_eq!(cps.len(), 2, "{cps:#?}");
    let (first, retry) = (&cps[0], &cps[1]);
    assert_eq!(
        (first.seq, first.state.clone()),
        (retry.seq, retry.state.clone())
    );
    let Some(Command::Step {
        attempt,
        not_before_ms,
        ..
    }) = &retry.pending
    else {
        panic!("{retry:?}")
    };
    assert_eq!((*attempt, *not_before_ms), (2, Some(te.now_ms() + 1_000)));
    te.shutdown().await;
}

// ------------------------------------------------------------ permanent errors, compensation

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Order {
    Paid { receipt: String },
    Declined { reason: String, released: String },
}

#[function]
async fn reserve(ctx: StepContext, item: String) -> Result<String, StepError> {
    Ok(format!("hold:{item}:{}", ctx.run_id()))
}

#[function]
async fn release(hold: String) -> Result<String, StepError> {
    Ok(format!("released {hold}"))
}

/// Declines cards that end in 0, permanently; a retry would not change the answer.
#[function(max_attempts = 10)]
async fn charge_card(card: String) -> Result<String, StepError> {
    if card.ends_with('0') {
        Err(StepError::permanent("card declined").with_details(json!({ "code": "do_not_honor" })))
    } else {
        Ok(format!("charged {card}"))
    }
}

#[workflow]
async fn order(
    ctx: &mut WorkflowContext,
    item: String,
    card: String,
) -> Result<Order, WorkflowError> {
    let hold = ctx.step(reserve, item).await?;
    match ctx.step(charge_card, card).await {
        Ok(receipt) => Ok(Order::Paid { receipt }),
        Err(e) => {
            let reason: String = e.message;
            let released = ctx.step(release, hold).await?;
            Ok(Order::Declined { reason, released })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_reaches_the_workflow_at_once_and_it_compensates() {
    let te = TestEngine::builder().register(order).build().await;
    let run = te
        .start(order, "o-1", ("lamp".into(), "4000".into()))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(Order::Declined {
            reason: "card declined".into(),
            released: "released hold:lamp:o-1".into(),
        })
    );
    assert_eq!(te.calls_of::<charge_card>("o-1"), 1, "never retried");
    assert_eq!(te.calls_of::<release>("o-1"), 1);
    assert!(
        !kinds(&te, "o-1")
            .iter()
            .any(|k| matches!(k, TraceKind::StepAttemptFailed { .. }))
    );
    te.shutdown().await;
}

// ----------------------------------------------------------------- exhausted retries

#[function(max_attempts = 3, initial_backoff = "10s", max_backoff = "15s")]
async fn rate_limited(ctx: StepContext) -> Result<u64, StepError> {
    Err(StepError::retryable(format!(
        "429 too many requests (attempt {})",
        ctx.attempt()
    )))
}

#[workflow]
async fn summarize(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let n = ctx.step(rate_limited, ()).await?;
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_run_with_the_last_error() {
    let te = TestEngine::builder().register(summarize).build().await;
    let run = te.start(summarize, "s-1", ()).await.unwrap();
    te.advance(Duration::from_secs(10)).await;
    // The wait doubles to 20 s but is capped at 15 s.
    te.advance(Duration::from_secs(14)).await;
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { attempt: 3, .. }
    ));
    te.advance(Duration::from_secs(1)).await;
    let last = "429 too many requests (attempt 3)";
    assert_eq!(run.result().await.unwrap(), Err(WorkflowError::new(last)));
    assert_eq!(
        run.status().unwrap(),
        RunStatus::Failed {
            message: json!({ "message": last }).to_string()
        }
    );
    let got: Vec<(u32, Result<(), String>)> = attempts(&te, "s-1")
        .into_iter()
        .map(|(a, r, _)| (a, r))
        .collect();
    assert_eq!(
        got,
        [
            (1, Err("429 too many requests (attempt 1)".into())),
            (2, Err("429 too many requests (attempt 2)".into())),
            (3, Err(last.into())),
        ]
    );
    te.shutdown().await;
}

// ------------------------------------------------------------------------- timeouts

/// Set when the hanging attempt's future is dropped, i.e. when it was really cut off.
static HANG_DROPPED: AtomicBool = AtomicBool::new(false);
/// Set if an attempt started while the hanging one was still alive.
static OVERLAP: AtomicBool = AtomicBool::new(false);

struct DropFlag;

impl Drop for DropFlag {
    fn drop(&mut self) {
        HANG_DROPPED.store(true, Ordering::SeqCst);
    }
}

/// The model call hangs on its first attempt and answers on the second.
#[function(timeout = "30s", initial_backoff = "5s")]
async fn ask_model(ctx: StepContext, prompt: String) -> Result<String, StepError> {
    if ctx.attempt() == 1 {
        let _flag = DropFlag;
        std::future::pending::<()>().await;
    }
    if !HANG_DROPPED.load(Ordering::SeqCst) {
        OVERLAP.store(true, Ordering::SeqCst);
    }
    Ok(format!("answer to {prompt}"))
}

#[workflow]
async fn assistant(ctx: &mut WorkflowContext, prompt: String) -> Result<String, WorkflowError> {
    let answer = ctx.step(ask_model, prompt).await?;
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_step_is_cut_off_by_its_timeout_and_retried() {
    let te = TestEngine::builder().register(assistant).build().await;
    // Not `te.start`: it would wait for the hanging attempt.
    let run = te
        .engine()
        .start(assistant, "a-1", "hello".into())
        .await
        .unwrap();
    // Only the clock: running until idle would wait for the hanging attempt.
    te.clock().advance(Duration::from_secs(29));
    assert_eq!(run.status().unwrap(), RunStatus::Running);
    // At 30 s on the engine's clock the attempt is cut off; now the engine can go idle.
    te.advance(Duration::from_secs(1)).await;
    assert!(HANG_DROPPED.load(Ordering::SeqCst));
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { attempt: 2, .. }
    ));
    let failed = kinds(&te, "a-1")
        .into_iter()
        .find_map(|k| match k {
            TraceKind::StepAttemptFailed {
                error, duration_ms, ..
            } => Some((error, duration_ms)),
            _ => None,
        })
        .unwrap();
    assert!(failed.0.is_retryable());
    assert_eq!(
        failed.0.message,
        "step `ask_model` timed out after 30s (attempt 1)"
    );
    assert_eq!(failed.0.details, Some(json!({ "timeout_ms": 30_000 })));
    assert_eq!(failed.1, 30_000);
    te.advance(Duration::from_secs(5)).await;
    assert_eq!(run.result().await.unwrap(), Ok("answer to hello".into()));
    assert!(!OVERLAP.load(Ordering::SeqCst), "two attempts ran at once");
    // Only the second attempt reported back; the first never returned.
    let calls: Vec<u32> = te.step_calls().iter().map(|c| c.attempt).collect();
    assert_eq!(calls, [2]);
    te.shutdown().await;
}

// --------------------------------------------------------------------------- panics

static PANICS: AtomicU32 = AtomicU32::new(0);

#[function]
async fn explode() -> Result<u64, StepError> {
    PANICS.fetch_add(1, Ordering::SeqCst);
    panic!("the parser fell over");
}

#[function(retry_panics = true, initial_backoff = "1s")]
async fn explode_once(ctx: StepContext) -> Result<u64, StepError> {
    if ctx.attempt() == 1 {
        panic!("flaky native library");
    }
    Ok(7)
}

#[workflow]
async fn fragile(ctx: &mut WorkflowContext, retry: bool) -> Result<u64, WorkflowError> {
    if retry {
        let n = ctx.step(explode_once, ()).await?;
        return Ok(n);
    }
    match ctx.step(explode, ()).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind == StepErrorKind::Permanent => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_permanent_unless_the_policy_retries_panics() {
    let te = TestEngine::builder().register(fragile).build().await;
    let run = te.start(fragile, "p-1", false).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(0));
    assert_eq!(PANICS.load(Ordering::SeqCst), 1);

    let run = te.start(fragile, "p-2", true).await.unwrap();
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { attempt: 2, .. }
    ));
    te.advance(Duration::from_secs(1)).await;
    assert_eq!(run.result().await.unwrap(), Ok(7));
    te.shutdown().await;
}

// ------------------------------------------------------------------- per-call policies

/// Fails until its fourth attempt; its own policy allows only two.
#[function(max_attempts = 2)]
async fn slow_to_warm(ctx: StepContext) -> Result<u32, StepError> {
    if ctx.attempt() < 4 {
        Err(StepError::retryable("cold start"))
    } else {
        Ok(ctx.attempt())
    }
}

const PATIENT: RetryPolicy = RetryPolicy::DEFAULT
    .max_attempts(4)
    .initial_backoff(Duration::from_millis(100))
    .multiplier(1.0);

#[workflow]
async fn warm_up(ctx: &mut WorkflowContext, patient: bool) -> Result<String, WorkflowError> {
    if patient {
        let n = ctx.step(slow_to_warm, ()).retry(PATIENT).await?;
        return Ok(format!("warm after {n}"));
    }
    let quick = RetryPolicy::NO_RETRY;
    #[state(SlowToWarmOnce)]
    let once = ctx.step(slow_to_warm, ()).retry(quick).await;
    match once {
        Ok(n) => Ok(format!("warm after {n}")),
        Err(e) => Ok(format!("gave up: {}", e.message)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_overrides_the_policy_for_one_call() {
    let te = TestEngine::builder().register(warm_up).build().await;
    let run = te.start(warm_up, "w-1", true).await.unwrap();
    for _ in 0..3 {
        te.advance(Duration::from_millis(100)).await;
    }
    assert_eq!(run.result().await.unwrap(), Ok("warm after 4".into()));
    assert_eq!(te.calls_of::<slow_to_warm>("w-1"), 4);
    // The chosen policy is stored with the pending step.
    let first = &te.checkpoints("w-1")[0];
    assert!(matches!(
        &first.pending,
        Some(Command::Step { retry: Some(p), .. }) if *p == PATIENT
    ));

    let run = te.start(warm_up, "w-2", false).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("gave up: cold start".into())
    );
    assert_eq!(te.calls_of::<slow_to_warm>("w-2"), 1);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_the_functions_and_not_part_of_the_stored_layout() {
    assert_eq!(<flaky_charge as Function>::RETRY.max_attempts, 5);
    assert_eq!(
        <ask_model as Function>::RETRY.timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        <rate_limited as Function>::RETRY,
        RetryPolicy::DEFAULT
            .initial_backoff(Duration::from_secs(10))
            .max_backoff(Duration::from_secs(15))
    );
    assert_eq!(<reserve as Function>::RETRY, RetryPolicy::DEFAULT);
}

// ------------------------------------------------------------- restarts and crashes

/// Fails on its first attempt.
#[function(initial_backoff = "1m")]
async fn sync_crm(ctx: StepContext, id: String) -> Result<String, StepError> {
    if ctx.attempt() == 1 {
        Err(StepError::retryable("503 service unavailable"))
    } else {
        Ok(format!("synced {id}"))
    }
}

#[workflow]
async fn onboarding(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let synced = ctx.step(sync_crm, id).await?;
    Ok(synced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_backoff_waits_only_for_what_is_left() {
    let mut te = TestEngine::builder().register(onboarding).build().await;
    let run = te.start(onboarding, "c-1", "C-7".into()).await.unwrap();
    let deadline = te.now_ms() + 60_000;
    te.advance(Duration::from_secs(20)).await;
    te.restart().await;
    // The same deadline, not a fresh minute; the attempt did not run again on restart.
    assert_eq!(
        te.engine().status("c-1").unwrap(),
        RunStatus::Retrying {
            step: "sync_crm".into(),
            attempt: 2,
            not_before_ms: deadline,
        }
    );
    assert_eq!(te.calls_of::<sync_crm>("c-1"), 1);
    te.advance(Duration::from_secs(39)).await;
    assert_eq!(te.calls_of::<sync_crm>("c-1"), 1);
    te.restart().await;
    te.advance(Duration::from_secs(1)).await;
    assert_eq!(te.calls_of::<sync_crm>("c-1"), 2);
    drop(run);
    let run = te.engine().handle(onboarding, "c-1").unwrap();
    assert_eq!(run.result().await.unwrap(), Ok("synced C-7".into()));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_step_is_retried_survives_a_crash_at_every_commit() {
    let report = crash_test(
        TestEngine::builder().register(checkout),
        checkout,
        25,
        Script::new()
            .advance(Duration::from_secs(1))
            .advance(Duration::from_secs(2)),
    )
    .await;
    report.assert_ok();
    assert_eq!(
        report.outcome.as_ref().unwrap()["Ok"],
        "receipt:crash-test:flaky_charge:1"
    );
    // Start, two retries, the result.
    assert_eq!(report.commits, 4, "{report}");
    assert_eq!(report.keys, ["crash-test:flaky_charge:1"]);
    assert!(report.cases.iter().all(|c| c.crashed));
    te_lines_have_three_attempts(&report.trace);
}

fn te_lines_have_three_attempts(trace: &[String]) {
    let failed = trace
        .iter()
        .filter(|l| l.contains("step_attempt_failed"))
        .count();
    let completed = trace
        .iter()
        .filter(|l| l.contains("step_completed") && l.ends_with("(attempt 3)"))
        .count();
    assert_eq!((failed, completed), (2, 1), "{trace:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_in_backoff_resumes_elsewhere_with_its_deadline() {
    let te = TestEngine::builder().register(onboarding).build().await;
    te.start(onboarding, "r-1", "C-1".into()).await.unwrap();
    let retry = te.checkpoints("r-1").last().cloned().unwrap();
    let deadline = te.now_ms() + 60_000;
    te.shutdown().await;

    let other = TestEngine::builder().register(onboarding).build().await;
    let run = other
        .resume_from(onboarding, "r-1-copy", &retry)
        .await
        .unwrap();
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { attempt: 2, not_before_ms, .. } if not_before_ms == deadline
    ));
    assert_eq!(other.calls_of::<sync_crm>("r-1-copy"), 0);
    other.advance(Duration::from_secs(60)).await;
    assert_eq!(run.result().await.unwrap(), Ok("synced C-1".into()));
    let calls: Vec<u32> = other.step_calls().iter().map(|c| c.attempt).collect();
    assert_eq!(calls, [2]);
    other.shutdown().await;
}
