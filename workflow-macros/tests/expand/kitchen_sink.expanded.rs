// The expansion of ../tests/src/workflows.rs, pinned by `workflow-macros/src/snapshots.rs`.
// Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.

/// Every supported construct: loops, labels, branches, matches, sleeps, waits, closures.
#[allow(non_upper_case_globals)]
pub const kitchen_sink: kitchen_sink::Def = kitchen_sink::Def;
///The state machine compiled from the `kitchen_sink` workflow.
#[allow(non_snake_case, unused_imports)]
pub mod kitchen_sink {
    use super::*;
    #[allow(unused_imports)]
    use super::add;
    #[allow(unused_imports)]
    use super::echo;
    #[allow(unused_imports)]
    use super::fail_if;
    #[allow(unused_imports)]
    use super::nothing;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct add {}
        pub struct echo {}
        pub struct fail_if {}
        pub struct nothing {}
    }
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<u64>();
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<Vec<String>>();
    ///Where a run of `kitchen_sink` stands: one variant per suspension point, holding the locals still needed after it.
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
            ///The local `n`.
            n: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///Waiting for the result of the step `nothing`.
        Nothing {
            ///The local `n`.
            n: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block2 {
            ///The local `total`.
            total: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block3 {
            ///The local `__wf_for0`.
            __wf_for0: ::workflow_runtime::__private::v1::RangeCursor<u64>,
            ///The local `total`.
            total: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///Waiting for the result of the step `add`.
        Add {
            ///The local `__wf_for0`.
            __wf_for0: ::workflow_runtime::__private::v1::RangeCursor<u64>,
            ///The local `total`.
            total: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block5 {
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block6 {
            ///The local `__wf_for1`.
            __wf_for1: ::std::collections::VecDeque<
                <Vec<String> as ::core::iter::IntoIterator>::Item,
            >,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `echo`.
        Echo {
            ///The local `__wf_for1`.
            __wf_for1: ::std::collections::VecDeque<
                <Vec<String> as ::core::iter::IntoIterator>::Item,
            >,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block8 {
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block9 {
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        Increment {
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block11 {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block12 {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block13 {
            ///The local `hits`.
            hits: u64,
            ///The local `j`.
            j: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        Inner {
            ///The local `hits`.
            hits: u64,
            ///The local `j`.
            j: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block15 {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `echo`.
        EchoEven {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `echo`.
        EchoOdd {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `fail_if`.
        FailIf {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `fail_if`.
        FailOnPurpose {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `msg`.
            msg: String,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block20 {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `msg`.
            msg: String,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `echo`.
        EchoError {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `msg`.
            msg: String,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Sleeping until a durable timer fires.
        Sleeping {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `msg`.
            msg: String,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the signal "bonus".
        AwaitingBonus {
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `k`.
            k: u64,
            ///The local `msg`.
            msg: String,
            ///The local `parity`.
            parity: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    Nothing: step nothing\n    Add: step add\n    Echo: step echo\n    Increment: step add\n    Inner: step add\n    EchoEven: step echo\n    EchoOdd: step echo\n    FailIf: step fail_if\n    FailOnPurpose: step fail_if\n    EchoError: step echo\n    Sleeping: sleep\n    AwaitingBonus: wait bonus\n    [*] --> Start\n    Start --> Nothing\n    Nothing --> Add\n    Nothing --> Echo\n    Nothing --> Increment\n    Nothing --> Inner\n    Nothing --> [*]\n    Add --> Add\n    Add --> Echo\n    Add --> Increment\n    Add --> Inner\n    Add --> [*]\n    Echo --> Echo\n    Echo --> Increment\n    Echo --> Inner\n    Echo --> [*]\n    Increment --> Increment\n    Increment --> Inner\n    Increment --> [*]\n    Inner --> Inner\n    Inner --> EchoEven\n    Inner --> EchoOdd\n    Inner --> [*]\n    EchoEven --> FailIf\n    EchoEven --> [*]\n    EchoOdd --> FailIf\n    EchoOdd --> [*]\n    FailIf --> FailOnPurpose\n    FailOnPurpose --> EchoError\n    FailOnPurpose --> [*]\n    EchoError --> Sleeping\n    EchoError --> [*]\n    Sleeping --> AwaitingBonus\n    AwaitingBonus --> [*]\n";
    ///The `kitchen_sink` workflow as a value; `kitchen_sink` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub struct Def;
    impl ::workflow_runtime::__private::v1::Workflow for Def {
        const NAME: &'static str = "kitchen_sink";
        const VERSION: u32 = 1u32;
        const LAYOUT_HASH: u64 = ::workflow_runtime::__private::v1::mix(
            8995090482245164597u64,
            &[
                <add as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <echo as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <fail_if as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <nothing as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
            ],
        );
        const BODY_HASH: u64 = 8018788606606704987u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &["bonus"],
        );
        type Input = (u64, Vec<String>);
        type Output = Result<String, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let (n, words) = input;
            State::Start { n, words }
        }
        fn advance(
            state: State,
            event: ::workflow_runtime::__private::v1::Event,
            ctx: &mut ::workflow_runtime::__private::v1::WorkflowContext,
        ) -> ::workflow_runtime::__private::v1::Transition<
            State,
            Result<String, WorkflowError>,
        > {
            advance(state, event, ctx)
        }
        fn steps() -> ::std::vec::Vec<::workflow_runtime::__private::v1::StepEntry> {
            ::std::vec![
                ::workflow_runtime::__private::v1::StepEntry::of:: < add > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < echo > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < fail_if > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < nothing > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &::workflow_runtime::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<(), ::workflow_runtime::__private::v1::PayloadError>,
        > {
            if name == "bonus" {
                return ::core::option::Option::Some(
                    ::workflow_runtime::__private::v1::check_payload::<u64>(payload),
                );
            }
            let _ = (name, payload);
            ::core::option::Option::None
        }
        fn variant_name(state: &State) -> &'static str {
            match state {
                State::Start { .. } => ::core::stringify!(Start),
                State::Nothing { .. } => ::core::stringify!(Nothing),
                State::Add { .. } => ::core::stringify!(Add),
                State::Echo { .. } => ::core::stringify!(Echo),
                State::Increment { .. } => ::core::stringify!(Increment),
                State::Inner { .. } => ::core::stringify!(Inner),
                State::EchoEven { .. } => ::core::stringify!(EchoEven),
                State::EchoOdd { .. } => ::core::stringify!(EchoOdd),
                State::FailIf { .. } => ::core::stringify!(FailIf),
                State::FailOnPurpose { .. } => ::core::stringify!(FailOnPurpose),
                State::EchoError { .. } => ::core::stringify!(EchoError),
                State::Sleeping { .. } => ::core::stringify!(Sleeping),
                State::AwaitingBonus { .. } => ::core::stringify!(AwaitingBonus),
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
        Result<String, WorkflowError>,
    > {
        let mut __wf_ev = ::core::option::Option::Some(__wf_event);
        let mut __wf_state = __wf_state_in;
        '__wf_dispatch: loop {
            match __wf_state {
                State::Start { mut n, mut words } => {
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
                            nothing,
                        >(());
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::Nothing { n, words },
                            __wf_cmd,
                        );
                    }
                }
                State::Nothing { mut n, mut words } => {
                    let __wf_s0 = match ::workflow_runtime::__private::v1::take_step::<
                        nothing,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    match __wf_s0 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    let mut total: u64 = 0;
                    let mut __wf_for0: ::workflow_runtime::__private::v1::RangeCursor<
                        u64,
                    > = ::workflow_runtime::__private::v1::RangeCursor::<
                        u64,
                    >::new(0, n, false);
                    {
                        __wf_state = State::__Block3 {
                            __wf_for0,
                            total,
                            words,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block2 { mut total, mut words } => {
                    let mut joined = String::new();
                    let mut __wf_for1: ::std::collections::VecDeque<
                        <Vec<String> as ::core::iter::IntoIterator>::Item,
                    > = ::workflow_runtime::__private::v1::vec_cursor(words);
                    {
                        __wf_state = State::__Block6 {
                            __wf_for1,
                            joined,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block3 { mut __wf_for0, mut total, mut words } => {
                    let i = match ::workflow_runtime::__private::v1::ForCursor::next_item(
                        &mut __wf_for0,
                    ) {
                        ::core::option::Option::Some(__wf_item) => __wf_item,
                        ::core::option::Option::None => {
                            __wf_state = State::__Block2 { total, words };
                            continue '__wf_dispatch;
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            add,
                        >((total, i));
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::Add {
                                __wf_for0,
                                total,
                                words,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::Add { mut __wf_for0, mut total, mut words } => {
                    let __wf_s1 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    total = match __wf_s1 {
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
                        __wf_state = State::__Block3 {
                            __wf_for0,
                            total,
                            words,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block5 { mut joined, mut total } => {
                    let mut k: u64 = 0;
                    {
                        __wf_state = State::__Block9 {
                            joined,
                            k,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block6 { mut __wf_for1, mut joined, mut total } => {
                    let w = match ::workflow_runtime::__private::v1::ForCursor::next_item(
                        &mut __wf_for1,
                    ) {
                        ::core::option::Option::Some(__wf_item) => __wf_item,
                        ::core::option::Option::None => {
                            __wf_state = State::__Block5 { joined, total };
                            continue '__wf_dispatch;
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            echo,
                        >(w);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::Echo {
                                __wf_for1,
                                joined,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::Echo { mut __wf_for1, mut joined, mut total } => {
                    let __wf_s2 = match ::workflow_runtime::__private::v1::take_step::<
                        echo,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let e = match __wf_s2 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    joined = format!("{joined}{e},");
                    {
                        __wf_state = State::__Block6 {
                            __wf_for1,
                            joined,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block8 { mut joined, mut k, mut total } => {
                    let mut hits: u64 = 0;
                    {
                        __wf_state = State::__Block12 {
                            hits,
                            joined,
                            k,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block9 { mut joined, mut k, mut total } => {
                    if k < 3 {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                add,
                            >((k, 1));
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::Increment {
                                    joined,
                                    k,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    } else {
                        {
                            __wf_state = State::__Block8 {
                                joined,
                                k,
                                total,
                            };
                            continue '__wf_dispatch;
                        }
                    }
                }
                State::Increment { mut joined, mut k, mut total } => {
                    let __wf_s3 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let next = match __wf_s3 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    k = next;
                    {
                        __wf_state = State::__Block9 {
                            joined,
                            k,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block11 { mut hits, mut joined, mut k, mut total } => {
                    let mut parity = String::new();
                    if total % 2 == 0 {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                echo,
                            >("even".to_string());
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::EchoEven {
                                    hits,
                                    joined,
                                    k,
                                    parity,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    } else {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                echo,
                            >("odd".to_string());
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::EchoOdd {
                                    hits,
                                    joined,
                                    k,
                                    parity,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    }
                }
                State::__Block12 { mut hits, mut joined, mut k, mut total } => {
                    let mut j: u64 = 0;
                    {
                        __wf_state = State::__Block13 {
                            hits,
                            j,
                            joined,
                            k,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block13 { mut hits, mut j, mut joined, mut k, mut total } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        add,
                    >((j, 1));
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::Inner {
                            hits,
                            j,
                            joined,
                            k,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::Inner { mut hits, mut j, mut joined, mut k, mut total } => {
                    let __wf_s4 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let stepped = match __wf_s4 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    j = stepped;
                    if j == 2 {
                        {
                            __wf_state = State::__Block13 {
                                hits,
                                j,
                                joined,
                                k,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    if j >= 4 {
                        {
                            __wf_state = State::__Block12 {
                                hits,
                                joined,
                                k,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    hits += 1;
                    if hits >= 5 {
                        {
                            __wf_state = State::__Block11 {
                                hits,
                                joined,
                                k,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    {
                        __wf_state = State::__Block13 {
                            hits,
                            j,
                            joined,
                            k,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block15 {
                    mut hits,
                    mut joined,
                    mut k,
                    mut parity,
                    mut total,
                } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        fail_if,
                    >(false);
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::FailIf {
                            hits,
                            joined,
                            k,
                            parity,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::EchoEven {
                    mut hits,
                    mut joined,
                    mut k,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s5 = match ::workflow_runtime::__private::v1::take_step::<
                        echo,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let p = match __wf_s5 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    parity = p;
                    {
                        __wf_state = State::__Block15 {
                            hits,
                            joined,
                            k,
                            parity,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::EchoOdd {
                    mut hits,
                    mut joined,
                    mut k,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s6 = match ::workflow_runtime::__private::v1::take_step::<
                        echo,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let p = match __wf_s6 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    parity = p;
                    {
                        __wf_state = State::__Block15 {
                            hits,
                            joined,
                            k,
                            parity,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::FailIf { mut hits, mut joined, mut k, mut parity, mut total } => {
                    let __wf_s7 = match ::workflow_runtime::__private::v1::take_step::<
                        fail_if,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let msg: String = match __wf_s7 {
                        Ok(v) => format!("ok {v}"),
                        Err(e) => format!("err {e}"),
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            fail_if,
                        >(true);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::FailOnPurpose {
                                hits,
                                joined,
                                k,
                                msg,
                                parity,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::FailOnPurpose {
                    mut hits,
                    mut joined,
                    mut k,
                    mut msg,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s8 = match ::workflow_runtime::__private::v1::take_step::<
                        fail_if,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    match __wf_s8 {
                        Ok(_) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                Err(WorkflowError::new("should have failed")),
                            );
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::workflow_runtime::__private::v1::fell_off(),
                            );
                        }
                        Err(e) => {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                echo,
                            >(e.message);
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::EchoError {
                                    hits,
                                    joined,
                                    k,
                                    msg,
                                    parity,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    }
                }
                State::__Block20 {
                    mut hits,
                    mut joined,
                    mut k,
                    mut msg,
                    mut parity,
                    mut total,
                } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::sleep_command(
                        &*ctx,
                        Duration::from_secs(60),
                    );
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::Sleeping {
                            hits,
                            joined,
                            k,
                            msg,
                            parity,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::EchoError {
                    mut hits,
                    mut joined,
                    mut k,
                    mut msg,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s9 = match ::workflow_runtime::__private::v1::take_step::<
                        echo,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let again: String = match __wf_s9 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    joined.push_str(&again);
                    {
                        __wf_state = State::__Block20 {
                            hits,
                            joined,
                            k,
                            msg,
                            parity,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::Sleeping {
                    mut hits,
                    mut joined,
                    mut k,
                    mut msg,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s10 = match ::workflow_runtime::__private::v1::take_wake(
                        &mut __wf_ev,
                    ) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    __wf_s10;
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::wait_command(
                            &*ctx,
                            "bonus",
                            Duration::from_secs(10),
                            json!({ "total" : total }),
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::AwaitingBonus {
                                hits,
                                joined,
                                k,
                                msg,
                                parity,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::AwaitingBonus {
                    mut hits,
                    mut joined,
                    mut k,
                    mut msg,
                    mut parity,
                    mut total,
                } => {
                    let __wf_s11 = match ::workflow_runtime::__private::v1::take_signal::<
                        u64,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let decision = __wf_s11;
                    let bonus = decision.unwrap_or(0);
                    let double = |x: u64| x * 2;
                    let doubled = double(total + bonus);
                    if doubled > 1_000_000 {
                        return ::workflow_runtime::__private::v1::Transition::Complete(
                            Ok("huge".into()),
                        );
                    }
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        Ok(
                            format!(
                                "{total}|{joined}|{k}|{hits}|{parity}|{msg}|{doubled}"
                            ),
                        ),
                    );
                }
            }
        }
    }
}
