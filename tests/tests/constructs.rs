//! A workflow using every construct the lowering supports, driven to the end with its state
//! round-tripped through JSON at every suspension point.

use integration_tests::workflows::{
    add, echo, fail_if, inclusive_range, kitchen_sink, maybe, no_params, nothing,
};
use integration_tests::{Input, drive};
use serde_json::json;
use workflow_runtime::prelude::*;

#[test]
fn every_construct_runs_to_the_expected_result() {
    let run = drive(
        kitchen_sink,
        (4, vec!["a".into(), "b".into()]),
        vec![Input::Signal(json!(5))],
    );
    // total = 0+1+2+3 = 6; hits: inner j=1 -> hit, j=2 continue, j=3 hit, j=4 break, repeated
    // until 5 hits; doubled = (6 + 5) * 2.
    assert_eq!(
        run.output,
        Ok("6|a,b,asked to fail|3|5|even|ok 7|22".to_owned())
    );
    assert_eq!(run.states.first(), Some(&"Nothing"));
    assert!(run.states.contains(&"Sleeping"));
    assert!(run.states.contains(&"AwaitingBonus"));
    assert!(run.states.contains(&"EchoError"));
    assert!(!run.states.contains(&"EchoOdd"));
}

#[test]
fn a_timeout_takes_the_fallback_path() {
    let run = drive(kitchen_sink, (1, vec![]), vec![Input::Timeout]);
    assert_eq!(run.output, Ok("0|asked to fail|3|5|even|ok 7|0".to_owned()));
}

#[test]
fn held_locals_are_exactly_the_live_ones() {
    // After the bonus wait only `total`, `joined`, `k`, `hits`, `parity` and `msg` are needed.
    let s = kitchen_sink::State::AwaitingBonus {
        total: 1,
        joined: String::new(),
        k: 3,
        hits: 5,
        parity: "odd".into(),
        msg: "m".into(),
    };
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["AwaitingBonus"].as_object().unwrap().len(), 6);
    // The step after the first loop no longer holds the loop cursor or `n`.
    let s = kitchen_sink::State::Echo {
        __wf_for1: Default::default(),
        joined: String::new(),
        total: 3,
    };
    assert!(serde_json::to_value(&s).unwrap()["Echo"].get("n").is_none());
}

#[test]
fn for_over_a_step_output_and_a_suspension_in_tail_position() {
    let run = drive(no_params, (), vec![]);
    assert_eq!(run.output, Ok(1006));
    assert_eq!(
        run.states,
        ["List", "Maybe", "Maybe", "Maybe", "Maybe", "Maybe", "Last"]
    );
}

#[test]
fn an_inclusive_range_ending_at_the_type_maximum_does_not_repeat_or_overflow() {
    let run = drive(inclusive_range, 255, vec![]);
    assert_eq!(run.output, Ok(250 + 251 + 252 + 253 + 254 + 255));
    assert_eq!(run.states.len(), 6);
}

/// The same workflow on the engine, with the sleep and the wait's timeout on a manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_construct_runs_on_the_engine_with_a_manual_clock() {
    use workflow_runtime::{Engine, RunStatus};
    let clock = ManualClock::default();
    let engine = Engine::builder()
        .register(kitchen_sink)
        .register(no_params)
        .clock(clock.clone())
        .open_in_memory()
        .await
        .unwrap();
    let sink = engine
        .start(kitchen_sink, "sink", (3, vec!["x".into()]))
        .await
        .unwrap();
    let tail = engine.start(no_params, "tail", ()).await.unwrap();
    assert_eq!(tail.result().await.unwrap(), Ok(1006));
    for _ in 0..500 {
        if matches!(sink.status().unwrap(), RunStatus::Sleeping { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(
        matches!(sink.status().unwrap(), RunStatus::Sleeping { .. }),
        "{:?}",
        sink.status()
    );
    clock.advance(Duration::from_secs(60));
    for _ in 0..500 {
        if matches!(sink.status().unwrap(), RunStatus::Waiting { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    clock.advance(Duration::from_secs(10));
    // total = 0+1+2 = 3 (odd); the bonus wait times out, so doubled = 6.
    assert_eq!(
        sink.result().await.unwrap(),
        Ok("3|x,asked to fail|3|5|odd|ok 7|6".to_owned())
    );
    engine.shutdown().await;
}

#[function]
async fn split(text: String) -> Result<(String, u64), StepError> {
    Ok((text.to_uppercase(), text.len() as u64))
}

/// Tuples destructured by `let` and held across suspension points, typed from the step's
/// output or from an annotation.
#[workflow]
async fn destructuring(ctx: &mut WorkflowContext, text: String) -> Result<String, WorkflowError> {
    let (upper, len) = ctx.step(split, text).await?;
    ctx.sleep(Duration::from_secs(1)).await;
    let (twice, _): (u64, bool) = (len * 2, true);
    #[state(SleepAgain)]
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(format!("{upper}:{len}:{twice}"))
}

#[test]
fn tuples_destructured_by_let_are_held_with_their_element_types() {
    let run = drive(destructuring, "abc".into(), vec![]);
    assert_eq!(run.output, Ok("ABC:3:6".to_owned()));
    let held = destructuring::State::SleepAgain {
        upper: "X".into(),
        len: 1,
        twice: 2,
    };
    assert_eq!(
        serde_json::to_value(&held).unwrap()["SleepAgain"]["twice"],
        2
    );
}

/// `Some(n + 1)` when `n` is odd and below 9.
#[function]
async fn next_if_odd(n: u64) -> Result<Option<u64>, StepError> {
    Ok((n % 2 == 1 && n < 9).then_some(n + 1))
}

/// The next page after `cursor`, up to 3.
#[function]
async fn next_page(cursor: u64) -> Result<Option<u64>, StepError> {
    Ok((cursor < 3).then_some(cursor + 1))
}

/// `if let` over a held local, over a suspension (in an `else if let`), and an `else`, each
/// branch suspending while its pattern binding is held: `Some(x)` of an `Option<u64>` local or
/// step output is a `u64`.
#[workflow]
async fn if_let_chain(ctx: &mut WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let found = ctx.step(maybe, n).await?;
    let mut out = String::new();
    if let Some(x) = found {
        let y = ctx.step(add, (x, 1)).await?;
        ctx.sleep(Duration::from_secs(1)).await;
        out = format!("even {x} {y}");
    } else if let Some(z) = ctx.step(next_if_odd, n).await? {
        #[state(EchoOdd)]
        let e = ctx.step(echo, z.to_string()).await?;
        out = format!("odd {z} {e}");
    } else {
        #[state(SleepNone)]
        ctx.sleep(Duration::from_secs(1)).await;
        out = "none".to_owned();
    }
    Ok(out)
}

#[test]
fn if_let_chains_hold_their_bindings_across_suspensions() {
    let even = drive(if_let_chain, 4, vec![]);
    assert_eq!(even.output, Ok("even 4 5".to_owned()));
    assert_eq!(even.states, ["Maybe", "Add", "Sleeping"]);
    let odd = drive(if_let_chain, 7, vec![]);
    assert_eq!(odd.output, Ok("odd 8 8".to_owned()));
    assert_eq!(odd.states, ["Maybe", "NextIfOdd", "EchoOdd"]);
    let none = drive(if_let_chain, 9, vec![]);
    assert_eq!(none.output, Ok("none".to_owned()));
    assert_eq!(none.states, ["Maybe", "NextIfOdd", "SleepNone"]);
    // The held binding is a plain `u64` field.
    let held = if_let_chain::State::Add {
        x: 4,
        out: String::new(),
    };
    assert_eq!(
        serde_json::to_value(&held).unwrap(),
        json!({ "Add": { "x": 4, "out": "" } })
    );
}

/// `while let` whose scrutinee is a suspension, and `while let` over a held local, both with
/// bodies that suspend while the binding is held.
#[workflow]
async fn while_let_pages(ctx: &mut WorkflowContext, start: u64) -> Result<u64, WorkflowError> {
    let mut total: u64 = 0;
    let mut cursor = start;
    while let Some(page) = ctx.step(next_page, cursor).await? {
        let sum = ctx.step(add, (total, page)).await?;
        total = sum;
        cursor = page;
    }
    let mut pending: Option<u64> = Some(total);
    'drain: while let Some(k) = pending {
        #[state(Halve)]
        let half = ctx.step(add, (k / 2, 0)).await?;
        total += k;
        if half == 0 {
            break 'drain;
        }
        pending = Some(half);
    }
    Ok(total)
}

#[test]
fn while_let_over_a_suspension_and_over_a_local() {
    // pages 1, 2, 3 -> total 6; then 6 + 3 + 1 = 10 -> total 16.
    let run = drive(while_let_pages, 0, vec![]);
    assert_eq!(run.output, Ok(16));
    assert_eq!(
        run.states,
        [
            "NextPage", "Add", "NextPage", "Add", "NextPage", "Add", "NextPage", "Halve", "Halve",
            "Halve"
        ]
    );
    let none = drive(while_let_pages, 5, vec![]);
    assert_eq!(none.output, Ok(0));
}

/// `let v = loop { .. break x }` whose body suspends: typed from a held step output, from a
/// `break` of a suspension, or from the `let`'s annotation.
#[workflow]
async fn loop_values(ctx: &mut WorkflowContext, limit: u64) -> Result<String, WorkflowError> {
    let mut i: u64 = 0;
    let reached = loop {
        let r = ctx.step(add, (i, 1)).await?;
        if r >= limit {
            break r;
        }
        i = r;
    };
    ctx.sleep(Duration::from_secs(1)).await;
    let word = loop {
        if reached > 0 {
            break ctx.step(echo, format!("at {reached}")).await?;
        }
        #[state(Idle)]
        ctx.sleep(Duration::from_secs(1)).await;
    };
    let scaled: u64 = 'outer: loop {
        loop {
            #[state(Scale)]
            let s = ctx.step(add, (reached, reached)).await?;
            break 'outer s * 10;
        }
    };
    Ok(format!("{reached} {word} {scaled}"))
}

#[test]
fn a_loop_that_suspends_produces_the_value_of_a_let() {
    let run = drive(loop_values, 3, vec![]);
    assert_eq!(run.output, Ok("3 at 3 60".to_owned()));
    assert_eq!(
        run.states,
        ["Add", "Add", "Add", "Sleeping", "Echo", "Scale"]
    );
    // The value is held across the sleep that follows the loop.
    let held = loop_values::State::Sleeping { reached: 3 };
    assert_eq!(
        serde_json::to_value(&held).unwrap(),
        json!({ "Sleeping": { "reached": 3 } })
    );
}

/// Arm bindings of a step's result held across later suspensions: `Ok(v)` is the step's
/// output and `Err(e)` a `StepError`, with no annotation.
#[workflow]
async fn arm_bindings(ctx: &mut WorkflowContext, flag: bool) -> Result<u64, WorkflowError> {
    match ctx.step(fail_if, flag).await {
        Ok(v) => {
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(v)
        }
        Err(e) => {
            ctx.step(nothing, ()).await?;
            Err(e.into())
        }
    }
}

#[test]
fn arm_bindings_of_a_step_result_are_typed() {
    let ok = drive(arm_bindings, false, vec![]);
    assert_eq!(ok.output, Ok(7));
    assert_eq!(ok.states, ["FailIf", "Sleeping"]);
    let failed = drive(arm_bindings, true, vec![]);
    assert_eq!(failed.output.unwrap_err().to_string(), "asked to fail");
    assert_eq!(failed.states, ["FailIf", "Nothing"]);
    let held = arm_bindings::State::Nothing {
        e: StepError::permanent("x"),
    };
    assert_eq!(
        serde_json::to_value(&held).unwrap()["Nothing"]["e"]["message"],
        "x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_and_loop_value_forms_survive_a_crash_at_every_commit() {
    use workflow_runtime::testing::{Script, TestEngine, crash_test};
    let wake = || Script::new().advance(Duration::from_secs(1));
    for n in [4, 7, 9] {
        let report = crash_test(
            TestEngine::builder().register(if_let_chain),
            if_let_chain,
            n,
            wake(),
        )
        .await;
        report.assert_ok();
    }
    let report = crash_test(
        TestEngine::builder().register(while_let_pages),
        while_let_pages,
        0,
        Script::new(),
    )
    .await;
    report.assert_ok();
    assert_eq!(report.outcome.as_ref().unwrap(), &json!({ "Ok": 16 }));
    let report = crash_test(
        TestEngine::builder().register(loop_values),
        loop_values,
        3,
        wake(),
    )
    .await;
    report.assert_ok();
    assert_eq!(
        report.outcome.as_ref().unwrap(),
        &json!({ "Ok": "3 at 3 60" })
    );
    for big in [true, false] {
        crash_test(
            TestEngine::builder().register(let_branches),
            let_branches,
            big,
            Script::new()
                .advance(Duration::from_secs(1))
                .advance(Duration::from_secs(1))
                .advance(Duration::from_secs(1)),
        )
        .await
        .assert_ok();
    }
    crash_test(
        TestEngine::builder().register(shadowing),
        shadowing,
        " abc ".to_owned(),
        Script::new()
            .advance(Duration::from_secs(1))
            .advance(Duration::from_secs(1)),
    )
    .await
    .assert_ok();
    for flag in [false, true] {
        crash_test(
            TestEngine::builder().register(arm_bindings),
            arm_bindings,
            flag,
            wake(),
        )
        .await
        .assert_ok();
    }
}

/// A held local shadowed in its own block, with the same and with another type: each state
/// holds the binding the name means there.
#[workflow]
async fn shadowing(ctx: &mut WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let name = name.trim().to_string();
    let echoed = ctx.step(echo, name.clone()).await?;
    let name: u64 = name.len() as u64;
    ctx.sleep(Duration::from_secs(1)).await;
    let n = ctx.step(add, (name, 1)).await?;
    let n = format!("{echoed}:{n}");
    #[state(SleepAgain)]
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(n)
}

#[test]
fn a_held_local_can_be_shadowed_in_its_own_block() {
    let run = drive(shadowing, "  abc ".into(), vec![]);
    assert_eq!(run.output, Ok("abc:4".to_owned()));
    assert_eq!(run.states, ["Echo", "Sleeping", "Add", "SleepAgain"]);
    // `name` is a `String` in one state and a `u64` in the next; `n` a `String` at the end.
    let before = shadowing::State::Echo { name: "abc".into() };
    let after = shadowing::State::Sleeping {
        echoed: "abc".into(),
        name: 3,
    };
    let last = shadowing::State::SleepAgain { n: "abc:4".into() };
    assert_eq!(
        serde_json::to_value([before, after, last]).unwrap(),
        json!([
            { "Echo": { "name": "abc" } },
            { "Sleeping": { "echoed": "abc", "name": 3 } },
            { "SleepAgain": { "n": "abc:4" } }
        ])
    );
}

/// `Some(n)` for `n < 3`, `None` after.
#[function]
async fn below_three(n: u64) -> Result<Option<u64>, StepError> {
    Ok((n < 3).then_some(n))
}

/// `let` whose value comes from `if` / `match` / block branches that suspend, typed from the
/// branches' step outputs or from arm bindings, including a branch that `continue`s the
/// enclosing loop.
#[workflow]
async fn let_branches(ctx: &mut WorkflowContext, big: bool) -> Result<String, WorkflowError> {
    let amount = if big {
        ctx.step(add, (100, 1)).await?
    } else {
        #[state(AddSmall)]
        ctx.step(add, (1, 1)).await?
    };
    let checked = match ctx.step(fail_if, !big).await {
        Ok(v) => v,
        Err(e) => {
            ctx.step(nothing, ()).await?;
            return Err(e.into());
        }
    };
    let mut found: u64 = 0;
    for i in 0..5u64 {
        let n = match ctx.step(below_three, i).await? {
            Some(n) => n,
            None => {
                #[state(Skip)]
                ctx.sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        found += n;
    }
    let label: String = {
        #[state(Label)]
        let e = ctx.step(echo, format!("{amount}+{checked}")).await?;
        e.to_uppercase()
    };
    #[state(End)]
    ctx.sleep(Duration::from_secs(1)).await;
    Ok(format!("{label} {found}"))
}

#[test]
fn a_let_takes_its_value_from_branches_that_suspend() {
    let run = drive(let_branches, true, vec![]);
    assert_eq!(run.output, Ok("101+7 3".to_owned()));
    assert_eq!(
        run.states,
        [
            "Add",
            "FailIf",
            "BelowThree",
            "BelowThree",
            "BelowThree",
            "BelowThree",
            "Skip",
            "BelowThree",
            "Skip",
            "Label",
            "End"
        ]
    );
    let failed = drive(let_branches, false, vec![]);
    assert_eq!(failed.output.unwrap_err().to_string(), "asked to fail");
}
