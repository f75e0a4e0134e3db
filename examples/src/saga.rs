//! A saga: reserve stock, charge the card, ship the parcel; when a step fails for good, undo
//! what was already done, in reverse order.
//!
//! Transient failures (a payment gateway that times out) are retried by each step's
//! [`RetryPolicy`] with a durable backoff and never reach the workflow. A failure that does
//! reach it (a declined card, an undeliverable address, or a transient one that outlasted its
//! attempts) makes the workflow compensate: refund the payment, then release the stock. Every
//! step forwards its idempotency key, so a retry or a restart never charges, refunds or ships
//! twice.
//!
//! The warehouse, the payment provider and the carrier are stand-ins that keep their own
//! ledger of effects, keyed by idempotency key as real providers do. Their behaviour follows
//! from the order: see [`Order`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

/// An order to fulfil.
///
/// The stand-in providers react to it: SKU `sold-out` is out of stock; a card ending in `0002`
/// is declined; one ending in `0119` meets a payment gateway that times out on the first two
/// attempts, one ending in `0500` a gateway that is down for good; an address mentioning
/// `Atlantis` is undeliverable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Order id, like `ORD-1`.
    pub id: String,
    /// What is ordered.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// What to charge, in cents.
    pub total_cents: u64,
    /// The card number: a [`Secret`], so that traces, log lines and the operations API show
    /// `<redacted>` instead (the run's state keeps it, for the charge after a restart).
    pub card: Secret<String>,
    /// Where to ship: personal data, a [`Secret`] too.
    pub address: Secret<String>,
}

/// Stock set aside for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// The warehouse's id for it.
    pub id: String,
    /// What is reserved.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Money taken from a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's id for it.
    pub id: String,
    /// How much, in cents.
    pub amount_cents: u64,
}

/// A parcel handed to the carrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    /// The carrier's tracking number.
    pub tracking: String,
}

/// How an order ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderOutcome {
    /// Everything went through.
    Shipped {
        /// The carrier's tracking number.
        tracking: String,
        /// The payment's id.
        payment_id: String,
    },
    /// A step failed for good and what was done before it was undone.
    Cancelled {
        /// The step that failed.
        failed_step: String,
        /// Its error.
        reason: String,
        /// The compensations that ran, in the order they ran.
        undone: Vec<String>,
    },
}

/// The ledger the stand-in providers share: effects per order, and what each idempotency key
/// already produced.
#[derive(Default)]
struct World {
    effects: HashMap<String, Vec<String>>,
    done: HashMap<String, String>,
}

fn world() -> std::sync::MutexGuard<'static, World> {
    static WORLD: OnceLock<Mutex<World>> = OnceLock::new();
    WORLD
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Performs an effect once per idempotency key (scoped to the order, as a provider scopes keys
/// to an account): the first call records `effect` for the order and stores `result`; later
/// calls with the same key return the stored result and do nothing.
fn once(key: &str, order_id: &str, effect: String, result: String) -> String {
    let mut w = world();
    let scoped = format!("{order_id}/{key}");
    if let Some(done) = w.done.get(&scoped) {
        return done.clone();
    }
    w.effects
        .entry(order_id.to_owned())
        .or_default()
        .push(effect);
    w.done.insert(scoped, result.clone());
    result
}

/// What the providers did for an order, in order: one line per effect.
pub fn effects(order_id: &str) -> Vec<String> {
    world().effects.get(order_id).cloned().unwrap_or_default()
}

/// Formats cents as dollars, like `$40.00`.
fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Sets stock aside. Out of stock is permanent.
#[function(max_attempts = 3, initial_backoff = "200ms")]
pub async fn reserve_stock(ctx: StepContext, order: Order) -> Result<Reservation, StepError> {
    if order.sku == "sold-out" {
        return Err(StepError::permanent(format!(
            "`{}` is out of stock",
            order.sku
        )));
    }
    let id = once(
        &ctx.idempotency_key(),
        &order.id,
        format!("reserved {} x {}", order.quantity, order.sku),
        format!("res-{}", order.id),
    );
    Ok(Reservation {
        id,
        sku: order.sku,
        quantity: order.quantity,
    })
}

/// Charges the card. A gateway timeout is retryable (up to 4 attempts, 200 ms then 400 ms and
/// 800 ms apart, each attempt cut off after 10 s); a declined card is permanent.
#[function(
    max_attempts = 4,
    initial_backoff = "200ms",
    max_backoff = "5s",
    timeout = "10s"
)]
pub async fn charge_card(
    ctx: StepContext,
    order_id: String,
    card: Secret<String>,
    amount_cents: u64,
) -> Result<Payment, StepError> {
    let card = card.expose();
    if card.ends_with("0002") {
        return Err(StepError::permanent("card declined")
            .with_details(serde_json::json!({ "code": "do_not_honor" })));
    }
    if card.ends_with("0500") || (card.ends_with("0119") && ctx.attempt() <= 2) {
        return Err(StepError::retryable("payment gateway timed out"));
    }
    let id = once(
        &ctx.idempotency_key(),
        &order_id,
        format!("charged {}", dollars(amount_cents)),
        format!("pay-{order_id}"),
    );
    Ok(Payment { id, amount_cents })
}

/// Hands the parcel to the carrier. An undeliverable address is permanent.
#[function(max_attempts = 3, initial_backoff = "1s")]
pub async fn ship_parcel(
    ctx: StepContext,
    order_id: String,
    address: Secret<String>,
) -> Result<Shipment, StepError> {
    let address = address.expose();
    if address.contains("Atlantis") {
        // The message reaches the trace and the outcome: it names no personal data.
        return Err(StepError::permanent(
            "the carrier cannot deliver to the order's address",
        ));
    }
    let tracking = once(
        &ctx.idempotency_key(),
        &order_id,
        format!("shipped to {address}"),
        format!("trk-{order_id}"),
    );
    Ok(Shipment { tracking })
}

/// Gives the money back (compensates [`charge_card`]).
#[function]
pub async fn refund_payment(
    ctx: StepContext,
    order_id: String,
    payment: Payment,
) -> Result<String, StepError> {
    Ok(once(
        &ctx.idempotency_key(),
        &order_id,
        format!(
            "refunded {} ({})",
            dollars(payment.amount_cents),
            payment.id
        ),
        format!("refund-{}", payment.id),
    ))
}

/// Puts the stock back (compensates [`reserve_stock`]).
#[function]
pub async fn release_stock(
    ctx: StepContext,
    order_id: String,
    reservation: Reservation,
) -> Result<(), StepError> {
    once(
        &ctx.idempotency_key(),
        &order_id,
        format!("released {}", reservation.id),
        String::new(),
    );
    Ok(())
}

/// The policy of every compensation: an undo must get through, so it is tried for longer than
/// a step's own default (up to 10 attempts, the wait growing to 5 minutes).
pub const UNDO: RetryPolicy = RetryPolicy::DEFAULT
    .max_attempts(10)
    .initial_backoff(Duration::from_secs(1))
    .max_backoff(Duration::from_secs(300));

/// A compensation owed for a step that went through: what to undo if a later step fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Undo {
    /// Put the reserved stock back.
    ReleaseStock(Reservation),
    /// Give the payment back.
    RefundPayment(Payment),
}

/// Reserves, charges and ships an order. Each step that goes through pushes its compensation
/// onto a stack; when a step fails for good (a permanent error, or a retryable one that used
/// up its attempts), the stack is undone from the top, so the latest effect is undone first.
#[workflow]
pub async fn place_order(
    ctx: &mut WorkflowContext,
    order: Order,
) -> Result<OrderOutcome, WorkflowError> {
    let mut done: Vec<Undo> = Vec::new();
    let mut failed: Option<(String, String)> = None;
    match ctx.step(reserve_stock, order.clone()).await {
        Ok(reservation) => done.push(Undo::ReleaseStock(reservation)),
        Err(e) => failed = Some(("reserve_stock".into(), e.message)),
    }
    let mut payment_id = String::new();
    if failed.is_none() {
        let charge = (order.id.clone(), order.card.clone(), order.total_cents);
        match ctx.step(charge_card, charge).await {
            Ok(payment) => {
                payment_id = payment.id.clone();
                done.push(Undo::RefundPayment(payment));
            }
            Err(e) => failed = Some(("charge_card".into(), e.message)),
        }
    }
    if failed.is_none() {
        let parcel = (order.id.clone(), order.address.clone());
        match ctx.step(ship_parcel, parcel).await {
            Ok(shipment) => {
                return Ok(OrderOutcome::Shipped {
                    tracking: shipment.tracking,
                    payment_id,
                });
            }
            Err(e) => failed = Some(("ship_parcel".into(), e.message)),
        }
    }
    // A step failed for good: undo what was done, the latest first. Compensations use their
    // own, more patient policy; one that still fails fails the run, with the stack in its
    // last checkpoint for an operator to see.
    done.reverse();
    let mut undone: Vec<String> = Vec::new();
    for undo in done {
        match undo {
            Undo::RefundPayment(payment) => {
                ctx.step(refund_payment, (order.id.clone(), payment))
                    .retry(UNDO)
                    .await?;
                undone.push("refund_payment".into());
            }
            Undo::ReleaseStock(reservation) => {
                ctx.step(release_stock, (order.id.clone(), reservation))
                    .retry(UNDO)
                    .await?;
                undone.push("release_stock".into());
            }
        }
    }
    let (failed_step, reason) = failed.unwrap_or_default();
    Ok(OrderOutcome::Cancelled {
        failed_step,
        reason,
        undone,
    })
}
