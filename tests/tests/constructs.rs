//! A workflow using every construct the lowering supports, driven to the end with its state
//! round-tripped through JSON at every suspension point.

use integration_tests::workflows::{inclusive_range, kitchen_sink, no_params};
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
