//! Every generated program runs as a state machine on the test engine and as its plain twin;
//! the step calls, their inputs and the output must agree, also after a crash at any commit.

use diff_fuzz::generated::{PROGRAMS, SEED};

/// Every `DIFF_FUZZ_CRASH_EVERY`-th program (default 1: all) is also crash-tested.
fn crash_every() -> usize {
    std::env::var("DIFF_FUZZ_CRASH_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
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
