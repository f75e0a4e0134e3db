// The expansion of ../examples/src/refund/workflow.rs, pinned by `workflow-macros/src/snapshots.rs`.
// Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.

/// Loads a ticket from the helpdesk.
pub async fn load_ticket(
    ctx: StepContext,
    ticket_id: String,
) -> Result<Ticket, StepError> {
    ctx.data::<Services>()?.steps.record(&ctx)?;
    find_ticket(&ticket_id)
        .ok_or_else(|| StepError::permanent(format!("ticket `{ticket_id}` not found")))
}
///Step metadata for [`load_ticket()`]: lets `ctx.step(load_ticket, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct load_ticket {}
impl ::workflow_runtime::__private::v1::Function for load_ticket {
    const NAME: &'static str = "load_ticket";
    const SIG_HASH: u64 = 4131161341935801390u64;
    type Input = String;
    type Output = Ticket;
    fn call(
        __wf_ctx: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let ticket_id = __wf_input;
        ::std::boxed::Box::pin(async move {
            load_ticket(__wf_ctx, ticket_id).await.map_err(::core::convert::Into::into)
        })
    }
}
/// Asks the agent for a refund recommendation, with the reviewer's notes on a redraft.
///
/// Language models rate-limit and stall: up to 4 attempts, 2 s apart and growing, spread by
/// jitter, each cut off after 2 minutes. An unparseable reply is permanent and reaches the
/// workflow at once.
pub async fn draft_refund_recommendation(
    ctx: StepContext,
    ticket: Ticket,
    customer: Customer,
    reviewer_notes: Option<String>,
) -> Result<Recommendation, StepError> {
    let services = ctx.data::<Services>()?;
    services.steps.record(&ctx)?;
    services.agent.draft(&ticket, &customer, reviewer_notes.as_deref()).await
}
///Step metadata for [`draft_refund_recommendation()`]: lets `ctx.step(draft_refund_recommendation, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct draft_refund_recommendation {}
impl ::workflow_runtime::__private::v1::Function for draft_refund_recommendation {
    const NAME: &'static str = "draft_refund_recommendation";
    const SIG_HASH: u64 = 11901322226724258593u64;
    const RETRY: ::workflow_runtime::__private::v1::RetryPolicy = ::workflow_runtime::__private::v1::RetryPolicy::DEFAULT
        .max_attempts(4u32)
        .initial_backoff(::core::time::Duration::from_millis(2000u64))
        .jitter(0.2f64)
        .timeout(::core::time::Duration::from_millis(120000u64));
    type Input = (Ticket, Customer, Option<String>);
    type Output = Recommendation;
    fn call(
        __wf_ctx: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let (ticket, customer, reviewer_notes) = __wf_input;
        ::std::boxed::Box::pin(async move {
            draft_refund_recommendation(__wf_ctx, ticket, customer, reviewer_notes)
                .await
                .map_err(::core::convert::Into::into)
        })
    }
}
/// Pays the refund. The key is derived from the ticket (the business key) and the amount, not
/// from the run: every retry, restart or duplicate approval reaches the provider with the same
/// key, and so does a second review of the same ticket, so even that cannot pay the same refund
/// twice. A retry after a lost response (up to 5 attempts, each cut off after 30 s) returns the
/// original receipt.
pub async fn issue_refund_once(
    ctx: StepContext,
    ticket_id: String,
    amount_cents: u64,
) -> Result<RefundReceipt, StepError> {
    let services = ctx.data::<Services>()?;
    services.steps.record(&ctx)?;
    let key = refund_key(&ticket_id, amount_cents);
    let receipt = services.payments.refund(&key, &ticket_id, amount_cents)?;
    super::fault::crash_point("after_payment");
    Ok(receipt)
}
///Step metadata for [`issue_refund_once()`]: lets `ctx.step(issue_refund_once, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct issue_refund_once {}
impl ::workflow_runtime::__private::v1::Function for issue_refund_once {
    const NAME: &'static str = "issue_refund_once";
    const SIG_HASH: u64 = 12247247245054341657u64;
    const RETRY: ::workflow_runtime::__private::v1::RetryPolicy = ::workflow_runtime::__private::v1::RetryPolicy::DEFAULT
        .max_attempts(5u32)
        .initial_backoff(::core::time::Duration::from_millis(1000u64))
        .max_backoff(::core::time::Duration::from_millis(60000u64))
        .timeout(::core::time::Duration::from_millis(30000u64));
    type Input = (String, u64);
    type Output = RefundReceipt;
    fn call(
        __wf_ctx: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let (ticket_id, amount_cents) = __wf_input;
        ::std::boxed::Box::pin(async move {
            issue_refund_once(__wf_ctx, ticket_id, amount_cents)
                .await
                .map_err(::core::convert::Into::into)
        })
    }
}
/// Reviews a refund request: draft, wait up to 7 days for a human decision, pay once on
/// approval, redraft on request-changes, stop on rejection or timeout.
#[allow(non_upper_case_globals)]
pub const refund_review: refund_review::Def = refund_review::Def;
///The state machine compiled from the `refund_review` workflow.
#[allow(non_snake_case, unused_imports)]
pub mod refund_review {
    use super::*;
    #[allow(unused_imports)]
    use super::draft_refund_recommendation;
    #[allow(unused_imports)]
    use super::issue_refund_once;
    #[allow(unused_imports)]
    use super::load_customer;
    #[allow(unused_imports)]
    use super::load_ticket;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct draft_refund_recommendation {}
        pub struct issue_refund_once {}
        pub struct load_customer {}
        pub struct load_ticket {}
    }
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<String>();
    ///Where a run of `refund_review` stands: one variant per suspension point, holding the locals still needed after it.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::workflow_runtime::__private::v1::serde::Serialize,
        ::workflow_runtime::__private::v1::serde::Deserialize
    )]
    #[serde(crate = "::workflow_runtime::__private::v1::serde")]
    pub enum State {
        ///The run has been created and not yet started.
        Start {
            ///The local `ticket_id`.
            ticket_id: String,
        },
        ///Waiting for the result of the step `load_ticket`.
        LoadTicket {},
        ///Waiting for the result of the step `load_customer`.
        LoadCustomer {
            ///The local `ticket`.
            ticket: <load_ticket as ::workflow_runtime::__private::v1::Function>::Output,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block4 {
            ///The local `customer`.
            customer: <load_customer as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `notes`.
            notes: Option<String>,
            ///The local `ticket`.
            ticket: <load_ticket as ::workflow_runtime::__private::v1::Function>::Output,
        },
        ///Waiting for the result of the step `draft_refund_recommendation`.
        DraftRefundRecommendation {
            ///The local `customer`.
            customer: <load_customer as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `notes`.
            notes: Option<String>,
            ///The local `ticket`.
            ticket: <load_ticket as ::workflow_runtime::__private::v1::Function>::Output,
        },
        ///Waiting for the signal "refund_decision".
        AwaitingRefundDecision {
            ///The local `customer`.
            customer: <load_customer as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `notes`.
            notes: Option<String>,
            ///The local `recommended`.
            recommended: u64,
            ///The local `ticket`.
            ticket: <load_ticket as ::workflow_runtime::__private::v1::Function>::Output,
        },
        ///Waiting for the result of the step `issue_refund_once`.
        IssueRefundOnce {
            ///The local `decision`.
            decision: Decision,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    LoadTicket: step load_ticket\n    LoadCustomer: step load_customer\n    DraftRefundRecommendation: step draft_refund_recommendation\n    AwaitingRefundDecision: wait refund_decision\n    IssueRefundOnce: step issue_refund_once\n    [*] --> Start\n    Start --> LoadTicket\n    LoadTicket --> LoadCustomer\n    LoadTicket --> [*]\n    LoadCustomer --> DraftRefundRecommendation\n    LoadCustomer --> [*]\n    DraftRefundRecommendation --> AwaitingRefundDecision\n    DraftRefundRecommendation --> [*]\n    AwaitingRefundDecision --> DraftRefundRecommendation\n    AwaitingRefundDecision --> IssueRefundOnce\n    AwaitingRefundDecision --> [*]\n    IssueRefundOnce --> [*]\n";
    ///The `refund_review` workflow as a value; `refund_review` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub struct Def;
    impl ::workflow_runtime::__private::v1::Workflow for Def {
        const NAME: &'static str = "refund_review";
        const VERSION: u32 = 1u32;
        const LAYOUT_HASH: u64 = ::workflow_runtime::__private::v1::mix(
            17308397256811172960u64,
            &[
                <draft_refund_recommendation as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <issue_refund_once as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <load_customer as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <load_ticket as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
            ],
        );
        const BODY_HASH: u64 = 14917208564023012333u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &["refund_decision"],
        );
        type Input = String;
        type Output = Result<RefundOutcome, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let ticket_id = input;
            State::Start { ticket_id }
        }
        fn advance(
            state: State,
            event: ::workflow_runtime::__private::v1::Event,
            ctx: &mut ::workflow_runtime::__private::v1::WorkflowContext,
        ) -> ::workflow_runtime::__private::v1::Transition<
            State,
            Result<RefundOutcome, WorkflowError>,
        > {
            advance(state, event, ctx)
        }
        fn steps() -> ::std::vec::Vec<::workflow_runtime::__private::v1::StepEntry> {
            ::std::vec![
                ::workflow_runtime::__private::v1::StepEntry::of:: <
                draft_refund_recommendation > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < issue_refund_once >
                (), ::workflow_runtime::__private::v1::StepEntry::of:: < load_customer >
                (), ::workflow_runtime::__private::v1::StepEntry::of:: < load_ticket > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &::workflow_runtime::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<(), ::workflow_runtime::__private::v1::PayloadError>,
        > {
            if name == "refund_decision" {
                return ::core::option::Option::Some(
                    ::workflow_runtime::__private::v1::check_payload::<Decision>(payload),
                );
            }
            let _ = (name, payload);
            ::core::option::Option::None
        }
        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => ::core::stringify!(Start),
                State::LoadTicket { .. } => ::core::stringify!(LoadTicket),
                State::LoadCustomer { .. } => ::core::stringify!(LoadCustomer),
                State::DraftRefundRecommendation { .. } => {
                    ::core::stringify!(DraftRefundRecommendation)
                }
                State::AwaitingRefundDecision { .. } => {
                    ::core::stringify!(AwaitingRefundDecision)
                }
                State::IssueRefundOnce { .. } => ::core::stringify!(IssueRefundOnce),
                _ => "(join)",
            }
        }
    }
    /// The transition function: runs the workflow from `state` with `event` until
    /// its next suspension point or its end.
    #[allow(
        unused_mut,
        unused_variables,
        unreachable_code,
        unused_assignments,
        unused_braces,
        path_statements,
        unreachable_patterns,
        clippy::useless_conversion
    )]
    pub fn advance(
        __wf_state_in: State,
        __wf_event: ::workflow_runtime::__private::v1::Event,
        ctx: &mut ::workflow_runtime::__private::v1::WorkflowContext,
    ) -> ::workflow_runtime::__private::v1::Transition<
        State,
        Result<RefundOutcome, WorkflowError>,
    > {
        let mut __wf_ev = ::core::option::Option::Some(__wf_event);
        let mut __wf_state = __wf_state_in;
        '__wf_dispatch: loop {
            match __wf_state {
                State::Start { mut ticket_id } => {
                    let () = match ::workflow_runtime::__private::v1::take_start(
                            &mut __wf_ev,
                        )
                        .map(|()| ())
                    {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            load_ticket,
                        >(ticket_id);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::LoadTicket {},
                            __wf_cmd,
                        );
                    }
                }
                State::LoadTicket {} => {
                    let __wf_s0 = match ::workflow_runtime::__private::v1::take_step::<
                        load_ticket,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let ticket = match __wf_s0 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            load_customer,
                        >(ticket.customer_id.clone());
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::LoadCustomer { ticket },
                            __wf_cmd,
                        );
                    }
                }
                State::LoadCustomer { mut ticket } => {
                    let __wf_s1 = match ::workflow_runtime::__private::v1::take_step::<
                        load_customer,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let customer = match __wf_s1 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    let mut notes: Option<String> = None;
                    {
                        __wf_state = State::__Block4 {
                            customer,
                            notes,
                            ticket,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block4 { mut customer, mut notes, mut ticket } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        draft_refund_recommendation,
                    >((ticket.clone(), customer.clone(), notes.clone()));
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::DraftRefundRecommendation {
                            customer,
                            notes,
                            ticket,
                        },
                        __wf_cmd,
                    );
                }
                State::DraftRefundRecommendation {
                    mut customer,
                    mut notes,
                    mut ticket,
                } => {
                    let __wf_s2 = match ::workflow_runtime::__private::v1::take_step::<
                        draft_refund_recommendation,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let rec = match __wf_s2 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    let recommended: u64 = rec.amount_cents;
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::wait_command(
                            &*ctx,
                            "refund_decision",
                            Duration::from_secs(7 * 86_400),
                            json!(
                                { "ticket_id" : ticket.id, "customer_id" : customer.id,
                                "amount_cents" : rec.amount_cents, "order_total_cents" :
                                ticket.order_total_cents, "rule" : rec.rule, "rationale" :
                                rec.rationale, }
                            ),
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::AwaitingRefundDecision {
                                customer,
                                notes,
                                recommended,
                                ticket,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::AwaitingRefundDecision {
                    mut customer,
                    mut notes,
                    mut recommended,
                    mut ticket,
                } => {
                    let __wf_s3 = match ::workflow_runtime::__private::v1::take_signal::<
                        Decision,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let decision: Decision = match __wf_s3 {
                        Ok(d) => d,
                        Err(WaitError::TimedOut) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                Ok(RefundOutcome::TimedOut),
                            );
                        }
                        Err(cancelled @ WaitError::Cancelled) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                Err(cancelled.into()),
                            );
                        }
                    };
                    match decision.status {
                        DecisionStatus::Approved => {
                            let amount = decision
                                .approved_amount_cents
                                .unwrap_or(recommended)
                                .min(ticket.order_total_cents);
                            {
                                let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                    issue_refund_once,
                                >((ticket.id.clone(), amount));
                                return ::workflow_runtime::__private::v1::Transition::Suspend(
                                    State::IssueRefundOnce { decision },
                                    __wf_cmd,
                                );
                            }
                        }
                        DecisionStatus::Rejected => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                Ok(RefundOutcome::NotApproved {
                                    reason: decision.reason,
                                    reviewer_id: decision.reviewer_id,
                                }),
                            );
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::workflow_runtime::__private::v1::fell_off(),
                            );
                        }
                        DecisionStatus::RequestChanges => {
                            notes = Some(decision.reason);
                            {
                                __wf_state = State::__Block4 {
                                    customer,
                                    notes,
                                    ticket,
                                };
                                continue '__wf_dispatch;
                            }
                        }
                    }
                }
                State::IssueRefundOnce { mut decision } => {
                    let __wf_s4 = match ::workflow_runtime::__private::v1::take_step::<
                        issue_refund_once,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let receipt = match __wf_s4 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        Ok(RefundOutcome::Refunded {
                            receipt_id: receipt.receipt_id,
                            amount_cents: receipt.amount_cents,
                            reviewer_id: decision.reviewer_id,
                        }),
                    );
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        ::workflow_runtime::__private::v1::fell_off(),
                    );
                }
            }
        }
    }
}
