//! The clock `serve` runs on: the system clock, optionally shifted forward.

use workflow_runtime::{Clock, SystemClock};

/// The environment variable that shifts the clock of `serve` forward, in seconds. A test sets
/// it to make the 7-day review window pass; the shift applies to every deadline and trace time.
pub const CLOCK_OFFSET_ENV: &str = "REFUND_REVIEW_CLOCK_OFFSET_SECS";

/// The system clock plus a fixed offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct OffsetClock {
    offset_ms: u64,
}

impl OffsetClock {
    /// Reads the offset from [`CLOCK_OFFSET_ENV`]; no variable means no offset.
    ///
    /// # Errors
    /// If the variable is set but is not a whole number of seconds.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(CLOCK_OFFSET_ENV) {
            Err(_) => Ok(Self::default()),
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .map(|secs| Self {
                    offset_ms: secs.saturating_mul(1_000),
                })
                .map_err(|_| {
                    format!("{CLOCK_OFFSET_ENV} must be a whole number of seconds, got `{v}`")
                }),
        }
    }

    /// The offset in milliseconds.
    pub fn offset_ms(&self) -> u64 {
        self.offset_ms
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add(self.offset_ms)
    }
}
