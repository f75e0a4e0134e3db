use workflow_runtime::prelude::*;

#[function(max_attempts = 0)]
async fn no_attempts() -> Result<u64, StepError> {
    Ok(1)
}

#[function(max_attempts = "3")]
async fn attempts_as_text() -> Result<u64, StepError> {
    Ok(1)
}

#[function(initial_backoff = 5)]
async fn backoff_without_unit() -> Result<u64, StepError> {
    Ok(1)
}

#[function(timeout = "10 sec")]
async fn timeout_badly_spelled() -> Result<u64, StepError> {
    Ok(1)
}

#[function(timeout = "0s")]
async fn zero_timeout() -> Result<u64, StepError> {
    Ok(1)
}

#[function(multiplier = 0.5)]
async fn shrinking_backoff() -> Result<u64, StepError> {
    Ok(1)
}

#[function(jitter = 1.5)]
async fn too_much_jitter() -> Result<u64, StepError> {
    Ok(1)
}

#[function(jitter = -0.1)]
async fn negative_jitter() -> Result<u64, StepError> {
    Ok(1)
}

#[function(initial_backoff = "10s", max_backoff = "5s")]
async fn cap_below_start() -> Result<u64, StepError> {
    Ok(1)
}

#[function(max_backoff = "500ms")]
async fn cap_below_default_start() -> Result<u64, StepError> {
    Ok(1)
}

#[function(retries = 3)]
async fn unknown_argument() -> Result<u64, StepError> {
    Ok(1)
}

#[function(max_attempts = 3, max_attempts = 4)]
async fn given_twice() -> Result<u64, StepError> {
    Ok(1)
}

#[function(retry_panics = "yes")]
async fn panics_as_text() -> Result<u64, StepError> {
    Ok(1)
}

fn main() {}
