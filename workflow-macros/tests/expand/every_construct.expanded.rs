// The expansion of tests/expand/every_construct.rs, pinned by `workflow-macros/src/snapshots.rs`.
// Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.

/// `a + b`.
pub async fn add(a: u64, b: u64) -> Result<u64, StepError> {
    Ok(a + b)
}
///Step metadata for [`add()`]: lets `ctx.step(add, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct add {}
impl ::workflow_runtime::__private::v1::Function for add {
    const NAME: &'static str = "add";
    const SIG_HASH: u64 = 385783864409864980u64;
    type Input = (u64, u64);
    type Output = u64;
    fn call(
        _: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let (a, b) = __wf_input;
        ::std::boxed::Box::pin(async move {
            add(a, b).await.map_err(::core::convert::Into::into)
        })
    }
}
/// The text, trimmed and upper-cased.
pub async fn shout(text: String) -> Result<String, StepError> {
    Ok(text.trim().to_uppercase())
}
///Step metadata for [`shout()`]: lets `ctx.step(shout, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct shout {}
impl ::workflow_runtime::__private::v1::Function for shout {
    const NAME: &'static str = "shout";
    const SIG_HASH: u64 = 5020671586250456177u64;
    const RETRY: ::workflow_runtime::__private::v1::RetryPolicy = ::workflow_runtime::__private::v1::RetryPolicy::DEFAULT
        .max_attempts(2u32)
        .initial_backoff(::core::time::Duration::from_millis(10u64));
    type Input = String;
    type Output = String;
    fn call(
        _: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let text = __wf_input;
        ::std::boxed::Box::pin(async move {
            shout(text).await.map_err(::core::convert::Into::into)
        })
    }
}
/// Fails permanently when asked to.
pub async fn check(fail: bool) -> Result<u64, StepError> {
    if fail { Err(StepError::permanent("asked to fail")) } else { Ok(7) }
}
///Step metadata for [`check()`]: lets `ctx.step(check, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct check {}
impl ::workflow_runtime::__private::v1::Function for check {
    const NAME: &'static str = "check";
    const SIG_HASH: u64 = 16880723944675852516u64;
    type Input = bool;
    type Output = u64;
    fn call(
        _: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let fail = __wf_input;
        ::std::boxed::Box::pin(async move {
            check(fail).await.map_err(::core::convert::Into::into)
        })
    }
}
/// Whether there is a page after `cursor` (up to 3).
pub async fn has_more(cursor: u64) -> Result<bool, StepError> {
    Ok(cursor < 3)
}
///Step metadata for [`has_more()`]: lets `ctx.step(has_more, ..)` in a `#[workflow]` name the step's input and output types.
#[allow(non_camel_case_types)]
pub struct has_more {}
impl ::workflow_runtime::__private::v1::Function for has_more {
    const NAME: &'static str = "has_more";
    const SIG_HASH: u64 = 7489765376958180683u64;
    type Input = u64;
    type Output = bool;
    fn call(
        _: ::workflow_runtime::__private::v1::StepContext,
        __wf_input: Self::Input,
    ) -> ::workflow_runtime::__private::v1::StepFuture<Self::Output> {
        let cursor = __wf_input;
        ::std::boxed::Box::pin(async move {
            has_more(cursor).await.map_err(::core::convert::Into::into)
        })
    }
}
/// Every construct: `for` over a range and a vector, `while` with a suspending condition,
/// labeled `loop`s with `break`/`continue`, `if`/`else` and `match` whose branches suspend,
/// a `let` whose `if` branches suspend, a `let v = loop`, an arm binding held across a
/// suspension, shadowing, `#[state(..)]`, a retry override, a sleep, a signal wait, `?` and
/// an early `return`.
#[allow(non_upper_case_globals)]
pub const every_construct: every_construct::Def = every_construct::Def;
///The state machine compiled from the `every_construct` workflow.
#[allow(non_snake_case, unused_imports)]
pub mod every_construct {
    use super::*;
    #[allow(unused_imports)]
    use super::add;
    #[allow(unused_imports)]
    use super::check;
    #[allow(unused_imports)]
    use super::has_more;
    #[allow(unused_imports)]
    use super::shout;
    #[allow(unused_imports)]
    use self::__wf_not_functions::*;
    #[doc(hidden)]
    #[allow(non_camel_case_types, dead_code)]
    mod __wf_not_functions {
        pub struct add {}
        pub struct check {}
        pub struct has_more {}
        pub struct shout {}
    }
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<String>();
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<u64>();
    const _: () = ::workflow_runtime::__private::v1::assert_persist::<Vec<String>>();
    ///Where a run of `every_construct` stands: one variant per suspension point, holding the locals still needed after it.
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
            ///The local `name`.
            name: String,
            ///The local `n`.
            n: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///Waiting for the result of the step `shout`.
        ShoutName {
            ///The local `n`.
            n: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block2 {
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
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
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
            ///The local `words`.
            words: Vec<String>,
        },
        ///Waiting for the result of the step `add`.
        AddTotal {
            ///The local `__wf_for0`.
            __wf_for0: ::workflow_runtime::__private::v1::RangeCursor<u64>,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
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
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
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
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `shout`.
        ShoutLoud {
            ///The local `__wf_for1`.
            __wf_for1: ::std::collections::VecDeque<
                <Vec<String> as ::core::iter::IntoIterator>::Item,
            >,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block8 {
            ///The local `cursor`.
            cursor: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block9 {
            ///The local `cursor`.
            cursor: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `has_more`.
        HasMore {
            ///The local `cursor`.
            cursor: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        AddCursor {
            ///The local `cursor`.
            cursor: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block12 {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block13 {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block14 {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `j`.
            j: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        Inner {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `j`.
            j: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block16 {
            ///The local `__wf_loop0`.
            __wf_loop0: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        AddBigBonus {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        AddSmallBonus {
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block19 {
            ///The local `__wf_loop1`.
            __wf_loop1: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block20 {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `add`.
        AddV {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `n`.
            n: u64,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the result of the step `check`.
        Check {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `first_big`.
            first_big: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///A loop head or branch join; never stored.
        #[doc(hidden)]
        #[serde(skip)]
        __Block23 {
            ///The local `__wf_loop2`.
            __wf_loop2: <::core::result::Result<
                <check as ::workflow_runtime::__private::v1::Function>::Output,
                ::workflow_runtime::__private::v1::StepError,
            > as ::workflow_runtime::__private::v1::ResultParts>::Ok,
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `first_big`.
            first_big: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `total`.
            total: u64,
        },
        ///Sleeping until a durable timer fires.
        SleepingErr {
            ///The local `e`.
            e: <::core::result::Result<
                <check as ::workflow_runtime::__private::v1::Function>::Output,
                ::workflow_runtime::__private::v1::StepError,
            > as ::workflow_runtime::__private::v1::ResultParts>::Err,
        },
        ///Waiting for the result of the step `shout`.
        ShoutRetried {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `first_big`.
            first_big: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `outcome`.
            outcome: <::core::result::Result<
                <check as ::workflow_runtime::__private::v1::Function>::Output,
                ::workflow_runtime::__private::v1::StepError,
            > as ::workflow_runtime::__private::v1::ResultParts>::Ok,
            ///The local `total`.
            total: u64,
        },
        ///Sleeping until a durable timer fires.
        Sleeping {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `first_big`.
            first_big: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `outcome`.
            outcome: <::core::result::Result<
                <check as ::workflow_runtime::__private::v1::Function>::Output,
                ::workflow_runtime::__private::v1::StepError,
            > as ::workflow_runtime::__private::v1::ResultParts>::Ok,
            ///The local `retried`.
            retried: <shout as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `total`.
            total: u64,
        },
        ///Waiting for the signal "extra".
        AwaitingExtra {
            ///The local `bonus`.
            bonus: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `cursor`.
            cursor: u64,
            ///The local `first_big`.
            first_big: <add as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `hits`.
            hits: u64,
            ///The local `joined`.
            joined: ::std::string::String,
            ///The local `name`.
            name: ::std::string::String,
            ///The local `outcome`.
            outcome: <::core::result::Result<
                <check as ::workflow_runtime::__private::v1::Function>::Output,
                ::workflow_runtime::__private::v1::StepError,
            > as ::workflow_runtime::__private::v1::ResultParts>::Ok,
            ///The local `retried`.
            retried: <shout as ::workflow_runtime::__private::v1::Function>::Output,
            ///The local `total`.
            total: u64,
        },
    }
    /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
    /// stored state, labelled with what the run waits on there.
    pub const MERMAID: &str = "stateDiagram-v2\n    Start: start\n    ShoutName: step shout\n    AddTotal: step add\n    ShoutLoud: step shout\n    HasMore: step has_more\n    AddCursor: step add\n    Inner: step add\n    AddBigBonus: step add\n    AddSmallBonus: step add\n    AddV: step add\n    Check: step check\n    SleepingErr: sleep\n    ShoutRetried: step shout\n    Sleeping: sleep\n    AwaitingExtra: wait extra\n    [*] --> Start\n    Start --> ShoutName\n    ShoutName --> AddTotal\n    ShoutName --> ShoutLoud\n    ShoutName --> HasMore\n    ShoutName --> [*]\n    AddTotal --> AddTotal\n    AddTotal --> ShoutLoud\n    AddTotal --> HasMore\n    AddTotal --> [*]\n    ShoutLoud --> ShoutLoud\n    ShoutLoud --> HasMore\n    ShoutLoud --> [*]\n    HasMore --> AddCursor\n    HasMore --> Inner\n    HasMore --> [*]\n    AddCursor --> HasMore\n    AddCursor --> [*]\n    Inner --> Inner\n    Inner --> AddBigBonus\n    Inner --> AddSmallBonus\n    Inner --> [*]\n    AddBigBonus --> AddV\n    AddBigBonus --> [*]\n    AddSmallBonus --> AddV\n    AddSmallBonus --> [*]\n    AddV --> AddV\n    AddV --> Check\n    AddV --> [*]\n    Check --> SleepingErr\n    Check --> ShoutRetried\n    SleepingErr --> [*]\n    ShoutRetried --> Sleeping\n    ShoutRetried --> [*]\n    Sleeping --> AwaitingExtra\n    AwaitingExtra --> [*]\n";
    ///The `every_construct` workflow as a value; `every_construct` is a constant of this type.
    #[derive(
        ::core::fmt::Debug,
        ::core::clone::Clone,
        ::core::marker::Copy,
        ::core::default::Default
    )]
    pub struct Def;
    impl ::workflow_runtime::__private::v1::Workflow for Def {
        const NAME: &'static str = "every_construct";
        const VERSION: u32 = 3u32;
        const LAYOUT_HASH: u64 = ::workflow_runtime::__private::v1::mix(
            6311512784650858443u64,
            &[
                <add as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <check as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <has_more as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
                <shout as ::workflow_runtime::__private::v1::Function>::SIG_HASH,
            ],
        );
        const BODY_HASH: u64 = 14029285922238349742u64;
        const MERMAID: &'static str = MERMAID;
        const SIGNALS: ::core::option::Option<&'static [&'static str]> = ::core::option::Option::Some(
            &["extra"],
        );
        type Input = (String, u64, Vec<String>);
        type Output = Result<String, WorkflowError>;
        type State = State;
        fn start(input: Self::Input) -> State {
            let (name, n, words) = input;
            State::Start { name, n, words }
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
                ::workflow_runtime::__private::v1::StepEntry::of:: < check > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < has_more > (),
                ::workflow_runtime::__private::v1::StepEntry::of:: < shout > ()
            ]
        }
        fn check_signal(
            name: &str,
            payload: &::workflow_runtime::__private::v1::serde_json::Value,
        ) -> ::core::option::Option<
            ::core::result::Result<(), ::workflow_runtime::__private::v1::PayloadError>,
        > {
            if name == "extra" {
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
                State::ShoutName { .. } => ::core::stringify!(ShoutName),
                State::AddTotal { .. } => ::core::stringify!(AddTotal),
                State::ShoutLoud { .. } => ::core::stringify!(ShoutLoud),
                State::HasMore { .. } => ::core::stringify!(HasMore),
                State::AddCursor { .. } => ::core::stringify!(AddCursor),
                State::Inner { .. } => ::core::stringify!(Inner),
                State::AddBigBonus { .. } => ::core::stringify!(AddBigBonus),
                State::AddSmallBonus { .. } => ::core::stringify!(AddSmallBonus),
                State::AddV { .. } => ::core::stringify!(AddV),
                State::Check { .. } => ::core::stringify!(Check),
                State::SleepingErr { .. } => ::core::stringify!(SleepingErr),
                State::ShoutRetried { .. } => ::core::stringify!(ShoutRetried),
                State::Sleeping { .. } => ::core::stringify!(Sleeping),
                State::AwaitingExtra { .. } => ::core::stringify!(AwaitingExtra),
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
                State::Start { mut name, mut n, mut words } => {
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
                            shout,
                        >(name);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ShoutName { n, words },
                            __wf_cmd,
                        );
                    }
                }
                State::ShoutName { mut n, mut words } => {
                    let __wf_s0 = match ::workflow_runtime::__private::v1::take_step::<
                        shout,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let name = match __wf_s0 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    let name = format!("{name}!");
                    let mut total: u64 = 0;
                    let mut __wf_for0: ::workflow_runtime::__private::v1::RangeCursor<
                        u64,
                    > = ::workflow_runtime::__private::v1::RangeCursor::<
                        u64,
                    >::new(0, n, false);
                    {
                        __wf_state = State::__Block3 {
                            __wf_for0,
                            n,
                            name,
                            total,
                            words,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block2 { mut n, mut name, mut total, mut words } => {
                    let mut joined = String::new();
                    let mut __wf_for1: ::std::collections::VecDeque<
                        <Vec<String> as ::core::iter::IntoIterator>::Item,
                    > = ::workflow_runtime::__private::v1::vec_cursor(words);
                    {
                        __wf_state = State::__Block6 {
                            __wf_for1,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block3 {
                    mut __wf_for0,
                    mut n,
                    mut name,
                    mut total,
                    mut words,
                } => {
                    let i = match ::workflow_runtime::__private::v1::ForCursor::next_item(
                        &mut __wf_for0,
                    ) {
                        ::core::option::Option::Some(__wf_item) => __wf_item,
                        ::core::option::Option::None => {
                            __wf_state = State::__Block2 {
                                n,
                                name,
                                total,
                                words,
                            };
                            continue '__wf_dispatch;
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            add,
                        >((total, i));
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::AddTotal {
                                __wf_for0,
                                n,
                                name,
                                total,
                                words,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::AddTotal {
                    mut __wf_for0,
                    mut n,
                    mut name,
                    mut total,
                    mut words,
                } => {
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
                            n,
                            name,
                            total,
                            words,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block5 { mut joined, mut n, mut name, mut total } => {
                    let mut cursor: u64 = 0;
                    {
                        __wf_state = State::__Block9 {
                            cursor,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block6 {
                    mut __wf_for1,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let w = match ::workflow_runtime::__private::v1::ForCursor::next_item(
                        &mut __wf_for1,
                    ) {
                        ::core::option::Option::Some(__wf_item) => __wf_item,
                        ::core::option::Option::None => {
                            __wf_state = State::__Block5 {
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        }
                    };
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            shout,
                        >(w);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ShoutLoud {
                                __wf_for1,
                                joined,
                                n,
                                name,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::ShoutLoud {
                    mut __wf_for1,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s2 = match ::workflow_runtime::__private::v1::take_step::<
                        shout,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let loud = match __wf_s2 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    joined.push_str(&loud);
                    {
                        __wf_state = State::__Block6 {
                            __wf_for1,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block8 {
                    mut cursor,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let mut hits: u64 = 0;
                    {
                        __wf_state = State::__Block13 {
                            cursor,
                            hits,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block9 {
                    mut cursor,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        has_more,
                    >(cursor);
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::HasMore {
                            cursor,
                            joined,
                            n,
                            name,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::HasMore {
                    mut cursor,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s3 = match ::workflow_runtime::__private::v1::take_step::<
                        has_more,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    if match __wf_s3 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    } {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                add,
                            >((cursor, 1));
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::AddCursor {
                                    cursor,
                                    joined,
                                    n,
                                    name,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    } else {
                        {
                            __wf_state = State::__Block8 {
                                cursor,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                        return ::workflow_runtime::__private::v1::Transition::Complete(
                            ::workflow_runtime::__private::v1::fell_off(),
                        );
                    }
                }
                State::AddCursor {
                    mut cursor,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
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
                    cursor = match __wf_s4 {
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
                        __wf_state = State::__Block9 {
                            cursor,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block12 {
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    if total > 3 {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                add,
                            >((total, 100));
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::AddBigBonus {
                                    cursor,
                                    hits,
                                    joined,
                                    n,
                                    name,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    } else {
                        {
                            let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                                add,
                            >((total, 1));
                            return ::workflow_runtime::__private::v1::Transition::Suspend(
                                State::AddSmallBonus {
                                    cursor,
                                    hits,
                                    joined,
                                    n,
                                    name,
                                    total,
                                },
                                __wf_cmd,
                            );
                        }
                    }
                }
                State::__Block13 {
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let mut j: u64 = 0;
                    {
                        __wf_state = State::__Block14 {
                            cursor,
                            hits,
                            j,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block14 {
                    mut cursor,
                    mut hits,
                    mut j,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        add,
                    >((j, 1));
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::Inner {
                            cursor,
                            hits,
                            j,
                            joined,
                            n,
                            name,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::Inner {
                    mut cursor,
                    mut hits,
                    mut j,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s5 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let stepped = match __wf_s5 {
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
                            __wf_state = State::__Block14 {
                                cursor,
                                hits,
                                j,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    if j >= 3 {
                        {
                            __wf_state = State::__Block13 {
                                cursor,
                                hits,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    hits += 1;
                    if hits >= 2 {
                        {
                            __wf_state = State::__Block12 {
                                cursor,
                                hits,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        };
                    }
                    {
                        __wf_state = State::__Block14 {
                            cursor,
                            hits,
                            j,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::__Block16 {
                    mut __wf_loop0,
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let bonus = __wf_loop0;
                    {
                        __wf_state = State::__Block20 {
                            bonus,
                            cursor,
                            hits,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::AddBigBonus {
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s6 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    {
                        let __wf_loop0 = match __wf_s6 {
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
                            __wf_state = State::__Block16 {
                                __wf_loop0,
                                cursor,
                                hits,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        }
                    };
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        ::workflow_runtime::__private::v1::fell_off(),
                    );
                }
                State::AddSmallBonus {
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s7 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    {
                        let __wf_loop0 = match __wf_s7 {
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
                            __wf_state = State::__Block16 {
                                __wf_loop0,
                                cursor,
                                hits,
                                joined,
                                n,
                                name,
                                total,
                            };
                            continue '__wf_dispatch;
                        }
                    };
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        ::workflow_runtime::__private::v1::fell_off(),
                    );
                }
                State::__Block19 {
                    mut __wf_loop1,
                    mut bonus,
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let first_big = __wf_loop1;
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                            check,
                        >(n > 10);
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::Check {
                                bonus,
                                cursor,
                                first_big,
                                hits,
                                joined,
                                name,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::__Block20 {
                    mut bonus,
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_cmd = ::workflow_runtime::__private::v1::step_command::<
                        add,
                    >((hits, 10));
                    return ::workflow_runtime::__private::v1::Transition::Suspend(
                        State::AddV {
                            bonus,
                            cursor,
                            hits,
                            joined,
                            n,
                            name,
                            total,
                        },
                        __wf_cmd,
                    );
                }
                State::AddV {
                    mut bonus,
                    mut cursor,
                    mut hits,
                    mut joined,
                    mut n,
                    mut name,
                    mut total,
                } => {
                    let __wf_s8 = match ::workflow_runtime::__private::v1::take_step::<
                        add,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let v = match __wf_s8 {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return ::workflow_runtime::__private::v1::Transition::Complete(
                                ::core::result::Result::Err(
                                    ::core::convert::From::from(__wf_e),
                                ),
                            );
                        }
                    };
                    if v > 5 {
                        {
                            let __wf_loop1 = v;
                            {
                                __wf_state = State::__Block19 {
                                    __wf_loop1,
                                    bonus,
                                    cursor,
                                    hits,
                                    joined,
                                    n,
                                    name,
                                    total,
                                };
                                continue '__wf_dispatch;
                            }
                        };
                    }
                    {
                        __wf_state = State::__Block20 {
                            bonus,
                            cursor,
                            hits,
                            joined,
                            n,
                            name,
                            total,
                        };
                        continue '__wf_dispatch;
                    }
                }
                State::Check {
                    mut bonus,
                    mut cursor,
                    mut first_big,
                    mut hits,
                    mut joined,
                    mut name,
                    mut total,
                } => {
                    let __wf_s9 = match ::workflow_runtime::__private::v1::take_step::<
                        check,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    {
                        match __wf_s9 {
                            Ok(v) => {
                                {
                                    let __wf_loop2 = v;
                                    {
                                        __wf_state = State::__Block23 {
                                            __wf_loop2,
                                            bonus,
                                            cursor,
                                            first_big,
                                            hits,
                                            joined,
                                            name,
                                            total,
                                        };
                                        continue '__wf_dispatch;
                                    }
                                };
                                return ::workflow_runtime::__private::v1::Transition::Complete(
                                    ::workflow_runtime::__private::v1::fell_off(),
                                );
                            }
                            Err(e) => {
                                let __wf_cmd = ::workflow_runtime::__private::v1::sleep_command(
                                    &*ctx,
                                    Duration::from_secs(1),
                                );
                                return ::workflow_runtime::__private::v1::Transition::Suspend(
                                    State::SleepingErr { e },
                                    __wf_cmd,
                                );
                            }
                        }
                    }
                }
                State::__Block23 {
                    mut __wf_loop2,
                    mut bonus,
                    mut cursor,
                    mut first_big,
                    mut hits,
                    mut joined,
                    mut name,
                    mut total,
                } => {
                    let outcome = __wf_loop2;
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::step_command_retry::<
                            shout,
                        >(
                            "again".to_owned(),
                            {
                                let __wf_policy: ::workflow_runtime::__private::v1::RetryPolicy = RetryPolicy::DEFAULT
                                    .max_attempts(5);
                                __wf_policy
                            },
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::ShoutRetried {
                                bonus,
                                cursor,
                                first_big,
                                hits,
                                joined,
                                name,
                                outcome,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::SleepingErr { mut e } => {
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
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        Err(WorkflowError::new(e.message)),
                    );
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        ::workflow_runtime::__private::v1::fell_off(),
                    );
                }
                State::ShoutRetried {
                    mut bonus,
                    mut cursor,
                    mut first_big,
                    mut hits,
                    mut joined,
                    mut name,
                    mut outcome,
                    mut total,
                } => {
                    let __wf_s11 = match ::workflow_runtime::__private::v1::take_step::<
                        shout,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let retried = match __wf_s11 {
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
                        let __wf_cmd = ::workflow_runtime::__private::v1::sleep_command(
                            &*ctx,
                            Duration::from_secs(60),
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::Sleeping {
                                bonus,
                                cursor,
                                first_big,
                                hits,
                                joined,
                                name,
                                outcome,
                                retried,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::Sleeping {
                    mut bonus,
                    mut cursor,
                    mut first_big,
                    mut hits,
                    mut joined,
                    mut name,
                    mut outcome,
                    mut retried,
                    mut total,
                } => {
                    let __wf_s12 = match ::workflow_runtime::__private::v1::take_wake(
                        &mut __wf_ev,
                    ) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    __wf_s12;
                    {
                        let __wf_cmd = ::workflow_runtime::__private::v1::wait_command(
                            &*ctx,
                            "extra",
                            Duration::from_secs(10),
                            json!({ "total" : total }),
                        );
                        return ::workflow_runtime::__private::v1::Transition::Suspend(
                            State::AwaitingExtra {
                                bonus,
                                cursor,
                                first_big,
                                hits,
                                joined,
                                name,
                                outcome,
                                retried,
                                total,
                            },
                            __wf_cmd,
                        );
                    }
                }
                State::AwaitingExtra {
                    mut bonus,
                    mut cursor,
                    mut first_big,
                    mut hits,
                    mut joined,
                    mut name,
                    mut outcome,
                    mut retried,
                    mut total,
                } => {
                    let __wf_s13 = match ::workflow_runtime::__private::v1::take_signal::<
                        u64,
                    >(&mut __wf_ev) {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_m) => {
                            return ::workflow_runtime::__private::v1::Transition::Reject(
                                __wf_m.into_message(),
                            );
                        }
                    };
                    let extra = __wf_s13.unwrap_or(0);
                    return ::workflow_runtime::__private::v1::Transition::Complete(
                        Ok(
                            format!(
                                "{name}|{total}|{joined}|{cursor}|{hits}|{bonus}|{first_big}|{outcome}|{retried}|{extra}"
                            ),
                        ),
                    );
                }
            }
        }
    }
}
