//! Every generated program runs as a state machine on the test engine and as its plain twin;
//! the step calls, their inputs and the output must agree, also after a crash at any commit.

use diff_fuzz::*;
use workflow_runtime::prelude::*;

/// The generated batch.
#[allow(
    unused,
    clippy::all,
    missing_docs,
    unreachable_code,
    irrefutable_let_patterns
)]
mod generated {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/programs.rs"));
}

use generated::{PROGRAMS, SEED};

/// Every `DIFF_FUZZ_CRASH_EVERY`-th program (default 10; 1 for all) is also crash-tested at
/// every commit: a crash test replays the run twice per commit, which dominates the run time.
fn crash_every() -> usize {
    std::env::var("DIFF_FUZZ_CRASH_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_workflows_agree_with_their_plain_twins() {
    let every = crash_every();
    let mut mismatches = Vec::new();
    for (i, verify) in PROGRAMS.iter().enumerate() {
        if let Err(e) = verify(i % every == 0).await {
            mismatches.push(format!("program p{i} of batch {SEED}:\n{e}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} programs disagree (the source is in target/*/build/diff-fuzz-*/out/programs.rs; \
         rebuild it with DIFF_FUZZ_SEED={SEED}):\n\n{}",
        mismatches.len(),
        PROGRAMS.len(),
        mismatches.join("\n\n")
    );
    println!("batch {SEED}: {} programs agree", PROGRAMS.len());
}
