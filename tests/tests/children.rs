//! Child workflows: `ctx.child(w, input)` starts a run of another registered workflow and
//! awaits its output (a failed, cancelled or terminated child is a `ChildError`);
//! `ctx.start_child(w, input)` starts one detached; `ctx.fan_out_children(w, items)` starts one
//! awaited child per item, all running at once. Children are created in the same commit as
//! the parent's checkpoint that asks for them, under run ids derived from the parent's, so a
//! crash never starts one twice; a child's outcome reaches its parent across restarts.

use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Command, Script, TestEngine, crash_test};
use workflow_runtime::{ChildErrorKind, TraceKind};

#[function]
async fn price(sku: String) -> Result<u64, StepError> {
    if sku == "broken" {
        return Err(StepError::permanent("no price for broken"));
    }
    Ok(sku.len() as u64 * 100)
}

#[workflow]
async fn quote(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    Ok(ctx.step(price, sku).await?)
}

#[workflow]
async fn line_review(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    let cents = ctx.step(price, sku.clone()).await?;
    let meta = json!({ "sku": sku, "cents": cents });
    let ok = ctx
        .wait_for_signal::<bool>("approve", Duration::from_secs(3_600), meta)
        .await?;
    if !ok {
        return Err(WorkflowError::new(format!("{sku} was rejected")));
    }
    Ok(cents)
}

#[workflow]
async fn single(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let cents = ctx.child(quote, sku.clone()).await;
    match cents {
        Ok(c) => Ok(format!("{sku}: {c}")),
        Err(e) => Ok(format!("{sku}: {:?} {}", e.kind, e.message)),
    }
}

#[workflow]
async fn named(ctx: &mut WorkflowContext, sku: String) -> Result<u64, WorkflowError> {
    let cents = ctx
        .child(quote, sku.clone())
        .id(format!("quote-{sku}"))
        .await?;
    Ok(cents + 1)
}

#[workflow]
async fn fire(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    let child = ctx.start_child(line_review, sku).await;
    let cents = ctx.step(price, "after".to_owned()).await?;
    Ok(format!("{child} {cents}"))
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

#[workflow]
async fn quotes(ctx: &mut WorkflowContext, skus: Vec<String>) -> Result<u64, WorkflowError> {
    let results = ctx.fan_out_children(quote, skus).await;
    let mut sum = 0u64;
    for r in results {
        sum += r?;
    }
    Ok(sum)
}

#[workflow]
async fn nested(ctx: &mut WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    // The child's first transition starts a child of its own: three runs, one commit.
    let inner = ctx.child(single, sku).await?;
    Ok(format!("[{inner}]"))
}

fn builder() -> workflow_runtime::testing::TestEngineBuilder {
    TestEngine::builder()
        .register(nested)
        .register(quote)
        .register(line_review)
        .register(single)
        .register(named)
        .register(fire)
        .register(order)
        .register(quotes)
}

fn kinds(te: &TestEngine, run_id: &str) -> Vec<&'static str> {
    te.engine()
        .trace(run_id)
        .unwrap()
        .iter()
        .map(|e| e.kind.name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaited_child_gives_its_output_or_its_error() {
    let te = builder().build().await;
    let run = te.start(single, "s-1", "abc".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok("abc: 300".to_owned()));
    // The child's id is derived from the parent's; its record names the parent.
    let child = "s-1/quote-1";
    let detail = te.engine().inspect(child).unwrap();
    assert_eq!(detail.parent.as_deref(), Some("s-1"));
    assert_eq!(detail.output, Some(json!({ "Ok": 300 })));
    let parent_trace = te.engine().trace("s-1").unwrap();
    assert!(parent_trace.iter().any(|e| matches!(&e.kind,
        TraceKind::ChildStarted { child: c, workflow, .. } if c == child && workflow == "quote")));
    assert!(parent_trace.iter().any(|e| matches!(&e.kind,
        TraceKind::ChildEnded { child: c, result: Ok(v) } if c == child && *v == json!(300))));
    assert!(kinds(&te, child).contains(&"started_by_parent"));

    // A failing child is an error the parent handles.
    let run = te.start(single, "s-2", "broken".into()).await.unwrap();
    let out = run.result().await.unwrap().unwrap();
    assert!(out.starts_with("broken: Failed"), "{out}");
    assert!(out.contains("no price for broken"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_id_is_used_adopted_or_refused() {
    let te = builder().build().await;
    let run = te.start(named, "n-1", "ab".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(201));
    assert_eq!(
        te.engine().inspect("quote-ab").unwrap().parent.as_deref(),
        Some("n-1")
    );
    // A second parent asking for the same child (same workflow, same input) adopts it.
    let run = te.start(named, "n-2", "ab".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(201));
    assert_eq!(te.calls_of::<price>("quote-ab"), 1);
    // An id taken by a run of another workflow is a conflict the parent sees as an error.
    te.start(line_review, "quote-xy", "xy".into())
        .await
        .unwrap();
    let run = te.start(named, "n-3", "xy".into()).await.unwrap();
    let err = run.result().await.unwrap().unwrap_err();
    assert!(err.message.contains("could not be started"), "{err:?}");
    assert!(err.message.contains("line_review"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_child_runs_on_its_own() {
    let te = builder().build().await;
    let run = te.start(fire, "d-1", "abc".into()).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("d-1/line_review-1 500".to_owned())
    );
    // The child waits for its decision after the parent ended, and names no parent.
    let child = "d-1/line_review-1";
    assert_eq!(te.engine().status(child).unwrap().kind(), "waiting");
    assert_eq!(te.engine().inspect(child).unwrap().parent, None);
    te.signal(child, "approve", true).await.unwrap();
    let out = te
        .engine()
        .handle(line_review, child)
        .unwrap()
        .result()
        .await;
    assert_eq!(out.unwrap(), Ok(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_fans_out_to_concurrent_reviews_and_collects_them() {
    let te = builder().build().await;
    let skus: Vec<String> = ["a", "bb", "ccc"].map(String::from).to_vec();
    let run = te.start(order, "o-1", skus).await.unwrap();
    te.run_until_idle().await;
    // All three children wait for their decisions at the same time.
    let mut waiting: Vec<String> = te
        .engine()
        .pending()
        .unwrap()
        .into_iter()
        .map(|w| w.run_id)
        .collect();
    waiting.sort();
    assert_eq!(
        waiting,
        [
            "o-1/line_review-1.0",
            "o-1/line_review-1.1",
            "o-1/line_review-1.2"
        ]
    );
    match te.engine().inspect("o-1").unwrap().pending {
        Some(Command::Children { items, detached }) => {
            assert!(!detached);
            assert_eq!(items.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    te.signal("o-1/line_review-1.2", "approve", true)
        .await
        .unwrap();
    te.signal("o-1/line_review-1.0", "approve", false)
        .await
        .unwrap();
    te.signal("o-1/line_review-1.1", "approve", true)
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(["Failed", "200", "300", "500"].map(String::from).to_vec())
    );
    let ended = te
        .engine()
        .trace("o-1")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.name() == "child_ended")
        .count();
    assert_eq!(ended, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_fan_out_of_children_is_over_at_once() {
    let te = builder().build().await;
    let run = te.start(quotes, "q-0", Vec::new()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_parent_cancels_its_awaited_children() {
    let te = builder().build().await;
    let run = te
        .start(order, "c-1", vec!["a".into(), "bb".into()])
        .await
        .unwrap();
    te.run_until_idle().await;
    te.signal("c-1/line_review-1.0", "approve", true)
        .await
        .unwrap();
    te.engine().cancel("c-1", "customer left").await.unwrap();
    te.run_until_idle().await;
    let child = te.engine().status("c-1/line_review-1.1").unwrap();
    assert_eq!(child.kind(), "cancelled", "{child:?}");
    // The finished child stays completed; the parent got both outcomes and ended cancelled.
    assert_eq!(
        te.engine().status("c-1/line_review-1.0").unwrap().kind(),
        "completed"
    );
    let _ = run.result().await;
    assert_eq!(te.engine().status("c-1").unwrap().kind(), "cancelled");
    let ended: Vec<String> = te
        .engine()
        .trace("c-1")
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::ChildEnded { result: Err(e), .. } => Some(format!("{:?}", e.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [format!("{:?}", ChildErrorKind::Cancelled)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_the_parent_terminates_its_awaited_children_only() {
    let te = builder().build().await;
    te.start(order, "t-1", vec!["a".into(), "bb".into()])
        .await
        .unwrap();
    te.start(fire, "t-2", "d".into()).await.unwrap();
    te.run_until_idle().await;
    te.engine()
        .terminate("t-1", "opened by mistake")
        .await
        .unwrap();
    te.run_until_idle().await;
    for child in ["t-1/line_review-1.0", "t-1/line_review-1.1"] {
        assert_eq!(te.engine().status(child).unwrap().kind(), "terminated");
    }
    // A detached child outlives its parent.
    assert_eq!(te.engine().status("t-2").unwrap().kind(), "completed");
    assert_eq!(
        te.engine().status("t-2/line_review-1").unwrap().kind(),
        "waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_the_parent_across_a_restart() {
    let mut te = builder().build().await;
    te.start(order, "r-1", vec!["a".into(), "bb".into()])
        .await
        .unwrap();
    te.run_until_idle().await;
    te.signal("r-1/line_review-1.0", "approve", true)
        .await
        .unwrap();
    te.restart().await;
    te.signal("r-1/line_review-1.1", "approve", true)
        .await
        .unwrap();
    let run = te.engine().handle(order, "r-1").unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(["100", "200", "500"].map(String::from).to_vec())
    );
    // Each child's step ran once.
    assert_eq!(te.calls_of::<price>("r-1/line_review-1.0"), 1);
    assert_eq!(te.calls_of::<price>("r-1/line_review-1.1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_survive_a_crash_at_every_commit() {
    let report = crash_test(builder(), single, "abc".into(), Script::new()).await;
    report.assert_ok();
    assert_eq!(
        report.outcome.as_ref().unwrap(),
        &json!({ "Ok": "abc: 300" })
    );
    let report = crash_test(
        builder(),
        quotes,
        ["a", "bb", "ccc", "dddd"].map(String::from).to_vec(),
        Script::new(),
    )
    .await;
    report.assert_ok();
    assert_eq!(report.outcome.as_ref().unwrap(), &json!({ "Ok": 1000 }));
    crash_test(builder(), named, "ab".into(), Script::new())
        .await
        .assert_ok();
    crash_test(builder(), fire, "abc".into(), Script::new())
        .await
        .assert_ok();
}

#[test]
fn states_and_the_diagram_name_the_children() {
    let _ = single::State::ChildQuote { sku: String::new() };
    let _ = fire::State::StartChildLineReview {};
    let _ = order::State::ChildrenLineReview {};
    assert!(
        order::MERMAID.contains("children line_review"),
        "{}",
        order::MERMAID
    );
    assert!(fire::MERMAID.contains("start child line_review"));
    assert!(single::MERMAID.contains("child quote"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_parent_cancels_its_children_across_a_crash_at_every_commit() {
    // The reviews wait; the parent is cancelled, which cancels them, and their outcomes end
    // the parent. A crash between the parent's cancellation and the children's leaves the
    // parent to cancel them again when it is resumed.
    let report = crash_test(
        builder(),
        order,
        vec!["a".into(), "bb".into()],
        Script::new().cancel("customer left"),
    )
    .await;
    report.assert_ok();
    // Both reviews' cancellations reached the parent; its next step saw its own.
    let outcome = report.outcome.as_ref().unwrap();
    assert_eq!(outcome["status"]["status"], "cancelled", "{outcome}");
    let ended = report
        .trace
        .iter()
        .filter(|l| l.contains("child_ended") && l.contains("Cancelled"))
        .count();
    assert_eq!(ended, 2, "{:#?}", report.trace);
    assert!(report.commits > 6, "{}", report.commits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_parent_and_its_children_end_in_one_commit() {
    let te = builder().build().await;
    te.start(order, "tt-1", vec!["a".into(), "bb".into()])
        .await
        .unwrap();
    te.run_until_idle().await;
    let before = te.engine().commit_count();
    te.engine().terminate("tt-1", "fraud").await.unwrap();
    te.run_until_idle().await;
    // One commit ended the parent and both children.
    assert_eq!(te.engine().commit_count() - before, 1);
    for child in ["tt-1/line_review-1.0", "tt-1/line_review-1.1"] {
        match te.engine().status(child).unwrap() {
            RunStatus::Terminated { reason } => {
                assert_eq!(reason, "its parent was terminated: fraud");
            }
            other => panic!("{other:?}"),
        }
    }
    // Nothing waits any more: the children's waits went with them.
    assert!(te.engine().pending().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grandchildren_are_created_with_their_parents() {
    let te = builder().build().await;
    let run = te.start(nested, "g-1", "abc".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok("[abc: 300]".to_owned()));
    let grandchild = te.engine().inspect("g-1/single-1/quote-1").unwrap();
    assert_eq!(grandchild.parent.as_deref(), Some("g-1/single-1"));
    // Created in one commit: a crash at any commit leaves all three runs or none.
    crash_test(builder(), nested, "abc".into(), Script::new())
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_of_an_unregistered_workflow_is_an_error_at_once() {
    let te = TestEngine::builder().register(single).build().await;
    let run = te.start(single, "u-1", "abc".into()).await.unwrap();
    let out = run.result().await.unwrap().unwrap();
    assert!(out.starts_with("abc: Unavailable"), "{out}");
    assert!(out.contains("workflow `quote` is not registered"), "{out}");
    assert!(te.engine().inspect("u-1/quote-1").is_err());
}
