//! The per-run audit trail: what happened, in order, with the engine clock's time.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StepError;

/// One entry of a run's trace, as returned by `Engine::trace`.
///
/// Stored as JSON; `Display` renders one readable line.
///
/// ```
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::TraceKind;
///
/// #[function]
/// async fn ping() -> Result<String, StepError> {
///     Ok("pong".into())
/// }
///
/// #[workflow]
/// async fn probe(ctx: &mut WorkflowContext) -> Result<String, WorkflowError> {
///     Ok(ctx.step(ping, ()).await?)
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let engine = Engine::builder().register(probe).open_in_memory().await?;
/// engine.start(probe, "p-1", ()).await?.result().await?;
/// let trace = engine.trace("p-1")?;
/// assert!(matches!(&trace[0].kind, TraceKind::Started { workflow, .. } if workflow == "probe"));
/// for event in &trace {
///     println!("{event}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Position in the run's trace, from 0, without gaps.
    pub seq: u64,
    /// The engine clock's time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The run's checkpoint sequence number the event belongs to.
    pub checkpoint: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// What a [`TraceEvent`] records.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # #[workflow]
/// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
/// #     let meta = json!({ "amount": amount });
/// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::TraceKind;
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// engine.signal("r-1", "approve", true).await?;
/// for event in engine.trace("r-1")? {
///     match event.kind {
///         TraceKind::WaitStarted { signal, .. } => println!("waiting for {signal}"),
///         TraceKind::SignalReceived { signal, .. } => println!("got {signal}"),
///         other => println!("{}", other.name()),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TraceKind {
    /// The run was created.
    Started {
        /// The workflow's name.
        workflow: String,
        /// The workflow's version.
        version: u32,
        /// The run's input.
        input: Value,
    },
    /// A step was checkpointed as the next thing to run.
    StepScheduled {
        /// The step's name.
        step: String,
        /// The step's input.
        input: Value,
        /// The idempotency key every attempt of this invocation sees.
        idempotency_key: String,
    },
    /// A step finished: its last attempt succeeded, failed permanently, or was the last one
    /// allowed. The workflow receives this result.
    StepCompleted {
        /// The step's name.
        step: String,
        /// Its output, or its error.
        result: Result<Value, StepError>,
        /// How long the attempt took on the engine's clock, in milliseconds.
        duration_ms: u64,
        /// Which attempt produced the result, from 1.
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
    /// An attempt of a step failed with a retryable error and another attempt is scheduled
    /// after a durable backoff; the workflow does not see this error.
    StepAttemptFailed {
        /// The step's name.
        step: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its error (a timed-out attempt is a retryable error saying so).
        error: StepError,
        /// How long the attempt took on the engine's clock, in milliseconds.
        duration_ms: u64,
        /// When the next attempt may start, milliseconds since the Unix epoch.
        retry_at_ms: u64,
    },
    /// The run started waiting for a signal.
    WaitStarted {
        /// The signal's name.
        signal: String,
        /// The wait's id.
        wait_id: String,
        /// The metadata shown by `Engine::pending`.
        metadata: Value,
        /// Absolute deadline, milliseconds since the Unix epoch.
        deadline_ms: u64,
    },
    /// A signal arrived while no wait for it was active and was stored in the run's inbox.
    SignalBuffered {
        /// The signal's name.
        signal: String,
        /// Its payload.
        payload: Value,
        /// Its de-duplication key, if any.
        dedupe_key: Option<String>,
    },
    /// A wait consumed a signal.
    SignalReceived {
        /// The signal's name.
        signal: String,
        /// Its payload.
        payload: Value,
        /// Its de-duplication key, if any.
        dedupe_key: Option<String>,
        /// The wait that consumed it.
        wait_id: String,
        /// Whether it had been buffered before the wait began.
        from_inbox: bool,
    },
    /// A buffered signal did not fit the wait that would have consumed it and was dropped.
    SignalRejected {
        /// The signal's name.
        signal: String,
        /// Its payload.
        payload: Value,
        /// Why the workflow refused it.
        message: String,
    },
    /// A signal repeated a de-duplication key the run had already seen; nothing changed.
    SignalDuplicate {
        /// The signal's name.
        signal: String,
        /// The repeated key.
        dedupe_key: String,
    },
    /// A wait's deadline passed without a signal.
    TimedOut {
        /// The signal that was waited for.
        signal: String,
        /// The wait's id.
        wait_id: String,
    },
    /// The run started a durable sleep.
    SleepStarted {
        /// Absolute wake-up time, milliseconds since the Unix epoch.
        until_ms: u64,
    },
    /// A durable sleep ended.
    Woke {
        /// The deadline that passed.
        until_ms: u64,
    },
    /// The workflow returned; the output may be its `Err`.
    Completed {
        /// The workflow's output as JSON (`{"Ok": ..}` or `{"Err": ..}`).
        output: Value,
    },
    /// The run failed.
    Failed {
        /// Why.
        message: String,
    },
    /// The stored state was migrated to a newer version of the workflow.
    Migrated {
        /// The version that wrote the state.
        from_version: u32,
        /// The version it was migrated to.
        to_version: u32,
    },
    /// An incompatible run was taken back after new code was deployed.
    Revived,
    /// A test placed the run at a checkpoint instead of starting it.
    Imported {
        /// The state it was placed in.
        state: Value,
    },
    /// The stored run does not fit the registered code and is parked.
    Incompatible {
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// An operator asked to cancel the run.
    CancelRequested {
        /// The operator's reason.
        reason: String,
    },
    /// The workflow saw the cancellation at this suspension point (a step or a wait), or its
    /// sleep was cut short so that it sees it at the next one.
    CancelDelivered {
        /// Where: `step <name>`, `wait <signal>` or `sleep`.
        at: String,
    },
    /// The cancelled run ended.
    Cancelled {
        /// The operator's reason.
        reason: String,
        /// What the workflow returned, if it returned (`{"Ok": ..}` or `{"Err": ..}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    /// An operator ended the run at once.
    Terminated {
        /// The operator's reason.
        reason: String,
    },
    /// An operator retried the failed run from its last checkpoint.
    Retried {
        /// The step that runs again.
        step: String,
    },
    /// An operator erased the ended run's payloads (`Engine::erase`): the events before this
    /// one keep their names and times, without their payloads and messages.
    Erased,
    /// The run started a child run, in the same commit as this checkpoint (`ctx.child`,
    /// `ctx.start_child`, `ctx.fan_out_children`).
    ChildStarted {
        /// The child's workflow.
        workflow: String,
        /// The child's run id.
        child: String,
        /// The child's input.
        input: Value,
        /// Whether the parent goes on without awaiting it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        detached: bool,
    },
    /// The outcome of an awaited child run reached this run.
    ChildEnded {
        /// The child's run id.
        child: String,
        /// Its output's `Ok` value, or why it gave none.
        result: Result<Value, crate::ChildError>,
    },
    /// This run was started by another run, as its child.
    StartedByParent {
        /// The parent's run id.
        parent: String,
    },
    /// A tick of a schedule came due (`Engine::schedule`, `Engine::start_at`); traced on the
    /// schedule's own record.
    ScheduleFired {
        /// The tick, milliseconds since the Unix epoch.
        tick_ms: u64,
        /// The run the tick starts, whose id is derived from the schedule's id and the tick.
        run_id: String,
        /// What became of it: `started`; `existed` (a firing retried after a crash found its
        /// run already started); `overlap` (not started: the schedule's previous run still
        /// runs, under `Overlap::Skip`); `failed: <why>` (the input no longer decodes, or the
        /// start was refused).
        outcome: String,
    },
    /// Ticks that came due while no engine ran, dropped by the schedule's catch-up policy.
    ScheduleMissed {
        /// How many.
        count: u64,
        /// The first of them, milliseconds since the Unix epoch.
        first_ms: u64,
        /// The last of them, milliseconds since the Unix epoch.
        last_ms: u64,
    },
}

impl TraceKind {
    /// The event's name as stored (`started`, `step_completed`, `cancel_requested`, ...); trace
    /// filters match on it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    /// let names: Vec<&str> = engine.trace("r-1")?.iter().map(|e| e.kind.name()).collect();
    /// assert_eq!(names, ["started", "wait_started"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            TraceKind::Started { .. } => "started",
            TraceKind::StepScheduled { .. } => "step_scheduled",
            TraceKind::StepCompleted { .. } => "step_completed",
            TraceKind::StepAttemptFailed { .. } => "step_attempt_failed",
            TraceKind::WaitStarted { .. } => "wait_started",
            TraceKind::SignalBuffered { .. } => "signal_buffered",
            TraceKind::SignalReceived { .. } => "signal_received",
            TraceKind::SignalRejected { .. } => "signal_rejected",
            TraceKind::SignalDuplicate { .. } => "signal_duplicate",
            TraceKind::TimedOut { .. } => "timed_out",
            TraceKind::SleepStarted { .. } => "sleep_started",
            TraceKind::Woke { .. } => "woke",
            TraceKind::Completed { .. } => "completed",
            TraceKind::Failed { .. } => "failed",
            TraceKind::Migrated { .. } => "migrated",
            TraceKind::Revived => "revived",
            TraceKind::Imported { .. } => "imported",
            TraceKind::Incompatible { .. } => "incompatible",
            TraceKind::CancelRequested { .. } => "cancel_requested",
            TraceKind::CancelDelivered { .. } => "cancel_delivered",
            TraceKind::Cancelled { .. } => "cancelled",
            TraceKind::Terminated { .. } => "terminated",
            TraceKind::Retried { .. } => "retried",
            TraceKind::Erased => "erased",
            TraceKind::ChildStarted { .. } => "child_started",
            TraceKind::ChildEnded { .. } => "child_ended",
            TraceKind::StartedByParent { .. } => "started_by_parent",
            TraceKind::ScheduleFired { .. } => "schedule_fired",
            TraceKind::ScheduleMissed { .. } => "schedule_missed",
        }
    }
}

/// What an erased run's texts (failure message, reasons, de-duplication keys) read.
pub(crate) const ERASED: &str = "<erased>";

impl TraceKind {
    /// Every JSON payload the event carries (inputs, outputs, signal payloads, metadata, states,
    /// error details), mutably, so that they can be redacted or transformed in one place.
    pub(crate) fn payloads_mut(&mut self) -> Vec<&mut Value> {
        match self {
            TraceKind::Started { input, .. } | TraceKind::StepScheduled { input, .. } => {
                vec![input]
            }
            TraceKind::StepCompleted { result, .. } => match result {
                Ok(out) => vec![out],
                Err(e) => e.details.iter_mut().collect(),
            },
            TraceKind::StepAttemptFailed { error, .. } => error.details.iter_mut().collect(),
            TraceKind::WaitStarted { metadata, .. } => vec![metadata],
            TraceKind::SignalBuffered { payload, .. }
            | TraceKind::SignalReceived { payload, .. }
            | TraceKind::SignalRejected { payload, .. } => vec![payload],
            TraceKind::Completed { output } => vec![output],
            TraceKind::Imported { state } => vec![state],
            TraceKind::Cancelled { output, .. } => output.iter_mut().collect(),
            TraceKind::ChildStarted { input, .. } => vec![input],
            TraceKind::ChildEnded { result, .. } => match result {
                Ok(out) => vec![out],
                Err(e) => e.error.iter_mut().collect(),
            },
            _ => Vec::new(),
        }
    }

    /// Every free text the event carries that may quote data (error messages, reasons).
    pub(crate) fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            TraceKind::StepCompleted { result: Err(e), .. } => vec![&mut e.message],
            TraceKind::StepAttemptFailed { error, .. } => vec![&mut error.message],
            TraceKind::SignalRejected { message, .. } | TraceKind::Failed { message } => {
                vec![message]
            }
            TraceKind::Incompatible { reason }
            | TraceKind::CancelRequested { reason }
            | TraceKind::Cancelled { reason, .. }
            | TraceKind::Terminated { reason } => vec![reason],
            TraceKind::ChildEnded { result: Err(e), .. } => vec![&mut e.message],
            _ => Vec::new(),
        }
    }

    /// Drops the event's payloads, messages and de-duplication keys, keeping what it was and
    /// the names it carries (steps, signals, waits): what an erased run's trace keeps.
    pub(crate) fn erase(&mut self) {
        for payload in self.payloads_mut() {
            *payload = Value::Null;
        }
        for text in self.texts_mut() {
            *text = ERASED.to_owned();
        }
        match self {
            TraceKind::SignalBuffered {
                dedupe_key: Some(key),
                ..
            }
            | TraceKind::SignalReceived {
                dedupe_key: Some(key),
                ..
            } => *key = ERASED.to_owned(),
            TraceKind::SignalDuplicate { dedupe_key, .. } => *dedupe_key = ERASED.to_owned(),
            _ => {}
        }
    }

    /// Replaces every [`Secret`](crate::Secret) in the event's payloads with the placeholder.
    pub(crate) fn redact(&mut self) {
        for payload in self.payloads_mut() {
            crate::secret::redact(payload);
        }
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} ", self.seq, format_time_ms(self.at_ms))?;
        match &self.kind {
            TraceKind::Started {
                workflow,
                version,
                input,
            } => write!(f, "started {workflow} v{version} input={}", short(input)),
            TraceKind::StepScheduled {
                step,
                input,
                idempotency_key,
            } => write!(
                f,
                "step_scheduled {step} input={} key={idempotency_key}",
                short(input)
            ),
            TraceKind::StepCompleted {
                step,
                result,
                duration_ms,
                attempt,
            } => {
                match result {
                    Ok(out) => write!(f, "step_completed {step} ok={}", short(out))?,
                    Err(e) => write!(
                        f,
                        "step_completed {step} error={:?} ({:?})",
                        e.message, e.kind
                    )?,
                }
                write!(f, " in {duration_ms} ms")?;
                if *attempt > 1 {
                    write!(f, " (attempt {attempt})")?;
                }
                Ok(())
            }
            TraceKind::StepAttemptFailed {
                step,
                attempt,
                error,
                duration_ms,
                retry_at_ms,
            } => write!(
                f,
                "step_attempt_failed {step} attempt {attempt} error={:?} ({:?}) in {duration_ms} ms, next attempt at {}",
                error.message,
                error.kind,
                format_time_ms(*retry_at_ms)
            ),
            TraceKind::WaitStarted {
                signal,
                wait_id,
                metadata,
                deadline_ms,
            } => write!(
                f,
                "wait_started {signal} wait={wait_id} deadline={} metadata={}",
                format_time_ms(*deadline_ms),
                short(metadata)
            ),
            TraceKind::SignalBuffered {
                signal,
                payload,
                dedupe_key,
            } => write!(
                f,
                "signal_buffered {signal} payload={}{}",
                short(payload),
                key_suffix(dedupe_key.as_deref())
            ),
            TraceKind::SignalReceived {
                signal,
                payload,
                dedupe_key,
                wait_id,
                from_inbox,
            } => write!(
                f,
                "signal_received {signal} wait={wait_id} payload={}{}{}",
                short(payload),
                key_suffix(dedupe_key.as_deref()),
                if *from_inbox { " (from inbox)" } else { "" }
            ),
            TraceKind::SignalRejected {
                signal,
                payload,
                message,
            } => write!(
                f,
                "signal_rejected {signal} payload={}: {message}",
                short(payload)
            ),
            TraceKind::SignalDuplicate { signal, dedupe_key } => {
                write!(f, "signal_duplicate {signal} key={dedupe_key}")
            }
            TraceKind::TimedOut { signal, wait_id } => {
                write!(f, "timed_out {signal} wait={wait_id}")
            }
            TraceKind::SleepStarted { until_ms } => {
                write!(f, "sleep_started until={}", format_time_ms(*until_ms))
            }
            TraceKind::Woke { until_ms } => write!(f, "woke until={}", format_time_ms(*until_ms)),
            TraceKind::Completed { output } => write!(f, "completed output={}", short(output)),
            TraceKind::Failed { message } => write!(f, "failed: {message}"),
            TraceKind::Incompatible { reason } => write!(f, "incompatible: {reason}"),
            TraceKind::CancelRequested { reason } => write!(f, "cancel_requested: {reason}"),
            TraceKind::CancelDelivered { at } => write!(f, "cancel_delivered at {at}"),
            TraceKind::Cancelled { reason, output } => {
                write!(f, "cancelled: {reason}")?;
                match output {
                    Some(out) => write!(f, " output={}", short(out)),
                    None => Ok(()),
                }
            }
            TraceKind::Terminated { reason } => write!(f, "terminated: {reason}"),
            TraceKind::Retried { step } => write!(f, "retried from step {step}"),
            TraceKind::Erased => f.write_str("erased"),
            TraceKind::ChildStarted {
                workflow,
                child,
                input,
                detached,
            } => write!(
                f,
                "child_started {workflow} run={child} input={}{}",
                short(input),
                if *detached { " detached" } else { "" }
            ),
            TraceKind::ChildEnded { child, result } => match result {
                Ok(out) => write!(f, "child_ended run={child} ok={}", short(out)),
                Err(e) => write!(
                    f,
                    "child_ended run={child} error={:?} ({:?})",
                    e.message, e.kind
                ),
            },
            TraceKind::StartedByParent { parent } => write!(f, "started_by_parent {parent}"),
            TraceKind::ScheduleFired {
                tick_ms,
                run_id,
                outcome,
            } => write!(
                f,
                "schedule_fired tick={} run={run_id}: {outcome}",
                format_time_ms(*tick_ms)
            ),
            TraceKind::ScheduleMissed {
                count,
                first_ms,
                last_ms,
            } => write!(
                f,
                "schedule_missed {count} tick(s) from {} to {}",
                format_time_ms(*first_ms),
                format_time_ms(*last_ms)
            ),
            TraceKind::Imported { state } => write!(f, "imported state={}", short(state)),
            TraceKind::Migrated {
                from_version,
                to_version,
            } => {
                write!(f, "migrated from v{from_version} to v{to_version}")
            }
            TraceKind::Revived => f.write_str("revived after new code was deployed"),
        }
    }
}

fn first_attempt() -> u32 {
    1
}

fn key_suffix(key: Option<&str>) -> String {
    key.map(|k| format!(" key={k}")).unwrap_or_default()
}

/// Compact JSON, cut so that one event stays one readable line.
fn short(v: &Value) -> String {
    const MAX: usize = 160;
    let s = v.to_string();
    if s.chars().count() <= MAX {
        return s;
    }
    let mut cut: String = s.chars().take(MAX).collect();
    cut.push('…');
    cut
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time, e.g. `2026-01-01T00:00:00.000Z`.
///
/// ```
/// use workflow_runtime::format_time_ms;
/// assert_eq!(format_time_ms(1_767_225_600_250), "2026-01-01T00:00:00.250Z");
/// ```
pub fn format_time_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

// Howard Hinnant's days-to-civil algorithm, restricted to dates after the epoch; it avoids a
// date-time dependency for the one place that shows a time to people.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_render_as_rfc3339() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_767_225_600_000),
            "2026-01-01T00:00:00.000Z"
        );
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            format_time_ms(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
    }

    #[test]
    fn events_round_trip_through_json_and_render_on_one_line() {
        let events = [
            TraceEvent {
                seq: 0,
                at_ms: 5,
                checkpoint: 1,
                kind: TraceKind::StepCompleted {
                    step: "charge".into(),
                    result: Ok(Value::Null),
                    duration_ms: 3,
                    attempt: 1,
                },
            },
            TraceEvent {
                seq: 1,
                at_ms: 6,
                checkpoint: 2,
                kind: TraceKind::WaitStarted {
                    signal: "decision".into(),
                    wait_id: "2".into(),
                    metadata: json!({"amount": 40, "note": "x".repeat(400)}),
                    deadline_ms: u64::MAX,
                },
            },
            TraceEvent {
                seq: 2,
                at_ms: 7,
                checkpoint: 2,
                kind: TraceKind::StepCompleted {
                    step: "charge".into(),
                    result: Err(StepError::permanent("card declined")),
                    duration_ms: 0,
                    attempt: 3,
                },
            },
            TraceEvent {
                seq: 3,
                at_ms: 8,
                checkpoint: 2,
                kind: TraceKind::StepAttemptFailed {
                    step: "charge".into(),
                    attempt: 2,
                    error: StepError::retryable("rate limited"),
                    duration_ms: 30_000,
                    retry_at_ms: 1_767_225_600_000,
                },
            },
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<TraceEvent>(&json).unwrap(), e);
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(line.chars().count() < 300, "{line}");
        }
    }

    #[test]
    fn attempts_show_in_the_json_and_on_the_line() {
        let failed = TraceEvent {
            seq: 3,
            at_ms: 1_767_225_600_000,
            checkpoint: 2,
            kind: TraceKind::StepAttemptFailed {
                step: "charge".into(),
                attempt: 1,
                error: StepError::retryable("rate limited"),
                duration_ms: 12,
                retry_at_ms: 1_767_225_601_000,
            },
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({
                "seq": 3, "at_ms": 1_767_225_600_000_u64, "checkpoint": 2,
                "event": "step_attempt_failed", "step": "charge", "attempt": 1,
                "error": { "message": "rate limited", "kind": "retryable" },
                "duration_ms": 12, "retry_at_ms": 1_767_225_601_000_u64
            })
        );
        assert_eq!(
            failed.to_string(),
            "#3 2026-01-01T00:00:00.000Z step_attempt_failed charge attempt 1 error=\"rate limited\" (Retryable) in 12 ms, next attempt at 2026-01-01T00:00:01.000Z"
        );
        // Traces written before attempts were recorded read as first attempts.
        let old = json!({
            "seq": 4, "at_ms": 0, "checkpoint": 2, "event": "step_completed", "step": "charge",
            "result": { "Ok": 1 }, "duration_ms": 0
        });
        let old: TraceEvent = serde_json::from_value(old).unwrap();
        assert!(matches!(
            old.kind,
            TraceKind::StepCompleted { attempt: 1, .. }
        ));
        assert!(old.to_string().ends_with("ok=1 in 0 ms"), "{old}");
    }
}
