//! The testing toolkit on real workflows: doubles, the manual clock, recorded checkpoints,
//! resuming from a recorded or hand-built state, restarts, and a crash at every commit.

use std::sync::atomic::{AtomicU64, Ordering};

use integration_tests::workflows::{add, echo, inclusive_range, kitchen_sink, no_params};
use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::Command;
use workflow_runtime::testing::{CrashMoment, Script, TestEngine, crash_test};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Decision {
    approved: bool,
    amount: u64,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Outcome {
    Refunded { receipt: String },
    NotApproved { reason: String },
    TimedOut,
}

#[function]
async fn draft(ticket: String, notes: Option<String>) -> Result<u64, StepError> {
    Ok(if notes.is_some() { 40 } else { 50 } + ticket.len() as u64)
}

#[function]
async fn pay(ctx: StepContext, ticket: String, amount: u64) -> Result<String, StepError> {
    Ok(format!("{}:{ticket}:{amount}", ctx.idempotency_key()))
}

#[workflow]
async fn review(ctx: &mut WorkflowContext, ticket: String) -> Result<Outcome, WorkflowError> {
    let mut notes: Option<String> = None;
    loop {
        let amount = ctx.step(draft, (ticket.clone(), notes.clone())).await?;
        let decision = match ctx
            .wait_for_signal::<Decision>(
                "decision",
                Duration::from_secs(7 * 86_400),
                json!({ "amount": amount }),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(Outcome::TimedOut),
        };
        if decision.approved {
            let receipt = ctx.step(pay, (ticket.clone(), decision.amount)).await?;
            return Ok(Outcome::Refunded { receipt });
        }
        if decision.reason == "no" {
            return Ok(Outcome::NotApproved {
                reason: decision.reason,
            });
        }
        notes = Some(decision.reason);
    }
}

fn approve(amount: u64) -> Decision {
    Decision {
        approved: true,
        amount,
        reason: String::new(),
    }
}

fn changes(reason: &str) -> Decision {
    Decision {
        approved: false,
        amount: 0,
        reason: reason.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_replaces_a_step_for_one_engine() {
    let te = TestEngine::builder()
        .register(review)
        .replace::<pay>(|ctx, (ticket, amount)| {
            Ok(format!("fake-{ticket}-{amount}-attempt{}", ctx.attempt()))
        })
        .build()
        .await;
    let run = te.start(review, "r1", "T-1".into()).await.unwrap();
    te.signal("r1", "decision", approve(12)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(Outcome::Refunded {
            receipt: "fake-T-1-12-attempt1".into()
        })
    );
    assert_eq!(te.calls_of::<pay>("r1"), 1);
    assert_eq!(te.calls_of::<draft>("r1"), 1);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_double_reaches_the_workflow() {
    let te = TestEngine::builder()
        .register(review)
        .replace::<pay>(|_, _| Err(StepError::permanent("card declined")))
        .build()
        .await;
    let run = te.start(review, "r1", "T-1".into()).await.unwrap();
    te.signal("r1", "decision", approve(12)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Err(WorkflowError::new("card declined"))
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_days_pass_in_an_instant() {
    let te = TestEngine::builder().register(review).build().await;
    let run = te.start(review, "r1", "T-1".into()).await.unwrap();
    let start = te.now_ms();
    te.advance(Duration::from_secs(7 * 86_400 - 1)).await;
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));
    te.advance(Duration::from_secs(1)).await;
    assert_eq!(run.result().await.unwrap(), Ok(Outcome::TimedOut));
    assert_eq!(te.now_ms() - start, 7 * 86_400_000);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checkpoint_is_recorded_and_decodes() {
    let te = TestEngine::builder().register(review).build().await;
    te.start(review, "r1", "T-1".into()).await.unwrap();
    te.signal("r1", "decision", changes("lower")).await.unwrap();
    te.signal("r1", "decision", approve(40)).await.unwrap();
    let cps = te.checkpoints("r1");
    let variants: Vec<String> = cps.iter().map(|c| c.variant()).collect();
    assert_eq!(
        variants,
        [
            "Draft",
            "AwaitingDecision",
            "Draft",
            "AwaitingDecision",
            "Pay",
            "Pay"
        ]
    );
    assert!(
        cps.windows(2)
            .all(|w| w[0].seq < w[1].seq || w[1].pending.is_none())
    );
    let review::State::AwaitingDecision { ticket, notes } = cps[3].decode(review).unwrap() else {
        panic!("expected the second wait")
    };
    assert_eq!((ticket.as_str(), notes.as_deref()), ("T-1", Some("lower")));
    assert!(matches!(cps[3].pending, Some(Command::Wait { ref name, .. }) if name == "decision"));
    assert_eq!(cps.last().unwrap().status, RunStatus::Completed);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_engine_resumes_from_a_recorded_checkpoint() {
    let te = TestEngine::builder().register(review).build().await;
    te.start(review, "r1", "T-1".into()).await.unwrap();
    let waiting = te
        .checkpoints("r1")
        .into_iter()
        .find(|c| c.variant() == "AwaitingDecision")
        .unwrap();
    te.shutdown().await;

    let fresh = TestEngine::builder().register(review).build().await;
    let run = fresh.resume_from(review, "copy", &waiting).await.unwrap();
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));
    fresh.signal("copy", "decision", approve(7)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(Outcome::Refunded {
            receipt: format!("copy:pay:{}:T-1:7", waiting.seq + 1)
        })
    );
    // Only the payment ran on the fresh engine: the draft was in the recorded past.
    assert_eq!(
        (
            fresh.calls_of::<draft>("copy"),
            fresh.calls_of::<pay>("copy")
        ),
        (0, 1)
    );
    fresh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_built_by_hand_runs_to_the_end() {
    let te = TestEngine::builder().register(review).build().await;
    let state = review::State::AwaitingDecision {
        ticket: "T-9".into(),
        notes: Some("first try".into()),
    };
    let pending = te.awaiting_signal("decision", Duration::from_secs(60), json!({ "amount": 3 }));
    let run = te
        .resume_state(review, "hand", state, pending)
        .await
        .unwrap();
    te.signal("hand", "decision", changes("no")).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(Outcome::NotApproved {
            reason: "no".into()
        })
    );

    // A state waiting for a step: the step runs on resume.
    let state = review::State::Draft {
        ticket: "T-8".into(),
        notes: None,
    };
    let pending = te.awaiting_step::<draft>(("T-8".into(), None));
    let run = te
        .resume_state(review, "at-step", state, pending)
        .await
        .unwrap();
    assert!(matches!(run.status().unwrap(), RunStatus::Waiting { .. }));
    assert_eq!(te.calls_of::<draft>("at-step"), 1);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_wait_and_its_deadline() {
    let mut te = TestEngine::builder().register(review).build().await;
    te.start(review, "r1", "T-1".into()).await.unwrap();
    let before = te.engine().status("r1").unwrap();
    te.restart().await;
    assert_eq!(te.engine().status("r1").unwrap(), before);
    te.advance(Duration::from_secs(7 * 86_400)).await;
    let run = te.engine().handle(review, "r1").unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(Outcome::TimedOut));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_survives_a_crash_at_every_commit() {
    let approve_now = crash_test(
        TestEngine::builder().register(review),
        review,
        "T-1".into(),
        Script::new().signal("decision", approve(55)),
    )
    .await;
    approve_now.assert_ok();
    assert_eq!(
        approve_now.outcome.as_ref().unwrap()["Ok"]["Refunded"]["receipt"],
        "crash-test:pay:3:T-1:55"
    );
    assert!(approve_now.commits >= 4, "{approve_now}");
    assert_eq!(approve_now.cases.len() as u64, approve_now.commits * 2);
    // A crash between the payment and its checkpoint re-runs the payment with the same key.
    assert!(
        approve_now
            .cases
            .iter()
            .any(|c| c.moment == CrashMoment::BeforeCommit && !c.reruns.is_empty()),
        "{approve_now:#?}"
    );

    let redraft = Script::new()
        .signal("decision", changes("lower"))
        .signal("decision", approve(41));
    crash_test(
        TestEngine::builder().register(review),
        review,
        "T-2".into(),
        redraft,
    )
    .await
    .assert_ok();

    let rejected = Script::new().signal("decision", changes("no"));
    crash_test(
        TestEngine::builder().register(review),
        review,
        "T-3".into(),
        rejected,
    )
    .await
    .assert_ok();

    let timeout = Script::new().advance(Duration::from_secs(7 * 86_400));
    let report = crash_test(
        TestEngine::builder().register(review),
        review,
        "T-4".into(),
        timeout,
    )
    .await;
    report.assert_ok();
    assert_eq!(
        report.outcome.as_ref().unwrap(),
        &json!({ "Ok": "TimedOut" })
    );

    // A signal that arrives before the wait, then a step double.
    let early = Script::new().signal("decision", approve(1));
    let builder = TestEngine::builder()
        .register(review)
        .replace::<draft>(|_, _| Ok(99));
    crash_test(builder, review, "T-5".into(), early)
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crate_workflows_survive_a_crash_at_every_commit() {
    let sink = Script::new()
        .advance(Duration::from_secs(60))
        .signal("bonus", 5u64);
    let report = crash_test(
        TestEngine::builder().register(kitchen_sink),
        kitchen_sink,
        (3, vec!["a".into(), "b".into()]),
        sink,
    )
    .await;
    report.assert_ok();
    assert!(report.commits > 20, "{report}");
    crash_test(
        TestEngine::builder().register(no_params),
        no_params,
        (),
        Script::new(),
    )
    .await
    .assert_ok();
    crash_test(
        TestEngine::builder().register(inclusive_range),
        inclusive_range,
        253,
        Script::new(),
    )
    .await
    .assert_ok();
}

static DRIFT: AtomicU64 = AtomicU64::new(0);

/// Reads a global counter between suspension points: a side effect outside a step, which the
/// design forbids, so a crash changes what it does.
#[workflow]
async fn drifting(ctx: &mut WorkflowContext, base: u64) -> Result<u64, WorkflowError> {
    let first = ctx.step(add, (base, 1)).await?;
    let extra = DRIFT.fetch_add(1, Ordering::SeqCst);
    #[state(AddExtra)]
    let second = ctx.step(add, (first, extra)).await?;
    let _ = ctx.step(echo, second.to_string()).await?;
    Ok(second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_effect_outside_a_step_is_caught_with_the_diverging_checkpoint() {
    let report = crash_test(
        TestEngine::builder().register(drifting),
        drifting,
        10,
        Script::new(),
    )
    .await;
    assert!(!report.is_ok(), "{report}");
    let text = report.to_string();
    assert!(text.contains("the outcome differs"), "{text}");
    assert!(text.contains("crash-free trace"), "{text}");
    assert!(
        report.violations.iter().any(|v| v.contains("commit")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_files_catch_layout_changes_and_states_that_no_longer_decode() {
    use workflow_runtime::testing::golden;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("review.json");
    let te = TestEngine::builder().register(review).build().await;
    te.start(review, "g", "T-1".into()).await.unwrap();
    te.signal("g", "decision", changes("lower")).await.unwrap();
    golden::write(review, &path, &te.checkpoints("g")).unwrap();
    te.shutdown().await;
    assert_eq!(
        golden::check(review, &path),
        Ok(2),
        "Draft and AwaitingDecision, once each"
    );

    let original = std::fs::read_to_string(&path).unwrap();
    let mut file: golden::GoldenFile = serde_json::from_str(&original).unwrap();
    file.layout_hash = "0000000000000000".into();
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let err = golden::check(review, &path).unwrap_err();
    assert!(
        err.message()
            .contains("stored layout of `review` v1 changed")
            && err.message().contains("WORKFLOW_GOLDEN_UPDATE=1"),
        "{err}"
    );

    let mut file: golden::GoldenFile = serde_json::from_str(&original).unwrap();
    file.checkpoints[1].state["AwaitingDecision"]["notes"] = json!(42);
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let err = golden::check(review, &path).unwrap_err();
    assert!(
        err.message().contains("`AwaitingDecision`") && err.message().contains("no longer decodes"),
        "{err}"
    );

    let err = golden::check(review, dir.path().join("missing.json")).unwrap_err();
    assert!(
        err.message()
            .contains("record it by running the tests with WORKFLOW_GOLDEN_UPDATE=1"),
        "{err}"
    );
}
