//! Workflows shared by several test files: one using every construct the lowering supports,
//! one with a suspension in tail position, one over an inclusive range.

use workflow_runtime::prelude::*;

/// Adds two numbers.
#[function]
pub async fn add(a: u64, b: u64) -> Result<u64, StepError> {
    Ok(a + b)
}

/// Returns its input.
#[function]
pub async fn echo(s: String) -> Result<String, StepError> {
    Ok(s)
}

/// Fails permanently when asked to.
#[function]
pub async fn fail_if(flag: bool) -> Result<u64, StepError> {
    if flag {
        Err(StepError::permanent("asked to fail"))
    } else {
        Ok(7)
    }
}

/// Does nothing.
#[function]
pub async fn nothing() -> Result<(), StepError> {
    Ok(())
}

/// Every supported construct: loops, labels, branches, matches, sleeps, waits, closures.
#[workflow]
pub async fn kitchen_sink(
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

/// `1..=n` as a vector.
#[function]
pub async fn list(n: u64) -> Result<Vec<u64>, StepError> {
    Ok((1..=n).collect())
}

/// `Some(n)` for even numbers.
#[function]
pub async fn maybe(n: u64) -> Result<Option<u64>, StepError> {
    Ok(n.is_multiple_of(2).then_some(n))
}

/// No parameters, a loop over a step's output, a suspension as the tail expression.
#[workflow]
pub async fn no_params(ctx: &mut WorkflowContext) -> Result<u64, StepError> {
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

/// A suspending loop over an inclusive range.
#[workflow]
pub async fn inclusive_range(ctx: &mut WorkflowContext, last: u8) -> Result<u64, WorkflowError> {
    let mut sum: u64 = 0;
    for i in 250..=last {
        sum = ctx.step(add, (sum, u64::from(i))).await?;
    }
    Ok(sum)
}
