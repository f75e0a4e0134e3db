//! What the steps talk to: the helpdesk's records, the drafting agent, the payment provider
//! and the step ledger. The application gives them to the engine (`EngineBuilder::data`); the
//! steps reach them through their `StepContext`.

use std::path::Path;

use super::agent::{PolicyAgent, RefundAgent};
use super::domain::{Customer, RefundReason, Ticket, Tier};
use super::ledger::{PaymentProvider, StepLedger};
use super::llm::{LlmConfig, OpenAiAgent};

/// The collaborators of the refund steps.
pub struct Services {
    /// Drafts recommendations.
    pub agent: Box<dyn RefundAgent>,
    /// Pays refunds.
    pub payments: PaymentProvider,
    /// Records step executions.
    pub steps: StepLedger,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// The policy agent and ledgers `payments.jsonl` and `steps.jsonl` in `dir`.
    ///
    /// # Errors
    /// If a ledger cannot be opened.
    pub fn in_dir(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            agent: Box::new(PolicyAgent),
            payments: PaymentProvider::open(&dir.join("payments.jsonl"))?,
            steps: StepLedger::open(&dir.join("steps.jsonl"))?,
        })
    }

    /// As [`Services::in_dir`], with the agent the environment chooses: the policy agent by
    /// default, or [`OpenAiAgent`] with `REFUND_REVIEW_AGENT=openai` (see [`super::llm`]).
    ///
    /// # Errors
    /// A bad agent configuration, or a ledger that cannot be opened.
    pub fn from_env(dir: &Path) -> Result<Self, String> {
        let mut services =
            Self::in_dir(dir).map_err(|e| format!("cannot open the ledgers: {e}"))?;
        if let Some(config) = LlmConfig::from_env()? {
            services.agent = Box::new(OpenAiAgent::new(config));
        }
        Ok(services)
    }
}

/// The helpdesk's ticket records: five named ones, and any `T-<number>` made up
/// deterministically from its number.
pub(crate) fn find_ticket(id: &str) -> Option<Ticket> {
    let n = super::api::ticket_number(id)?;
    let order = n.checked_add(50_000)?;
    let fixed = |customer: &str, total: u64, reason, days, message: &str| Ticket {
        id: id.to_owned(),
        customer_id: customer.to_owned(),
        order_id: format!("O-{order}"),
        order_total_cents: total,
        reason,
        days_since_delivery: days,
        message: message.to_owned().into(),
    };
    Some(match n {
        1001 => fixed(
            "C-1",
            12_900,
            RefundReason::Damaged,
            2,
            "The blender arrived with a cracked jug.",
        ),
        1002 => fixed(
            "C-2",
            4_500,
            RefundReason::Late,
            5,
            "My order came a week late.",
        ),
        1003 => fixed(
            "C-3",
            20_000,
            RefundReason::NotDelivered,
            14,
            "Tracking says delivered, nothing here.",
        ),
        1004 => fixed(
            "C-1",
            7_999,
            RefundReason::ChangedMind,
            12,
            "Does not fit, sending it back.",
        ),
        1005 => fixed(
            "C-2",
            3_000,
            RefundReason::ChangedMind,
            45,
            "Changed my mind.",
        ),
        _ => {
            let reasons = [
                RefundReason::Damaged,
                RefundReason::NotDelivered,
                RefundReason::Late,
                RefundReason::ChangedMind,
            ];
            fixed(
                &format!("C-{}", n % 3 + 1),
                // `n` is at most 999_999_999, and reducing it first keeps the product small.
                1_000 + (n % 20_000) * 7_919 % 20_000,
                reasons[usize::try_from(n % 4).unwrap_or(0)],
                u32::try_from(n % 40).unwrap_or(0),
                "Generated ticket.",
            )
        }
    })
}

/// The helpdesk's customer records.
pub(crate) fn find_customer(id: &str) -> Option<Customer> {
    let (name, tier, refunded) = match id {
        "C-1" => ("Ada Lovelace", Tier::Standard, 0),
        "C-2" => ("Grace Hopper", Tier::Gold, 2_500),
        "C-3" => ("Linus Pauling", Tier::Standard, 62_000),
        _ => return None,
    };
    Some(Customer {
        id: id.to_owned(),
        name: name.to_owned().into(),
        tier,
        refunds_last_year_cents: refunded,
    })
}
