//! Step dependencies: values given to the engine builder reach every step through its
//! `StepContext`, survive restarts of the test engine, reach test doubles too, and a missing
//! one fails the step permanently with a message naming the type.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use workflow_runtime::prelude::*;
use workflow_runtime::testing::TestEngine;

/// A stand-in for a payment provider: counts the charges it receives.
#[derive(Default)]
struct Provider {
    charges: AtomicU32,
}

/// A second dependency, so the missing-type message has something to list.
struct Currency(&'static str);

#[function]
async fn charge(ctx: StepContext, cents: u64) -> Result<String, StepError> {
    let provider = ctx.data::<Provider>()?;
    let currency = ctx.data::<Currency>()?;
    let n = provider.charges.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(format!("charge #{n}: {cents} {}", currency.0))
}

#[workflow]
async fn pay_after_confirm(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(60), ())
        .await?;
    let receipt = ctx.step(charge, cents).await?;
    Ok(receipt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_gives_every_step_the_same_shared_value() {
    let provider = Arc::new(Provider::default());
    let engine = Engine::builder()
        .register(pay_after_confirm)
        .data_shared(provider.clone())
        .data(Currency("EUR"))
        .open_in_memory()
        .await
        .unwrap();
    for (run, cents) in [("a", 100), ("b", 250)] {
        let h = engine.start(pay_after_confirm, run, cents).await.unwrap();
        engine.signal(run, "confirm", true).await.unwrap();
        let out = h.result().await.unwrap().unwrap();
        assert!(out.ends_with(&format!(": {cents} EUR")), "{out}");
    }
    assert_eq!(provider.charges.load(Ordering::SeqCst), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dependency_fails_the_step_permanently_naming_the_type() {
    let te = TestEngine::builder()
        .register(pay_after_confirm)
        .data(Currency("EUR"))
        .build()
        .await;
    let run = te.start(pay_after_confirm, "r", 100).await.unwrap();
    te.signal("r", "confirm", true).await.unwrap();
    let err = run.result().await.unwrap().unwrap_err();
    assert!(err.message.contains("step_data::Provider"), "{err}");
    assert!(err.message.contains("`.data(value)`"), "{err}");
    assert!(err.message.contains("step_data::Currency"), "{err}");
    // Permanent: one attempt, no retries scheduled.
    assert_eq!(te.calls_of::<charge>("r"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_engine_keeps_its_data_across_a_restart_and_gives_it_to_doubles() {
    let provider = Provider::default();
    let mut te = TestEngine::builder()
        .register(pay_after_confirm)
        .data(provider)
        .data(Currency("USD"))
        .build()
        .await;
    let run = te.start(pay_after_confirm, "r", 7).await.unwrap();
    drop(run);
    te.restart().await;
    let run = te.engine().handle(pay_after_confirm, "r").unwrap();
    te.signal("r", "confirm", true).await.unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok("charge #1: 7 USD".to_owned())
    );

    let te = TestEngine::builder()
        .register(pay_after_confirm)
        .data(Currency("CHF"))
        .replace::<charge>(|ctx, cents| {
            Ok(format!("double: {cents} {}", ctx.data::<Currency>()?.0))
        })
        .build()
        .await;
    let run = te.start(pay_after_confirm, "d", 3).await.unwrap();
    te.signal("d", "confirm", true).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok("double: 3 CHF".to_owned()));
}
