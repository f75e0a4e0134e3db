//! The workflows and steps of the torture workload.
//!
//! Every effect goes through [`effect()`] or [`flaky()`], which record it in the durable
//! [ledger] under the step's idempotency key. Nothing here depends on timing:
//! waits that are answered have an hour-long timeout, waits that time out wait for a signal
//! nobody sends, so a run ends the same way however often its worker dies.

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

use crate::ledger;

/// The signal an [`order`](const@order) waits for, once per item (the workflows spell signal names as
/// literals, which name their states).
pub const ITEM: &str = "item";
/// The signal a [`reminder`](const@reminder) waits for after its pings.
pub const ANSWER: &str = "answer";
/// The signal a [`reminder`](const@reminder)'s pings wait for; the driver never sends it, so every ping times
/// out.
pub const PING: &str = "ping";

/// An effect: recorded once per idempotency key in the ledger. Returns the effect's value, a
/// pure function of `tag` ([`effect_value`]), so the workflow's outcome does not depend on
/// which attempt or which process performed it.
#[function(max_attempts = 5, initial_backoff = "20ms")]
pub async fn effect(ctx: StepContext, tag: String) -> Result<u64, StepError> {
    ledger::apply(&ctx.idempotency_key(), &tag).await
}

/// A flaky effect. Attempts before `fails` fail before doing anything (the service is
/// unreachable); attempt `fails` performs the effect and then fails as if the response were
/// lost; later attempts perform it again under the same key, which the ledger de-duplicates.
/// With `fails >= 4` every attempt fails and the workflow receives the error.
#[function(max_attempts = 4, initial_backoff = "25ms", multiplier = 2.0)]
pub async fn flaky(ctx: StepContext, tag: String, fails: u32) -> Result<u64, StepError> {
    let attempt = ctx.attempt();
    if attempt < fails {
        return Err(StepError::retryable(format!(
            "attempt {attempt}: service unreachable"
        )));
    }
    let value = ledger::apply(&ctx.idempotency_key(), &tag).await?;
    if attempt == fails {
        return Err(StepError::retryable(format!(
            "attempt {attempt}: response lost"
        )));
    }
    Ok(value)
}

/// The value an effect tagged `tag` returns.
pub fn effect_value(tag: &str) -> u64 {
    // FNV-1a: stable across processes, so every worker computes the same value.
    let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % 1_000
}

/// The input of an [`order`](const@order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderInput {
    /// The run id, which prefixes every effect's tag.
    pub run: String,
    /// How many `item` signals to collect.
    pub items: u32,
    /// The sleep between the reservation and the first item.
    pub nap_ms: u64,
    /// How the final charge fails (see [`flaky()`]).
    pub flaky_fails: u32,
}

/// How an [`order`](const@order) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderOutcome {
    /// The item payloads, in the order the waits consumed them.
    pub items: Vec<u64>,
    /// The sum of every effect's value.
    pub total: u64,
    /// Whether the charge failed for good and was compensated.
    pub refunded: bool,
}

/// Reserves, sleeps, collects `items` signals with an effect each, then charges through a
/// flaky step, compensating when the charge fails for good.
#[workflow]
pub async fn order(
    ctx: &mut WorkflowContext,
    input: OrderInput,
) -> Result<OrderOutcome, WorkflowError> {
    #[state(Reserve)]
    let reserved: u64 = ctx.step(effect, format!("{}/reserve", input.run)).await?;
    ctx.sleep(Duration::from_millis(input.nap_ms)).await;
    let mut items: Vec<u64> = Vec::new();
    let mut total: u64 = reserved;
    while items.len() < input.items as usize {
        let metadata = json!({ "item": items.len() });
        let v: u64 = ctx
            .wait_for_signal::<u64>("item", Duration::from_secs(3_600), metadata)
            .await?;
        items.push(v);
        let tag = format!("{}/item/{}/{v}", input.run, items.len() - 1);
        #[state(ItemEffect)]
        let added: u64 = ctx.step(effect, tag).await?;
        total += added;
    }
    let mut refunded: bool = false;
    let charge = (format!("{}/charge", input.run), input.flaky_fails);
    match ctx.step(flaky, charge).await {
        Ok(v) => total += v,
        Err(_) => {
            #[state(Refund)]
            let back: u64 = ctx.step(effect, format!("{}/refund", input.run)).await?;
            total += back;
            refunded = true;
        }
    }
    Ok(OrderOutcome {
        items,
        total,
        refunded,
    })
}

/// The input of a [`reminder`](const@reminder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderInput {
    /// The run id, which prefixes every effect's tag.
    pub run: String,
    /// How many `ping` waits time out (each followed by a nudge effect).
    pub pings: u32,
    /// The timeout of each ping wait.
    pub ping_ms: u64,
    /// Whether an `answer` is sent and waited for.
    pub answered: bool,
}

/// How a [`reminder`](const@reminder) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderOutcome {
    /// The answer, if one was waited for.
    pub answer: Option<u64>,
    /// A ping that was answered: never, since nobody sends one.
    pub pinged: Option<u64>,
    /// The sum of every effect's value.
    pub total: u64,
}

/// Waits `pings` times for a signal that never comes, nudging after each timeout, then (if
/// `answered`) waits for the answer, which the driver may have sent long before.
#[workflow]
pub async fn reminder(
    ctx: &mut WorkflowContext,
    input: ReminderInput,
) -> Result<ReminderOutcome, WorkflowError> {
    let mut pings: u32 = 0;
    let mut total: u64 = 0;
    while pings < input.pings {
        let timeout = Duration::from_millis(input.ping_ms);
        match ctx
            .wait_for_signal::<u64>("ping", timeout, json!({ "ping": pings }))
            .await
        {
            Ok(v) => {
                return Ok(ReminderOutcome {
                    answer: None,
                    pinged: Some(v),
                    total,
                });
            }
            Err(WaitError::TimedOut) => {
                pings += 1;
                let tag = format!("{}/nudge/{pings}", input.run);
                #[state(Nudge)]
                let nudged: u64 = ctx.step(effect, tag).await?;
                total += nudged;
            }
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        }
    }
    if !input.answered {
        return Ok(ReminderOutcome {
            answer: None,
            pinged: None,
            total,
        });
    }
    let answer: u64 = ctx
        .wait_for_signal::<u64>("answer", Duration::from_secs(3_600), ())
        .await?;
    #[state(AckAnswer)]
    let acked: u64 = ctx
        .step(effect, format!("{}/answer/{answer}", input.run))
        .await?;
    Ok(ReminderOutcome {
        answer: Some(answer),
        pinged: None,
        total: total + acked,
    })
}

/// The input of a [`batch`](const@batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchInput {
    /// The run id, which prefixes every effect's tag.
    pub run: String,
    /// How many effects in the loop.
    pub steps: u32,
    /// The sleep after every second effect.
    pub nap_ms: u64,
    /// How the final flaky step fails (see [`flaky()`]).
    pub flaky_fails: u32,
}

/// How a [`batch`](const@batch) ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// The sum of every effect's value.
    pub total: u64,
    /// The flaky step's error, when it failed for good.
    pub failed: Option<String>,
}

/// A loop of effects with a sleep after every second one, then a flaky step.
#[workflow]
pub async fn batch(
    ctx: &mut WorkflowContext,
    input: BatchInput,
) -> Result<BatchOutcome, WorkflowError> {
    let mut k: u32 = 0;
    let mut total: u64 = 0;
    while k < input.steps {
        let v: u64 = ctx.step(effect, format!("{}/batch/{k}", input.run)).await?;
        total += v;
        if k % 2 == 1 {
            ctx.sleep(Duration::from_millis(input.nap_ms)).await;
        }
        k += 1;
    }
    let last = (format!("{}/flaky", input.run), input.flaky_fails);
    match ctx.step(flaky, last).await {
        Ok(v) => Ok(BatchOutcome {
            total: total + v,
            failed: None,
        }),
        Err(e) => Ok(BatchOutcome {
            total,
            failed: Some(e.message),
        }),
    }
}
