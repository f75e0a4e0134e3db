// The expansion of ../examples/src/order_review.rs, pinned by `workflow-macros/src/snapshots.rs`.
// Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.

/// One line's review: reserve its stock, then wait up to 7 days for a reviewer's decision.
#[allow(non_upper_case_globals)]
pub const line_review: line_review::Def = line_review::Def;
///The state machine compiled from the `line_review` workflow.
#[allow(non_snake_case, unused_imports)]
pub mod line_review {
    use super::*;
    #[allow(unused_imports)]
    use super::reserve_line;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct reserve_line {}
    }
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<Line>();
    ///Where a run of `line_review` stands: one variant per suspension point, holding the locals still needed after it.
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
            ///The local `line`.
            line: Line,
        },
        ///Waiting for the result of the step `reserve_line`.
        ReserveLine {
            ///The local `line`.
            line: Line,
        },
        ///Waiting for the signal "line_decision".
        AwaitingLineDecision {
            ///The local `cents`.
            cents: <reserve_line as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `line`.
            line: Line,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    ReserveLine: step reserve_line\n    AwaitingLineDecision: wait line_decision\n    [*] --> Start\n    Start --> ReserveLine\n    ReserveLine --> AwaitingLineDecision\n    ReserveLine --> [*]\n    AwaitingLineDecision --> [*]\n";
    ///The `line_review` workflow as a value; `line_review` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub struct Def;
    impl ::workflow_runtime::__private::v1::Workflow for Def {
        const NAME: &'static str = "line_review";
        const VERSION: u32 = 1u32;
        const LAYOUT_HASH: u64 = ::workflow_runtime::__private::v1::mix(
            9622276432441481526u64,
            &[<reserve_line as ::workflow_runtime::__private::v1::Function>::SIG_HASH],
        );
        const BODY_HASH: u64 = 12339837190097768356u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &["line_decision"],
        );
        type Input = Line;
        type Output = Result<LineVerdict, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let line = input;
            State::Start { line }
        }
        fn advance(
            state: State,
            event: ::workflow_runtime::__private::v1::Event,
            ctx: &mut ::workflow_runtime::__private::v1::WorkflowContext,
        ) -> ::workflow_runtime::__private::v1::Transition<
            State,
            Result<LineVerdict, WorkflowError>,
        > {
            advance(state, event, ctx)
        }
        fn steps() -> ::std::vec::Vec<::workflow_runtime::__private::v1::StepEntry> {
            ::std::vec![
                ::workflow_runtime::__private::v1::StepEntry::of:: < reserve_line > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &::workflow_runtime::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<(), ::workflow_runtime::__private::v1::PayloadError>,
        > {
            let mut __wf_verdict = ::core::option::Option::None;
            let mut __wf_check = |
                r: ::core::result::Result<
                    (),
                    ::workflow_runtime::__private::v1::PayloadError,
                >|
            {
                if !::core::matches!(
                    __wf_verdict,
                    ::core::option::Option::Some(::core::result::Result::Ok(()))
                ) {
                    __wf_verdict = ::core::option::Option::Some(r);
                }
            };
            if name == "line_decision" {
                __wf_check(
                    ::workflow_runtime::__private::v1::check_payload::<
                        LineDecision,
                    >(payload),
                );
            }
            let _ = (name, payload, &mut __wf_check);
            __wf_verdict
        }
        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => ::core::stringify!(Start),
                State::ReserveLine { .. } => ::core::stringify!(ReserveLine),
                State::AwaitingLineDecision { .. } => {
                    ::core::stringify!(AwaitingLineDecision)
                }
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
        Result<LineVerdict, WorkflowError>,
    > {
        let mut __wf_ev = ::core::option::Option::Some(__wf_event);
        let mut __wf_state = __wf_state_in;
        '__wf_dispatch: loop {
            match __wf_state {
                State::Start { mut line } => {
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
                            reserve_line,
                        >(line.clone());
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ReserveLine { line },
                            __wf_cmd,
                        );
                    }
                }
                State::ReserveLine { mut line } => {
                    let __wf_s0 = match ::workflow_runtime::__private::v1::take_step::<
                        reserve_line,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let cents = match __wf_s0 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    let meta = json!(
                        { "sku" : line.sku, "quantity" : line.quantity, "cents" : cents }
                    );
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::wait_command(
                            &*ctx,
                            "line_decision",
                            Duration::from_secs(7 * 86_400),
                            meta,
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::AwaitingLineDecision {
                                cents,
                                line,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::AwaitingLineDecision { mut cents, mut line } => {
                    let __wf_s1 = match ::workflow_runtime::__private::v1::take_signal::<
                        LineDecision,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let waited = __wf_s1;
                    let verdict = match waited {
                        Ok(d) => {
                            LineVerdict {
                                sku: line.sku,
                                approved: d.approve,
                                reviewer: Some(d.reviewer),
                                reason: d.reason,
                                cents,
                            }
                        }
                        Err(e) => {
                            LineVerdict {
                                sku: line.sku,
                                approved: false,
                                reviewer: None,
                                reason: e.to_string(),
                                cents,
                            }
                        }
                    };
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        Ok(verdict),
                    );
                }
            }
        }
    }
}
/// The order: one concurrent child review per line, then one charge for the approved lines.
#[allow(non_upper_case_globals)]
pub const order_review: order_review::Def = order_review::Def;
///The state machine compiled from the `order_review` workflow.
#[allow(non_snake_case, unused_imports)]
pub mod order_review {
    use super::*;
    #[allow(unused_imports)]
    use super::charge_order;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct charge_order {}
    }
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<Order>();
    ///Where a run of `order_review` stands: one variant per suspension point, holding the locals still needed after it.
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
            ///The local `order`.
            order: Order,
        },
        ///Waiting for the child runs of `line_review`.
        ChildrenLineReview {
            ///The local `order`.
            order: Order,
        },
        ///Waiting for the result of the step `charge_order`.
        ChargeOrder {
            ///The local `approved`.
            approved: Vec<LineVerdict>,
            ///The local `rejected`.
            rejected: Vec<LineVerdict>,
            ///The local `total`.
            total: u64,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    ChildrenLineReview: children line_review\n    ChargeOrder: step charge_order\n    [*] --> Start\n    Start --> ChildrenLineReview\n    ChildrenLineReview --> ChargeOrder\n    ChildrenLineReview --> [*]\n    ChargeOrder --> [*]\n";
    ///The `order_review` workflow as a value; `order_review` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub struct Def;
    impl ::workflow_runtime::__private::v1::Workflow for Def {
        const NAME: &'static str = "order_review";
        const VERSION: u32 = 1u32;
        const LAYOUT_HASH: u64 = ::workflow_runtime::__private::v1::mix(
            14393265038654783073u64,
            &[<charge_order as ::workflow_runtime::__private::v1::Function>::SIG_HASH],
        );
        const BODY_HASH: u64 = 10763802706534578607u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &[],
        );
        type Input = Order;
        type Output = Result<OrderOutcome, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let order = input;
            State::Start { order }
        }
        fn advance(
            state: State,
            event: ::workflow_runtime::__private::v1::Event,
            ctx: &mut ::workflow_runtime::__private::v1::WorkflowContext,
        ) -> ::workflow_runtime::__private::v1::Transition<
            State,
            Result<OrderOutcome, WorkflowError>,
        > {
            advance(state, event, ctx)
        }
        fn steps() -> ::std::vec::Vec<::workflow_runtime::__private::v1::StepEntry> {
            ::std::vec![
                ::workflow_runtime::__private::v1::StepEntry::of:: < charge_order > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &::workflow_runtime::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<(), ::workflow_runtime::__private::v1::PayloadError>,
        > {
            let mut __wf_verdict = ::core::option::Option::None;
            let mut __wf_check = |
                r: ::core::result::Result<
                    (),
                    ::workflow_runtime::__private::v1::PayloadError,
                >|
            {
                if !::core::matches!(
                    __wf_verdict,
                    ::core::option::Option::Some(::core::result::Result::Ok(()))
                ) {
                    __wf_verdict = ::core::option::Option::Some(r);
                }
            };
            let _ = (name, payload, &mut __wf_check);
            __wf_verdict
        }
        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => ::core::stringify!(Start),
                State::ChildrenLineReview { .. } => {
                    ::core::stringify!(ChildrenLineReview)
                }
                State::ChargeOrder { .. } => ::core::stringify!(ChargeOrder),
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
        Result<OrderOutcome, WorkflowError>,
    > {
        let mut __wf_ev = ::core::option::Option::Some(__wf_event);
        let mut __wf_state = __wf_state_in;
        '__wf_dispatch: loop {
            match __wf_state {
                State::Start { mut order } => {
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
                        let __wf_cmd = ::workflow_runtime::__private::v1::fan_out_children_command(
                            &*ctx,
                            line_review,
                            order.lines.clone(),
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ChildrenLineReview { order },
                            __wf_cmd,
                        );
                    }
                }
                State::ChildrenLineReview { mut order } => {
                    let __wf_s0 = match ::workflow_runtime::__private::v1::take_children(
                            &mut __wf_ev,
                        )
                        .map(
                            ::workflow_runtime::__private::v1::children_results::<
                                line_review::Def,
                            >,
                        )
                    {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let reviews = __wf_s0;
                    let mut approved: Vec<LineVerdict> = Vec::new();
                    let mut rejected: Vec<LineVerdict> = Vec::new();
                    for (line, review) in order.lines.iter().zip(reviews) {
                        match review {
                            Ok(v) if v.approved => approved.push(v),
                            Ok(v) => rejected.push(v),
                            Err(e) => {
                                rejected
                                    .push(LineVerdict {
                                        sku: line.sku.clone(),
                                        approved: false,
                                        reviewer: None,
                                        reason: e.to_string(),
                                        cents: 0,
                                    })
                            }
                        }
                    }
                    if approved.is_empty() {
                        return ::workflow_runtime::__private::v1::Transition::Complete(
                            Ok(OrderOutcome::NothingApproved {
                                rejected,
                            }),
                        );
                    }
                    let total: u64 = approved.iter().map(|v| v.cents).sum();
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            charge_order,
                        >((order.id.clone(), order.customer.clone(), total));
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ChargeOrder {
                                approved,
                                rejected,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::ChargeOrder { mut approved, mut rejected, mut total } => {
                    let __wf_s1 = match ::workflow_runtime::__private::v1::take_step::<
                        charge_order,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let receipt = match __wf_s1 {
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
                        Ok(OrderOutcome::Charged {
                            receipt,
                            total_cents: total,
                            approved,
                            rejected,
                        }),
                    );
                }
            }
        }
    }
}
