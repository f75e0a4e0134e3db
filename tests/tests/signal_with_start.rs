//! Signal-with-start: `Engine::signal_with_start` creates the run if it does not exist and
//! hands it the signal in the same commit, or signals the existing run; a dedupe key makes a
//! retried webhook count once; a refused signal creates nothing. A crash at every commit of a
//! webhook sequence, with the webhook retried after each restart, ends with the run created once
//! and each event taken once.

use workflow_runtime::prelude::*;
use workflow_runtime::testing::{CrashMoment, TestEngine};
use workflow_runtime::{SignalError, SignalWithStartError, StartError, TraceKind};

const HOUR: Duration = Duration::from_secs(3_600);

#[function]
async fn open_ticket(id: String) -> Result<String, StepError> {
    Ok(format!("opened {id}"))
}

/// Collects comments until `close`; its first suspension is a wait.
#[workflow]
async fn ticket(ctx: &mut WorkflowContext, id: String) -> Result<Vec<String>, WorkflowError> {
    let mut notes: Vec<String> = Vec::new();
    loop {
        let note = ctx.wait_for_signal::<String>("comment", HOUR, ()).await?;
        if note == "close" {
            break;
        }
        notes.push(note);
    }
    notes.push(id);
    Ok(notes)
}

/// Runs a step before it waits, so a signal that starts it is buffered first.
#[workflow]
async fn step_first(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let opened = ctx.step(open_ticket, id).await?;
    let note = ctx.wait_for_signal::<String>("comment", HOUR, ()).await?;
    Ok(format!("{opened}: {note}"))
}

#[workflow]
async fn other(ctx: &mut WorkflowContext) -> Result<u8, WorkflowError> {
    Ok(ctx.wait_for_signal::<u8>("comment", HOUR, ()).await?)
}

async fn engine() -> TestEngine {
    TestEngine::builder()
        .register(ticket)
        .register(step_first)
        .register(other)
        .build()
        .await
}

fn comment(text: &str, key: &str) -> Signal {
    Signal::new("comment", text).dedupe_key(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_starts_the_run_and_later_ones_reach_it() {
    let te = engine().await;
    let e = te.engine();
    let (run, first) = e
        .signal_with_start(ticket, "T-1", "T-1".into(), comment("hi", "e1"))
        .await
        .unwrap();
    assert_eq!(first, SignalOutcome::Delivered);
    let starts = e
        .trace("T-1")
        .unwrap()
        .iter()
        .filter(|ev| matches!(ev.kind, TraceKind::Started { .. }))
        .count();
    assert_eq!(starts, 1);
    // A retried webhook: same key, nothing changes, whether the input matches or not.
    let (_, again) = e
        .signal_with_start(ticket, "T-1", "T-1".into(), comment("hi", "e1"))
        .await
        .unwrap();
    assert_eq!(again, SignalOutcome::Duplicate);
    let (_, second) = e
        .signal_with_start(ticket, "T-1", "ignored".into(), comment("more", "e2"))
        .await
        .unwrap();
    assert_eq!(second, SignalOutcome::Delivered);
    e.signal_with_start(ticket, "T-1", "T-1".into(), comment("close", "e3"))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(vec!["hi".to_owned(), "more".to_owned(), "T-1".to_owned()])
    );
    // A finished run gets the same error as a plain signal.
    let late = e
        .signal_with_start(ticket, "T-1", "T-1".into(), comment("late", "e4"))
        .await
        .unwrap_err();
    assert!(matches!(
        late,
        SignalWithStartError::Signal(SignalError::RunFinished { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_does_not_wait_at_once_keeps_the_signal_buffered() {
    let te = engine().await;
    let (run, outcome) = te
        .engine()
        .signal_with_start(step_first, "S-1", "S-1".into(), comment("early", "k"))
        .await
        .unwrap();
    assert_eq!(outcome, SignalOutcome::Buffered);
    te.run_until_idle().await;
    assert_eq!(
        run.result().await.unwrap(),
        Ok("opened S-1: early".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_signal_or_a_taken_id_creates_nothing() {
    let te = engine().await;
    let e = te.engine();
    let typo = e
        .signal_with_start(ticket, "T-2", "T-2".into(), Signal::new("coment", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            typo,
            SignalWithStartError::Signal(SignalError::UnknownSignal { .. })
        ),
        "{typo:?}"
    );
    let wrong = e
        .signal_with_start(ticket, "T-2", "T-2".into(), Signal::new("comment", 5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            SignalWithStartError::Signal(SignalError::PayloadMismatch { .. })
        ),
        "{wrong:?}"
    );
    assert!(e.status("T-2").is_err(), "no run was created");
    e.start(other, "O-1", ()).await.unwrap();
    let clash = e
        .signal_with_start(ticket, "O-1", "O-1".into(), comment("x", "k"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            clash,
            SignalWithStartError::Start(StartError::Conflict { .. })
        ),
        "{clash:?}"
    );
    assert!(matches!(
        e.status("O-1").unwrap(),
        RunStatus::Waiting { .. }
    ));
}

/// Sends `signal` with start until it is acknowledged, restarting after a crash, as a webhook
/// sender retries until it gets an answer.
/// Returns whether the engine crashed on the way.
async fn deliver(te: &mut TestEngine, signal: Signal) -> bool {
    let mut crashed = false;
    loop {
        match te
            .engine()
            .signal_with_start(ticket, "W-1", "W-1".into(), signal.clone())
            .await
        {
            Ok(_) => return crashed,
            Err(_) if te.crashed() => {
                crashed = true;
                te.restart().await;
            }
            Err(e) => panic!("webhook refused: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_a_crash_at_every_commit() {
    let events = [("a", "e1"), ("a", "e1"), ("b", "e2"), ("close", "e3")];
    let play = |mut te: TestEngine| async move {
        let mut crashed = false;
        for (text, key) in events {
            // A crash just after a commit surfaces at the next call.
            crashed |= te.crashed() || deliver(&mut te, comment(text, key)).await;
            te.run_until_idle().await;
        }
        let run = te.engine().handle(ticket, "W-1").unwrap();
        let out = run.result().await.unwrap();
        let trace = te.engine().trace("W-1").unwrap();
        let starts = trace
            .iter()
            .filter(|ev| matches!(ev.kind, TraceKind::Started { .. }))
            .count();
        let commits = te.commits_begun();
        te.shutdown().await;
        (out, starts, commits, crashed)
    };
    let (want, starts, commits, _) = play(engine().await).await;
    assert_eq!(
        want,
        Ok(vec!["a".to_owned(), "b".to_owned(), "W-1".to_owned()])
    );
    assert_eq!(starts, 1);
    assert!(commits >= 4, "{commits} commits");
    for commit in 1..=commits {
        for moment in [CrashMoment::BeforeCommit, CrashMoment::AfterCommit] {
            let te = TestEngine::builder()
                .register(ticket)
                .crash_at(commit, moment)
                .build()
                .await;
            let (got, starts, _, crashed) = play(te).await;
            assert!(crashed, "crash {moment} commit {commit} never happened");
            assert_eq!(got, want, "crash {moment} commit {commit}");
            assert_eq!(starts, 1, "crash {moment} commit {commit}: started twice");
        }
    }
}
