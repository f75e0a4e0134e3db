use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

pub struct Connection;

#[function]
async fn connect(url: String) -> Result<Connection, StepError> {
    let _ = url;
    Ok(Connection)
}

fn main() {}
