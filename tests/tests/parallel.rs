//! Parallel steps: `ctx.join((f, x), (g, y))` runs different steps at once and gives their
//! outputs as a tuple (or the first error, in argument order); `ctx.join_all` gives each
//! result; `ctx.fan_out(f, items, limit)` runs one step per item, at most `limit` at a time,
//! and gives the outputs in item order (or the first error); `ctx.fan_out_all` gives each
//! result. Every result is checkpointed as it arrives: a restart re-runs only the items that
//! had not finished, under the same idempotency keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Command, Script, TestEngine, crash_test};

#[function]
async fn load_ticket(id: String) -> Result<String, StepError> {
    Ok(format!("ticket {id}"))
}

#[function]
async fn load_customer(id: u64) -> Result<u64, StepError> {
    if id == 0 {
        return Err(StepError::permanent("no customer 0"));
    }
    Ok(id * 10)
}

#[function(max_attempts = 1)]
async fn review_line(line: u32) -> Result<u32, StepError> {
    if line == 13 {
        return Err(StepError::permanent("line 13 is cursed"));
    }
    Ok(line * 2)
}

#[workflow]
async fn both(ctx: &mut WorkflowContext, id: String, cust: u64) -> Result<String, WorkflowError> {
    let (ticket, customer) = ctx
        .join((load_ticket, id.clone()), (load_customer, cust))
        .await?;
    Ok(format!("{ticket} for {customer}"))
}

#[workflow]
async fn each(ctx: &mut WorkflowContext, cust: u64) -> Result<String, WorkflowError> {
    let (t, c) = ctx
        .join_all((load_ticket, "T".to_owned()), (load_customer, cust))
        .await;
    Ok(format!("{t:?} / {c:?}"))
}

#[workflow]
async fn lines(
    ctx: &mut WorkflowContext,
    items: Vec<u32>,
    limit: usize,
) -> Result<Vec<u32>, WorkflowError> {
    let reviewed = ctx.fan_out(review_line, items.clone(), limit).await?;
    // A second fan-out after the first, to show batches in sequence.
    let again = ctx.fan_out(review_line, reviewed.clone(), limit).await?;
    Ok(again)
}

#[workflow]
async fn lines_each(
    ctx: &mut WorkflowContext,
    items: Vec<u32>,
) -> Result<Vec<String>, WorkflowError> {
    let results = ctx.fan_out_all(review_line, items, 0).await;
    Ok(results
        .into_iter()
        .map(|r| match r {
            Ok(v) => v.to_string(),
            Err(e) => format!("failed: {e}"),
        })
        .collect())
}

fn builder() -> workflow_runtime::testing::TestEngineBuilder {
    TestEngine::builder()
        .register(both)
        .register(each)
        .register(lines)
        .register(lines_each)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_gives_typed_outputs_or_the_first_error() {
    let te = builder().build().await;
    let run = te.start(both, "j-1", ("A".into(), 4)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("ticket A for 40".to_owned())
    );
    let run = te.start(both, "j-2", ("A".into(), 0)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Err(WorkflowError::new("no customer 0"))
    );
    // Both steps ran under keys of their own at the same position.
    let keys: Vec<String> = te
        .step_calls()
        .into_iter()
        .filter(|c| c.run_id == "j-1")
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"j-1:load_ticket:1.0".to_owned()), "{keys:?}");
    assert!(
        keys.contains(&"j-1:load_customer:1.1".to_owned()),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_all_gives_each_result() {
    let te = builder().build().await;
    let run = te.start(each, "e-1", 0).await.unwrap();
    let out = run.result().await.unwrap().unwrap();
    assert!(
        out.starts_with("Ok(\"ticket T\") / Err(StepError { message: \"no customer 0\""),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_keeps_item_order_and_surfaces_errors_both_ways() {
    let te = builder().build().await;
    let run = te
        .start(lines, "f-1", ((1..=12).collect(), 3))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok((1..=12).map(|n| n * 4).collect::<Vec<u32>>())
    );
    let run = te.start(lines, "f-2", (vec![1, 13, 2], 0)).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Err(WorkflowError::new("line 13 is cursed"))
    );
    let run = te.start(lines_each, "f-3", vec![13, 4]).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(vec!["failed: line 13 is cursed".to_owned(), "8".to_owned()])
    );
    // An empty fan-out is over at once.
    let run = te.start(lines, "f-4", (Vec::new(), 2)).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_caps_how_many_items_run_at_once() {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (n, m) = (now.clone(), most.clone());
    let te = builder()
        .replace_async::<review_line, _>(move |_ctx, line| {
            let (n, m) = (n.clone(), m.clone());
            async move {
                let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok(line * 2)
            }
        })
        .build()
        .await;
    let run = te
        .start(lines, "b-1", ((0..12).collect(), 2))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok((0..12).map(|n| n * 4).collect::<Vec<u32>>())
    );
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} items ran at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reruns_only_the_unfinished_items() {
    // The first calls of items 3 and 4 never finish (the process dies under them); the
    // others finish and are checkpointed.
    let calls: Arc<Vec<AtomicUsize>> = Arc::new((0..5).map(|_| AtomicUsize::new(0)).collect());
    let c = calls.clone();
    let mut te = builder()
        .replace_async::<review_line, _>(move |_ctx, line| {
            let first = c[line as usize].fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if line >= 3 && first {
                    std::future::pending::<()>().await;
                }
                Ok(line * 2)
            }
        })
        .build()
        .await;
    te.engine()
        .start(lines_each, "r-1", (0..5).collect())
        .await
        .unwrap();
    // Wait until the three finished items are durable.
    loop {
        let cps = te.checkpoints("r-1");
        let done = cps
            .last()
            .and_then(|cp| match &cp.pending {
                Some(Command::Batch { items, .. }) => {
                    Some(items.iter().filter(|i| i.result.is_some()).count())
                }
                _ => None,
            })
            .unwrap_or(0);
        if done == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    te.restart().await;
    let run = te.engine().handle(lines_each, "r-1").unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(["0", "2", "4", "6", "8"].map(String::from).to_vec())
    );
    let counts: Vec<usize> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 1, 1, 2, 2]);
    // The re-runs used the keys of the first calls.
    let keys: std::collections::BTreeSet<String> = te
        .step_calls()
        .into_iter()
        .filter(|c| c.run_id == "r-1")
        .map(|c| c.idempotency_key)
        .collect();
    let want: std::collections::BTreeSet<String> =
        (0..5).map(|i| format!("r-1:review_line:1.{i}")).collect();
    assert_eq!(keys, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_steps_survive_a_crash_at_every_commit() {
    crash_test(builder(), both, ("X".into(), 2), Script::new())
        .await
        .assert_ok();
    crash_test(builder(), each, 0, Script::new())
        .await
        .assert_ok();
    let report = crash_test(builder(), lines, ((1..=6).collect(), 2), Script::new()).await;
    report.assert_ok();
    assert_eq!(
        report.outcome.as_ref().unwrap(),
        &json!({ "Ok": [4, 8, 12, 16, 20, 24] })
    );
    crash_test(builder(), lines_each, vec![13, 1, 2], Script::new())
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_of_many_steps_commits_in_groups() {
    let te = builder().build().await;
    let before = te.engine().commit_count();
    let run = te
        .start(lines_each, "g-1", (0..1_000).collect())
        .await
        .unwrap();
    let out = run.result().await.unwrap().unwrap();
    assert_eq!(out.len(), 1_000);
    let commits = te.engine().commit_count() - before;
    // One commit starts the run; each later one records at least one result, and the last
    // also completes the run.
    assert!(commits <= 1_001, "{commits} commits");
    println!("fan-out of 1000 steps: {commits} commits");
}

#[test]
fn states_and_the_diagram_name_the_parallel_steps() {
    let _ = both::State::LoadTicketAndLoadCustomer {};
    let _ = lines::State::FanOutReviewLineReviewed { limit: 1 };
    let _ = lines::State::FanOutReviewLineAgain {};
    assert!(both::MERMAID.contains("steps load_ticket + load_customer in parallel"));
    assert!(lines::MERMAID.contains("fan-out of step review_line"));
}
