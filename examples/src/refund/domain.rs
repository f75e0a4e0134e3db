//! The business objects of the scenario.

use serde::{Deserialize, Serialize};
use workflow_runtime::Secret;

/// Why the customer asks for money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The item arrived broken.
    Damaged,
    /// The parcel never arrived.
    NotDelivered,
    /// The parcel arrived after the promised date.
    Late,
    /// The customer no longer wants the item.
    ChangedMind,
}

/// A support ticket asking for a refund.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Ticket id, like `T-1001`.
    pub id: String,
    /// The customer who opened it.
    pub customer_id: String,
    /// The order concerned.
    pub order_id: String,
    /// What the order cost, in cents.
    pub order_total_cents: u64,
    /// The customer's reason.
    pub reason: RefundReason,
    /// Days between delivery and the ticket.
    pub days_since_delivery: u32,
    /// The customer's message: free text that may name people and places, so a [`Secret`]
    /// (traces and the operations API show `<redacted>`).
    pub message: Secret<String>,
}

/// Loyalty tier of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Regular customer.
    Standard,
    /// Long-standing, high-value customer.
    Gold,
}

/// The customer behind a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Customer id, like `C-42`.
    pub id: String,
    /// Display name: personal data, a [`Secret`].
    pub name: Secret<String>,
    /// Loyalty tier.
    pub tier: Tier,
    /// Refunds paid to this customer in the last year, in cents.
    pub refunds_last_year_cents: u64,
}

/// What the agent proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Proposed refund, in cents.
    pub amount_cents: u64,
    /// The policy rule that decided it.
    pub rule: String,
    /// Why, in words a reviewer can check.
    pub rationale: String,
}

/// The reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    /// Pay the approved amount.
    Approved,
    /// Pay nothing.
    Rejected,
    /// Redraft with the reviewer's reason and ask again.
    RequestChanges,
}

/// A human decision on a drafted refund; the payload of the `refund_decision` signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The verdict.
    pub status: DecisionStatus,
    /// Who decided.
    pub reviewer_id: String,
    /// Why (sent back to the agent on `request_changes`).
    #[serde(default)]
    pub reason: String,
    /// The amount to pay, in cents; when absent on approval, the recommended amount.
    #[serde(default)]
    pub approved_amount_cents: Option<u64>,
}

/// Proof of a refund from the payment provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundReceipt {
    /// The provider's receipt id.
    pub receipt_id: String,
    /// The key the provider de-duplicated on.
    pub idempotency_key: String,
    /// Amount paid, in cents.
    pub amount_cents: u64,
}

/// How a review ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefundOutcome {
    /// The refund was paid.
    Refunded {
        /// The provider's receipt id.
        receipt_id: String,
        /// Amount paid, in cents.
        amount_cents: u64,
        /// Who approved.
        reviewer_id: String,
    },
    /// The reviewer rejected the refund; nothing was paid.
    NotApproved {
        /// The reviewer's reason.
        reason: String,
        /// Who rejected.
        reviewer_id: String,
    },
    /// Nobody decided within the review window; nothing was paid.
    TimedOut,
}
