//! The drafting agent. [`PolicyAgent`] applies written refund rules, deterministically and
//! without a network; a language-model client plugs in by implementing [`RefundAgent`].

use std::future::Future;
use std::pin::Pin;

use workflow_runtime::StepError;

use super::domain::{Customer, Recommendation, RefundReason, Ticket, Tier};

/// The future an agent returns.
pub type Draft<'a> = Pin<Box<dyn Future<Output = Result<Recommendation, StepError>> + Send + 'a>>;

/// Drafts a refund recommendation for a ticket.
///
/// An implementation backed by a language model sends the ticket, the customer and the
/// reviewer's notes in a prompt and parses the reply into a [`Recommendation`]; it returns a
/// retryable [`StepError`] for rate limits and timeouts and a permanent one for replies it
/// cannot parse.
pub trait RefundAgent: Send + Sync + 'static {
    /// Proposes an amount with a rationale. `reviewer_notes` holds the reviewer's reason when
    /// they asked for changes.
    fn draft<'a>(
        &'a self,
        ticket: &'a Ticket,
        customer: &'a Customer,
        reviewer_notes: Option<&'a str>,
    ) -> Draft<'a>;
}

/// Refund policy as code: reason, delivery age, loyalty tier and refund history decide the
/// amount; reviewer notes can lower it or name an amount.
#[derive(Debug, Default, Clone, Copy)]
pub struct PolicyAgent;

impl PolicyAgent {
    fn propose(ticket: &Ticket, customer: &Customer, notes: Option<&str>) -> Recommendation {
        let total = ticket.order_total_cents;
        // Every amount is a share of `total`, computed in u128 so no ticket can overflow it.
        let share = |percent: u64| -> u64 {
            u64::try_from(u128::from(total) * u128::from(percent) / 100).unwrap_or(total)
        };
        let (mut amount, rule, mut why) = match ticket.reason {
            RefundReason::Damaged => (
                total,
                "damaged-full",
                "the item arrived damaged: full refund".to_owned(),
            ),
            RefundReason::NotDelivered => (
                total,
                "not-delivered-full",
                "the parcel never arrived: full refund".to_owned(),
            ),
            RefundReason::Late => (
                share(20),
                "late-20pct",
                "late delivery: 20% goodwill refund".to_owned(),
            ),
            RefundReason::ChangedMind if ticket.days_since_delivery <= 30 => (
                share(85),
                "return-window-85pct",
                format!(
                    "returned within 30 days ({} days): refund minus 15% restocking",
                    ticket.days_since_delivery
                ),
            ),
            RefundReason::ChangedMind => (
                0,
                "outside-return-window",
                format!(
                    "{} days after delivery, outside the 30-day window: no refund",
                    ticket.days_since_delivery
                ),
            ),
        };
        if customer.tier == Tier::Gold && amount > 0 && amount < total {
            amount = amount.saturating_add(share(10)).min(total);
            why.push_str("; gold customer: +10% of the order");
        }
        if customer.refunds_last_year_cents > 50_000 && amount > share(50) {
            amount = share(50);
            why.push_str("; more than $500 refunded this year: capped at 50%");
        }
        if let Some(notes) = notes.map(str::trim).filter(|n| !n.is_empty()) {
            match amount_in(notes) {
                Some(Some(cents)) if cents <= total => {
                    amount = cents;
                    why.push_str(&format!("; reviewer asked for {}", dollars(amount)));
                }
                Some(_) => {
                    amount = total;
                    why.push_str(&format!(
                        "; reviewer asked for more than the order total: {} at most",
                        dollars(total)
                    ));
                }
                None if notes.to_lowercase().contains("lower")
                    || notes.to_lowercase().contains("half") =>
                {
                    amount /= 2;
                    why.push_str("; halved at the reviewer's request");
                }
                None => why.push_str(&format!("; reviewer note considered: \"{notes}\"")),
            }
        }
        Recommendation {
            amount_cents: amount,
            rule: rule.to_owned(),
            rationale: format!("{}: {why}", dollars(amount)),
        }
    }
}

impl RefundAgent for PolicyAgent {
    fn draft<'a>(
        &'a self,
        ticket: &'a Ticket,
        customer: &'a Customer,
        reviewer_notes: Option<&'a str>,
    ) -> Draft<'a> {
        Box::pin(async move { Ok(Self::propose(ticket, customer, reviewer_notes)) })
    }
}

/// The first dollar amount written in a note (`$40`, `$12.50`): `Some(Some(cents))`, or
/// `Some(None)` when it is too large to count in cents (`$184467440737095517`).
fn amount_in(notes: &str) -> Option<Option<u64>> {
    let start = notes.find('$')? + 1;
    let text: String = notes[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (whole, frac) = text.split_once('.').unwrap_or((&text, "0"));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: String = frac.chars().chain("00".chars()).take(2).collect();
    let frac: u64 = frac.parse().ok()?;
    Some(
        whole
            .parse::<u64>()
            .ok()
            .and_then(|w| w.checked_mul(100))
            .and_then(|c| c.checked_add(frac)),
    )
}

/// Formats cents as dollars: `$12.50`.
pub fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refund::domain::Tier;

    fn ticket(reason: RefundReason, days: u32) -> Ticket {
        Ticket {
            id: "T-1".into(),
            customer_id: "C-1".into(),
            order_id: "O-1".into(),
            order_total_cents: 10_000,
            reason,
            days_since_delivery: days,
            message: String::new().into(),
        }
    }

    fn customer(tier: Tier, refunded: u64) -> Customer {
        Customer {
            id: "C-1".into(),
            name: "Ada".to_owned().into(),
            tier,
            refunds_last_year_cents: refunded,
        }
    }

    #[test]
    fn the_policy_decides_by_reason_tier_and_history() {
        let std = customer(Tier::Standard, 0);
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::Damaged, 3), &std, None).amount_cents,
            10_000
        );
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::Late, 3), &std, None).amount_cents,
            2_000
        );
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::ChangedMind, 10), &std, None).amount_cents,
            8_500
        );
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::ChangedMind, 40), &std, None).amount_cents,
            0
        );
        let gold = customer(Tier::Gold, 0);
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::Late, 3), &gold, None).amount_cents,
            3_000
        );
        let heavy = customer(Tier::Standard, 60_000);
        assert_eq!(
            PolicyAgent::propose(&ticket(RefundReason::Damaged, 3), &heavy, None).amount_cents,
            5_000
        );
    }

    #[test]
    fn reviewer_notes_change_the_draft() {
        let std = customer(Tier::Standard, 0);
        let t = ticket(RefundReason::Damaged, 3);
        assert_eq!(
            PolicyAgent::propose(&t, &std, Some("please make it $40")).amount_cents,
            4_000
        );
        assert_eq!(
            PolicyAgent::propose(&t, &std, Some("$12.5 max")).amount_cents,
            1_250
        );
        assert_eq!(
            PolicyAgent::propose(&t, &std, Some("lower please")).amount_cents,
            5_000
        );
        assert_eq!(
            PolicyAgent::propose(&t, &std, Some("$999")).amount_cents,
            10_000
        );
        let huge = PolicyAgent::propose(&t, &std, Some("cap at $184467440737095517"));
        assert_eq!(huge.amount_cents, 10_000);
        assert!(
            huge.rationale.contains("more than the order total"),
            "{}",
            huge.rationale
        );
        let t = Ticket {
            order_total_cents: u64::MAX,
            ..ticket(RefundReason::Late, 3)
        };
        assert_eq!(
            PolicyAgent::propose(&t, &std, None).amount_cents,
            u64::MAX / 5
        );
    }
}
