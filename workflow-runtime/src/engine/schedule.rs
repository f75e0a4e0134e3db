//! Schedules: start a workflow at a given time, or at every tick of a cron expression or of a
//! fixed interval, durably.
//!
//! A schedule is stored as a run of the internal kind [`SCHEDULE_WORKFLOW`] under the run id
//! `@schedule/<id>`. Its state holds the definition (the target workflow, its input, when the
//! ticks come, the policies) and its progress (the last tick, the last run started); its next
//! tick is an ordinary timer, armed by suspending the record on a sleep until the tick. So no
//! backend needs a new table, and a restart re-arms schedules with every other timer.
//!
//! When the timer fires, under the schedule's lock, the engine lists the ticks due since the
//! last one, lets the catch-up policy pick which of them start a run, checks the overlap policy
//! for each, starts the runs (each under an id derived from the schedule's id and the tick, and
//! only if no run has that id yet), then commits the schedule's progress with its next tick.
//! A crash between a start and that commit fires the timer again at the next open; the derived
//! ids make the retried firing find the runs it had started, so no tick starts twice.
//!
//! On a store shared by several workers, a schedule's timer is claimed like any other timer, by
//! a worker that registers the workflow the schedule starts, and the firing's commits carry the
//! lease of that claim.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::driver::Driver;
use super::{Engine, Inner, check_name};
use crate::codec::{self, FNV_OFFSET, fnv1a};
use crate::error::{CodecError, StartError, StoreError};
use crate::model::{Command, Event, Workflow};
use crate::store::StoredState;
use crate::trace::{TraceKind, format_time_ms};
use crate::types::{RunRecord, RunStatus};

/// The workflow name under which schedules are stored as runs (their run ids are
/// `@schedule/<id>`); no `#[workflow]` can have it, since it is not a Rust identifier. Run
/// listings show schedules under it.
///
/// # Examples
///
/// ```
/// assert_eq!(workflow_runtime::SCHEDULE_WORKFLOW, "@schedule");
/// ```
pub const SCHEDULE_WORKFLOW: &str = "@schedule";

/// The run id prefix of schedule records.
const RECORD_PREFIX: &str = "@schedule/";

/// How many ticks one firing looks at, at most, to find the due ones of a cron schedule: about
/// two years of a schedule that ticks every minute. The next firing goes on from the last one
/// looked at, so a longer outage is caught up in several firings (under `CatchUp::Latest`, one
/// run per firing).
const MAX_SCAN: u64 = 1_000_000;

/// When a schedule's ticks come, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Spec {
    /// A cron expression (five fields, minute granularity, an optional IANA time zone; UTC
    /// without one).
    Cron { expr: String },
    /// Every `every_ms`, at the multiples of it since the Unix epoch, shifted by `offset_ms`.
    Every { every_ms: u64, offset_ms: u64 },
    /// Once.
    At { at_ms: u64 },
}

impl Spec {
    /// The first tick strictly after `after_ms`, or `None` when there is none (a one-shot that
    /// has passed, a cron expression without a date in the next four years).
    fn next_after(&self, after_ms: u64) -> Result<Option<u64>, String> {
        Ok(self.ticker()?.next_after(after_ms))
    }

    /// The spec ready to compute ticks: a cron expression parsed once.
    fn ticker(&self) -> Result<Ticker, String> {
        Ok(match self {
            Spec::Cron { expr } => Ticker::Cron(Box::new(parse_cron(expr)?)),
            Spec::Every {
                every_ms,
                offset_ms,
            } => Ticker::Every {
                every_ms: *every_ms,
                offset_ms: *offset_ms,
            },
            Spec::At { at_ms } => Ticker::At { at_ms: *at_ms },
        })
    }

    fn describe(&self) -> String {
        match self {
            Spec::Cron { expr } => format!("cron `{expr}`"),
            Spec::Every {
                every_ms,
                offset_ms: 0,
            } => format!("every {every_ms} ms"),
            Spec::Every {
                every_ms,
                offset_ms,
            } => format!("every {every_ms} ms from +{offset_ms} ms"),
            Spec::At { at_ms } => format!("once at {}", format_time_ms(*at_ms)),
        }
    }
}

/// Computes the ticks of a [`Spec`].
enum Ticker {
    Cron(Box<cronexpr::Crontab>),
    Every { every_ms: u64, offset_ms: u64 },
    At { at_ms: u64 },
}

impl Ticker {
    fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            Ticker::Every {
                every_ms,
                offset_ms,
            } => {
                if after_ms < *offset_ms {
                    return Some(*offset_ms);
                }
                let periods = (after_ms - offset_ms) / every_ms + 1;
                periods
                    .checked_mul(*every_ms)
                    .and_then(|t| t.checked_add(*offset_ms))
            }
            Ticker::At { at_ms } => (after_ms < *at_ms).then_some(*at_ms),
            Ticker::Cron(crontab) => {
                let after = i64::try_from(after_ms).ok()?;
                let start = cronexpr::MakeTimestamp::from_millisecond(after).ok()?;
                // The crate looks four years ahead and reports an error when it found nothing.
                let next = crontab.find_next(start).ok()?;
                u64::try_from(next.timestamp().as_millisecond()).ok()
            }
        }
    }
}

fn parse_cron(expr: &str) -> Result<cronexpr::Crontab, String> {
    let mut options = cronexpr::ParseOptions::default();
    options.fallback_timezone_option = cronexpr::FallbackTimezoneOption::UTC;
    cronexpr::parse_crontab_with(expr, options).map_err(|e| e.to_string())
}

/// What a schedule does with ticks it could not fire on time: ticks that came due while no
/// engine had the store open, or while the engine could not keep up. The policy is applied
/// when the schedule's timer fires, to every tick that came due since the last one it handled.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{CatchUp, Schedule};
/// let nightly = Schedule::cron("0 3 * * *")?.catch_up(CatchUp::All { max: 7 });
/// assert_eq!(CatchUp::default(), CatchUp::Latest);
/// # Ok::<(), workflow_runtime::ScheduleError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CatchUp {
    /// Start no run for a missed tick: of the ticks due at a firing, only the latest starts,
    /// and only if it came due while this engine was open. After an outage the schedule goes
    /// on with its next tick.
    Skip,
    /// Start one run, for the latest tick due (the default): an outage of any length costs one
    /// catch-up run, never a burst.
    #[default]
    Latest,
    /// Start a run for each due tick, oldest first, but for the `max` latest ones only (a
    /// `max` of 0 counts as 1). The runs of one firing are decided before any starts, so
    /// with [`Overlap::Skip`] only the first of them starts: combine it with
    /// [`Overlap::Allow`].
    All {
        /// The most runs one firing starts.
        max: u32,
    },
}

/// What a schedule does at a tick while the run it started last is still going.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{Overlap, Schedule};
/// let every_minute = Schedule::every(std::time::Duration::from_secs(60)).overlap(Overlap::Allow);
/// assert_eq!(Overlap::default(), Overlap::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Overlap {
    /// Start nothing for the tick (the default); the trace of the schedule records it as
    /// `overlap`, and the next tick tries again.
    #[default]
    Skip,
    /// Start the tick's run anyway, beside the one still going.
    Allow,
}

/// When a schedule ticks and what it does with missed and overlapping ticks; handed to
/// [`Engine::schedule`].
///
/// Ticks are instants (milliseconds since the Unix epoch): [`Schedule::cron`] takes a
/// five-field cron expression with minute granularity, in UTC unless the expression names an
/// IANA time zone as a sixth field (`"0 9 * * MON-FRI Europe/Paris"`, looked up in the system's
/// time zone database); [`Schedule::every`] ticks at the multiples of a fixed interval since
/// the Unix epoch, down to a millisecond.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::{CatchUp, Overlap, Schedule};
/// let weekdays = Schedule::cron("30 8 * * MON-FRI")?;
/// let paris = Schedule::cron("0 9 * * * Europe/Paris")?;
/// let quarter_hour = Schedule::every(Duration::from_secs(900))
///     .offset(Duration::from_secs(60))
///     .catch_up(CatchUp::Skip)
///     .overlap(Overlap::Allow);
/// assert!(Schedule::cron("61 * * * *").is_err());
/// # Ok::<(), workflow_runtime::ScheduleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    spec: Spec,
    catch_up: CatchUp,
    overlap: Overlap,
}

impl Schedule {
    /// Ticks at the times a cron expression names: five fields (minute, hour, day of month,
    /// month, day of week; names like `MON` and `JAN`, ranges, lists, steps, and `L`, `W`, `#`),
    /// then optionally an IANA time zone; UTC without one.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] for an expression that does not parse, or that names no time
    /// in the next four years (`0 0 30 FEB *`).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::Schedule;
    /// let hourly = Schedule::cron("0 * * * *")?;
    /// assert!(Schedule::cron("every hour").is_err());
    /// # Ok::<(), workflow_runtime::ScheduleError>(())
    /// ```
    pub fn cron(expr: &str) -> Result<Schedule, ScheduleError> {
        let spec = Spec::Cron {
            expr: expr.trim().to_owned(),
        };
        let invalid = |reason: String| ScheduleError::Invalid {
            spec: spec.describe(),
            reason,
        };
        parse_cron(expr.trim()).map_err(invalid)?;
        match spec.next_after(0).map_err(invalid)? {
            Some(_) => Ok(Schedule::with(spec)),
            None => Err(invalid("it names no time".to_owned())),
        }
    }

    /// Ticks every `interval`, at its multiples since the Unix epoch (an hourly schedule ticks
    /// on the hour, UTC), shifted by [`Schedule::offset`]. [`Engine::schedule`] refuses an
    /// interval under a millisecond.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::Schedule;
    /// let every_five_seconds = Schedule::every(Duration::from_secs(5));
    /// ```
    pub fn every(interval: Duration) -> Schedule {
        Schedule::with(Spec::Every {
            every_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            offset_ms: 0,
        })
    }

    /// Shifts the ticks of [`Schedule::every`] by `offset` (taken modulo the interval): an
    /// hourly schedule with an offset of five minutes ticks at five past every hour. No effect
    /// on a cron schedule.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workflow_runtime::Schedule;
    /// let five_past = Schedule::every(Duration::from_secs(3600)).offset(Duration::from_secs(300));
    /// ```
    #[must_use]
    pub fn offset(mut self, offset: Duration) -> Schedule {
        if let Spec::Every {
            every_ms,
            offset_ms,
        } = &mut self.spec
        {
            let offset = u64::try_from(offset.as_millis()).unwrap_or(u64::MAX);
            *offset_ms = offset.checked_rem(*every_ms).unwrap_or(0);
        }
        self
    }

    /// Sets the catch-up policy (default [`CatchUp::Latest`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{CatchUp, Schedule};
    /// let s = Schedule::cron("*/5 * * * *")?.catch_up(CatchUp::Skip);
    /// # Ok::<(), workflow_runtime::ScheduleError>(())
    /// ```
    #[must_use]
    pub fn catch_up(mut self, policy: CatchUp) -> Schedule {
        self.catch_up = policy;
        self
    }

    /// Sets the overlap policy (default [`Overlap::Skip`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{Overlap, Schedule};
    /// let s = Schedule::cron("*/5 * * * *")?.overlap(Overlap::Allow);
    /// # Ok::<(), workflow_runtime::ScheduleError>(())
    /// ```
    #[must_use]
    pub fn overlap(mut self, policy: Overlap) -> Schedule {
        self.overlap = policy;
        self
    }

    fn with(spec: Spec) -> Schedule {
        Schedule {
            spec,
            catch_up: CatchUp::default(),
            overlap: Overlap::default(),
        }
    }
}

/// A schedule as listed by [`Engine::schedules`].
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::Schedule;
/// # #[workflow]
/// # async fn report(ctx: &mut WorkflowContext, day: u32) -> Result<u32, WorkflowError> { Ok(day) }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let engine = Engine::builder().register(report).open_in_memory().await?;
/// engine.schedule(report, "nightly", Schedule::cron("0 3 * * *")?, 1).await?;
/// for s in engine.schedules()? {
///     println!("{} starts `{}` {}; next {:?}, {} started", s.id, s.workflow, s.spec, s.next_ms, s.started);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// The schedule's id.
    pub id: String,
    /// The workflow it starts.
    pub workflow: String,
    /// When it ticks, in words: `cron `0 3 * * *``, `every 60000 ms`, `once at ...`.
    pub spec: String,
    /// Its catch-up policy.
    pub catch_up: CatchUp,
    /// Its overlap policy.
    pub overlap: Overlap,
    /// Whether it is paused ([`Engine::pause_schedule`]).
    pub paused: bool,
    /// Its next tick, milliseconds since the Unix epoch; `None` while paused or once a
    /// one-shot has fired.
    pub next_ms: Option<u64>,
    /// The last tick it handled.
    pub last_tick_ms: Option<u64>,
    /// The run it started last.
    pub last_run: Option<String>,
    /// How many runs it has started (a tick whose run was found under its id, started by a
    /// firing that crashed before recording it, counts once).
    pub started: u64,
    /// How many ticks started no run: dropped by the catch-up policy, or skipped by the overlap
    /// policy.
    pub skipped: u64,
}

/// Why a schedule call was refused; nothing was changed.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{Schedule, ScheduleError};
/// assert!(matches!(Schedule::cron("* * *"), Err(ScheduleError::Invalid { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The schedule's definition is not valid.
    #[error("the schedule {spec} is not valid: {reason}")]
    Invalid {
        /// The definition, in words.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No schedule has this id.
    #[error("no schedule has the id `{id}`")]
    UnknownSchedule {
        /// The id.
        id: String,
    },
    /// The workflow, the id or the input was refused, as [`Engine::start`] refuses them, or
    /// the id belongs to a run that is not a schedule.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The stored state of a schedule record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stored {
    workflow: String,
    input: Value,
    input_hash: u64,
    spec: Spec,
    catch_up: CatchUp,
    overlap: Overlap,
    #[serde(default)]
    paused: bool,
    /// The run a one-shot starts; `None` for a recurring schedule, whose runs get derived ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(default)]
    last_tick_ms: Option<u64>,
    #[serde(default)]
    last_run: Option<String>,
    #[serde(default)]
    started: u64,
    #[serde(default)]
    skipped: u64,
    /// The ticks a firing decided to start, with their run ids, until their outcomes are
    /// recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    starting: Vec<(u64, String)>,
    /// The last firing listed only part of the ticks due.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl Stored {
    fn same_definition(&self, other: &Stored) -> bool {
        (
            &self.workflow,
            self.input_hash,
            &self.spec,
            self.catch_up,
            self.overlap,
            &self.run_id,
        ) == (
            &other.workflow,
            other.input_hash,
            &other.spec,
            other.catch_up,
            other.overlap,
            &other.run_id,
        )
    }

    /// The id of the run the tick at `tick_ms` starts.
    fn run_for(&self, id: &str, tick_ms: u64) -> String {
        match &self.run_id {
            Some(run_id) => run_id.clone(),
            None => derived_run_id(id, tick_ms),
        }
    }
}

/// The run id a tick of a recurring schedule starts: the schedule's id, `@`, and the tick in
/// RFC 3339 UTC with milliseconds, e.g. `nightly@2026-01-02T03:00:00.000Z`.
///
/// # Examples
///
/// ```
/// use workflow_runtime::schedule_run_id;
/// assert_eq!(schedule_run_id("nightly", 86_400_000), "nightly@1970-01-02T00:00:00.000Z");
/// ```
pub fn schedule_run_id(schedule_id: &str, tick_ms: u64) -> String {
    derived_run_id(schedule_id, tick_ms)
}

fn derived_run_id(id: &str, tick_ms: u64) -> String {
    format!("{id}@{}", format_time_ms(tick_ms))
}

fn record_id(id: &str) -> String {
    format!("{RECORD_PREFIX}{id}")
}

/// What starting a tick's run came to.
enum Started {
    Created,
    Existed,
    Refused(String),
}

impl Engine {
    /// Creates or updates the schedule `id`, which starts a run of `workflow` with `input` at
    /// every tick of `schedule`. Idempotent: the same call again changes nothing; a call with
    /// another definition replaces it, from the next tick on (ticks already handled stay
    /// handled), and keeps the schedule paused if it was.
    ///
    /// Each tick's run gets the id [`schedule_run_id`]`(id, tick)`, and is started only if no
    /// run has that id: a firing retried after a crash never starts a tick twice. Ticks before
    /// the schedule was created are not due. Missed ticks follow the schedule's [`CatchUp`]
    /// policy, ticks while the last run still goes its [`Overlap`] policy.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] for an interval under a millisecond, or an id so long that
    /// a tick's run id would be refused; [`ScheduleError::Start`] with what [`Engine::start`]
    /// reports for the workflow, the id and the input, or with
    /// [`StartError::Conflict`] if the id belongs to something else;
    /// [`ScheduleError::Storage`] (on an engine sharing its store, with
    /// [`StoreError::NotOwner`] while another worker is firing the schedule: try again).
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::{ManualClock, Schedule, schedule_run_id};
    /// #[workflow]
    /// async fn report(ctx: &mut WorkflowContext, team: String) -> Result<String, WorkflowError> {
    ///     Ok(format!("report for {team}"))
    /// }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(0);
    /// let engine = Engine::builder().register(report).clock(clock.clone()).open_in_memory().await?;
    /// let hourly = Schedule::every(Duration::from_secs(3600));
    /// let info = engine.schedule(report, "ops-report", hourly.clone(), "ops".into()).await?;
    /// assert_eq!(info.next_ms, Some(3_600_000));
    /// // The same call again is a no-op.
    /// engine.schedule(report, "ops-report", hourly, "ops".into()).await?;
    ///
    /// clock.advance(Duration::from_secs(3600));
    /// workflow_runtime::testing::settle(&engine).await;
    /// let run = engine.handle(report, schedule_run_id("ops-report", 3_600_000))?;
    /// assert_eq!(run.result().await?, Ok("report for ops".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn schedule<W: Workflow>(
        &self,
        workflow: W,
        id: impl Into<String>,
        schedule: Schedule,
        input: W::Input,
    ) -> Result<ScheduleInfo, ScheduleError> {
        let _ = workflow;
        self.put_schedule::<W>(id.into(), schedule, input, None)
            .await
    }

    /// Starts a run of `workflow` with id `run_id` and `input` at `at_ms` (milliseconds since
    /// the Unix epoch), durably: a one-shot schedule with the id `run_id`, which fires once
    /// however late the engine comes back (at once for a time that has passed), then ends.
    /// Idempotent like [`Engine::start`]: the same call again, before or after the start,
    /// changes nothing; before the start, another input or time replaces the pending one.
    ///
    /// # Errors
    /// As [`Engine::schedule`]; [`StartError::Conflict`] for another input or time once the
    /// run was started.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// use workflow_runtime::ManualClock;
    /// #[workflow]
    /// async fn reminder(ctx: &mut WorkflowContext, text: String) -> Result<String, WorkflowError> {
    ///     Ok(text)
    /// }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let clock = ManualClock::new(1_000);
    /// let engine = Engine::builder().register(reminder).clock(clock.clone()).open_in_memory().await?;
    /// engine.start_at(reminder, "remind-7", "renew the licence".into(), 61_000).await?;
    /// assert!(engine.status("remind-7").is_err()); // not started yet
    /// clock.advance(Duration::from_secs(60));
    /// workflow_runtime::testing::settle(&engine).await;
    /// let run = engine.handle(reminder, "remind-7")?;
    /// assert_eq!(run.result().await?, Ok("renew the licence".to_owned()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn start_at<W: Workflow>(
        &self,
        workflow: W,
        run_id: impl Into<String>,
        input: W::Input,
        at_ms: u64,
    ) -> Result<ScheduleInfo, ScheduleError> {
        let _ = workflow;
        let run_id = run_id.into();
        let once = Schedule::with(Spec::At { at_ms });
        self.put_schedule::<W>(run_id.clone(), once, input, Some(run_id))
            .await
    }

    async fn put_schedule<W: Workflow>(
        &self,
        id: String,
        schedule: Schedule,
        input: W::Input,
        run_id: Option<String>,
    ) -> Result<ScheduleInfo, ScheduleError> {
        let inner = &self.inner;
        inner.check_open()?;
        inner
            .registry()
            .for_start(W::NAME, W::VERSION, W::LAYOUT_HASH)?;
        check_name("schedule id", &id).map_err(StartError::from)?;
        let rid = record_id(&id);
        check_name("schedule id", &rid).map_err(StartError::from)?;
        if let Spec::Every { every_ms: 0, .. } = schedule.spec {
            return Err(ScheduleError::Invalid {
                spec: schedule.spec.describe(),
                reason: "the interval is under a millisecond".to_owned(),
            });
        }
        let input_json = codec::to_value(&input)
            .map_err(|e| CodecError::encoding(format!("the input of schedule `{id}`"), e))
            .map_err(StartError::from)?;
        inner
            .check_size(|| format!("the input of schedule `{id}`"), &input_json)
            .map_err(StartError::from)?;
        let input_hash = fnv1a(FNV_OFFSET, input_json.to_string().as_bytes());
        let wanted = Stored {
            workflow: W::NAME.to_owned(),
            input: input_json,
            input_hash,
            spec: schedule.spec,
            catch_up: schedule.catch_up,
            overlap: schedule.overlap,
            paused: false,
            run_id,
            last_tick_ms: None,
            last_run: None,
            started: 0,
            skipped: 0,
            starting: Vec::new(),
            truncated: false,
        };

        // Shared mode: another process may create the same schedule at the same instant, and
        // the store then refuses this creation; the second try finds it stored.
        let mut tries = if inner.shared.is_some() { 2 } else { 1 };
        loop {
            tries -= 1;
            match self.store_schedule(&id, &rid, wanted.clone()).await {
                Err(ScheduleError::Storage(StoreError::NotOwner { .. })) if tries > 0 => {}
                answer => return answer,
            }
        }
    }

    /// The part of [`Engine::put_schedule`] under the schedule's lock: writes `wanted` as a new
    /// schedule, or over the stored one as its rules say.
    async fn store_schedule(
        &self,
        id: &str,
        rid: &str,
        mut wanted: Stored,
    ) -> Result<ScheduleInfo, ScheduleError> {
        let inner = &self.inner;
        let _lock = inner.lock_run(rid).await;
        let now = inner.clock.now_ms();
        let existing = inner.store.run(rid)?;
        let mut cp = match existing {
            Some(rec) if rec.workflow != SCHEDULE_WORKFLOW => {
                return Err(StartError::Conflict {
                    run_id: rid.to_owned(),
                    reason: format!("as a run of workflow `{}`, not a schedule", rec.workflow),
                }
                .into());
            }
            Some(rec) => {
                let stored = decode(&rec)?;
                let deleted = matches!(rec.status, RunStatus::Terminated { .. });
                if !deleted && stored.same_definition(&wanted) {
                    inner.confirm(rid, true).await?;
                    return Ok(info(id, &stored, &rec));
                }
                if !deleted && stored.run_id.is_some() && stored.last_tick_ms.is_some() {
                    // A one-shot that fired has started its run: like `start`, another input
                    // or time for the same run is a conflict.
                    return Err(StartError::Conflict {
                        run_id: stored.run_id.unwrap_or_default(),
                        reason: "as started by `start_at` with another input or time".to_owned(),
                    }
                    .into());
                }
                if !deleted {
                    // The progress stays: ticks already handled are not due again.
                    wanted.paused = stored.paused;
                    wanted.last_tick_ms = stored.last_tick_ms;
                    wanted.last_run = stored.last_run;
                    wanted.started = stored.started;
                    wanted.skipped = stored.skipped;
                    // Ticks a firing decided to start before a crash still start.
                    wanted.starting = stored.starting;
                }
                let mut cp = Checkpoint::load(rid, now, rec);
                cp.rec.seq += 1;
                cp
            }
            None => {
                let mut rec = RunRecord::new(SCHEDULE_WORKFLOW, Value::Null, now);
                rec.input_hash = wanted.input_hash;
                let mut cp = Checkpoint::create(rid, now, rec);
                cp.trace(TraceKind::Started {
                    workflow: SCHEDULE_WORKFLOW.to_owned(),
                    version: 1,
                    input: codec::to_value(&wanted).unwrap_or(Value::Null),
                });
                cp.rec.seq = 1;
                cp
            }
        };
        let after = wanted.last_tick_ms.map_or(now, |t| t.max(now));
        let next = wanted
            .spec
            .next_after(after)
            .map_err(|reason| ScheduleError::Invalid {
                spec: wanted.spec.describe(),
                reason,
            })?;
        let next = match (&wanted.spec, wanted.last_tick_ms) {
            _ if !wanted.starting.is_empty() => Some(now),
            // A one-shot not fired yet fires, at once if its time has passed.
            (Spec::At { at_ms }, None) => Some(*at_ms),
            _ => next,
        };
        if let Some(next) = next {
            // A tick's run id must be accepted when the tick comes.
            check_name("run id", &wanted.run_for(id, next)).map_err(StartError::from)?;
        } else if wanted.run_id.is_none() {
            return Err(ScheduleError::Invalid {
                spec: wanted.spec.describe(),
                reason: "it has no tick after now".to_owned(),
            });
        }
        cp.rec.state = StoredState::encode(&wanted)
            .map_err(|e| StartError::from(CodecError::encoding(format!("schedule `{id}`"), e)))?;
        set_next(
            &mut cp,
            if wanted.paused { None } else { next },
            next.is_none(),
        );
        let rec = cp.rec.clone();
        inner.commit(cp).await?;
        Ok(info(id, &wanted, &rec))
    }

    /// Every schedule, in id order (a one-shot of [`Engine::start_at`] is listed until it is
    /// purged with the ended runs). An operations call: it reads every run record.
    ///
    /// # Errors
    /// [`ScheduleError::Storage`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::Schedule;
    /// # #[workflow]
    /// # async fn report(ctx: &mut WorkflowContext, day: u32) -> Result<u32, WorkflowError> { Ok(day) }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(report).open_in_memory().await?;
    /// engine.schedule(report, "b", Schedule::cron("0 3 * * *")?, 1).await?;
    /// engine.schedule(report, "a", Schedule::every(Duration::from_secs(60)), 2).await?;
    /// let ids: Vec<String> = engine.schedules()?.into_iter().map(|s| s.id).collect();
    /// assert_eq!(ids, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn schedules(&self) -> Result<Vec<ScheduleInfo>, ScheduleError> {
        self.inner.check_open()?;
        let mut out = Vec::new();
        for (rid, rec) in self.inner.store.runs()? {
            if rec.workflow != SCHEDULE_WORKFLOW
                || matches!(rec.status, RunStatus::Terminated { .. })
            {
                continue;
            }
            let Some(id) = rid.strip_prefix(RECORD_PREFIX) else {
                continue;
            };
            if let Ok(stored) = decode(&rec) {
                out.push(info(id, &stored, &rec));
            }
        }
        Ok(out)
    }

    /// The schedule `id`, if there is one.
    ///
    /// # Errors
    /// [`ScheduleError::Storage`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::Schedule;
    /// # #[workflow]
    /// # async fn report(ctx: &mut WorkflowContext, day: u32) -> Result<u32, WorkflowError> { Ok(day) }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(report).open_in_memory().await?;
    /// assert!(engine.schedule_info("nightly")?.is_none());
    /// engine.schedule(report, "nightly", Schedule::cron("0 3 * * *")?, 1).await?;
    /// assert_eq!(engine.schedule_info("nightly")?.unwrap().workflow, "report");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn schedule_info(&self, id: &str) -> Result<Option<ScheduleInfo>, ScheduleError> {
        self.inner.check_open()?;
        let rid = record_id(id);
        match self.inner.store.run(&rid)? {
            Some(rec)
                if rec.workflow == SCHEDULE_WORKFLOW
                    && !matches!(rec.status, RunStatus::Terminated { .. }) =>
            {
                Ok(Some(info(id, &decode(&rec)?, &rec)))
            }
            _ => Ok(None),
        }
    }

    /// Pauses the schedule `id`: its timer is disarmed and no tick is due until
    /// [`Engine::resume_schedule`]; ticks that pass meanwhile are not caught up. Pausing a
    /// paused schedule changes nothing.
    ///
    /// # Errors
    /// [`ScheduleError::UnknownSchedule`], [`ScheduleError::Storage`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::Schedule;
    /// # #[workflow]
    /// # async fn report(ctx: &mut WorkflowContext, day: u32) -> Result<u32, WorkflowError> { Ok(day) }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(report).open_in_memory().await?;
    /// engine.schedule(report, "nightly", Schedule::cron("0 3 * * *")?, 1).await?;
    /// let paused = engine.pause_schedule("nightly").await?;
    /// assert!(paused.paused && paused.next_ms.is_none());
    /// let resumed = engine.resume_schedule("nightly").await?;
    /// assert!(!resumed.paused && resumed.next_ms.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn pause_schedule(&self, id: &str) -> Result<ScheduleInfo, ScheduleError> {
        self.set_paused(id, true).await
    }

    /// Resumes a paused schedule from its next tick after now. Resuming a running schedule
    /// changes nothing.
    ///
    /// # Errors
    /// As [`Engine::pause_schedule`].
    ///
    /// # Examples
    ///
    /// See [`Engine::pause_schedule`].
    pub async fn resume_schedule(&self, id: &str) -> Result<ScheduleInfo, ScheduleError> {
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<ScheduleInfo, ScheduleError> {
        let inner = &self.inner;
        inner.check_open()?;
        let rid = record_id(id);
        let _lock = inner.lock_run(&rid).await;
        let (rec, mut stored) = self.live_schedule(id, &rid)?;
        if stored.paused == paused || rec.is_finished() {
            inner.confirm(&rid, true).await?;
            return Ok(info(id, &stored, &rec));
        }
        stored.paused = paused;
        let now = inner.clock.now_ms();
        let next = if paused {
            None
        } else {
            let after = stored.last_tick_ms.map_or(now, |t| t.max(now));
            stored
                .spec
                .next_after(after)
                .map_err(|reason| ScheduleError::Invalid {
                    spec: stored.spec.describe(),
                    reason,
                })?
        };
        let mut cp = Checkpoint::load(&rid, now, rec);
        cp.rec.seq += 1;
        cp.rec.state = StoredState::encode(&stored)
            .map_err(|e| StartError::from(CodecError::encoding(format!("schedule `{id}`"), e)))?;
        set_next(&mut cp, next, !paused && next.is_none());
        let rec = cp.rec.clone();
        inner.commit(cp).await?;
        Ok(info(id, &stored, &rec))
    }

    /// Deletes the schedule `id`: no tick of it fires any more, and its record is purged, so
    /// that the id may be used again. The runs it started are left alone.
    ///
    /// # Errors
    /// [`ScheduleError::UnknownSchedule`], [`ScheduleError::Storage`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # use workflow_runtime::{Schedule, ScheduleError};
    /// # #[workflow]
    /// # async fn report(ctx: &mut WorkflowContext, day: u32) -> Result<u32, WorkflowError> { Ok(day) }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(report).open_in_memory().await?;
    /// engine.schedule(report, "nightly", Schedule::cron("0 3 * * *")?, 1).await?;
    /// engine.delete_schedule("nightly").await?;
    /// assert!(engine.schedules()?.is_empty());
    /// let again = engine.delete_schedule("nightly").await;
    /// assert!(matches!(again, Err(ScheduleError::UnknownSchedule { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        let inner = &self.inner;
        inner.check_open()?;
        let rid = record_id(id);
        {
            let _lock = inner.lock_run(&rid).await;
            let (rec, _) = self.live_schedule(id, &rid)?;
            let now = inner.clock.now_ms();
            let mut cp = Checkpoint::load(&rid, now, rec);
            let reason = "schedule deleted".to_owned();
            cp.end(
                RunStatus::Terminated {
                    reason: reason.clone(),
                },
                TraceKind::Terminated { reason },
            );
            inner.commit(cp).await?;
        }
        // The schedule is over once it is terminated; the purge only frees the id and the
        // space, and a failed one leaves the record to retention or `purge_ended`.
        if let Err(e) = self.purge(&rid).await {
            tracing::warn!(schedule = id, error = %e, "the deleted schedule was not purged: {e}");
        }
        Ok(())
    }

    /// The record of schedule `id` unless it is missing or deleted; called under its lock.
    fn live_schedule(&self, id: &str, rid: &str) -> Result<(RunRecord, Stored), ScheduleError> {
        let unknown = || ScheduleError::UnknownSchedule { id: id.to_owned() };
        let rec = self.inner.store.run(rid)?.ok_or_else(unknown)?;
        if rec.workflow != SCHEDULE_WORKFLOW || matches!(rec.status, RunStatus::Terminated { .. }) {
            return Err(unknown());
        }
        let stored = decode(&rec)?;
        Ok((rec, stored))
    }
}

/// Suspends the schedule's record on a sleep until `next`; with no next tick, leaves it
/// without a timer, ended as completed when `done` (a one-shot that fired), else running (a
/// paused schedule).
fn set_next(cp: &mut Checkpoint, next: Option<u64>, done: bool) {
    cp.touch();
    match next {
        Some(deadline_ms) => {
            cp.rec.pending = Some(Command::Sleep { deadline_ms });
            cp.rec.status = RunStatus::Sleeping {
                until_ms: deadline_ms,
            };
        }
        None if done => {
            cp.rec.pending = None;
            cp.rec.status = RunStatus::Completed;
            cp.rec.output = Some(serde_json::json!({ "Ok": null }));
        }
        None => {
            cp.rec.pending = None;
            cp.rec.status = RunStatus::Running;
        }
    }
}

fn encode(stored: &Stored) -> Result<StoredState, StoreError> {
    StoredState::encode(stored).map_err(|e| StoreError::backend("encoding a schedule record", e))
}

fn decode(rec: &RunRecord) -> Result<Stored, ScheduleError> {
    rec.state
        .decode()
        .map_err(|e| ScheduleError::Storage(StoreError::backend("decoding a schedule record", e)))
}

fn info(id: &str, stored: &Stored, rec: &RunRecord) -> ScheduleInfo {
    ScheduleInfo {
        id: id.to_owned(),
        workflow: stored.workflow.clone(),
        spec: stored.spec.describe(),
        catch_up: stored.catch_up,
        overlap: stored.overlap,
        paused: stored.paused,
        next_ms: match (&rec.pending, rec.is_finished()) {
            (Some(Command::Sleep { deadline_ms }), false) => Some(*deadline_ms),
            _ => None,
        },
        last_tick_ms: stored.last_tick_ms,
        last_run: stored.last_run.clone(),
        started: stored.started,
        skipped: stored.skipped,
    }
}

/// The ticks due at a firing: how many in all, and the latest `keep` of them, oldest first.
struct Due {
    count: u64,
    first_ms: u64,
    kept: Vec<u64>,
    /// More ticks were due than one firing looks at ([`MAX_SCAN`]); the next firing goes on
    /// from the last one listed.
    truncated: bool,
}

/// Lists the ticks from `first_ms` (the armed deadline, itself a tick) up to `now_ms`.
fn due_ticks(spec: &Spec, first_ms: u64, now_ms: u64, keep: usize) -> Result<Due, String> {
    due_ticks_within(spec, first_ms, now_ms, keep, MAX_SCAN)
}

/// [`due_ticks`], looking at `max_scan` ticks at most.
fn due_ticks_within(
    spec: &Spec,
    first_ms: u64,
    now_ms: u64,
    keep: usize,
    max_scan: u64,
) -> Result<Due, String> {
    let keep = keep.max(1);
    let ticker = spec.ticker()?;
    if let Ticker::Every { every_ms, .. } = ticker {
        // Evenly spaced: no need to walk them.
        let count = (now_ms.saturating_sub(first_ms)) / every_ms + 1;
        let kept_count = count.min(keep as u64);
        let kept = (count - kept_count..count)
            .map(|i| first_ms + i * every_ms)
            .collect();
        return Ok(Due {
            count,
            first_ms,
            kept,
            truncated: false,
        });
    }
    let mut kept = std::collections::VecDeque::with_capacity(keep);
    let mut count = 0;
    let mut truncated = false;
    let mut tick = Some(first_ms);
    while let Some(t) = tick.filter(|t| *t <= now_ms) {
        if count == max_scan {
            truncated = true;
            break;
        }
        count += 1;
        if kept.len() == keep {
            kept.pop_front();
        }
        kept.push_back(t);
        tick = ticker.next_after(t);
    }
    Ok(Due {
        count,
        first_ms,
        kept: kept.into(),
        truncated,
    })
}

impl Inner {
    /// Shared mode: whether this worker registers the workflow schedule record `rid` starts,
    /// so that it may claim the schedule's timer.
    pub(super) fn fires_schedule(&self, rid: &str) -> bool {
        match self.store.run(rid) {
            Ok(Some(rec)) => {
                decode(&rec).is_ok_and(|stored| self.registry().contains(&stored.workflow))
            }
            _ => false,
        }
    }

    /// The timer of schedule record `rid` fired; called under its lock with its current record,
    /// which sleeps until the tick that is now due.
    ///
    /// In two commits when a run is to start: the first records the decision (which ticks
    /// start, which were missed or overlapped) before anything starts, and arms a timer due at
    /// once; the second, after the starts, records their outcomes and arms the next tick. A
    /// crash between the two makes the next open start exactly the ticks decided (those
    /// started already are found by their ids), so the catch-up policy's outcome does not
    /// depend on when the process died.
    pub(super) async fn fire_schedule(&self, rid: &str, rec: RunRecord) -> Result<(), StoreError> {
        let Some(Command::Sleep { deadline_ms }) = rec.pending else {
            return Ok(());
        };
        let id = rid.strip_prefix(RECORD_PREFIX).unwrap_or(rid).to_owned();
        let mut stored: Stored = match decode(&rec) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(schedule = id, error = %e, "schedule not fired: {e}");
                return Ok(());
            }
        };
        let Some(d) = self.driver(&stored.workflow) else {
            // Fired again when the workflow is registered (`Engine::register` re-arms every
            // schedule's timer).
            tracing::warn!(
                schedule = id,
                workflow = stored.workflow,
                "schedule `{id}` is due, but workflow `{}` is not registered; it fires once it is",
                stored.workflow
            );
            return Ok(());
        };
        let now = self.clock.now_ms();
        let mut cp = Checkpoint::load(rid, now, rec);
        if stored.starting.is_empty() {
            self.decide(&id, &mut stored, &mut cp, deadline_ms, now)?;
            if !stored.starting.is_empty() {
                cp.rec.seq += 1;
                cp.rec.state = encode(&stored)?;
                set_next(&mut cp, Some(now), false);
                let rec = cp.rec.clone();
                self.commit(cp).await?;
                cp = Checkpoint::load(rid, now, rec);
            }
        }
        for (tick_ms, run_id) in std::mem::take(&mut stored.starting) {
            let outcome = match self
                .start_untyped(&run_id, &*d, &stored.input, stored.input_hash)
                .await?
            {
                Started::Created => {
                    stored.started += 1;
                    stored.last_run = Some(run_id.clone());
                    "started".to_owned()
                }
                Started::Existed => {
                    stored.started += 1;
                    stored.last_run = Some(run_id.clone());
                    "existed".to_owned()
                }
                Started::Refused(why) => {
                    stored.skipped += 1;
                    format!("failed: {why}")
                }
            };
            cp.trace(TraceKind::ScheduleFired {
                tick_ms,
                run_id,
                outcome,
            });
        }
        let handled = stored.last_tick_ms.unwrap_or(deadline_ms);
        // After a truncated scan, the next firing is due at once and goes on from there.
        let after = match std::mem::take(&mut stored.truncated) {
            true => handled,
            false => handled.max(now),
        };
        let next = match stored.spec.next_after(after) {
            Ok(next) => next,
            Err(reason) => {
                tracing::error!(schedule = id, "schedule has no next tick: {reason}");
                None
            }
        };
        cp.rec.seq += 1;
        cp.rec.state = encode(&stored)?;
        set_next(&mut cp, next, next.is_none());
        self.commit(cp).await
    }

    /// Decides what the ticks due from `deadline_ms` to `now` come to: which are dropped by the
    /// catch-up policy and which by the overlap policy (traced now), and which start
    /// (`stored.starting`).
    fn decide(
        &self,
        id: &str,
        stored: &mut Stored,
        cp: &mut Checkpoint,
        deadline_ms: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let keep = match stored.catch_up {
            CatchUp::All { max } => usize::try_from(max).unwrap_or(usize::MAX).max(1),
            CatchUp::Skip | CatchUp::Latest => 1,
        };
        // One tick more than may start, so that the last dropped one is known for the trace.
        let due = match due_ticks(&stored.spec, deadline_ms, now, keep.saturating_add(1)) {
            Ok(due) => due,
            Err(reason) => {
                tracing::error!(
                    schedule = id,
                    "the schedule's ticks cannot be computed: {reason}"
                );
                return Ok(());
            }
        };
        let Some(&latest) = due.kept.last() else {
            return Ok(());
        };
        if due.truncated {
            tracing::warn!(
                schedule = id,
                "over {MAX_SCAN} ticks of the schedule are due; this firing handles the first \
                 {MAX_SCAN}, the next one goes on from there"
            );
            stored.truncated = true;
        }
        let to_start: Vec<u64> = match (&stored.spec, stored.catch_up) {
            // A one-shot fires however late.
            (Spec::At { .. }, _) => vec![latest],
            (_, CatchUp::Skip) if latest < self.opened_ms => Vec::new(),
            (_, CatchUp::Skip | CatchUp::Latest) => vec![latest],
            (_, CatchUp::All { .. }) => due.kept[due.kept.len().saturating_sub(keep)..].to_vec(),
        };
        let missed = due.count - to_start.len() as u64;
        if missed > 0 {
            let last_ms = match to_start.first() {
                Some(first) => due
                    .kept
                    .iter()
                    .rev()
                    .find(|t| **t < *first)
                    .copied()
                    .unwrap_or(due.first_ms),
                None => latest,
            };
            cp.trace(TraceKind::ScheduleMissed {
                count: missed,
                first_ms: due.first_ms,
                last_ms,
            });
            stored.skipped += missed;
        }
        let previous_runs = match (&stored.last_run, stored.overlap) {
            (Some(prev), Overlap::Skip) => self.store.run(prev)?.is_some_and(|r| !r.is_finished()),
            _ => false,
        };
        for tick_ms in to_start {
            let run_id = stored.run_for(id, tick_ms);
            // Under `Overlap::Skip`, of the ticks of one firing only the first may start, and
            // only if the last run is over: the others would overlap it.
            if previous_runs || (stored.overlap == Overlap::Skip && !stored.starting.is_empty()) {
                stored.skipped += 1;
                cp.trace(TraceKind::ScheduleFired {
                    tick_ms,
                    run_id,
                    outcome: "overlap".to_owned(),
                });
            } else {
                stored.starting.push((tick_ms, run_id));
            }
        }
        stored.last_tick_ms = Some(latest);
        Ok(())
    }

    /// Starts run `run_id` of the workflow `d` drives with an input given as JSON, unless a run
    /// has that id: [`Engine::start`] without the types.
    async fn start_untyped(
        &self,
        run_id: &str,
        d: &dyn Driver,
        input: &Value,
        input_hash: u64,
    ) -> Result<Started, StoreError> {
        let _lock = self.lock_run(run_id).await;
        let existed = |rec: RunRecord| {
            if rec.workflow == d.name() {
                Started::Existed
            } else {
                Started::Refused(format!(
                    "run `{run_id}` exists as a run of workflow `{}`",
                    rec.workflow
                ))
            }
        };
        if let Some(rec) = self.store.run(run_id)? {
            return Ok(existed(rec));
        }
        let (state, panicked) = match d.start_json(input) {
            Err(why) => return Ok(Started::Refused(why)),
            Ok(Ok(state)) => (state, None),
            Ok(Err(failure)) => (StoredState::default(), Some(failure.to_string())),
        };
        let now = self.clock.now_ms();
        let mut rec = RunRecord::new(d.name(), state, now);
        rec.version = d.version();
        rec.layout_hash = d.layout_hash();
        rec.body_hash = d.body_hash();
        rec.input_hash = input_hash;
        let mut cp = Checkpoint::create(run_id, now, rec);
        cp.trace(TraceKind::Started {
            workflow: d.name().to_owned(),
            version: d.version(),
            input: input.clone(),
        });
        match panicked {
            None => {
                cp.drive(d, &*self.store, Event::Start, None)?;
            }
            Some(message) => cp.fail(message),
        }
        match self.commit(cp).await {
            Ok(()) => Ok(Started::Created),
            // Shared mode: another process created the id at the same instant.
            Err(StoreError::NotOwner { .. })
                if self.shared.is_some()
                    && let Some(rec) = self.store.run(run_id)? =>
            {
                Ok(existed(rec))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, a Thursday
    const MINUTE: u64 = 60_000;

    #[test]
    fn interval_ticks_are_counted_without_walking_them() {
        let spec = Spec::Every {
            every_ms: MINUTE,
            offset_ms: 0,
        };
        let due = due_ticks(&spec, T0, T0 + 10 * MINUTE + 5, 3).unwrap();
        assert_eq!(due.count, 11);
        assert_eq!(
            due.kept,
            [T0 + 8 * MINUTE, T0 + 9 * MINUTE, T0 + 10 * MINUTE]
        );
        assert!(!due.truncated);
        let shifted = Spec::Every {
            every_ms: 60 * MINUTE,
            offset_ms: 5 * MINUTE,
        };
        assert_eq!(shifted.next_after(T0), Ok(Some(T0 + 5 * MINUTE)));
        assert_eq!(
            shifted.next_after(T0 + 5 * MINUTE),
            Ok(Some(T0 + 65 * MINUTE))
        );
    }

    #[test]
    fn a_cron_scan_stops_at_its_bound_and_says_so() {
        let spec = Spec::Cron {
            expr: "* * * * *".to_owned(),
        };
        let due = due_ticks_within(&spec, T0, T0 + 60 * MINUTE, 2, 10).unwrap();
        assert!(due.truncated);
        assert_eq!(due.count, 10);
        assert_eq!(due.kept, [T0 + 8 * MINUTE, T0 + 9 * MINUTE]);
        let whole = due_ticks_within(&spec, T0, T0 + 60 * MINUTE, 2, 1_000).unwrap();
        assert!(!whole.truncated);
        assert_eq!(whole.count, 61);
        assert_eq!(whole.kept, [T0 + 59 * MINUTE, T0 + 60 * MINUTE]);
    }

    #[test]
    fn cron_ticks_follow_the_named_days_and_the_time_zone() {
        let weekdays = Spec::Cron {
            expr: "30 8 * * MON-FRI".to_owned(),
        };
        // Thursday 1 January, then Friday 2, then Monday 5.
        let first = weekdays.next_after(T0).unwrap().unwrap();
        assert_eq!(first, T0 + 8 * 60 * MINUTE + 30 * MINUTE);
        let second = weekdays.next_after(first).unwrap().unwrap();
        assert_eq!(second, first + 24 * 60 * MINUTE);
        let third = weekdays.next_after(second).unwrap().unwrap();
        assert_eq!(third, second + 3 * 24 * 60 * MINUTE);
        // 02:30 in New York on 8 March 2026 does not exist (clocks go from 02:00 to 03:00).
        let ny = Spec::Cron {
            expr: "30 2 * * * America/New_York".to_owned(),
        };
        let march_7 = T0 + 65 * 24 * 60 * MINUTE; // 2026-03-07T00:00:00Z
        let a = ny.next_after(march_7).unwrap().unwrap();
        let b = ny.next_after(a).unwrap().unwrap();
        assert!(b > a, "the schedule moves on past the gap");
    }
}
