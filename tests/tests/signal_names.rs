//! Unknown signal names are refused. The macro records every literal wait name of a workflow
//! (`Workflow::SIGNALS`); a signal whose name no registered version of the run's workflow
//! waits on is an error listing the names it does wait on, and nothing is stored. A workflow
//! that computes a wait name accepts any name, as before.

use workflow_runtime::SignalError;
use workflow_runtime::TraceKind;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TestEngine;

const HOUR: Duration = Duration::from_secs(3_600);

#[workflow(name = "review", version = 1)]
async fn review_v1(ctx: &mut WorkflowContext, doc: String) -> Result<String, WorkflowError> {
    let first = ctx.wait_for_signal::<String>("review", HOUR, ()).await?;
    let second = ctx.wait_for_signal::<String>("sign_off", HOUR, ()).await?;
    // A name waited on twice counts once.
    #[state(AwaitingSecondReview)]
    let third = ctx.wait_for_signal::<String>("review", HOUR, ()).await?;
    Ok(format!("{doc}: {first}, {second}, {third}"))
}

/// v2 adds a wait on a new name; its layout changes, and it migrates nothing (old runs drain
/// on v1 when both are registered).
#[workflow(name = "review", version = 2)]
async fn review_v2(ctx: &mut WorkflowContext, doc: String) -> Result<String, WorkflowError> {
    let first = ctx.wait_for_signal::<String>("review", HOUR, ()).await?;
    let note = ctx
        .wait_for_signal::<String>("legal_note", HOUR, ())
        .await?;
    Ok(format!("{doc}: {first} ({note})"))
}

#[workflow]
async fn computed(ctx: &mut WorkflowContext, channel: String) -> Result<String, WorkflowError> {
    #[state(AwaitingChannel)]
    let got = ctx.wait_for_signal::<String>(channel, HOUR, ()).await?;
    Ok(got)
}

#[workflow]
async fn no_waits(ctx: &mut WorkflowContext, secs: u64) -> Result<u64, WorkflowError> {
    ctx.sleep(Duration::from_secs(secs)).await;
    Ok(secs)
}

fn signals_of<W: Workflow>(_: W) -> Option<&'static [&'static str]> {
    W::SIGNALS
}

#[test]
fn the_macro_lists_every_literal_wait_name_once_sorted() {
    assert_eq!(signals_of(review_v1), Some(&["review", "sign_off"][..]));
    assert_eq!(signals_of(review_v2), Some(&["legal_note", "review"][..]));
    assert_eq!(signals_of(no_waits), Some(&[][..]));
    assert_eq!(
        signals_of(computed),
        None,
        "a computed name may be anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_name_is_refused_with_the_names_the_workflow_waits_on() {
    let te = TestEngine::builder().register(review_v1).build().await;
    let run = te.start(review_v1, "r", "spec".into()).await.unwrap();
    let before = te.engine().trace("r").unwrap();
    let err = te.signal("r", "reveiw", "ok").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "run `r` of workflow `review` never waits for a signal named `reveiw`; it waits for \
         `review`, `sign_off`"
    );
    let SignalError::UnknownSignal {
        signal, expected, ..
    } = &err
    else {
        panic!("expected UnknownSignal, got {err:?}");
    };
    assert_eq!(
        (signal.as_str(), expected.as_slice()),
        ("reveiw", &["review".to_owned(), "sign_off".to_owned()][..])
    );
    assert_eq!(
        te.engine().trace("r").unwrap(),
        before,
        "nothing was stored"
    );

    // A known name that is not waited on yet is buffered, as before.
    assert_eq!(
        te.signal("r", "sign_off", "legal ok").await.unwrap(),
        SignalOutcome::Buffered
    );
    te.signal("r", "review", "first").await.unwrap();
    te.signal("r", "review", "again").await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("spec: first, legal ok, again".to_owned())
    );
    let buffered = te
        .engine()
        .trace("r")
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::SignalBuffered { .. }))
        .count();
    assert_eq!(buffered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_version_counts() {
    let mut te = TestEngine::builder().register(review_v1).build().await;
    te.start(review_v1, "old", "a".into()).await.unwrap();
    let err = te.signal("old", "legal_note", "n").await.unwrap_err();
    assert!(matches!(err, SignalError::UnknownSignal { .. }), "{err}");

    // Once v2 is deployed beside v1, its names count for runs of either version.
    te.swap(|b| b.register(review_v1).register(review_v2)).await;
    assert_eq!(
        te.signal("old", "legal_note", "n").await.unwrap(),
        SignalOutcome::Buffered
    );
    te.start(review_v2, "new", "b".into()).await.unwrap();
    assert_eq!(
        te.signal("new", "sign_off", "s").await.unwrap(),
        SignalOutcome::Buffered,
        "v1's names count for a v2 run too"
    );
    let err = te.signal("new", "legal-note", "n").await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it waits for `legal_note`, `review`, `sign_off`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computed_name_accepts_any_name_and_a_workflow_without_waits_none() {
    let te = TestEngine::builder()
        .register(computed)
        .register(no_waits)
        .build()
        .await;
    let run = te.start(computed, "c", "chan-7".into()).await.unwrap();
    assert_eq!(
        te.signal("c", "anything", "x").await.unwrap(),
        SignalOutcome::Buffered
    );
    te.signal("c", "chan-7", "y").await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok("y".to_owned()));

    te.start(no_waits, "n", 60).await.unwrap();
    let err = te.signal("n", "wake", ()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "run `n` of workflow `no_waits` never waits for a signal named `wake`; it waits for no \
         signal at all"
    );
}
