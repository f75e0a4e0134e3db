//! Time sources: the system clock, and a manual clock for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// The engine reads it for deadlines and trace times; [`EngineBuilder::clock`] replaces the
/// system clock, for tests ([`ManualClock`]) or a shifted demo clock.
///
/// ```
/// use workflow_runtime::{Clock, SystemClock};
///
/// /// The system clock an hour ahead, to see a one-hour timeout lapse in a demo.
/// struct AnHourAhead;
///
/// impl Clock for AnHourAhead {
///     fn now_ms(&self) -> u64 {
///         SystemClock.now_ms() + 3_600_000
///     }
/// }
/// assert!(AnHourAhead.now_ms() > SystemClock.now_ms());
/// ```
///
/// [`EngineBuilder::clock`]: crate::EngineBuilder::clock
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_ms(&self) -> u64;
    /// A notifier fired whenever the clock jumps, for clocks that move by hand.
    fn jumps(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// The operating system's clock; the engine's default.
///
/// ```
/// use workflow_runtime::{Clock, SystemClock};
/// assert!(SystemClock.now_ms() > 1_700_000_000_000);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// Give a clone to [`EngineBuilder::clock`](crate::EngineBuilder::clock) and keep one to move
/// time: a 7-day timeout lapses in microseconds. `testing::TestEngine` does this for you.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// let engine_side = clock.clone();
/// clock.advance(Duration::from_secs(7 * 86_400));
/// assert_eq!(engine_side.now_ms(), 1_000 + 7 * 86_400_000);
/// clock.set_ms(5); // never backwards
/// assert_eq!(engine_side.now_ms(), 1_000 + 7 * 86_400_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

impl ManualClock {
    /// A clock standing at `start_ms` milliseconds since the Unix epoch.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{Clock, ManualClock};
    /// assert_eq!(ManualClock::new(1_000).now_ms(), 1_000);
    /// ```
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(start_ms)),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Moves the clock forward and fires every timer that became due.
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
    /// let clock = ManualClock::new(0);
    /// let engine = Engine::builder().register(approval).clock(clock.clone()).open_in_memory().await?;
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// clock.advance(Duration::from_secs(60)); // the wait's deadline
    /// assert!(run.result().await?.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.fetch_add(by, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Sets the clock to an absolute time (never backwards).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// clock.set_ms(60_000);
    /// assert_eq!(clock.now_ms(), 60_000);
    /// clock.set_ms(0); // never backwards
    /// assert_eq!(clock.now_ms(), 60_000);
    /// ```
    pub fn set_ms(&self, ms: u64) {
        self.now.fetch_max(ms, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

impl Default for ManualClock {
    /// A clock at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(1_767_225_600_000)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn jumps(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }
}
