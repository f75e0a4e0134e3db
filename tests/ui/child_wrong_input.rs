use workflow_runtime::prelude::*;

#[workflow]
async fn review(ctx: &mut WorkflowContext, line: String) -> Result<bool, WorkflowError> {
    Ok(line.is_empty())
}

// `review` takes a `String`; the children get one per item, and the items are numbers.
#[workflow]
async fn order(ctx: &mut WorkflowContext, lines: Vec<u64>) -> Result<usize, WorkflowError> {
    let reviews = ctx.fan_out_children(review, lines).await;
    Ok(reviews.len())
}

fn main() {}
