//! Executing steps: one attempt at a time, each with its optional timeout, and the durable
//! retry of a failed attempt after its backoff.
//!
//! Starting an attempt commits nothing; its end does. A failure the step's [`RetryPolicy`]
//! retries commits the next attempt's number and the absolute end of its backoff (indexed as a
//! timer, so that a restart re-arms it and waits only for what is left); any other result is
//! handed to the workflow. An attempt still running when the process dies runs again after the
//! restart, with the same attempt number and the same idempotency key (at least once).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::Instrument;

use super::hooks::{BusyGuard, StepDouble};
use super::versions::Resolution;
use super::{Inner, lock, report};
use crate::error::{EngineError, StoreError};
use crate::model::{Command, Event};
use crate::retry::RetryPolicy;
use crate::step::{StepContext, StepError};
use crate::telemetry;
use crate::trace::TraceKind;
use crate::types::{RunRecord, panic_text};

/// The attempt of a step that runs for a run; there is at most one per run.
pub(super) struct RunningStep {
    /// The seq of the checkpoint that scheduled the step.
    position: u64,
    /// Which attempt, from 1.
    attempt: u32,
    /// When the attempt is cut off, on the engine's clock.
    deadline_ms: Option<u64>,
    /// Woken when the timer of `deadline_ms` fires.
    cut_off: Arc<Notify>,
    task: AbortHandle,
}

impl RunningStep {
    /// Stops the attempt (shutdown, simulated crash).
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

/// One attempt to carry out.
struct Attempt {
    name: String,
    input: Value,
    number: u32,
    policy: RetryPolicy,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    /// Carries out a pending [`Command::Step`] at checkpoint `position`: arms the timer of its
    /// backoff if that is not over yet, or runs the attempt.
    pub(super) fn launch_step(&self, run_id: &str, workflow: &str, position: u64, cmd: &Command) {
        let Command::Step {
            name,
            input,
            retry,
            attempt,
            not_before_ms,
        } = cmd
        else {
            return;
        };
        if let Some(at) = *not_before_ms
            && at > self.clock.now_ms()
        {
            self.note_armed(run_id);
            // Held whatever its distance: there is one per run retrying a step, and holding
            // it keeps a retry independent of how far the timers have been paged in.
            self.timers.arm_held(at, run_id.to_owned(), position);
            return;
        }
        // The workflow's choice for this call, else the step's own as registered now.
        let policy = retry
            .or_else(|| Some(self.driver(workflow)?.step(name)?.retry))
            .unwrap_or_default();
        let attempt = Attempt {
            name: name.clone(),
            input: input.clone(),
            number: *attempt,
            policy,
        };
        self.spawn_attempt(run_id, workflow, position, attempt);
    }

    /// Runs one attempt in a task, then records its result. An attempt already running for
    /// this run, position and number is left alone, so that a step never runs twice at once in
    /// this engine.
    ///
    /// The task is a new one, except when the run's own attempt task is recording the result
    /// that scheduled this attempt: then the attempt runs next in that same task (see
    /// [`Continuation`]).
    fn spawn_attempt(&self, run_id: &str, workflow: &str, position: u64, attempt: Attempt) {
        let mut steps = lock(&self.steps);
        let running = steps.get(run_id);
        if running.is_some_and(|r| r.position == position && r.attempt == attempt.number) {
            return;
        }
        // The run's attempt task is the one asking, and it is recording that attempt's result:
        // it runs this attempt when it is done with that.
        let in_place = running
            .filter(|r| Some(r.task.id()) == tokio::task::try_id())
            .filter(|_| Continuation::accepts())
            .map(|r| r.task.clone());
        let Attempt {
            name,
            input,
            number,
            policy,
        } = attempt;
        // A test double replaces the step for this engine only.
        let double = self.instrument.as_ref().and_then(|i| i.step_double(&name));
        let call = match double {
            Some(double) => Ok(Call::Double(double)),
            None => self
                .driver(workflow)
                .and_then(|d| d.step(&name))
                .map(|entry| Call::Entry(entry.call))
                .ok_or_else(|| format!("workflow `{workflow}` has no step named `{name}`")),
        };
        self.counters.step_attempt();
        let started_ms = self.clock.now_ms();
        let deadline_ms = policy.timeout.map(|t| started_ms.saturating_add(millis(t)));
        let cut_off = Arc::new(Notify::new());
        let span = telemetry::step_attempt(run_id, workflow, &name, number, || {
            StepContext::new(run_id, name.as_str(), position, number).idempotency_key()
        });
        let launch = Launch {
            run: run_id.to_owned(),
            position,
            number,
            name,
            input,
            policy,
            call,
            started_ms,
            deadline_ms,
            cut: cut_off.clone(),
            span,
            _busy: self.busy.guard(),
        };
        let task = match in_place {
            Some(task) => {
                Continuation::set(launch);
                task
            }
            None => {
                let weak = self.me.clone();
                let data = self.data.clone();
                let clock = self.clock.clone();
                tokio::spawn(NEXT.scope(Continuation::default(), async move {
                    let mut launch = launch;
                    loop {
                        run_attempt(&weak, &data, &clock, launch).await;
                        match Continuation::take() {
                            // Another task may be waiting for this worker; a chain of steps
                            // in one task yields to it like a chain of tasks would.
                            Some(next) => {
                                tokio::task::consume_budget().await;
                                launch = next;
                            }
                            None => break,
                        }
                    }
                }))
                .abort_handle()
            }
        };
        if let Some(deadline) = deadline_ms {
            // An attempt's timeout is not in the store's index.
            self.timers.arm_held(deadline, run_id.to_owned(), position);
        }
        steps.insert(
            run_id.to_owned(),
            RunningStep {
                position,
                attempt: number,
                deadline_ms,
                cut_off,
                task,
            },
        );
    }

    async fn on_attempt_done(&self, run_id: &str, done: Done) {
        let (position, attempt) = (done.position, done.attempt);
        if let Some(deadline) = done.deadline_ms {
            self.timers.cancel(deadline, run_id.to_owned());
        }
        if let Err(e) = self.record_attempt(run_id, done).await {
            report(run_id, "a step result", &e);
        }
        // Only now: until the result is recorded, a timer of this step must find the attempt
        // running rather than start it again.
        {
            let mut steps = lock(&self.steps);
            if steps
                .get(run_id)
                .is_some_and(|r| r.position == position && r.attempt == attempt)
            {
                steps.remove(run_id);
            }
        }
        self.shared_idle(run_id).await;
    }

    /// Commits an attempt's end: the next attempt after a backoff, or the result for the
    /// workflow. A result for anything but the pending attempt is stale and dropped.
    async fn record_attempt(&self, run_id: &str, done: Done) -> Result<(), StoreError> {
        let Done {
            position,
            attempt,
            name,
            result,
            duration_ms,
            ..
        } = done;
        let _lock = self.lock_run(run_id).await;
        let rec = match self.hot_record(run_id) {
            Some(rec) => rec,
            None => match self.store.run(run_id)? {
                Some(rec) => rec,
                None => return Ok(()),
            },
        };
        let chosen = match &rec.pending {
            Some(Command::Step {
                name: n,
                attempt: a,
                retry,
                ..
            }) if *n == name && *a == attempt => *retry,
            _ => return Ok(()),
        };
        if rec.is_finished() || rec.seq != position {
            return Ok(());
        }
        let Ok((d, mut cp)) = self.prepare(run_id, rec).await? else {
            return Ok(());
        };
        let policy = chosen
            .or_else(|| d.step(&name).map(|s| s.retry))
            .unwrap_or_default();
        // An output over the limit would be rewritten into every later checkpoint; the step
        // fails instead, permanently, since running it again gives the same output.
        let result = match result {
            Ok(value) => match self.check_size(|| format!("the output of step `{name}`"), &value) {
                Ok(()) => Ok(value),
                Err(e) => Err(StepError::permanent(EngineError::from(e).to_string())),
            },
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.counters.step_failure();
        }
        match result {
            Err(error) if policy.retries(attempt, &error) => {
                let key =
                    StepContext::new(run_id, name.as_str(), position, attempt).idempotency_key();
                let retry_at_ms = cp
                    .now_ms
                    .saturating_add(millis(policy.backoff(attempt, &key)));
                cp.trace(TraceKind::StepAttemptFailed {
                    step: name,
                    attempt,
                    error,
                    duration_ms,
                    retry_at_ms,
                });
                cp.retry_step(retry_at_ms);
            }
            result => {
                cp.trace(TraceKind::StepCompleted {
                    step: name,
                    result: result.clone(),
                    duration_ms,
                    attempt,
                });
                cp.drive(&*d, &*self.store, Event::StepDone(result), None)?;
            }
        }
        self.commit(cp).await
    }

    /// A timer of the pending step came due: the running attempt's timeout, or the end of a
    /// backoff. Timers are hints; what happens follows from the stored run and the attempt in
    /// flight.
    pub(super) async fn on_step_timer(
        &self,
        run_id: &str,
        rec: RunRecord,
    ) -> Result<(), StoreError> {
        let Some(Command::Step {
            attempt,
            not_before_ms,
            ..
        }) = &rec.pending
        else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        {
            let steps = lock(&self.steps);
            if let Some(r) = steps
                .get(run_id)
                .filter(|r| r.position == rec.seq && r.attempt == *attempt)
            {
                if r.deadline_ms.is_some_and(|d| d <= now) {
                    r.cut_off.notify_one();
                }
                return Ok(());
            }
        }
        if not_before_ms.is_some_and(|at| at > now) {
            // An earlier attempt's timeout; the backoff's own timer comes later.
            return Ok(());
        }
        let resolution = self.registry().resolve(&rec);
        match resolution {
            Resolution::Ready(_) | Resolution::Migrate(..) => {
                if let Some(cmd) = &rec.pending {
                    self.launch_step(run_id, &rec.workflow, rec.seq, cmd);
                }
                Ok(())
            }
            Resolution::Incompatible(reason) => self.note_incompatible(run_id, rec, reason).await,
            Resolution::Unregistered => Ok(()),
        }
    }
}

/// How an attempt ended.
struct Done {
    position: u64,
    attempt: u32,
    name: String,
    result: Result<Value, StepError>,
    /// On the engine's clock, so that tests with a manual clock see the time they moved.
    duration_ms: u64,
    /// The attempt's timeout, whose timer is no longer needed.
    deadline_ms: Option<u64>,
}

/// A step's future with panics caught at every poll, so that a panicking step fails its
/// attempt instead of unwinding through the engine's task.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// What runs a step: a test double, or the step's own entry point (a plain function pointer,
/// so the common case allocates nothing per attempt).
enum Call {
    Double(StepDouble),
    Entry(fn(StepContext, Value) -> crate::step::StepFuture<Value>),
}

impl Call {
    fn start(&self, ctx: StepContext, input: Value) -> crate::step::StepFuture<Value> {
        match self {
            Call::Double(f) => f(ctx, input),
            Call::Entry(f) => f(ctx, input),
        }
    }
}

/// An attempt ready to run, with everything its task needs.
struct Launch {
    run: String,
    position: u64,
    number: u32,
    name: String,
    input: Value,
    policy: RetryPolicy,
    /// The step to call, or why there is none.
    call: Result<Call, String>,
    started_ms: u64,
    deadline_ms: Option<u64>,
    /// Woken when the attempt's timeout passes.
    cut: Arc<Notify>,
    span: tracing::Span,
    _busy: BusyGuard,
}

/// Runs one attempt to its end and records its result.
async fn run_attempt(
    weak: &std::sync::Weak<Inner>,
    data: &crate::step::DataMap,
    clock: &Arc<dyn crate::clock::Clock>,
    launch: Launch,
) {
    let Launch {
        run,
        position,
        number,
        name,
        input,
        policy,
        call,
        started_ms,
        deadline_ms,
        cut,
        span,
        _busy,
    } = launch;
    let result = match call {
        Err(missing) => Err(StepError::permanent(missing)),
        Ok(call) => {
            let ctx = StepContext::new(run.as_str(), name.as_str(), position, number)
                .with_data_map(data.clone());
            // The attempt is polled in this task, with panics caught at each poll: a task of
            // its own would cost a spawn and a cross-task wake-up per step.
            let mut step = CatchUnwind(call.start(ctx, input).instrument(span));
            let joined = tokio::select! {
                biased;
                joined = &mut step => Some(joined),
                () = cut.notified() => None,
            };
            // Dropping the attempt ends it here and now, so the next one never overlaps it.
            drop(step);
            match joined {
                Some(Ok(result)) => result,
                Some(Err(panic)) => {
                    let message = format!("step `{name}` panicked: {}", panic_text(&*panic));
                    Err(if policy.retry_panics {
                        StepError::retryable(message)
                    } else {
                        StepError::permanent(message)
                    })
                }
                None => {
                    let timeout = policy.timeout.unwrap_or_default();
                    Err(StepError::retryable(format!(
                        "step `{name}` timed out after {timeout:?} (attempt {number})"
                    ))
                    .with_details(json!({ "timeout_ms": millis(timeout) })))
                }
            }
        }
    };
    let duration_ms = clock.now_ms().saturating_sub(started_ms);
    if let Some(inner) = weak.upgrade() {
        let done = Done {
            position,
            attempt: number,
            name,
            result,
            duration_ms,
            deadline_ms,
        };
        // Only while the result is recorded does this task take the run's next attempt.
        Continuation::open(true);
        // Boxed: recording the result (reads, the drive, the commit) is the largest part of
        // this future, and a task's future is copied as it is spawned and completed; boxed,
        // it is allocated once and never moved.
        Box::pin(inner.on_attempt_done(&run, done)).await;
        Continuation::open(false);
    }
}

tokio::task_local! {
    /// In a task that runs a run's attempts: the run's next attempt, set while the task
    /// records a result whose commit schedules it.
    static NEXT: Continuation;
}

/// The next attempt of the run whose attempt task records a result.
///
/// A step that follows another is run by the task that ran the first, once the first's
/// result is committed, instead of by a task of its own: spawning a task per step costs its
/// allocation and, once tokio stops favouring the newest task (after a few in a row), a
/// wake-up of an idle worker thread to steal it, tens of microseconds when the machine idles.
/// Only the run's own attempt task takes it in place (its `RunningStep` names the task), and
/// only while it records a result; everything else (parallel steps, other runs, timers)
/// spawns.
#[derive(Default)]
struct Continuation {
    /// Whether the task is recording a result and would run an attempt scheduled by it.
    open: std::cell::Cell<bool>,
    next: std::cell::RefCell<Option<Launch>>,
}

impl Continuation {
    fn accepts() -> bool {
        NEXT.try_with(|c| c.open.get()).unwrap_or(false)
    }

    fn open(open: bool) {
        // Only called inside the scope of an attempt task.
        let _ = NEXT.try_with(|c| c.open.set(open));
    }

    fn set(launch: Launch) {
        let _ = NEXT.try_with(|c| *c.next.borrow_mut() = Some(launch));
    }

    fn take() -> Option<Launch> {
        NEXT.try_with(|c| c.next.borrow_mut().take()).ok().flatten()
    }
}
