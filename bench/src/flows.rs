//! The workflows and steps the workloads run. Steps do nothing (or only note the time), so
//! that every figure is the engine's own cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use workflow_runtime::prelude::*;

/// When each `tick` step began executing, in order; W1 runs one run at a time.
pub(crate) fn ticks() -> &'static Mutex<Vec<Instant>> {
    static TICKS: OnceLock<Mutex<Vec<Instant>>> = OnceLock::new();
    TICKS.get_or_init(Mutex::default)
}

/// How many W2 runs reached their last step before the wait, and a wake-up for each.
pub(crate) static ARRIVED: AtomicU64 = AtomicU64::new(0);

/// Woken every time a W2 run arrives.
pub(crate) fn arrivals() -> &'static Notify {
    static ARRIVALS: OnceLock<Notify> = OnceLock::new();
    ARRIVALS.get_or_init(Notify::new)
}

/// Does nothing.
#[function]
async fn noop() -> Result<(), StepError> {
    Ok(())
}

/// Notes when it began, for W1's per-step latency.
#[function]
async fn tick() -> Result<(), StepError> {
    ticks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Instant::now());
    Ok(())
}

/// Counts the runs that are about to wait, so that W2 knows when to start signalling.
#[function]
async fn arrive() -> Result<(), StepError> {
    ARRIVED.fetch_add(1, Ordering::SeqCst);
    arrivals().notify_one();
    Ok(())
}

/// W1: `steps` sequential steps.
#[workflow]
pub(crate) async fn sequential(
    ctx: &mut WorkflowContext,
    steps: u64,
) -> Result<u64, WorkflowError> {
    for _ in 0..steps {
        ctx.step(tick, ()).await?;
    }
    Ok(steps)
}

/// W2: three steps, a signal wait, one more step.
#[workflow]
pub(crate) async fn fan_in(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    #[state(First)]
    ctx.step(noop, ()).await?;
    #[state(Second)]
    ctx.step(noop, ()).await?;
    ctx.step(arrive, ()).await?;
    let go = ctx
        .wait_for_signal::<u64>("go", Duration::from_secs(3_600), json!({}))
        .await?;
    #[state(Last)]
    ctx.step(noop, ()).await?;
    Ok(go)
}

/// W3: parks on a signal wait at once (a month-long timeout), then one step.
#[workflow]
pub(crate) async fn parked(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    let go = ctx
        .wait_for_signal::<u64>("go", Duration::from_secs(30 * 86_400), json!({}))
        .await?;
    ctx.step(noop, ()).await?;
    Ok(go)
}

/// W4: `k` steps of history, then a wait.
#[workflow]
pub(crate) async fn history(ctx: &mut WorkflowContext, k: u64) -> Result<u64, WorkflowError> {
    for _ in 0..k {
        ctx.step(noop, ()).await?;
    }
    let go = ctx
        .wait_for_signal::<u64>("go", Duration::from_secs(86_400), json!({}))
        .await?;
    Ok(go + k)
}

// The refund-like workflow of the codec workload: the shape of the refund-review example's
// state, with realistic field sizes.

/// A helpdesk ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) id: String,
    pub(crate) customer_id: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) order_id: String,
    pub(crate) order_total_cents: u64,
    pub(crate) currency: String,
    pub(crate) opened_at: String,
    pub(crate) tags: Vec<String>,
}

/// The customer behind a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) tier: String,
    pub(crate) lifetime_value_cents: u64,
    pub(crate) previous_refunds: u32,
}

/// The drafting agent's proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recommendation {
    pub(crate) amount_cents: u64,
    pub(crate) rule: String,
    pub(crate) rationale: String,
}

/// A reviewer's decision, the signal payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub(crate) approved: bool,
    /// Asks for a new draft instead of deciding.
    pub(crate) request_changes: bool,
    pub(crate) reviewer_id: String,
    pub(crate) reason: String,
    pub(crate) approved_amount_cents: Option<u64>,
}

/// How a review ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Refunded { receipt: String, amount_cents: u64 },
    NotApproved { reason: String },
    TimedOut,
}

/// A ticket like the example's `T-1001`.
pub(crate) fn sample_ticket(id: String) -> Ticket {
    Ticket {
        id,
        customer_id: "C-2001".into(),
        subject: "The blender arrived with a cracked jug".into(),
        body: "Hello, the blender I ordered last week arrived today and the glass jug is \
               cracked along the side. I attached a photo. I would like a refund please."
            .into(),
        order_id: "O-88123".into(),
        order_total_cents: 12_900,
        currency: "USD".into(),
        opened_at: "2026-11-24T16:43:35Z".into(),
        tags: vec!["damaged".into(), "kitchen".into(), "priority".into()],
    }
}

#[function]
async fn load_ticket(ticket_id: String) -> Result<Ticket, StepError> {
    Ok(sample_ticket(ticket_id))
}

#[function]
async fn load_customer(customer_id: String) -> Result<Customer, StepError> {
    Ok(Customer {
        id: customer_id,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        tier: "gold".into(),
        lifetime_value_cents: 1_234_500,
        previous_refunds: 1,
    })
}

#[function]
async fn draft_recommendation(
    ticket: Ticket,
    customer: Customer,
    notes: Option<String>,
) -> Result<Recommendation, StepError> {
    let _ = (customer, notes);
    Ok(Recommendation {
        amount_cents: ticket.order_total_cents,
        rule: "damaged-full".into(),
        rationale: "The item arrived damaged and the customer sent a photo; policy refunds \
                    the full order total for damage reported within 30 days."
            .into(),
    })
}

#[function]
async fn issue_refund(ticket_id: String, amount_cents: u64) -> Result<String, StepError> {
    Ok(format!("re_{ticket_id}_{amount_cents}"))
}

/// The refund review of the README, with no-op steps.
#[workflow]
pub(crate) async fn refund_like(
    ctx: &mut WorkflowContext,
    ticket_id: String,
) -> Result<Outcome, WorkflowError> {
    let ticket = ctx.step(load_ticket, ticket_id).await?;
    let customer = ctx.step(load_customer, ticket.customer_id.clone()).await?;
    let mut notes: Option<String> = None;
    loop {
        let rec = ctx
            .step(
                draft_recommendation,
                (ticket.clone(), customer.clone(), notes.clone()),
            )
            .await?;
        let recommended: u64 = rec.amount_cents;
        let decision: Decision = match ctx
            .wait_for_signal::<Decision>(
                "refund_decision",
                Duration::from_secs(7 * 86_400),
                json!({
                    "ticket_id": ticket.id,
                    "customer": customer.name,
                    "amount_cents": rec.amount_cents,
                    "rule": rec.rule,
                    "rationale": rec.rationale,
                }),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(Outcome::TimedOut),
            Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
        };
        if decision.request_changes {
            notes = Some(decision.reason);
            continue;
        }
        if !decision.approved {
            return Ok(Outcome::NotApproved {
                reason: decision.reason,
            });
        }
        let amount: u64 = decision
            .approved_amount_cents
            .unwrap_or(recommended)
            .min(ticket.order_total_cents);
        let receipt = ctx.step(issue_refund, (ticket.id.clone(), amount)).await?;
        return Ok(Outcome::Refunded {
            receipt,
            amount_cents: amount,
        });
    }
}

/// Fan-out: `items` no-op steps at once, at most `limit` at a time (0: no bound).
#[workflow]
pub(crate) async fn fan_out(
    ctx: &mut WorkflowContext,
    items: u64,
    limit: usize,
) -> Result<usize, WorkflowError> {
    let done = ctx
        .fan_out(noop_item, (0..items).collect::<Vec<u64>>(), limit)
        .await?;
    Ok(done.len())
}

/// Does nothing with its item.
#[function]
async fn noop_item(_item: u64) -> Result<(), StepError> {
    Ok(())
}
