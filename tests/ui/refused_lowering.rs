use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

// A suspending `for` stores its cursor, so it binds one name (destructure inside the body).
#[workflow]
async fn for_pattern(ctx: &mut WorkflowContext, pairs: Vec<(u64, u64)>) -> Result<u64, WorkflowError> {
    for (a, b) in pairs {
        ctx.step(one, ()).await?;
        let _ = (a, b);
    }
    Ok(0)
}

// The remaining items are stored in the checkpoint, so the loop must own them.
#[workflow]
async fn for_borrowed(ctx: &mut WorkflowContext, items: Vec<u64>) -> Result<u64, WorkflowError> {
    for x in &items {
        ctx.step(one, ()).await?;
        let _ = x;
    }
    Ok(0)
}

// Neither bound of the range has a type the macro can see.
#[workflow]
async fn for_untyped_range(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    for _ in 0..std::cmp::max(1, 2) {
        ctx.step(one, ()).await?;
    }
    Ok(0)
}

// `break value` out of a loop that suspends, outside a `let v = loop`.
#[workflow]
async fn break_with_value(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    loop {
        let n = ctx.step(one, ()).await?;
        if n > 0 {
            break n;
        }
    }
    Ok(0)
}

// A computed signal name cannot name the state.
#[workflow]
async fn computed_signal_name(ctx: &mut WorkflowContext, name: String) -> Result<u64, WorkflowError> {
    let v = ctx
        .wait_for_signal::<u64>(&name, Duration::from_secs(1), json!({}))
        .await
        .unwrap_or(0);
    Ok(v)
}

// `#[state(..)]` where nothing suspends, with two names, and on a statement that suspends
// only after evaluating something else.
#[workflow]
async fn misplaced_state(ctx: &mut WorkflowContext) -> Result<u64, WorkflowError> {
    #[state(Nothing)]
    let a: u64 = 1;
    #[state(One, Two)]
    let b = ctx.step(one, ()).await?;
    #[state(Later)]
    loop {
        let c = ctx.step(one, ()).await?;
        if c > 0 {
            break;
        }
    }
    Ok(a + b)
}

fn main() {}
