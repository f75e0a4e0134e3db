//! Schedules: interval and cron ticks, the catch-up policy after downtime (engines reopened on
//! the same file with the manual clock moved on), the overlap policy, idempotent re-creation,
//! pause, resume, delete, one-shot starts, and the refusals.

use std::path::Path;

use workflow_runtime::prelude::*;
use workflow_runtime::testing::{CrashMoment, Hooks, settle};
use workflow_runtime::{
    CatchUp, LeaseSettings, Overlap, RunStatus, Schedule, ScheduleError, StartError, TraceKind,
    schedule_run_id,
};

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
const MINUTE: u64 = 60_000;

/// Returns at once: a run of it is over as soon as it starts.
#[workflow]
async fn job(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(n)
}

/// Goes on until it is told to stop: the run overlaps the next tick.
#[workflow]
async fn hold(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    ctx.wait_for_signal::<bool>("done", Duration::from_secs(86_400), ())
        .await?;
    Ok(n)
}

fn builder(clock: &ManualClock) -> EngineBuilder {
    Engine::builder()
        .register(job)
        .register(hold)
        .clock(clock.clone())
}

async fn open(path: &Path, clock: &ManualClock) -> Engine {
    builder(clock).open(path).await.expect("store opens")
}

async fn advance(engine: &Engine, clock: &ManualClock, ms: u64) {
    clock.advance(Duration::from_millis(ms));
    settle(engine).await;
}

/// The runs a schedule started, in id order (ticks in time order).
fn runs_of(engine: &Engine, id: &str) -> Vec<String> {
    let prefix = format!("{id}@");
    let filter = workflow_runtime::RunFilter::default();
    engine
        .runs(&filter)
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .filter(|r| r.starts_with(&prefix))
        .collect()
}

fn schedule_events(engine: &Engine, id: &str) -> Vec<TraceKind> {
    engine
        .trace(&format!("@schedule/{id}"))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn an_interval_schedule_starts_one_run_per_tick_under_derived_ids() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    let info = engine.schedule(job, "minutely", every, 7).await.unwrap();
    assert_eq!(
        info.next_ms,
        Some(T0 + MINUTE),
        "ticks before creation are not due"
    );
    assert_eq!(
        (info.catch_up, info.overlap),
        (CatchUp::Latest, Overlap::Skip)
    );

    for _ in 0..3 {
        advance(&engine, &clock, MINUTE).await;
    }
    let expected: Vec<String> = (1..=3)
        .map(|i| schedule_run_id("minutely", T0 + i * MINUTE))
        .collect();
    assert_eq!(runs_of(&engine, "minutely"), expected);
    for run_id in &expected {
        let run = engine.handle(job, run_id.as_str()).unwrap();
        assert_eq!(run.result().await.unwrap(), Ok(7));
    }
    let info = engine.schedule_info("minutely").unwrap().unwrap();
    assert_eq!(info.started, 3);
    assert_eq!(info.skipped, 0);
    assert_eq!(info.last_tick_ms, Some(T0 + 3 * MINUTE));
    assert_eq!(info.last_run.as_deref(), Some(expected[2].as_str()));
    assert_eq!(info.next_ms, Some(T0 + 4 * MINUTE));
    let fired: Vec<String> = schedule_events(&engine, "minutely")
        .into_iter()
        .filter_map(|k| match k {
            TraceKind::ScheduleFired {
                run_id, outcome, ..
            } => Some(format!("{run_id} {outcome}")),
            _ => None,
        })
        .collect();
    let want: Vec<String> = expected.iter().map(|r| format!("{r} started")).collect();
    assert_eq!(fired, want);
}

#[tokio::test]
async fn a_cron_schedule_ticks_at_the_minutes_it_names_in_utc_or_a_named_zone() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let quarter = Schedule::cron("*/15 * * * *").unwrap();
    let info = engine.schedule(job, "quarter", quarter, 1).await.unwrap();
    assert_eq!(info.next_ms, Some(T0 + 15 * MINUTE));
    assert_eq!(info.spec, "cron `*/15 * * * *`");

    // 09:00 in Paris is 08:00 UTC in January.
    let paris = Schedule::cron("0 9 * * * Europe/Paris").unwrap();
    let info = engine.schedule(job, "paris", paris, 2).await.unwrap();
    assert_eq!(info.next_ms, Some(T0 + 8 * 60 * MINUTE));

    advance(&engine, &clock, 14 * MINUTE).await;
    assert!(runs_of(&engine, "quarter").is_empty());
    advance(&engine, &clock, MINUTE).await;
    assert_eq!(
        runs_of(&engine, "quarter"),
        [schedule_run_id("quarter", T0 + 15 * MINUTE)]
    );
    let next = engine.schedule_info("quarter").unwrap().unwrap().next_ms;
    assert_eq!(next, Some(T0 + 30 * MINUTE));
}

#[tokio::test]
async fn overlap_skip_starts_nothing_while_the_last_run_goes_and_allow_starts_beside_it() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    engine
        .schedule(hold, "skip", every.clone(), 1)
        .await
        .unwrap();
    engine
        .schedule(hold, "allow", every.overlap(Overlap::Allow), 2)
        .await
        .unwrap();

    advance(&engine, &clock, MINUTE).await;
    advance(&engine, &clock, MINUTE).await;
    let first = schedule_run_id("skip", T0 + MINUTE);
    assert_eq!(runs_of(&engine, "skip"), std::slice::from_ref(&first));
    assert_eq!(runs_of(&engine, "allow").len(), 2);
    let info = engine.schedule_info("skip").unwrap().unwrap();
    assert_eq!((info.started, info.skipped), (1, 1));
    assert!(schedule_events(&engine, "skip").iter().any(|k| matches!(
        k,
        TraceKind::ScheduleFired { outcome, tick_ms, .. }
            if outcome == "overlap" && *tick_ms == T0 + 2 * MINUTE
    )));

    // Once the run is over, the next tick starts again.
    engine.signal(&first, "done", true).await.unwrap();
    settle(&engine).await;
    advance(&engine, &clock, MINUTE).await;
    assert_eq!(
        runs_of(&engine, "skip"),
        [first, schedule_run_id("skip", T0 + 3 * MINUTE)]
    );
}

/// Creates a schedule ticking every minute at `T0`, closes the engine, moves the clock by
/// ten and a half minutes (ticks at +1 .. +10 minutes come due while no engine runs), reopens,
/// and returns the engine with the runs the schedule started.
async fn after_downtime(policy: CatchUp) -> (Engine, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schedules.redb");
    let clock = ManualClock::new(T0);
    let engine = open(&path, &clock).await;
    let every = Schedule::every(Duration::from_secs(60))
        .catch_up(policy)
        .overlap(Overlap::Allow);
    engine.schedule(job, "s", every, 3).await.unwrap();
    engine.shutdown().await;

    clock.advance(Duration::from_millis(10 * MINUTE + MINUTE / 2));
    let engine = open(&path, &clock).await;
    settle(&engine).await;
    let runs = runs_of(&engine, "s");
    (engine, runs, dir)
}

fn missed(engine: &Engine) -> Vec<(u64, u64, u64)> {
    schedule_events(engine, "s")
        .into_iter()
        .filter_map(|k| match k {
            TraceKind::ScheduleMissed {
                count,
                first_ms,
                last_ms,
            } => Some((count, first_ms, last_ms)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn catch_up_latest_starts_one_run_for_the_latest_missed_tick() {
    let (engine, runs, _dir) = after_downtime(CatchUp::Latest).await;
    assert_eq!(runs, [schedule_run_id("s", T0 + 10 * MINUTE)]);
    assert_eq!(missed(&engine), [(9, T0 + MINUTE, T0 + 9 * MINUTE)]);
    let info = engine.schedule_info("s").unwrap().unwrap();
    assert_eq!((info.started, info.skipped), (1, 9));
    assert_eq!(info.next_ms, Some(T0 + 11 * MINUTE));
    engine.shutdown().await;
}

#[tokio::test]
async fn catch_up_skip_starts_nothing_for_ticks_missed_while_down() {
    let (engine, runs, _dir) = after_downtime(CatchUp::Skip).await;
    assert!(runs.is_empty(), "{runs:?}");
    assert_eq!(missed(&engine), [(10, T0 + MINUTE, T0 + 10 * MINUTE)]);
    let info = engine.schedule_info("s").unwrap().unwrap();
    assert_eq!(info.next_ms, Some(T0 + 11 * MINUTE));
    // The schedule goes on with its next tick, which comes due while the engine runs.
    let clock_now = T0 + 10 * MINUTE + MINUTE / 2;
    assert!(info.next_ms.unwrap() > clock_now);
    engine.shutdown().await;
}

#[tokio::test]
async fn catch_up_all_starts_the_latest_max_missed_ticks_oldest_first() {
    let (engine, runs, _dir) = after_downtime(CatchUp::All { max: 3 }).await;
    let want: Vec<String> = (8..=10)
        .map(|i| schedule_run_id("s", T0 + i * MINUTE))
        .collect();
    assert_eq!(runs, want);
    assert_eq!(missed(&engine), [(7, T0 + MINUTE, T0 + 7 * MINUTE)]);
    let started: Vec<u64> = schedule_events(&engine, "s")
        .into_iter()
        .filter_map(|k| match k {
            TraceKind::ScheduleFired { tick_ms, .. } => Some(tick_ms),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [T0 + 8 * MINUTE, T0 + 9 * MINUTE, T0 + 10 * MINUTE]
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_tick_whose_run_exists_already_is_not_started_again() {
    // What a firing retried after a crash finds: the run of the tick was started, the
    // schedule's progress was not recorded.
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    engine.schedule(job, "s", every, 5).await.unwrap();
    let tick_run = schedule_run_id("s", T0 + MINUTE);
    engine.start(job, tick_run.as_str(), 5).await.unwrap();
    let trace_before = engine.trace(&tick_run).unwrap();

    advance(&engine, &clock, MINUTE).await;
    assert_eq!(engine.trace(&tick_run).unwrap(), trace_before);
    let info = engine.schedule_info("s").unwrap().unwrap();
    assert_eq!((info.started, info.last_run), (1, Some(tick_run.clone())));
    assert!(schedule_events(&engine, "s").iter().any(|k| matches!(
        k,
        TraceKind::ScheduleFired { outcome, run_id, .. } if outcome == "existed" && *run_id == tick_run
    )));
}

#[tokio::test]
async fn the_same_schedule_again_changes_nothing_and_another_definition_replaces_it() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    let first = engine.schedule(job, "s", every.clone(), 1).await.unwrap();
    advance(&engine, &clock, MINUTE).await;
    let trace = engine.trace("@schedule/s").unwrap();
    let commits = engine.commit_count();
    let again = engine.schedule(job, "s", every.clone(), 1).await.unwrap();
    assert_eq!(engine.trace("@schedule/s").unwrap(), trace);
    assert_eq!(
        engine.commit_count(),
        commits,
        "an identical definition writes nothing"
    );
    assert_eq!(again.started, 1);
    assert_eq!(again.next_ms, Some(first.next_ms.unwrap() + MINUTE));

    // Another input: replaced from the next tick on; the progress stays.
    let changed = engine
        .schedule(job, "s", Schedule::every(Duration::from_secs(300)), 2)
        .await
        .unwrap();
    assert_eq!(changed.started, 1);
    assert_eq!(changed.next_ms, Some(T0 + 5 * MINUTE));
    assert_eq!(changed.spec, "every 300000 ms");
    assert_eq!(engine.schedules().unwrap().len(), 1);
    let versions = engine.versions().unwrap();
    let kind = versions
        .iter()
        .find(|v| v.workflow == workflow_runtime::SCHEDULE_WORKFLOW)
        .unwrap();
    assert_eq!(
        (kind.in_flight, kind.handled_by.as_str()),
        (1, "the engine")
    );
    advance(&engine, &clock, 4 * MINUTE).await;
    let tick = schedule_run_id("s", T0 + 5 * MINUTE);
    let run = engine.handle(job, tick.as_str()).unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(2));
}

#[tokio::test]
async fn a_paused_schedule_fires_nothing_and_resumes_from_its_next_tick() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    engine.schedule(job, "s", every.clone(), 1).await.unwrap();
    let paused = engine.pause_schedule("s").await.unwrap();
    assert!(paused.paused);
    assert_eq!(paused.next_ms, None);
    advance(&engine, &clock, 5 * MINUTE).await;
    assert!(runs_of(&engine, "s").is_empty());

    // Re-creating it keeps it paused.
    assert!(engine.schedule(job, "s", every, 9).await.unwrap().paused);
    let resumed = engine.resume_schedule("s").await.unwrap();
    assert!(!resumed.paused);
    assert_eq!(
        resumed.next_ms,
        Some(T0 + 6 * MINUTE),
        "ticks during the pause are not due"
    );
    advance(&engine, &clock, MINUTE).await;
    assert_eq!(
        runs_of(&engine, "s"),
        [schedule_run_id("s", T0 + 6 * MINUTE)]
    );
    assert!(matches!(
        engine.pause_schedule("nope").await,
        Err(ScheduleError::UnknownSchedule { .. })
    ));
}

#[tokio::test]
async fn a_deleted_schedule_fires_no_more_and_its_id_is_free_again() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    engine.schedule(job, "s", every.clone(), 1).await.unwrap();
    advance(&engine, &clock, MINUTE).await;
    engine.delete_schedule("s").await.unwrap();
    assert!(engine.schedules().unwrap().is_empty());
    assert!(engine.schedule_info("s").unwrap().is_none());
    advance(&engine, &clock, 3 * MINUTE).await;
    assert_eq!(runs_of(&engine, "s").len(), 1, "the run it started stays");

    let info = engine.schedule(job, "s", every, 1).await.unwrap();
    assert_eq!((info.started, info.next_ms), (0, Some(T0 + 5 * MINUTE)));
}

#[tokio::test]
async fn start_at_starts_the_run_once_even_after_downtime_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("once.redb");
    let clock = ManualClock::new(T0);
    let engine = open(&path, &clock).await;
    let at = T0 + 30 * MINUTE;
    let info = engine
        .start_at(job, "once-1", 9, at - MINUTE)
        .await
        .unwrap();
    assert_eq!(info.next_ms, Some(at - MINUTE));
    // Before the start, another input and time replace the pending ones.
    let info = engine.start_at(job, "once-1", 4, at).await.unwrap();
    assert_eq!(info.next_ms, Some(at));
    engine.start_at(job, "once-1", 4, at).await.unwrap();
    assert!(
        engine.status("once-1").is_err(),
        "not started before its time"
    );
    engine.shutdown().await;

    // Down past the time, even with `CatchUp::Skip` semantics nowhere in sight: it fires.
    clock.advance(Duration::from_millis(2 * 60 * MINUTE));
    let engine = open(&path, &clock).await;
    settle(&engine).await;
    let run = engine.handle(job, "once-1").unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(4));
    let info = engine.schedule_info("once-1").unwrap().unwrap();
    assert_eq!((info.started, info.next_ms), (1, None));
    let trace_len = engine.trace("once-1").unwrap().len();
    engine.start_at(job, "once-1", 4, at).await.unwrap();
    settle(&engine).await;
    assert_eq!(engine.trace("once-1").unwrap().len(), trace_len);
    let other = engine.start_at(job, "once-1", 5, at).await;
    assert!(
        matches!(
            other,
            Err(ScheduleError::Start(StartError::Conflict { .. }))
        ),
        "{other:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn bad_schedules_are_refused_and_change_nothing() {
    let clock = ManualClock::new(T0);
    let engine = Engine::builder()
        .register(job)
        .clock(clock.clone())
        .open_in_memory()
        .await
        .unwrap();
    for bad in [
        "",
        "* * *",
        "61 * * * *",
        "* * * * * Mars/Olympus",
        "0 0 30 FEB *",
    ] {
        let refused = Schedule::cron(bad);
        assert!(
            matches!(refused, Err(ScheduleError::Invalid { .. })),
            "{bad:?}: {refused:?}"
        );
    }
    let zero = engine
        .schedule(job, "s", Schedule::every(Duration::from_micros(10)), 1)
        .await;
    assert!(
        matches!(zero, Err(ScheduleError::Invalid { .. })),
        "{zero:?}"
    );
    let unregistered = engine
        .schedule(hold, "s", Schedule::every(Duration::from_secs(1)), 1)
        .await;
    assert!(
        matches!(
            unregistered,
            Err(ScheduleError::Start(StartError::NotRegistered { .. }))
        ),
        "{unregistered:?}"
    );
    let empty = engine
        .schedule(job, "", Schedule::every(Duration::from_secs(1)), 1)
        .await;
    assert!(
        matches!(
            empty,
            Err(ScheduleError::Start(StartError::InvalidName { .. }))
        ),
        "{empty:?}"
    );
    // An id taken by a run that is not a schedule.
    engine.start(job, "@schedule/taken", 1).await.unwrap();
    let taken = engine
        .schedule(job, "taken", Schedule::every(Duration::from_secs(1)), 1)
        .await;
    assert!(
        matches!(
            taken,
            Err(ScheduleError::Start(StartError::Conflict { .. }))
        ),
        "{taken:?}"
    );
    assert!(engine.schedules().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_sharing_its_store_claims_and_fires_a_schedule_like_any_timer() {
    let clock = ManualClock::new(T0);
    let settings = LeaseSettings::new(Duration::from_secs(5)).poll_every(Duration::from_millis(10));
    let engine = builder(&clock)
        .shared(settings)
        .open_in_memory()
        .await
        .unwrap();
    let every = Schedule::every(Duration::from_secs(60));
    engine.schedule(job, "s", every, 4).await.unwrap();
    clock.advance(Duration::from_millis(MINUTE));
    let tick = schedule_run_id("s", T0 + MINUTE);
    // The poller claims the due timer on its own time; this only bounds a hang.
    for _ in 0..10_000 {
        settle(&engine).await;
        if engine
            .status(&tick)
            .is_ok_and(|s| s == RunStatus::Completed)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(engine.status(&tick).unwrap(), RunStatus::Completed);
    for _ in 0..10_000 {
        if engine.schedule_info("s").unwrap().unwrap().next_ms == Some(T0 + 2 * MINUTE) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let info = engine.schedule_info("s").unwrap().unwrap();
    assert_eq!((info.started, info.next_ms), (1, Some(T0 + 2 * MINUTE)));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_catch_up_firing_crashed_at_each_of_its_commits_starts_the_latest_tick_exactly_once() {
    // The firing after downtime commits three times: the decision, the run's start, the
    // outcome with the next tick. Whichever of them the crash hits, before or after it is
    // durable, the next open ends with the same single run.
    for commit in 1..=3 {
        for moment in [CrashMoment::BeforeCommit, CrashMoment::AfterCommit] {
            let case = format!("crash {moment} commit {commit}");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("crash.redb");
            let clock = ManualClock::new(T0);
            let engine = open(&path, &clock).await;
            let every = Schedule::every(Duration::from_secs(60));
            engine.schedule(job, "s", every, 3).await.unwrap();
            engine.shutdown().await;
            clock.advance(Duration::from_millis(10 * MINUTE + MINUTE / 2));

            let mut hooks = Hooks::default();
            hooks.crash_at(commit, moment);
            let crashing = builder(&clock)
                .instrument(hooks.clone())
                .open(&path)
                .await
                .unwrap();
            settle(&crashing).await;
            assert!(hooks.crashed(), "{case}: the crash did not happen");
            crashing.shutdown().await;

            let engine = open(&path, &clock).await;
            settle(&engine).await;
            let tick = schedule_run_id("s", T0 + 10 * MINUTE);
            assert_eq!(runs_of(&engine, "s"), std::slice::from_ref(&tick), "{case}");
            let starts = engine
                .trace(&tick)
                .unwrap()
                .iter()
                .filter(|e| e.kind.name() == "started")
                .count();
            assert_eq!(starts, 1, "{case}");
            assert_eq!(
                missed(&engine),
                [(9, T0 + MINUTE, T0 + 9 * MINUTE)],
                "{case}"
            );
            let fired: Vec<(u64, String)> = schedule_events(&engine, "s")
                .into_iter()
                .filter_map(|k| match k {
                    TraceKind::ScheduleFired {
                        tick_ms, outcome, ..
                    } => Some((tick_ms, outcome)),
                    _ => None,
                })
                .collect();
            // The run was durable and the outcome not: the retried firing finds it.
            let found = match moment {
                CrashMoment::AfterCommit => commit == 2,
                _ => commit == 3,
            };
            let outcome = if found { "existed" } else { "started" };
            assert_eq!(fired, [(T0 + 10 * MINUTE, outcome.to_owned())], "{case}");
            let info = engine.schedule_info("s").unwrap().unwrap();
            assert_eq!((info.started, info.skipped), (1, 9), "{case}");
            assert_eq!(info.next_ms, Some(T0 + 11 * MINUTE), "{case}");
            engine.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_schedule_due_before_its_workflow_is_registered_fires_once_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.redb");
    let clock = ManualClock::new(T0);
    let engine = open(&path, &clock).await;
    let every = Schedule::every(Duration::from_secs(60));
    engine.schedule(job, "s", every, 6).await.unwrap();
    engine.shutdown().await;
    clock.advance(Duration::from_millis(2 * MINUTE + MINUTE / 2));

    let engine = Engine::builder()
        .clock(clock.clone())
        .open(&path)
        .await
        .unwrap();
    settle(&engine).await;
    assert!(runs_of(&engine, "s").is_empty());
    assert_eq!(engine.schedule_info("s").unwrap().unwrap().started, 0);
    engine.register(job).await.unwrap();
    settle(&engine).await;
    assert_eq!(
        runs_of(&engine, "s"),
        [schedule_run_id("s", T0 + 2 * MINUTE)]
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn start_at_a_time_that_has_passed_starts_at_once() {
    let clock = ManualClock::new(T0);
    let engine = builder(&clock).open_in_memory().await.unwrap();
    let info = engine.start_at(job, "late", 8, T0 - MINUTE).await.unwrap();
    assert_eq!(info.next_ms, Some(T0 - MINUTE));
    settle(&engine).await;
    let run = engine.handle(job, "late").unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(8));
    assert_eq!(engine.schedule_info("late").unwrap().unwrap().started, 1);
}
