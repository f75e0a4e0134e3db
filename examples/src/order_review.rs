//! The order review: an order fans out to one child `line_review` workflow per line item; each
//! child reserves its stock and then waits, like the refund review, up to 7 days for a human
//! decision on its line. The order collects every child's verdict and charges the customer
//! once for the approved lines.
//!
//! The children are started with `ctx.fan_out_children`, all in the order's checkpoint that
//! asks for them, so they run (and wait for their reviewers) at the same time; a crash never
//! starts one twice, and a child's verdict reaches the order across restarts.
//!
//! The outside world is a [`Ledger`]: a file of effects keyed by idempotency key, written with
//! an fsync before a step returns, as a provider that de-duplicates requests would keep it. A
//! step that runs again after a crash (at-least-once) finds its key there and changes nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

/// One line item of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_cents: u64,
}

/// An order to review line by line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id.
    pub id: String,
    /// Who pays.
    pub customer: String,
    /// Its lines; each gets a review of its own.
    pub lines: Vec<Line>,
}

/// A reviewer's decision on one line: the payload of the `line_decision` signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDecision {
    /// Whether the line may be sold.
    pub approve: bool,
    /// Who decided.
    pub reviewer: String,
    /// Why, for the record.
    #[serde(default)]
    pub reason: String,
}

/// What a line's review concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineVerdict {
    /// The product.
    pub sku: String,
    /// Whether it is sold.
    pub approved: bool,
    /// Who decided; `None` when nobody did in time, or the review did not end normally.
    pub reviewer: Option<String>,
    /// The reviewer's reason, or what happened instead.
    pub reason: String,
    /// What the line costs, in cents.
    pub cents: u64,
}

/// How an order ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderOutcome {
    /// Some lines were approved and the customer was charged for them, once.
    Charged {
        /// The payment's receipt.
        receipt: String,
        /// What was charged, in cents.
        total_cents: u64,
        /// The approved lines.
        approved: Vec<LineVerdict>,
        /// The others.
        rejected: Vec<LineVerdict>,
    },
    /// No line was approved; nothing was charged.
    NothingApproved {
        /// Every line's verdict.
        rejected: Vec<LineVerdict>,
    },
}

/// The outside world's record of effects, in a file: one line per effect, keyed by the
/// idempotency key of the step that caused it, plus every attempt in a second file.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    lock: Mutex<()>,
    applied_here: AtomicUsize,
    /// Dies (as `kill -9` would) right after this many effects were applied by this process:
    /// the effect is in the ledger, the step's checkpoint is not.
    abort_after: Option<usize>,
}

impl Ledger {
    /// The ledger kept in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            lock: Mutex::new(()),
            applied_here: AtomicUsize::new(0),
            abort_after: None,
        }
    }

    /// A ledger whose process dies right after its `n`th applied effect.
    #[must_use]
    pub fn abort_after(mut self, n: usize) -> Self {
        self.abort_after = Some(n);
        self
    }

    fn append(path: &Path, line: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(line.as_bytes())?;
        f.sync_all()
    }

    /// Applies effect `what` under `key` unless an effect with that key was applied before;
    /// returns the effect recorded under the key.
    ///
    /// # Errors
    /// The ledger file cannot be read or written (retryable).
    pub fn apply(&self, key: &str, what: &str) -> Result<String, StepError> {
        let io = |e: std::io::Error| StepError::retryable(format!("the ledger failed: {e}"));
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Self::append(&self.dir.join("attempts.log"), &format!("{key}\t{what}\n")).map_err(io)?;
        if let Some(done) = self.effects().map_err(io)?.remove(key) {
            return Ok(done);
        }
        Self::append(&self.dir.join("effects.log"), &format!("{key}\t{what}\n")).map_err(io)?;
        let n = self.applied_here.fetch_add(1, Ordering::SeqCst) + 1;
        if self.abort_after == Some(n) {
            eprintln!("fault: dying after effect {n} ({what}), before its checkpoint");
            std::process::abort();
        }
        Ok(what.to_owned())
    }

    /// Every effect applied, by idempotency key.
    ///
    /// # Errors
    /// The ledger file cannot be read.
    pub fn effects(&self) -> std::io::Result<BTreeMap<String, String>> {
        Ok(Self::lines(&self.dir.join("effects.log"))?
            .into_iter()
            .collect())
    }

    /// Every attempt, in order, as (idempotency key, effect).
    ///
    /// # Errors
    /// The ledger file cannot be read.
    pub fn attempts(&self) -> std::io::Result<Vec<(String, String)>> {
        Self::lines(&self.dir.join("attempts.log"))
    }

    fn lines(path: &Path) -> std::io::Result<Vec<(String, String)>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, w)| (k.to_owned(), w.to_owned()))
            .collect())
    }
}

/// Sets the line's stock aside; returns what the line costs.
#[function(max_attempts = 3, initial_backoff = "100ms")]
pub async fn reserve_line(ctx: StepContext, line: Line) -> Result<u64, StepError> {
    if line.quantity == 0 {
        return Err(StepError::permanent(format!("`{}`: quantity 0", line.sku)));
    }
    let ledger = ctx.data::<Ledger>()?;
    let key = ctx.idempotency_key();
    ledger.apply(&key, &format!("reserved {} x {}", line.quantity, line.sku))?;
    Ok(u64::from(line.quantity) * line.unit_cents)
}

/// Charges the customer for the approved lines.
#[function(max_attempts = 3, initial_backoff = "100ms")]
pub async fn charge_order(
    ctx: StepContext,
    order_id: String,
    customer: String,
    cents: u64,
) -> Result<String, StepError> {
    let ledger = ctx.data::<Ledger>()?;
    let key = ctx.idempotency_key();
    ledger.apply(
        &key,
        &format!("charged {customer} {cents} cents for {order_id}"),
    )?;
    Ok(format!("rcpt-{order_id}"))
}

/// One line's review: reserve its stock, then wait up to 7 days for a reviewer's decision.
#[workflow]
pub async fn line_review(
    ctx: &mut WorkflowContext,
    line: Line,
) -> Result<LineVerdict, WorkflowError> {
    let cents = ctx.step(reserve_line, line.clone()).await?;
    let meta = json!({ "sku": line.sku, "quantity": line.quantity, "cents": cents });
    let waited = ctx
        .wait_for_signal::<LineDecision>("line_decision", Duration::from_secs(7 * 86_400), meta)
        .await;
    let verdict = match waited {
        Ok(d) => LineVerdict {
            sku: line.sku,
            approved: d.approve,
            reviewer: Some(d.reviewer),
            reason: d.reason,
            cents,
        },
        Err(e) => LineVerdict {
            sku: line.sku,
            approved: false,
            reviewer: None,
            reason: e.to_string(),
            cents,
        },
    };
    Ok(verdict)
}

/// The order: one concurrent child review per line, then one charge for the approved lines.
#[workflow]
pub async fn order_review(
    ctx: &mut WorkflowContext,
    order: Order,
) -> Result<OrderOutcome, WorkflowError> {
    let reviews = ctx.fan_out_children(line_review, order.lines.clone()).await;
    let mut approved: Vec<LineVerdict> = Vec::new();
    let mut rejected: Vec<LineVerdict> = Vec::new();
    for (line, review) in order.lines.iter().zip(reviews) {
        match review {
            Ok(v) if v.approved => approved.push(v),
            Ok(v) => rejected.push(v),
            // A review that failed or was cancelled rejects its line.
            Err(e) => rejected.push(LineVerdict {
                sku: line.sku.clone(),
                approved: false,
                reviewer: None,
                reason: e.to_string(),
                cents: 0,
            }),
        }
    }
    if approved.is_empty() {
        return Ok(OrderOutcome::NothingApproved { rejected });
    }
    let total: u64 = approved.iter().map(|v| v.cents).sum();
    let receipt = ctx
        .step(
            charge_order,
            (order.id.clone(), order.customer.clone(), total),
        )
        .await?;
    Ok(OrderOutcome::Charged {
        receipt,
        total_cents: total,
        approved,
        rejected,
    })
}

/// The demo order: three lines.
pub fn demo_order(id: &str) -> Order {
    let line = |sku: &str, quantity, unit_cents| Line {
        sku: sku.to_owned(),
        quantity,
        unit_cents,
    };
    Order {
        id: id.to_owned(),
        customer: "cust-42".to_owned(),
        lines: vec![
            line("desk-lamp", 2, 2_000),
            line("office-chair", 1, 15_000),
            line("monitor-arm", 1, 4_500),
        ],
    }
}

/// The run id of the review of line `index` of the order run `order_run` (derived by
/// `ctx.fan_out_children` from the order's run id and checkpoint).
pub fn review_run(order_run: &str, index: usize) -> String {
    format!("{order_run}/line_review-1.{index}")
}
