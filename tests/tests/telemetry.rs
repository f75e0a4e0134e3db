//! The engine reports to `tracing`: a span per step attempt and per transition carrying the
//! run, workflow, version, step, attempt and idempotency key, one event per committed trace
//! event at its level, and nothing through stdout or stderr.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use workflow_runtime::prelude::*;

#[function]
async fn flaky(ctx: StepContext, n: u64) -> Result<u64, StepError> {
    tracing::info!("inside the step");
    if ctx.attempt() == 1 {
        return Err(StepError::retryable("first attempts fail"));
    }
    Ok(n * 2)
}

#[workflow(version = 3)]
async fn doubled(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let ok = ctx
        .wait_for_signal::<bool>("go", Duration::from_secs(60), ())
        .await?;
    tracing::info!(ok, "decided");
    if !ok {
        return Err("stopped".into());
    }
    let out = ctx
        .step(flaky, n)
        .retry(RetryPolicy::DEFAULT.initial_backoff(Duration::from_millis(1)))
        .await?;
    Ok(out)
}

#[workflow]
async fn kid(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(n + 1)
}

#[workflow]
async fn parent(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.child(kid, n).await?)
}

/// Everything the fmt layer writes, shared by the writers it makes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Runs `body` on a current-thread runtime (so that every engine task sees this thread's
/// subscriber) under a fmt subscriber at DEBUG, and returns what it wrote.
fn logged(body: impl std::future::Future<Output = ()>) -> String {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body)
    });
    String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn spans_and_events_name_the_run_the_step_and_the_attempt() {
    let log = logged(async {
        let engine = Engine::builder()
            .register(doubled)
            .open_in_memory()
            .await
            .unwrap();
        let run = engine.start(doubled, "run-7", 21).await.unwrap();
        engine.signal("run-7", "go", true).await.unwrap();
        assert_eq!(run.result().await.unwrap(), Ok(42));
        engine.shutdown().await;
    });
    let lines: Vec<&str> = log.lines().collect();
    let has = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));

    // The step's own event sits inside its attempt's span, with every identifying field.
    assert!(
        has(&[
            "INFO",
            "step{run_id=\"run-7\" workflow=\"doubled\" step=\"flaky\" attempt=2 \
             idempotency_key=\"run-7:flaky:2\"}",
            "inside the step"
        ]),
        "{log}"
    );
    // Workflow code runs inside its transition's span.
    assert!(
        has(&[
            "transition{run_id=\"run-7\" workflow=\"doubled\" version=3 seq=2}",
            "decided ok=true"
        ]),
        "{log}"
    );
    // One event per trace kind, at its level, after the commit.
    assert!(
        has(&["INFO", "kind=\"started\"", "run_id=\"run-7\"", "version=3"]),
        "{log}"
    );
    assert!(has(&["INFO", "kind=\"signal_received\""]), "{log}");
    assert!(
        has(&[
            "WARN",
            "kind=\"step_attempt_failed\"",
            "first attempts fail"
        ]),
        "{log}"
    );
    assert!(has(&["INFO", "kind=\"completed\""]), "{log}");
    assert!(has(&["DEBUG", "kind=\"step_scheduled\""]), "{log}");
}

#[test]
fn a_child_created_in_its_parents_commit_is_reported_too() {
    let log = logged(async {
        let engine = Engine::builder()
            .register(kid)
            .register(parent)
            .open_in_memory()
            .await
            .unwrap();
        let run = engine.start(parent, "p-1", 1).await.unwrap();
        assert_eq!(run.result().await.unwrap(), Ok(2));
        engine.shutdown().await;
    });
    let has = |needles: &[&str]| log.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&["INFO", "kind=\"child_started\"", "run_id=\"p-1\""]),
        "{log}"
    );
    assert!(
        has(&["INFO", "kind=\"started\"", "run_id=\"p-1/kid-1\""]),
        "{log}"
    );
    assert!(
        has(&["kind=\"started_by_parent\"", "run_id=\"p-1/kid-1\""]),
        "{log}"
    );
    assert!(
        has(&["INFO", "kind=\"child_ended\"", "run_id=\"p-1\""]),
        "{log}"
    );
}
