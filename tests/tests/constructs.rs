//! A workflow using every construct the lowering supports, driven to the end with its state
//! round-tripped through JSON at every suspension point.

use integration_tests::{Input, drive};
use serde_json::json;
use workflow_runtime::prelude::*;

#[function]
async fn add(a: u64, b: u64) -> Result<u64, StepError> {
    Ok(a + b)
}

#[function]
async fn echo(s: String) -> Result<String, StepError> {
    Ok(s)
}

#[function]
async fn fail_if(flag: bool) -> Result<u64, StepError> {
    if flag {
        Err(StepError::permanent("asked to fail"))
    } else {
        Ok(7)
    }
}

#[function]
async fn nothing() -> Result<(), StepError> {
    Ok(())
}

#[workflow]
async fn kitchen_sink(
    ctx: &mut WorkflowContext,
    n: u64,
    words: Vec<String>,
) -> Result<String, WorkflowError> {
    ctx.step(nothing, ()).await?;
    let mut total: u64 = 0;
    for i in 0..n {
        total = ctx.step(add, (total, i)).await?;
    }
    let mut joined = String::new();
    for w in words {
        let e = ctx.step(echo, w).await?;
        joined = format!("{joined}{e},");
    }
    let mut k: u64 = 0;
    while k < 3 {
        #[state(Increment)]
        let next = ctx.step(add, (k, 1)).await?;
        k = next;
    }
    let mut hits: u64 = 0;
    'outer: loop {
        let mut j: u64 = 0;
        loop {
            #[state(Inner)]
            let stepped = ctx.step(add, (j, 1)).await?;
            j = stepped;
            if j == 2 {
                continue;
            }
            if j >= 4 {
                break;
            }
            hits += 1;
            if hits >= 5 {
                break 'outer;
            }
        }
    }
    let mut parity = String::new();
    if total % 2 == 0 {
        #[state(EchoEven)]
        let p = ctx.step(echo, "even".to_string()).await?;
        parity = p;
    } else {
        #[state(EchoOdd)]
        let p = ctx.step(echo, "odd".to_string()).await?;
        parity = p;
    }
    let msg: String = match ctx.step(fail_if, false).await {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("err {e}"),
    };
    #[state(FailOnPurpose)]
    match ctx.step(fail_if, true).await {
        Ok(_) => return Err(WorkflowError::new("should have failed")),
        Err(e) => {
            #[state(EchoError)]
            let again: String = ctx.step(echo, e.message).await?;
            joined.push_str(&again);
        }
    }
    ctx.sleep(Duration::from_secs(60)).await;
    let decision = ctx
        .wait_for_signal::<u64>("bonus", Duration::from_secs(10), json!({ "total": total }))
        .await;
    let bonus = decision.unwrap_or(0);
    let double = |x: u64| x * 2;
    let doubled = double(total + bonus);
    if doubled > 1_000_000 {
        return Ok("huge".into());
    }
    Ok(format!(
        "{total}|{joined}|{k}|{hits}|{parity}|{msg}|{doubled}"
    ))
}

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

#[function]
async fn list(n: u64) -> Result<Vec<u64>, StepError> {
    Ok((1..=n).collect())
}

#[function]
async fn maybe(n: u64) -> Result<Option<u64>, StepError> {
    Ok(n.is_multiple_of(2).then_some(n))
}

#[workflow]
async fn no_params(ctx: &mut WorkflowContext) -> Result<u64, StepError> {
    let items = ctx.step(list, 5).await?;
    let mut evens: u64 = 0;
    for item in items {
        if let Some(v) = ctx.step(maybe, item).await? {
            evens += v;
            if evens > 100 {
                return Ok(evens);
            }
        }
    }
    #[state(Last)]
    ctx.step(add, (evens, 1000)).await
}

#[workflow]
async fn inclusive_range(ctx: &mut WorkflowContext, last: u8) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    for i in 250..=last {
        sum = ctx.step(add, (sum, u64::from(i))).await?;
    }
    Ok(sum)
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
