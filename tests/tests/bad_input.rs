//! The bad-input catalogue: every case gets a clear error and loses nothing.
//!
//! Damaged and foreign store files, runs written by incompatible code, signals to unknown or
//! finished runs, of a name the workflow never waits on or of the wrong shape, conflicting starts, oversized payloads, invalid names,
//! panics in steps and in workflow code, and a storage backend whose writes fail. A second
//! process opening the same store is in `examples/tests/crash.rs`, with real processes.

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;
use workflow_runtime::store::{FileStore, MemoryDisk};
use workflow_runtime::{
    DEFAULT_MAX_PAYLOAD_BYTES, EngineError, OpenError, SignalError, StartError,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Approval {
    approved: bool,
    note: String,
}

#[function]
async fn echo(text: String) -> Result<String, StepError> {
    Ok(text)
}

#[function]
async fn explode(text: String) -> Result<String, StepError> {
    panic!("the step blew up on {text}")
}

#[workflow]
async fn approval(ctx: &mut WorkflowContext, text: String) -> Result<String, WorkflowError> {
    let echoed = ctx.step(echo, text).await?;
    let a = ctx
        .wait_for_signal::<Approval>("approval", Duration::from_secs(3_600), ())
        .await?;
    if a.note == "panic" {
        panic!("the workflow body blew up");
    }
    Ok(format!("{echoed}: {} ({})", a.approved, a.note))
}

#[workflow]
async fn exploding(ctx: &mut WorkflowContext, text: String) -> Result<String, WorkflowError> {
    let out = ctx.step(explode, text).await?;
    Ok(out)
}

fn ok(note: &str) -> Approval {
    Approval {
        approved: true,
        note: note.to_owned(),
    }
}

async fn open(path: &std::path::Path) -> Result<Engine, EngineError> {
    Engine::builder()
        .register(approval)
        .register(exploding)
        .open(path)
        .await
}

async fn waiting_for_approval(engine: &Engine, run: &str) {
    for _ in 0..1_000 {
        if matches!(engine.status(run), Ok(RunStatus::Waiting { .. })) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("{run} never waited: {:?}", engine.status(run));
}

/// A store with two runs waiting for approval, closed.
async fn two_parked_runs(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("store.redb");
    let engine = open(&path).await.unwrap();
    for run in ["run-keep", "run-damage"] {
        engine
            .start(approval, run, format!("text of {run}"))
            .await
            .unwrap();
        waiting_for_approval(&engine, run).await;
    }
    engine.shutdown().await;
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_store_is_refused_at_open_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = two_parked_runs(&dir).await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = open(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Open(OpenError::Corrupt { .. } | OpenError::NotAStore { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error names the file: {err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused open writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_run_record_is_a_clear_error_for_that_run_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = two_parked_runs(&dir).await;
    let mut bytes = std::fs::read(&path).unwrap();
    // Damage the stored state of one run: its JSON no longer parses. Every copy: pages are
    // copied on write, so the file also holds stale copies in free pages, and damaging only
    // the first one found left the live record intact about one run in twenty.
    let needle = b"text of run-damage\"";
    let copies: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect();
    assert!(!copies.is_empty(), "the record is in the file");
    for at in copies {
        bytes[at + needle.len() - 1] ^= 0x55;
    }
    std::fs::write(&path, &bytes).unwrap();
    match open(&path).await {
        // The store's own checks caught it.
        Err(e) => assert!(
            matches!(e, EngineError::Open(OpenError::Corrupt { .. })),
            "{e}"
        ),
        Ok(engine) => {
            let err = engine.status("run-damage").unwrap_err();
            assert!(err.to_string().contains("run-damage"), "{err}");
            assert!(matches!(
                engine.status("run-keep").unwrap(),
                RunStatus::Waiting { .. }
            ));
            engine
                .signal("run-keep", "approval", ok("fine"))
                .await
                .unwrap();
            let out = engine
                .handle(approval, "run-keep")
                .unwrap()
                .result()
                .await
                .unwrap();
            assert_eq!(out, Ok("text of run-keep: true (fine)".to_owned()));
            engine.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are my notes, not a workflow store\n".repeat(100),
    )
    .unwrap();
    let err = open(&text).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Open(OpenError::NotAStore { .. } | OpenError::Corrupt { .. })
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "these are my notes, not a workflow store\n".repeat(100)
    );
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    // An empty file is a new store, not an error.
    open(&empty).await.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_to_unknown_or_finished_runs_and_of_the_wrong_shape_are_refused() {
    let engine = Engine::builder()
        .register(approval)
        .open_in_memory()
        .await
        .unwrap();
    let err = engine
        .signal("nobody", "approval", ok("x"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no run with id `nobody` exists");
    engine.start(approval, "r1", "t".into()).await.unwrap();
    waiting_for_approval(&engine, "r1").await;
    let before = engine.trace("r1").unwrap();
    let err = engine
        .signal("r1", "approval", json!({ "approved": "yes" }))
        .await
        .unwrap_err();
    assert!(matches!(err, SignalError::PayloadMismatch { .. }), "{err}");
    assert!(err.to_string().contains("expected a boolean"), "{err}");
    assert_eq!(
        engine.trace("r1").unwrap(),
        before,
        "a refused signal leaves no trace"
    );
    engine.signal("r1", "approval", ok("done")).await.unwrap();
    engine
        .handle(approval, "r1")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    let err = engine
        .signal("r1", "approval", ok("again"))
        .await
        .unwrap_err();
    assert!(matches!(err, SignalError::RunFinished { .. }), "{err}");
    let err = engine
        .start(approval, "r1", "another input".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Conflict { .. }), "{err}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_name_the_workflow_never_waits_on_is_refused_and_stores_nothing() {
    let engine = Engine::builder()
        .register(approval)
        .open_in_memory()
        .await
        .unwrap();
    engine.start(approval, "r1", "t".into()).await.unwrap();
    waiting_for_approval(&engine, "r1").await;
    let before = engine.trace("r1").unwrap();
    let err = engine
        .signal("r1", "aproval", ok("typo"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "run `r1` of workflow `approval` never waits for a signal named `aproval`; it waits for \
         `approval`"
    );
    assert!(matches!(err, SignalError::UnknownSignal { .. }), "{err}");
    assert_eq!(engine.trace("r1").unwrap(), before, "nothing was buffered");
    // The run still takes the right name.
    engine.signal("r1", "approval", ok("fine")).await.unwrap();
    let out = engine.handle(approval, "r1").unwrap().result().await;
    assert_eq!(out.unwrap(), Ok("t: true (fine)".to_owned()));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_inputs_signals_and_outputs_are_refused_cleanly() {
    let engine = Engine::builder()
        .register(approval)
        .max_payload_bytes(1_000)
        .open_in_memory()
        .await
        .unwrap();
    let big = "x".repeat(2_000);
    let err = engine
        .start(approval, "big-input", big.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StartError::TooLarge { limit: 1_000, .. }),
        "{err}"
    );
    assert!(
        matches!(
            engine.status("big-input"),
            Err(EngineError::UnknownRun { .. })
        ),
        "nothing was created"
    );

    engine.start(approval, "r1", "small".into()).await.unwrap();
    waiting_for_approval(&engine, "r1").await;
    let status = engine.status("r1").unwrap();
    let err = engine.signal("r1", "approval", ok(&big)).await.unwrap_err();
    assert!(
        err.to_string().contains("over the limit of 1000 bytes"),
        "{err}"
    );
    assert_eq!(engine.status("r1").unwrap(), status);
    engine.signal("r1", "approval", ok("small")).await.unwrap();
    engine
        .handle(approval, "r1")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    engine.shutdown().await;
    assert_eq!(DEFAULT_MAX_PAYLOAD_BYTES, 1 << 20, "the documented default");
}

#[workflow]
async fn doubling(ctx: &mut WorkflowContext, text: String) -> Result<String, WorkflowError> {
    let twice = ctx.step(echo, format!("{text}{text}")).await?;
    Ok(twice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_output_over_the_limit_fails_the_step() {
    let engine = Engine::builder()
        .register(doubling)
        .max_payload_bytes(1_000)
        .open_in_memory()
        .await
        .unwrap();
    let run = engine.start(doubling, "r1", "z".repeat(450)).await.unwrap();
    assert_eq!(run.result().await.unwrap().unwrap().len(), 900);
    let run = engine.start(doubling, "r2", "z".repeat(600)).await.unwrap();
    let err = run.result().await.unwrap().unwrap_err();
    assert!(
        err.message.contains("the output of step `echo` is")
            && err.message.contains("over the limit"),
        "{}",
        err.message
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_control_character_names_are_refused() {
    let engine = Engine::builder()
        .register(approval)
        .open_in_memory()
        .await
        .unwrap();
    for bad in ["", "line\nbreak", "nul\0byte", &"long".repeat(200)] {
        let err = engine.start(approval, bad, "t".into()).await.unwrap_err();
        assert!(
            matches!(err, StartError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().starts_with("run id `"), "{err}");
    }
    engine.start(approval, "r1", "t".into()).await.unwrap();
    waiting_for_approval(&engine, "r1").await;
    let err = engine.signal("r1", "", ok("x")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("signal name `` is not valid: it is empty"),
        "{err}"
    );
    // Any other text is a fine id, non-ASCII included.
    engine
        .start(approval, "réclamation-№7 🧾", "t".into())
        .await
        .unwrap();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_step_or_in_workflow_code_fails_only_that_run() {
    let engine = Engine::builder()
        .register(approval)
        .register(exploding)
        .open_in_memory()
        .await
        .unwrap();
    let boom = engine.start(exploding, "boom", "t".into()).await.unwrap();
    let body = engine.start(approval, "body", "t".into()).await.unwrap();
    let fine = engine.start(approval, "fine", "t".into()).await.unwrap();
    let err = boom.result().await.unwrap().unwrap_err();
    assert!(
        err.message.contains("the step blew up on t"),
        "{}",
        err.message
    );
    waiting_for_approval(&engine, "body").await;
    engine
        .signal("body", "approval", ok("panic"))
        .await
        .unwrap();
    let err = body.result().await.unwrap_err();
    assert!(
        err.to_string().contains("the workflow body blew up"),
        "{err}"
    );
    assert!(matches!(
        engine.status("body").unwrap(),
        RunStatus::Failed { .. }
    ));
    waiting_for_approval(&engine, "fine").await;
    engine
        .signal("fine", "approval", ok("still here"))
        .await
        .unwrap();
    assert_eq!(
        fine.result().await.unwrap(),
        Ok("t: true (still here)".to_owned())
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_acknowledges_nothing_and_the_run_resumes_once_it_clears() {
    let disk = MemoryDisk::new();
    let engine = Engine::builder()
        .register(approval)
        .open_store(FileStore::open_disk(disk.clone()).unwrap())
        .await
        .unwrap();
    engine.start(approval, "r1", "t".into()).await.unwrap();
    waiting_for_approval(&engine, "r1").await;

    disk.fail_writes(true);
    let err = engine
        .signal("r1", "approval", ok("lost?"))
        .await
        .unwrap_err();
    // A full disk is matchable: the device's error is kept as the source.
    assert!(
        matches!(&err, SignalError::Storage(s) if s.io_kind() == Some(std::io::ErrorKind::StorageFull)),
        "{err:?}"
    );
    let err = engine.start(approval, "r2", "t".into()).await.unwrap_err();
    assert!(matches!(err, StartError::Storage(_)), "{err}");
    engine.shutdown().await;

    // The fault clears; a new engine on the same bytes finds the run where it was, and
    // nothing that was refused happened.
    disk.fail_writes(false);
    let engine = Engine::builder()
        .register(approval)
        .open_store(FileStore::open_disk(disk.clone()).unwrap())
        .await
        .unwrap();
    assert!(matches!(
        engine.status("r1").unwrap(),
        RunStatus::Waiting { .. }
    ));
    assert!(matches!(
        engine.status("r2"),
        Err(EngineError::UnknownRun { .. })
    ));
    engine
        .signal("r1", "approval", ok("after the fault"))
        .await
        .unwrap();
    let out = engine
        .handle(approval, "r1")
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, Ok("t: true (after the fault)".to_owned()));
    engine.shutdown().await;
}
