//! Fault injection for crash tests: a documented switch that kills the process at an exact
//! instant, so tests can hit windows too narrow for an outside `kill -9`.
//!
//! Set `REFUND_REVIEW_FAULT=<point>` in the environment of `serve`. Points:
//! - `after_payment`: inside `issue_refund_once`, after the payment provider recorded the
//!   refund and before the step's result is checkpointed.

/// The environment variable that arms a fault point.
pub const FAULT_ENV: &str = "REFUND_REVIEW_FAULT";

/// Kills this process with SIGKILL if `point` is armed: no destructor, flush or checkpoint
/// runs after it, exactly like a power cut or an OOM kill.
pub fn crash_point(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        eprintln!("fault injection: killing the process at `{point}`");
        let pid = std::process::id().to_string();
        // A real SIGKILL from outside the process; abort() is the fallback where `kill` is
        // missing, and it too skips every destructor.
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        std::process::abort();
    }
}
