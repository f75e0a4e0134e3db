//! State names derived from the code: repeated calls of one step are told apart by the local
//! each binds, then by the enclosing `match` arm, loop label or earlier signal wait; names do
//! not depend on unrelated locals or on the order of the calls.

use integration_tests::workflows::{add, echo};
use integration_tests::{Input, drive};
use workflow_runtime::Workflow;
use workflow_runtime::prelude::*;
use workflow_runtime::testing::Command;

#[function]
async fn one(n: u64) -> Result<u64, StepError> {
    Ok(n + 1)
}

/// One step called 50 times, each call bound to its own local: no `#[state]` needed.
#[workflow]
async fn fifty(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let r1 = ctx.step(one, n).await?;
    let r2 = ctx.step(one, r1).await?;
    let r3 = ctx.step(one, r2).await?;
    let r4 = ctx.step(one, r3).await?;
    let r5 = ctx.step(one, r4).await?;
    let r6 = ctx.step(one, r5).await?;
    let r7 = ctx.step(one, r6).await?;
    let r8 = ctx.step(one, r7).await?;
    let r9 = ctx.step(one, r8).await?;
    let r10 = ctx.step(one, r9).await?;
    let r11 = ctx.step(one, r10).await?;
    let r12 = ctx.step(one, r11).await?;
    let r13 = ctx.step(one, r12).await?;
    let r14 = ctx.step(one, r13).await?;
    let r15 = ctx.step(one, r14).await?;
    let r16 = ctx.step(one, r15).await?;
    let r17 = ctx.step(one, r16).await?;
    let r18 = ctx.step(one, r17).await?;
    let r19 = ctx.step(one, r18).await?;
    let r20 = ctx.step(one, r19).await?;
    let r21 = ctx.step(one, r20).await?;
    let r22 = ctx.step(one, r21).await?;
    let r23 = ctx.step(one, r22).await?;
    let r24 = ctx.step(one, r23).await?;
    let r25 = ctx.step(one, r24).await?;
    let r26 = ctx.step(one, r25).await?;
    let r27 = ctx.step(one, r26).await?;
    let r28 = ctx.step(one, r27).await?;
    let r29 = ctx.step(one, r28).await?;
    let r30 = ctx.step(one, r29).await?;
    let r31 = ctx.step(one, r30).await?;
    let r32 = ctx.step(one, r31).await?;
    let r33 = ctx.step(one, r32).await?;
    let r34 = ctx.step(one, r33).await?;
    let r35 = ctx.step(one, r34).await?;
    let r36 = ctx.step(one, r35).await?;
    let r37 = ctx.step(one, r36).await?;
    let r38 = ctx.step(one, r37).await?;
    let r39 = ctx.step(one, r38).await?;
    let r40 = ctx.step(one, r39).await?;
    let r41 = ctx.step(one, r40).await?;
    let r42 = ctx.step(one, r41).await?;
    let r43 = ctx.step(one, r42).await?;
    let r44 = ctx.step(one, r43).await?;
    let r45 = ctx.step(one, r44).await?;
    let r46 = ctx.step(one, r45).await?;
    let r47 = ctx.step(one, r46).await?;
    let r48 = ctx.step(one, r47).await?;
    let r49 = ctx.step(one, r48).await?;
    let r50 = ctx.step(one, r49).await?;
    Ok(r50)
}

#[test]
fn fifty_calls_of_one_step_with_distinct_bindings_need_no_state_annotation() {
    let run = drive(fifty, 0, vec![]);
    assert_eq!(run.output, Ok(50));
    let expected: Vec<String> = (1..=50).map(|i| format!("OneR{i}")).collect();
    assert_eq!(run.states, expected);
}

#[function]
async fn charge(cents: u64) -> Result<String, StepError> {
    Ok(format!("charged {cents}"))
}

#[workflow(name = "charge_refund")]
async fn charge_then_refund(
    ctx: &mut WorkflowContext,
    cents: u64,
) -> Result<String, WorkflowError> {
    let receipt = ctx.step(charge, cents).await?;
    let refund = ctx.step(charge, cents + 1).await?;
    let text = format!("{receipt}/{refund}");
    Ok(text)
}

/// The same two calls in the other order.
#[workflow(name = "charge_refund")]
async fn refund_then_charge(
    ctx: &mut WorkflowContext,
    cents: u64,
) -> Result<String, WorkflowError> {
    let refund = ctx.step(charge, cents + 1).await?;
    let receipt = ctx.step(charge, cents).await?;
    Ok(format!("{receipt}/{refund}"))
}

/// `charge_then_refund` with its unrelated local `text` renamed and one more added.
#[workflow(name = "charge_refund")]
async fn charge_then_refund_renamed(
    ctx: &mut WorkflowContext,
    cents: u64,
) -> Result<String, WorkflowError> {
    let unrelated = cents * 2;
    assert!(unrelated >= cents);
    let receipt = ctx.step(charge, cents).await?;
    let refund = ctx.step(charge, cents + 1).await?;
    let both = format!("{receipt}/{refund}");
    Ok(both)
}

fn step_inputs(commands: &[Command]) -> Vec<serde_json::Value> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Step { input, .. } => Some(input.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn reordering_two_bound_calls_keeps_each_name_with_its_call() {
    let forward = drive(charge_then_refund, 10, vec![]);
    let backward = drive(refund_then_charge, 10, vec![]);
    assert_eq!(forward.states, ["ChargeReceipt", "ChargeRefund"]);
    assert_eq!(backward.states, ["ChargeRefund", "ChargeReceipt"]);
    // The state `ChargeReceipt` waits for the charge of `cents` in both orders.
    assert_eq!(step_inputs(&forward.commands), [10, 11]);
    assert_eq!(step_inputs(&backward.commands), [11, 10]);
    assert_eq!(forward.output, backward.output);
}

#[test]
fn renaming_an_unrelated_local_keeps_the_names_and_the_layout() {
    let renamed = drive(charge_then_refund_renamed, 10, vec![]);
    assert_eq!(renamed.states, ["ChargeReceipt", "ChargeRefund"]);
    fn layout<W: Workflow>(_: W) -> u64 {
        W::LAYOUT_HASH
    }
    assert_eq!(
        layout(charge_then_refund),
        layout(charge_then_refund_renamed)
    );
    // Swapping the calls moves each name with its call; what the states hold changes (the
    // first call's result is held across the second), and so does the layout.
    assert_ne!(layout(charge_then_refund), layout(refund_then_charge));
}

#[workflow(name = "bound")]
async fn bound_first(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let first = ctx.step(charge, cents).await?;
    let second = ctx.step(charge, cents).await?;
    Ok(second)
}

/// `bound_first` with the first binding (never held) renamed.
#[workflow(name = "bound")]
async fn bound_initial(ctx: &mut WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
    let initial = ctx.step(charge, cents).await?;
    let second = ctx.step(charge, cents).await?;
    Ok(second)
}

#[test]
fn renaming_the_binding_that_names_a_state_changes_the_layout() {
    assert_eq!(
        drive(bound_initial, 1, vec![]).states,
        ["ChargeInitial", "ChargeSecond"]
    );
    assert_ne!(
        <bound_first::Def as Workflow>::LAYOUT_HASH,
        <bound_initial::Def as Workflow>::LAYOUT_HASH
    );
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Decision {
    Approve,
    Reject { reason: String },
}

/// Calls without a binding, told apart by their `match` arm, loop label and preceding wait.
#[workflow]
async fn by_context(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let decision = ctx
        .wait_for_signal::<Decision>("decision", Duration::from_secs(60), json!({}))
        .await;
    match decision {
        Ok(Decision::Approve) => {
            ctx.step(echo, "approved".to_owned()).await?;
        }
        Ok(Decision::Reject { reason }) => {
            ctx.step(echo, reason).await?;
        }
        Err(WaitError::TimedOut) => {
            ctx.step(echo, "timed out".to_owned()).await?;
        }
        Err(cancelled @ WaitError::Cancelled) => return Err(cancelled.into()),
    }
    let mut total: u64 = n;
    'retry: for _ in 0..2u8 {
        ctx.step(add, (total, 1)).await?;
        total += 1;
    }
    ctx.step(add, (total, 100)).await?;
    Ok(total)
}

#[test]
fn calls_without_bindings_are_named_by_arm_label_and_wait() {
    let run = drive(
        by_context,
        1,
        vec![Input::Signal(json!({ "Reject": { "reason": "no" } }))],
    );
    assert_eq!(run.output, Ok(3));
    assert_eq!(
        run.states,
        [
            "AwaitingDecision",
            "EchoReject",
            "AddRetry",
            "AddRetry",
            "AddAfterDecision"
        ]
    );
    let approved = drive(by_context, 1, vec![Input::Signal(json!("Approve"))]);
    assert_eq!(approved.states[1], "EchoApprove");
    let timed_out = drive(by_context, 1, vec![Input::Timeout]);
    assert_eq!(timed_out.states[1], "EchoTimedOut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_names_survive_a_crash_at_every_commit() {
    use workflow_runtime::testing::{Script, TestEngine, crash_test};
    crash_test(
        TestEngine::builder().register(charge_then_refund),
        charge_then_refund,
        10,
        Script::new(),
    )
    .await
    .assert_ok();
    crash_test(
        TestEngine::builder().register(by_context),
        by_context,
        1,
        Script::new().signal("decision", Decision::Approve),
    )
    .await
    .assert_ok();
}

/// `tests/ui/duplicate_state_name.rs` with the compiler's hints applied as written.
#[workflow]
async fn hints_applied(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.step(one, n).await?;
    #[state(One2)]
    ctx.step(one, n).await?;
    #[state(One3)]
    ctx.step(one, n).await?;
    let a = ctx.step(one, n).await?;
    Ok(a)
}

#[test]
fn the_numbered_hints_apply_as_written() {
    let run = drive(hints_applied, 1, vec![]);
    assert_eq!(run.states, ["One", "One2", "One3", "OneA"]);
    assert_eq!(run.output, Ok(2));
}

/// `#[state]` on the two statements the collision hint points at but that begin with
/// something else: an assignment (the parser hangs its attribute on the assigned place) and a
/// `while` whose condition suspends (the name is the condition's). Both were refused or
/// passed through to rustc before; the differential fuzzer found them.
#[workflow]
async fn named_assign_and_while(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let mut v = ctx.step(one, n).await?;
    #[state(Again)]
    v = ctx.step(one, v).await?;
    let mut i: u64 = 0;
    while ctx.step(below, (i, 2)).await? {
        i += 1;
    }
    #[state(Second)]
    while ctx.step(below, (i, 3)).await? {
        i += 1;
    }
    Ok(v + i)
}

#[function]
async fn below(a: u64, b: u64) -> Result<bool, StepError> {
    Ok(a < b)
}

#[test]
fn state_names_on_an_assignment_and_on_a_suspending_while() {
    let run = drive(named_assign_and_while, 1, vec![]);
    assert_eq!(
        run.states,
        [
            "One", "Again", "Below", "Below", "Below", "Second", "Second"
        ]
    );
    assert_eq!(run.output, Ok(6));
}
