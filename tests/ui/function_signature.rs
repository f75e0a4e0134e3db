use workflow_runtime::prelude::*;

#[function]
async fn one() -> Result<u64, StepError> {
    Ok(1)
}

struct Service;

impl Service {
    #[function]
    async fn method(&self) -> Result<u64, StepError> {
        Ok(1)
    }
}

#[function]
fn not_async() -> Result<u64, StepError> {
    Ok(1)
}

#[function]
async fn generic<T: Send>(t: T) -> Result<u64, StepError> {
    Ok(1)
}

#[function]
async fn borrowed(id: &str) -> Result<u64, StepError> {
    Ok(id.len() as u64)
}

#[function]
async fn no_result(id: String) -> u64 {
    id.len() as u64
}

fn main() {}
