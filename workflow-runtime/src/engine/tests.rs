//! Fault injection: a storage backend that fails on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::StorageBackend;
use redb::backends::InMemoryBackend;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::__private::take_wake;
use crate::model::{Event, Transition};
use crate::step::StepEntry;
use crate::{
    Engine, EngineError, ManualClock, RunStatus, Workflow, WorkflowContext, WorkflowError,
};

/// An in-memory backend whose writes fail while `fail` is set.
#[derive(Debug)]
struct Faulty {
    inner: InMemoryBackend,
    fail: Arc<AtomicBool>,
}

impl Faulty {
    fn check(&self) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected write failure"))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

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
                ctx.__sleep_command(Duration::from_secs(minutes * 60)),
            ),
            NapState::Sleeping {} => match take_wake(&mut Some(ev)) {
                Ok(()) => Transition::Complete(Ok(())),
                Err(m) => Transition::Reject(m),
            },
        }
    }

    fn steps() -> Vec<StepEntry> {
        Vec::new()
    }

    fn check_signal(_: &str, _: &Value) -> Option<Result<(), String>> {
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
    let fail = Arc::new(AtomicBool::new(false));
    let clock = ManualClock::default();
    let engine = Engine::builder()
        .register(Nap)
        .clock(clock.clone())
        .__open_backend(Faulty {
            inner: InMemoryBackend::new(),
            fail: fail.clone(),
        })
        .await
        .unwrap();
    engine.start(Nap, "before", 60).await.unwrap();
    let before = engine.status("before").unwrap();

    fail.store(true, Ordering::SeqCst);
    let e = engine.start(Nap, "during", 60).await.unwrap_err();
    assert!(matches!(e, EngineError::Storage(_)), "{e}");
    assert!(e.to_string().contains("injected write failure"), "{e}");
    assert_eq!(
        engine.status("during").unwrap_err(),
        EngineError::UnknownRun {
            run_id: "during".into()
        }
    );

    // A timer whose commit fails leaves the run at its last checkpoint (redb refuses further
    // writes after an I/O error until the store is reopened).
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(engine.status("before").unwrap(), before);
    assert!(matches!(before, RunStatus::Sleeping { .. }));
}
