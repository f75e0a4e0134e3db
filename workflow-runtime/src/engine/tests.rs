//! Fault injection: a storage backend that fails on demand.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::__private::v1::{sleep_command, take_wake};
use crate::model::{Event, Transition};
use crate::step::StepEntry;
use crate::store::{FileStore, MemoryDisk};
use crate::{
    Engine, EngineError, ManualClock, RunStatus, StartError, Workflow, WorkflowContext,
    WorkflowError,
};

/// Sleeps `minutes`, then returns.
#[derive(Debug, Clone, Copy)]
struct Nap;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum NapState {
    Start { minutes: u64 },
    Sleeping {},
}

impl Workflow for Nap {
    const NAME: &'static str = "nap";
    const VERSION: u32 = 1;
    const LAYOUT_HASH: u64 = 1;
    const BODY_HASH: u64 = 1;
    type Input = u64;
    type Output = Result<(), WorkflowError>;
    type State = NapState;

    fn start(minutes: u64) -> NapState {
        NapState::Start { minutes }
    }

    fn advance(
        state: NapState,
        ev: Event,
        ctx: &mut WorkflowContext,
    ) -> Transition<NapState, Self::Output> {
        match state {
            NapState::Start { minutes } => Transition::Suspend(
                NapState::Sleeping {},
                sleep_command(ctx, Duration::from_secs(minutes * 60)),
            ),
            NapState::Sleeping {} => match take_wake(&mut Some(ev)) {
                Ok(()) => Transition::Complete(Ok(())),
                Err(m) => Transition::Reject(m.into_message()),
            },
        }
    }

    fn steps() -> Vec<StepEntry> {
        Vec::new()
    }

    fn check_signal(_: &str, _: &Value) -> Option<Result<(), crate::PayloadError>> {
        None
    }

    fn variant_name(state: &NapState) -> &'static str {
        match state {
            NapState::Start { .. } => "Start",
            NapState::Sleeping { .. } => "Sleeping",
        }
    }
}

#[tokio::test]
async fn a_failed_commit_is_returned_and_nothing_is_acknowledged() {
    let disk = MemoryDisk::new();
    let clock = ManualClock::default();
    let engine = Engine::builder()
        .register(Nap)
        .clock(clock.clone())
        .open_store(FileStore::open_disk(disk.clone()).unwrap())
        .await
        .unwrap();
    engine.start(Nap, "before", 60).await.unwrap();
    let before = engine.status("before").unwrap();

    disk.fail_writes(true);
    let e = engine.start(Nap, "during", 60).await.unwrap_err();
    // A full disk is matchable through the error's source chain.
    assert!(
        matches!(&e, StartError::Storage(s) if s.io_kind() == Some(std::io::ErrorKind::StorageFull)),
        "{e:?}"
    );
    let source = std::error::Error::source(&e).expect("the device error is the source");
    assert!(source.to_string().contains("no space left"), "{source}");
    assert!(matches!(
        engine.status("during").unwrap_err(),
        EngineError::UnknownRun { run_id } if run_id == "during"
    ));

    // A timer whose commit fails leaves the run at its last checkpoint while the disk fails
    // (the engine drives it again once the store takes writes: tests/tests/disk_faults.rs).
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(engine.status("before").unwrap(), before);
    assert!(matches!(before, RunStatus::Sleeping { .. }));
}
