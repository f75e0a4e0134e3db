//! What the engine tells `tracing`: a span per transition and per step attempt, one event per
//! committed trace event, and the group commits at debug level.
//!
//! Every field is computed inside the macros, which evaluate it only when a subscriber wants
//! the span or event: with no subscriber installed, each call site costs a load and a branch.
//! Trace events are reported after their commit is durable, so the log never shows what a
//! crash then undid.

use tracing::{Level, Span};

use crate::trace::{TraceEvent, TraceKind};

/// The span of one call of a workflow's transition function.
pub(crate) fn transition(run_id: &str, workflow: &str, version: u32, seq: u64) -> Span {
    tracing::info_span!("transition", run_id, workflow, version, seq)
}

/// The span of one step attempt.
pub(crate) fn step_attempt(
    run_id: &str,
    workflow: &str,
    step: &str,
    attempt: u32,
    idempotency_key: impl FnOnce() -> String,
) -> Span {
    tracing::info_span!(
        "step",
        run_id,
        workflow,
        step,
        attempt,
        idempotency_key = idempotency_key()
    )
}

/// Whether any trace event would be reported; checked before copying a checkpoint's events.
pub(crate) fn wants_trace_events() -> bool {
    tracing::enabled!(Level::ERROR)
}

/// Reports the trace events of a checkpoint that is now durable.
pub(crate) fn committed(run_id: &str, workflow: &str, version: u32, events: &[TraceEvent]) {
    for event in events {
        let kind = kind_name(&event.kind);
        // `tracing`'s macros take the level as a constant, hence one arm per level.
        macro_rules! report {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    run_id,
                    workflow,
                    version,
                    checkpoint = event.checkpoint,
                    kind,
                    "{event}"
                )
            };
        }
        match level(&event.kind) {
            Level::ERROR => report!(Level::ERROR),
            Level::WARN => report!(Level::WARN),
            Level::INFO => report!(Level::INFO),
            _ => report!(Level::DEBUG),
        }
    }
}

/// Failures and parked runs are errors, attempts that will be retried and refused signals are
/// warnings, a run's milestones are info, and the bookkeeping between them is debug.
fn level(kind: &TraceKind) -> Level {
    match kind {
        TraceKind::Failed { .. } | TraceKind::Incompatible { .. } => Level::ERROR,
        TraceKind::StepAttemptFailed { .. } | TraceKind::SignalRejected { .. } => Level::WARN,
        TraceKind::StepCompleted { result: Err(_), .. } => Level::WARN,
        TraceKind::Started { .. }
        | TraceKind::StepCompleted { .. }
        | TraceKind::WaitStarted { .. }
        | TraceKind::SignalReceived { .. }
        | TraceKind::TimedOut { .. }
        | TraceKind::Completed { .. }
        | TraceKind::Migrated { .. }
        | TraceKind::Revived
        | TraceKind::CancelRequested { .. }
        | TraceKind::Cancelled { .. }
        | TraceKind::Terminated { .. }
        | TraceKind::Retried { .. }
        | TraceKind::Erased
        | TraceKind::ChildStarted { .. }
        | TraceKind::ChildEnded { .. }
        | TraceKind::ScheduleFired { .. }
        | TraceKind::ScheduleMissed { .. } => Level::INFO,
        _ => Level::DEBUG,
    }
}

fn kind_name(kind: &TraceKind) -> &'static str {
    kind.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_errors_and_retries_warnings() {
        let failed = TraceKind::Failed {
            message: "boom".into(),
        };
        assert_eq!(level(&failed), Level::ERROR);
        let lost = TraceKind::StepCompleted {
            step: "pay".into(),
            result: Err(crate::StepError::permanent("declined")),
            duration_ms: 1,
            attempt: 1,
        };
        assert_eq!(level(&lost), Level::WARN);
        assert_eq!(level(&TraceKind::Woke { until_ms: 1 }), Level::DEBUG);
        assert_eq!(kind_name(&TraceKind::Revived), "revived");
    }
}
