// The expansion of tests/expand/reexport.rs, pinned by `workflow-macros/src/snapshots.rs`.
// Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.

async fn double(x: u32) -> Result<u32, StepError> {
    Ok(x * 2)
}
///Step metadata for [`double()`]: lets `ctx.step(double, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
struct double {}
impl crate::platform::durable::__private::v1::Function for double {
    const NAME: &'static str = "double";
    const SIG_HASH: u64 = 14622403651488000532u64;
    const RETRY: crate::platform::durable::__private::v1::RetryPolicy = crate::platform::durable::__private::v1::RetryPolicy::DEFAULT
        .max_attempts(2u32);
    type Input = u32;
    type Output = u32;
    fn call(
        _: crate::platform::durable::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> crate::platform::durable::__private::v1::StepFuture<Self::Output> {
        let x = __wf_input;
        ::std::boxed::Box::pin(async move {
            double(x).await.map_err(::core::convert::Into::into)
        })
    }
}
#[allow(non_upper_case_globals)]
const reexported: reexported::Def = reexported::Def;
///The state machine compiled from the `reexported` workflow.
#[allow(non_snake_case, unused_imports)]
mod reexported {
    use super::*;
    #[allow(unused_imports)]
    use super::double;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct double {}
    }
    const _: () = crate::platform::durable::__private::v1::assert_persist::<u32>();
    ///Where a run of `reexported` stands: one variant per suspension point, holding the locals still needed after it.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        crate::platform::durable::__private::v1::serde::Serialize,
        crate::platform::durable::__private::v1::serde::Deserialize
    )]
    #[serde(crate = "crate::platform::durable::__private::v1::serde")]
    pub(super) enum State {
        ///The run has been created and not yet started.
        Start {
            ///The local `x`.
            x: u32,
        },
        ///Waiting for the result of the step `double`.
        Double {},
        ///Sleeping until a durable timer fires.
        Sleeping {
            ///The local `d`.
            d: <double as crate::platform::durable::__private::v1::Function>::Output,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub(super) const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    Double: step double\n    Sleeping: sleep\n    [*] --> Start\n    Start --> Double\n    Double --> Sleeping\n    Double --> [*]\n    Sleeping --> [*]\n";
    ///The `reexported` workflow as a value; `reexported` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub(super) struct Def;
    impl crate::platform::durable::__private::v1::Workflow for Def {
        const NAME: &'static str = "reexported";
        const VERSION: u32 = 1u32;
        const LAYOUT_HASH: u64 = crate::platform::durable::__private::v1::mix(
            3585756542670420396u64,
            &[<double as crate::platform::durable::__private::v1::Function>::SIG_HASH],
        );
        const BODY_HASH: u64 = 15011730040209192182u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &[],
        );
        type Input = u32;
        type Output = Result<u32, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let x = input;
            State::Start { x }
        }
        fn advance(
            state: State,
            event: crate::platform::durable::__private::v1::Event,
            ctx: &mut crate::platform::durable::__private::v1::WorkflowContext,
        ) -> crate::platform::durable::__private::v1::Transition<
            State,
            Result<u32, WorkflowError>,
        > {
            advance(state, event, ctx)
        }
        fn steps() -> ::std::vec::Vec<
            crate::platform::durable::__private::v1::StepEntry,
        > {
            ::std::vec![
                crate ::platform::durable::__private::v1::StepEntry::of:: < double > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &crate::platform::durable::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<
                (),
                crate::platform::durable::__private::v1::PayloadError,
            >,
        > {
            let _ = (name, payload);
            ::core::option::Option::None
        }
        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => ::core::stringify!(Start),
                State::Double { .. } => ::core::stringify!(Double),
                State::Sleeping { .. } => ::core::stringify!(Sleeping),
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
    pub(super) fn advance(
        __wf_state_in: State,
        __wf_event: crate::platform::durable::__private::v1::Event,
        ctx: &mut crate::platform::durable::__private::v1::WorkflowContext,
    ) -> crate::platform::durable::__private::v1::Transition<
        State,
        Result<u32, WorkflowError>,
    > {
        let mut __wf_ev = ::core::option::Option::Some(__wf_event);
        let mut __wf_state = __wf_state_in;
        '__wf_dispatch: loop {
            match __wf_state {
                State::Start { mut x } => {
                    let () = match crate::platform::durable::__private::v1::take_start(
                            &mut __wf_ev,
                        )
                        .map(|()| ())
                    {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return crate::platform::durable::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    {
                        let __wf_cmd = crate::platform::durable::__private::v1::step_command::<
                            double,
                        >(x);
                        return crate::platform::durable::__private::v1::Transition::Suspend(
                            State::Double {},
                            __wf_cmd,
                        );
                    }
                }
                State::Double {} => {
                    let __wf_s0 = match crate::platform::durable::__private::v1::take_step::<
                        double,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return crate::platform::durable::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let d = match __wf_s0 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return crate::platform::durable::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    {
                        let __wf_cmd = crate::platform::durable::__private::v1::sleep_command(
                            &*ctx,
                            std::time::Duration::from_secs(1),
                        );
                        return crate::platform::durable::__private::v1::Transition::Suspend(
                            State::Sleeping { d },
                            __wf_cmd,
                        );
                    }
                }
                State::Sleeping { mut d } => {
                    let __wf_s1 = match crate::platform::durable::__private::v1::take_wake(
                        &mut __wf_ev,
                    ) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return crate::platform::durable::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    __wf_s1;
                    return crate::platform::durable::__private::v1::Transition::Complete(
                        Ok(d),
                    );
                }
            }
        }
    }
}
