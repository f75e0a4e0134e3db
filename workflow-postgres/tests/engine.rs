//! The engine over [`PgStore`]: a workflow runs to completion through a step and a signal
//! wait, and a run parked on its wait survives the engine's shutdown and finishes on an engine
//! opened afresh on the same database (in process; a single engine, `Fence::Exclusive`).

use std::sync::atomic::{AtomicU32, Ordering};

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::prelude::*;

static CHARGES: AtomicU32 = AtomicU32::new(0);

#[function]
async fn charge(_ctx: StepContext, cents: u64) -> Result<String, StepError> {
    let n = CHARGES.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(format!("charge #{n}: {cents}"))
}

#[workflow]
async fn pay_after_confirm(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let confirmed = ctx
        .wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ())
        .await?;
    if !confirmed {
        return Ok("declined".to_owned());
    }
    let receipt = ctx.step(charge, cents).await?;
    Ok(receipt)
}

async fn engine_on(url: &str) -> Engine {
    let store = PgStore::open_async(url).await.expect("the store opens");
    Engine::builder()
        .register(pay_after_confirm)
        .open_store(store)
        .await
        .expect("the engine opens")
}

async fn waiting(engine: &Engine, run: &str) {
    for _ in 0..2_000 {
        if engine
            .pending()
            .expect("pending")
            .iter()
            .any(|w| w.run_id == run)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run `{run}` never waited for its signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_to_completion_and_a_parked_run_survives_a_restart() {
    let url = TestCluster::shared().create_database();
    let engine = engine_on(&url).await;
    let run = engine
        .start(pay_after_confirm, "pay-1", 250)
        .await
        .expect("start");
    waiting(&engine, "pay-1").await;
    engine
        .signal("pay-1", "confirm", true)
        .await
        .expect("signal");
    let out = run.result().await.expect("a result").expect("paid");
    assert!(out.ends_with(": 250"), "{out}");
    assert_eq!(CHARGES.load(Ordering::SeqCst), 1);
    let trace = engine.trace("pay-1").expect("trace");
    assert!(!trace.is_empty());
    assert!(
        trace.iter().enumerate().all(|(i, e)| e.seq == i as u64),
        "the trace is numbered without gaps"
    );

    // A second run parks on its wait; the engine goes away.
    engine
        .start(pay_after_confirm, "pay-2", 400)
        .await
        .expect("start");
    waiting(&engine, "pay-2").await;
    engine.shutdown().await;
    drop(engine);

    let engine = engine_on(&url).await;
    assert_eq!(
        engine.status("pay-1").expect("status"),
        RunStatus::Completed
    );
    waiting(&engine, "pay-2").await;
    engine
        .signal("pay-2", "confirm", true)
        .await
        .expect("signal");
    for _ in 0..2_000 {
        if engine.status("pay-2").expect("status") == RunStatus::Completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        engine.status("pay-2").expect("status"),
        RunStatus::Completed
    );
    assert_eq!(CHARGES.load(Ordering::SeqCst), 2, "each run paid once");
    engine.shutdown().await;
}
