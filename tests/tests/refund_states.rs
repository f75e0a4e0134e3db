//! The refund workflow of DESIGN.md, driven by hand through its state enum.

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Event, Transition};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ticket {
    id: String,
    customer_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rec {
    amount: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    Approved,
    Rejected,
    RequestChanges,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Decision {
    status: Status,
    approved_amount: u64,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RefundOutcome {
    Refunded { receipt_id: String },
    NotApproved { reason: String },
    TimedOut,
}

#[function]
async fn load_ticket(ticket_id: String) -> Result<Ticket, StepError> {
    Ok(Ticket {
        id: ticket_id,
        customer_id: "c1".into(),
    })
}

#[function]
async fn load_customer(customer_id: String) -> Result<Customer, StepError> {
    Ok(Customer { id: customer_id })
}

#[function]
async fn draft(
    ticket: Ticket,
    customer: Customer,
    notes: Option<String>,
) -> Result<Rec, StepError> {
    let _ = (ticket, customer);
    Ok(Rec {
        amount: if notes.is_some() { 40 } else { 50 },
    })
}

#[function]
async fn issue_refund_once(
    ctx: StepContext,
    ticket_id: String,
    amount: u64,
) -> Result<Receipt, StepError> {
    Ok(Receipt {
        id: format!("{}-{ticket_id}-{amount}", ctx.idempotency_key()),
    })
}

#[workflow]
async fn refund_review(
    ctx: &mut WorkflowContext,
    ticket_id: String,
) -> Result<RefundOutcome, WorkflowError> {
    let ticket = ctx.step(load_ticket, ticket_id).await?;
    let customer = ctx.step(load_customer, ticket.customer_id.clone()).await?;
    let mut notes: Option<String> = None;
    loop {
        let rec = ctx
            .step(draft, (ticket.clone(), customer.clone(), notes.clone()))
            .await?;
        let decision = match ctx
            .wait_for_signal::<Decision>(
                "refund_decision",
                Duration::from_secs(7 * 86_400),
                json!({"ticket_id": ticket.id, "amount": rec.amount}),
            )
            .await
        {
            Ok(d) => d,
            Err(WaitError::TimedOut) => return Ok(RefundOutcome::TimedOut),
        };
        match decision.status {
            Status::Approved => {
                let receipt = ctx
                    .step(
                        issue_refund_once,
                        (ticket.id.clone(), decision.approved_amount),
                    )
                    .await?;
                return Ok(RefundOutcome::Refunded {
                    receipt_id: receipt.id,
                });
            }
            Status::Rejected => {
                return Ok(RefundOutcome::NotApproved {
                    reason: decision.reason,
                });
            }
            Status::RequestChanges => notes = Some(decision.reason),
        }
    }
}

fn ctx() -> WorkflowContext {
    WorkflowContext::new("run-1", 1_000, 1)
}

#[test]
fn a_state_built_by_hand_resumes_through_request_changes_to_a_refund() {
    let state = refund_review::State::AwaitingRefundDecision {
        ticket: Ticket {
            id: "T1".into(),
            customer_id: "c1".into(),
        },
        customer: Customer { id: "c1".into() },
        notes: None,
    };
    let json = serde_json::to_string(&state).unwrap();
    let state: refund_review::State = serde_json::from_str(&json).unwrap();
    let d = Decision {
        status: Status::RequestChanges,
        approved_amount: 0,
        reason: "too much".into(),
    };
    let Transition::Suspend(state, cmd) =
        refund_review::advance(state, Event::signal(d), &mut ctx())
    else {
        panic!("expected a suspension")
    };
    assert!(
        matches!(&state, refund_review::State::Draft { notes: Some(n), .. } if n == "too much"),
        "{state:?}"
    );
    assert!(matches!(cmd, Command::Step { ref name, .. } if name == "draft"));
    let Transition::Suspend(state, cmd) = refund_review::advance(
        state,
        Event::step_ok::<draft>(Rec { amount: 40 }),
        &mut ctx(),
    ) else {
        panic!()
    };
    assert!(
        matches!(cmd, Command::Wait { ref metadata, deadline_ms, .. }
        if metadata["amount"] == 40 && deadline_ms == 1_000 + 7 * 86_400_000)
    );
    let d = Decision {
        status: Status::Approved,
        approved_amount: 40,
        reason: String::new(),
    };
    let Transition::Suspend(state, cmd) =
        refund_review::advance(state, Event::signal(d), &mut ctx())
    else {
        panic!()
    };
    assert!(matches!(state, refund_review::State::IssueRefundOnce {}));
    assert!(matches!(cmd, Command::Step { ref input, .. } if input == &json!(["T1", 40])));
    let out = refund_review::advance(
        state,
        Event::step_ok::<issue_refund_once>(Receipt { id: "R9".into() }),
        &mut ctx(),
    );
    let Transition::Complete(out) = out else {
        panic!("expected completion")
    };
    assert_eq!(
        out,
        Ok(RefundOutcome::Refunded {
            receipt_id: "R9".into()
        })
    );
}

use workflow_runtime::testing::Command;
