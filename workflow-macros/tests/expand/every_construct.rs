//! A workflow using every construct the lowering accepts, for the expansion snapshot
//! (`every_construct.expanded.rs`). It is also compiled and driven by the integration test
//! `tests/tests/every_construct.rs`, so the snapshot is of code that builds and runs.

use std::time::Duration;

use serde_json::json;
use workflow_runtime::prelude::*;

/// `a + b`.
#[function]
pub async fn add(a: u64, b: u64) -> Result<u64, StepError> {
    Ok(a + b)
}

/// The text, trimmed and upper-cased.
#[function(max_attempts = 2, initial_backoff = "10ms")]
pub async fn shout(text: String) -> Result<String, StepError> {
    Ok(text.trim().to_uppercase())
}

/// Fails permanently when asked to.
#[function]
pub async fn check(fail: bool) -> Result<u64, StepError> {
    if fail {
        Err(StepError::permanent("asked to fail"))
    } else {
        Ok(7)
    }
}

/// Whether there is a page after `cursor` (up to 3).
#[function]
pub async fn has_more(cursor: u64) -> Result<bool, StepError> {
    Ok(cursor < 3)
}

/// Every construct: `for` over a range and a vector, `while` with a suspending condition,
/// labeled `loop`s with `break`/`continue`, `if`/`else` and `match` whose branches suspend,
/// a `let` whose `if` branches suspend, a `let v = loop`, an arm binding held across a
/// suspension, shadowing, `#[state(..)]`, a retry override, a sleep, a signal wait, `?` and
/// an early `return`.
#[workflow(name = "every_construct", version = 3)]
pub async fn every_construct(
    ctx: &mut WorkflowContext,
    name: String,
    n: u64,
    words: Vec<String>,
) -> Result<String, WorkflowError> {
    let name = ctx.step(shout, name).await?;
    let name = format!("{name}!");
    let mut total: u64 = 0;
    for i in 0..n {
        total = ctx.step(add, (total, i)).await?;
    }
    let mut joined = String::new();
    for w in words {
        let loud = ctx.step(shout, w).await?;
        joined.push_str(&loud);
    }
    let mut cursor: u64 = 0;
    while ctx.step(has_more, cursor).await? {
        cursor = ctx.step(add, (cursor, 1)).await?;
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
            if j >= 3 {
                break;
            }
            hits += 1;
            if hits >= 2 {
                break 'outer;
            }
        }
    }
    let bonus = if total > 3 {
        #[state(AddBigBonus)]
        ctx.step(add, (total, 100)).await?
    } else {
        #[state(AddSmallBonus)]
        ctx.step(add, (total, 1)).await?
    };
    let first_big = loop {
        let v = ctx.step(add, (hits, 10)).await?;
        if v > 5 {
            break v;
        }
    };
    let outcome = match ctx.step(check, n > 10).await {
        Ok(v) => v,
        Err(e) => {
            ctx.sleep(Duration::from_secs(1)).await;
            return Err(WorkflowError::new(e.message));
        }
    };
    let retried = ctx
        .step(shout, "again".to_owned())
        .retry(RetryPolicy::DEFAULT.max_attempts(5))
        .await?;
    ctx.sleep(Duration::from_secs(60)).await;
    let extra = ctx
        .wait_for_signal::<u64>("extra", Duration::from_secs(10), json!({ "total": total }))
        .await
        .unwrap_or(0);
    Ok(format!(
        "{name}|{total}|{joined}|{cursor}|{hits}|{bonus}|{first_big}|{outcome}|{retried}|{extra}"
    ))
}
