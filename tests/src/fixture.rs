//! The workflows of the store-format fixture (`tests/fixtures/store-v1.redb`): a store written
//! by an earlier release, which every later release must open, upgrade and finish
//! (`tests/tests/store_format.rs`). The generator is `src/bin/store_fixture.rs`.
//!
//! Their code must not change: the fixture's parked runs resume in it.

use std::sync::Mutex;

use workflow_runtime::prelude::*;

/// The fixture's clock when it was written, in ms since the epoch.
pub const FIXTURE_MS: u64 = 1_790_000_000_000;

/// The orders paid in this process, in order: the side-effect ledger the fixture test checks.
pub static PAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prices an order (a step with no side effect).
#[function]
pub async fn price(order: String, i: u64) -> Result<u64, StepError> {
    Ok(order.len() as u64 * 100 + i)
}

/// Pays an order: the side effect, recorded in [`PAID`].
#[function]
pub async fn pay(order: String) -> Result<String, StepError> {
    PAID.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(order.clone());
    Ok(format!("paid {order}"))
}

/// `steps` pricing steps, then a wait of up to ten years for a decision, then the payment if
/// it was approved.
#[workflow]
pub async fn approve_then_pay(
    ctx: &mut WorkflowContext,
    order: String,
    steps: u64,
) -> Result<String, WorkflowError> {
    let mut total: u64 = 0;
    for i in 0..steps {
        let priced = ctx.step(price, (order.clone(), i)).await?;
        total += priced;
    }
    let decision = ctx
        .wait_for_signal::<bool>(
            "decision",
            Duration::from_secs(10 * 365 * 86_400),
            json!({ "total": total }),
        )
        .await;
    match decision {
        Ok(true) => {
            let paid = ctx.step(pay, order).await?;
            Ok(paid)
        }
        Ok(false) => Ok(format!("rejected {total}")),
        Err(_) => Ok("timed out".to_owned()),
    }
}

/// One pricing step, a sleep of seven days, then the payment.
#[workflow]
pub async fn sleep_then_pay(
    ctx: &mut WorkflowContext,
    order: String,
) -> Result<String, WorkflowError> {
    let total = ctx.step(price, (order.clone(), 0)).await?;
    ctx.sleep(Duration::from_secs(7 * 86_400)).await;
    let paid = ctx.step(pay, order).await?;
    Ok(format!("{paid} {total}"))
}
