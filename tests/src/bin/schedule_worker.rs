//! A worker process for the schedule crash tests (`tests/tests/schedule_crash.rs`): opens the
//! store at the given path with the system clock, keeps a schedule `tick` that starts `tick_job`
//! every second under the given catch-up policy, and prints `started N` whenever the number of
//! runs the schedule started changes. It never exits by itself: the test kills it with SIGKILL.
//!
//! Usage: `schedule_worker <store path> <latest|skip|all3>`

use std::time::Duration;

use workflow_runtime::prelude::*;
use workflow_runtime::{CatchUp, Overlap, Schedule};

/// Returns at once: each tick's run is over as soon as it is started.
#[workflow]
async fn tick_job(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: schedule_worker <store path> <policy>")?;
    let policy = match args.next().as_deref() {
        Some("latest") => CatchUp::Latest,
        Some("skip") => CatchUp::Skip,
        Some("all3") => CatchUp::All { max: 3 },
        other => return Err(format!("unknown policy {other:?}").into()),
    };
    let engine = Engine::builder().register(tick_job).open(&path).await?;
    let every_second = Schedule::every(Duration::from_secs(1))
        .catch_up(policy)
        .overlap(Overlap::Allow);
    engine.schedule(tick_job, "tick", every_second, 1).await?;
    println!("ready");
    let mut reported = None;
    loop {
        let started = engine.schedule_info("tick")?.map_or(0, |s| s.started);
        if reported != Some(started) {
            println!("started {started}");
            reported = Some(started);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
