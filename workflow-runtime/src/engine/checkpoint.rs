//! One checkpoint: the transitions of one run between two commits, and the writes they make.
//!
//! A [`Checkpoint`] starts from the run's stored envelope, runs `advance` until the run is
//! suspended on something that is not immediately satisfiable (a buffered signal satisfies a
//! wait at once), and turns the result into the [`CheckpointWrite`] of one commit plus the
//! [`Effects`] to carry out once that commit is durable. The store derives the index rows.

use serde_json::Value;

use super::driver::{Advanced, Driver};
use crate::error::StoreError;
use crate::model::{Command, Event, WorkflowContext};
use crate::step::StepContext;
use crate::store::{CheckpointWrite, InboxEntry, RunWrite, Store};
use crate::telemetry;
use crate::trace::{TraceEvent, TraceKind};
use crate::types::{RunRecord, RunStatus};

/// A checkpoint's trace events, kept to be reported once the checkpoint is durable.
#[derive(Clone)]
pub(super) struct Reported {
    run_id: String,
    workflow: String,
    version: u32,
    events: Vec<TraceEvent>,
    /// The events of the other runs the checkpoint writes (the child runs it creates).
    others: Vec<Reported>,
}

impl Reported {
    fn copy(&self) -> Reported {
        Reported {
            run_id: self.run_id.clone(),
            workflow: self.workflow.clone(),
            version: self.version,
            events: self.events.clone(),
            others: self.others.iter().map(Reported::copy).collect(),
        }
    }

    pub(super) fn report(&self) {
        telemetry::committed(&self.run_id, &self.workflow, self.version, &self.events);
        for other in &self.others {
            other.report();
        }
    }
}

/// A signal sent by a caller, as it reaches the wait it is meant for.
pub(super) struct Incoming {
    pub(super) name: String,
    pub(super) payload: Value,
    pub(super) dedupe_key: Option<String>,
}

/// How [`Checkpoint::drive`] ended.
#[derive(Debug)]
pub(super) enum Driven {
    /// The run moved on (or finished, failed or was parked); commit the checkpoint.
    Moved,
    /// The caller's signal was refused by the workflow; nothing may be committed.
    Refused(String),
    /// The stored state does not decode with the registered code; the run is parked as
    /// incompatible (commit that) and was not driven.
    Parked(String),
}

/// What to do once a checkpoint is durable.
#[derive(Debug, Clone)]
pub(super) struct Effects {
    pub(super) run_id: String,
    pub(super) workflow: String,
    pub(super) seq: u64,
    /// The deadline of a wait or sleep that is over.
    pub(super) cancel_timer: Option<u64>,
    /// A command that is new with this checkpoint.
    pub(super) start: Option<Command>,
    pub(super) finished: bool,
    /// The parent to tell, when a child run finished with this checkpoint.
    pub(super) parent: Option<String>,
    /// What to do for the child runs this checkpoint created.
    pub(super) children: Vec<Effects>,
}

#[derive(Clone)]
pub(super) struct Checkpoint {
    pub(super) run_id: String,
    pub(super) now_ms: u64,
    pub(super) rec: RunRecord,
    /// The pending command as stored before this checkpoint; `None` for a new run.
    before: Option<Option<Command>>,
    /// Whether the run was driven, failed or parked, so that its envelope must be written;
    /// checkpoints that only buffer a signal or trace a duplicate leave it alone.
    touched: bool,
    /// The writes that are not derived from the run record (inbox, dedupe keys) and the trace.
    write: CheckpointWrite,
    /// Child runs the run asked for in this checkpoint, not created yet (the engine creates
    /// them in the same commit), with whether they are detached.
    pub(super) spawn: Vec<(crate::ChildItem, bool)>,
    /// What to do for the children created, once the commit is durable.
    children: Vec<Effects>,
    /// The trace events of the other runs written, for a subscriber, when one listens.
    child_reports: Vec<Reported>,
    /// Detached children cannot be created here (a front end sharing the store runs the first
    /// transition of a run it does not drive): the run stays suspended on them, marked
    /// deferred, for the worker that claims it to create them ([`crate::ChildItem::deferred`]).
    pub(super) hold_detached: bool,
}

impl Checkpoint {
    /// A checkpoint for a run that is not stored yet.
    pub(super) fn create(run_id: &str, now_ms: u64, rec: RunRecord) -> Self {
        Self::new(run_id, now_ms, rec, None)
    }

    /// A checkpoint continuing the stored run `rec`.
    pub(super) fn load(run_id: &str, now_ms: u64, rec: RunRecord) -> Self {
        let before = Some(rec.pending.clone());
        Self::new(run_id, now_ms, rec, before)
    }

    fn new(run_id: &str, now_ms: u64, rec: RunRecord, before: Option<Option<Command>>) -> Self {
        Self {
            run_id: run_id.to_owned(),
            now_ms,
            rec,
            before,
            touched: false,
            write: CheckpointWrite::new(run_id),
            spawn: Vec::new(),
            children: Vec::new(),
            child_reports: Vec::new(),
            hold_detached: false,
        }
    }

    /// Adds a child run's creation to this commit.
    /// `next_trace` numbers the child's trace events for a subscriber (the store's next
    /// number for that run), when one listens.
    pub(super) fn create_child(&mut self, mut child: Checkpoint, next_trace: Option<u64>) {
        if let Some(next) = next_trace {
            let mut reported = child.trace_events(next);
            reported.others = std::mem::take(&mut child.child_reports);
            self.child_reports.push(reported);
        }
        let (mut write, effects) = child.finish();
        // A child whose first transition starts children of its own: all of them are other
        // writes of this one commit, side by side (a store takes no nested ones).
        let nested = std::mem::take(&mut write.others);
        self.write.others.push(write);
        self.write.others.extend(nested);
        self.children.extend(effects);
    }

    /// Sets the fence this checkpoint is written under, for one that is another write of a
    /// commit ([`CheckpointWrite::others`]); the engine fences a run's own write as it commits.
    pub(super) fn set_fence(&mut self, fence: crate::store::Fence) {
        self.write.fence = fence;
    }

    /// The runs this checkpoint creates besides its own ([`Fence::Create`] other writes: the
    /// children it starts, in shared mode).
    ///
    /// [`Fence::Create`]: crate::store::Fence::Create
    pub(super) fn creates_others(&self) -> Vec<String> {
        self.write
            .others
            .iter()
            .filter(|w| w.fence == crate::store::Fence::Create)
            .map(|w| w.run_id.clone())
            .collect()
    }

    /// The checkpoint as the observer sees it, when this checkpoint writes the run's envelope.
    pub(super) fn snapshot(&self) -> Option<super::hooks::CommittedCheckpoint> {
        (self.touched || self.before.is_none()).then(|| super::hooks::CommittedCheckpoint {
            run_id: self.run_id.clone(),
            workflow: self.rec.workflow.clone(),
            seq: self.rec.seq,
            at_ms: self.now_ms,
            state: self.rec.state.to_value(),
            pending: if self.rec.is_finished() {
                None
            } else {
                self.rec.pending.clone()
            },
            status: self.rec.status.clone(),
            output: self.rec.output.clone(),
        })
    }

    /// Applies migrations to the loaded state, recording each in the trace.
    ///
    /// # Errors
    /// The first migration's refusal; the state is then as it was.
    pub(super) fn migrate(
        &mut self,
        plan: &[crate::model::Migration],
    ) -> Result<(), crate::error::MigrationError> {
        // A migration works on the JSON value of a state written by an older version.
        let state = crate::model::Migration::apply_all(plan, self.rec.state.to_value())?;
        for m in plan {
            self.trace(TraceKind::Migrated {
                from_version: m.from_version,
                to_version: m.to_version,
            });
        }
        if let Some(last) = plan.last() {
            self.rec.state = state.into();
            self.rec.version = last.to_version;
            self.rec.layout_hash = last.to_layout;
        }
        Ok(())
    }

    /// Whether this checkpoint creates its run.
    pub(super) fn creates(&self) -> bool {
        self.before.is_none()
    }

    /// The loaded state.
    pub(super) fn state(&self) -> &crate::store::StoredState {
        &self.rec.state
    }

    /// Makes the envelope part of the commit even without a transition.
    pub(super) fn touch(&mut self) {
        self.touched = true;
    }

    /// Parks the run as incompatible, keeping its state and pending command.
    pub(super) fn park_with(&mut self, reason: String) {
        self.touched = true;
        self.park(reason);
    }

    /// Takes a parked run back: its status follows its pending command again, and the command
    /// (a step, a wait, a sleep) is carried out once the commit is durable.
    pub(super) fn revive(&mut self) {
        self.touched = true;
        self.trace(TraceKind::Revived);
        if let Some(cmd) = self.rec.pending.clone() {
            self.rec.status = RunStatus::Running;
            self.suspend(cmd);
        }
    }

    /// Places a new run at `seq`, suspended on `cmd`, as a test importing a checkpoint does.
    pub(super) fn place(&mut self, seq: u64, cmd: Command) {
        self.rec.seq = seq;
        self.suspend(cmd);
    }

    /// Appends a trace event, stamped with the current checkpoint seq.
    /// The store numbers the events when it commits them.
    pub(super) fn trace(&mut self, mut kind: TraceKind) {
        // Every event passes here before it reaches the store, a log line or a test observer.
        kind.redact();
        self.write.trace.push(TraceEvent {
            seq: 0,
            at_ms: self.now_ms,
            checkpoint: self.rec.seq,
            kind,
        });
    }

    /// Appends a signal to the run's inbox.
    pub(super) fn buffer(&mut self, entry: InboxEntry) {
        self.write.buffer = Some(entry);
    }

    /// Records a de-duplication key as accepted now.
    pub(super) fn dedupe(&mut self, key: String) {
        self.write.dedupe = Some((key, self.now_ms));
    }

    /// The trace events this checkpoint will write, for reporting them once it is durable.
    /// `next` is the number the store gives the first of them.
    pub(super) fn trace_events(&self, next: u64) -> Reported {
        let mut events = self.write.trace.clone();
        for (seq, event) in (next..).zip(&mut events) {
            event.seq = seq;
        }
        Reported {
            run_id: self.run_id.clone(),
            workflow: self.rec.workflow.clone(),
            version: self.rec.version,
            events,
            others: self.child_reports.iter().map(Reported::copy).collect(),
        }
    }

    /// Runs transitions from `event` until the run is suspended on something that is not
    /// immediately satisfiable, finishes, fails, or is parked as incompatible.
    ///
    /// `signal` is set when `event` is a caller's signal: its refusal is returned instead of
    /// recorded. Any other refusal fails the run (the event came from the engine itself), except
    /// that a buffered signal is dropped with a trace event and the next one is offered.
    pub(super) fn drive(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
        event: Event,
        signal: Option<Incoming>,
    ) -> Result<Driven, StoreError> {
        self.drive_from(d, store, event, signal, false)
    }

    /// Delivers the buffered signal at inbox `index` to the wait the run is suspended on, as
    /// [`Checkpoint::drive`] does with a buffered signal after a transition: a refusal drops
    /// it with a trace event.
    pub(super) fn drive_buffered(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
        index: u64,
        entry: InboxEntry,
    ) -> Result<Driven, StoreError> {
        self.write.consumed.push(index);
        let event = Event::Signal(entry.payload.clone());
        let signal = Incoming {
            name: entry.name,
            payload: entry.payload,
            dedupe_key: entry.dedupe_key,
        };
        self.drive_from(d, store, event, Some(signal), true)
    }

    fn drive_from(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
        mut event: Event,
        mut signal: Option<Incoming>,
        mut from_inbox: bool,
    ) -> Result<Driven, StoreError> {
        self.touched = true;
        // The envelope names the code that wrote its latest checkpoint.
        self.rec.body_hash = d.body_hash();
        let mut inbox: Option<Vec<(u64, InboxEntry)>> = None;
        loop {
            let seq = self.rec.seq + 1;
            let mut ctx = WorkflowContext::new(self.run_id.as_str(), self.now_ms, seq);
            let span = telemetry::transition(&self.run_id, d.name(), d.version(), seq);
            let advanced = span.in_scope(|| d.advance(&self.rec.state, event, &mut ctx));
            match advanced {
                Advanced::Undecodable(reason) => {
                    self.park(reason.clone());
                    return Ok(Driven::Parked(reason));
                }
                Advanced::Reject(message) => match signal.take() {
                    Some(s) if from_inbox => self.trace(TraceKind::SignalRejected {
                        signal: s.name,
                        payload: s.payload,
                        message,
                    }),
                    Some(_) => return Ok(Driven::Refused(message)),
                    None => {
                        self.fail(format!("the workflow refused an engine event: {message}"));
                        return Ok(Driven::Moved);
                    }
                },
                Advanced::Suspend(state, cmd) => {
                    self.received(signal.take(), from_inbox);
                    self.rec.state = state;
                    self.rec.seq = seq;
                    self.suspend(cmd);
                }
                Advanced::Complete { output, failure } => {
                    self.received(signal.take(), from_inbox);
                    self.rec.seq = seq;
                    self.finish_with(output, failure);
                    return Ok(Driven::Moved);
                }
                Advanced::Fail(message) => {
                    self.received(signal.take(), from_inbox);
                    self.fail(message);
                    return Ok(Driven::Moved);
                }
            }
            // A cancellation the workflow has not seen (its sleep was cut short) reaches it at
            // the first step or wait it suspends on, before that step runs or that wait waits.
            if let Some(next) = self.deliver_cancel() {
                event = next;
                continue;
            }
            // A batch with nothing to run (an empty fan-out) is over at once.
            if let Some(Command::Batch { items, .. }) = &self.rec.pending
                && let Some(results) = items.iter().map(|i| i.result.clone()).collect()
            {
                event = Event::BatchDone(results);
                continue;
            }
            // Detached children are not awaited: the workflow goes on with their run ids in
            // this same checkpoint, which also creates them, unless this process cannot create
            // them; then the worker that claims the run creates them and goes on. Awaited
            // children with every outcome in (an empty fan-out) are over at once too.
            if self.hold_detached
                && let Some(Command::Children {
                    items,
                    detached: true,
                }) = &mut self.rec.pending
            {
                for item in items.iter_mut() {
                    item.deferred = true;
                }
            }
            match &self.rec.pending {
                Some(Command::Children {
                    items,
                    detached: true,
                }) if !items.iter().any(|i| i.deferred) => {
                    let ids = items
                        .iter()
                        .map(|i| Ok(Value::String(i.run_id.clone())))
                        .collect();
                    event = Event::ChildrenDone(ids);
                    continue;
                }
                Some(Command::Children { items, .. }) => {
                    if let Some(results) = items.iter().map(|i| i.result.clone()).collect() {
                        event = Event::ChildrenDone(results);
                        continue;
                    }
                }
                _ => {}
            }
            // Still waiting (a new wait, or one whose buffered signal was refused): a buffered
            // signal with the wait's name satisfies it within this same checkpoint.
            let Some(wait @ Command::Wait { .. }) = &self.rec.pending else {
                return Ok(Driven::Moved);
            };
            if inbox.is_none() {
                inbox = Some(store.inbox(&self.run_id)?);
            }
            let buffered = inbox.as_mut().expect("loaded above");
            // The oldest buffered signal that answers the wait; on a wait for several names,
            // the others stay buffered for later waits.
            let Some(pos) = buffered.iter().position(|(_, e)| wait.waits_for(&e.name)) else {
                return Ok(Driven::Moved);
            };
            let (index, entry) = buffered.remove(pos);
            self.write.consumed.push(index);
            event = wait.signal_event(&entry.name, entry.payload.clone());
            signal = Some(Incoming {
                name: entry.name,
                payload: entry.payload,
                dedupe_key: entry.dedupe_key,
            });
            from_inbox = true;
        }
    }

    /// Marks the run cancelled with `reason`, undelivered yet.
    pub(super) fn request_cancel(&mut self, reason: &str) {
        self.touched = true;
        self.rec.cancel = Some(crate::types::Cancellation::new(reason));
        self.trace(TraceKind::CancelRequested {
            reason: reason.to_owned(),
        });
    }

    /// The event that shows an undelivered cancellation to the workflow at its pending
    /// command: the step or wait resolves with a cancellation error; a sleep ends early (its
    /// `.await` has no error to give), and the cancellation stays undelivered for the next step
    /// or wait. `None` when there is nothing to deliver.
    pub(super) fn deliver_cancel(&mut self) -> Option<Event> {
        let cancel = self.rec.cancel.as_mut().filter(|c| !c.delivered)?;
        let reason = cancel.reason.clone();
        let (event, at) = match self.rec.pending.as_ref()? {
            Command::Step { name, .. } => {
                cancel.delivered = true;
                (Event::Cancelled { reason }, format!("step {name}"))
            }
            wait @ Command::Wait { .. } => {
                cancel.delivered = true;
                let names = wait.signal_names().join("|");
                (Event::Cancelled { reason }, format!("wait {names}"))
            }
            Command::Sleep { .. } => (Event::Woke, "sleep".to_owned()),
            Command::Batch { items, .. } => {
                cancel.delivered = true;
                (
                    Event::Cancelled { reason },
                    format!("batch of {}", items.len()),
                )
            }
            // The engine cancels the awaited children instead; their outcomes reach the
            // workflow, and the cancellation its next step or wait.
            Command::Children { .. } => return None,
        };
        self.trace(TraceKind::CancelDelivered { at });
        Some(event)
    }

    /// Ends the run at once with `status`, running no workflow code (terminate).
    pub(super) fn end(&mut self, status: RunStatus, kind: TraceKind) {
        self.touched = true;
        self.rec.ended_at = self.rec.pending.take();
        self.rec.status = status;
        self.trace(kind);
    }

    /// Takes a failed run back to the command it failed at, as a new checkpoint: the step runs
    /// again (from attempt 1, under a new position, so a fresh idempotency key) once committed.
    pub(super) fn resume_failed(&mut self, cmd: Command) {
        self.touched = true;
        let cmd = match cmd {
            Command::Step {
                name, input, retry, ..
            } => Command::Step {
                name,
                input,
                retry,
                attempt: 1,
                not_before_ms: None,
            },
            other => other,
        };
        self.rec.output = None;
        self.rec.ended_at = None;
        self.rec.status = RunStatus::Running;
        self.rec.seq += 1;
        self.suspend(cmd);
    }

    /// Records that the current wait accepted a signal.
    fn received(&mut self, signal: Option<Incoming>, from_inbox: bool) {
        if let Some(s) = signal {
            self.trace(TraceKind::SignalReceived {
                signal: s.name,
                payload: s.payload,
                dedupe_key: s.dedupe_key,
                wait_id: self.rec.seq.to_string(),
                from_inbox,
            });
        }
    }

    /// Records a new suspension point.
    fn suspend(&mut self, cmd: Command) {
        let seq = self.rec.seq;
        match &cmd {
            Command::Step {
                name,
                input,
                attempt,
                not_before_ms,
                ..
            } => {
                let key =
                    StepContext::new(self.run_id.as_str(), name.as_str(), seq, 1).idempotency_key();
                // Only a placed or revived checkpoint arrives here with a later attempt.
                self.rec.status = if *attempt > 1 {
                    RunStatus::Retrying {
                        step: name.clone(),
                        attempt: *attempt,
                        not_before_ms: not_before_ms.unwrap_or(self.now_ms),
                    }
                } else {
                    RunStatus::Running
                };
                self.trace(TraceKind::StepScheduled {
                    step: name.clone(),
                    input: input.clone(),
                    idempotency_key: key,
                });
            }
            Command::Wait {
                deadline_ms,
                metadata,
                ..
            } => {
                // A wait on several signals shows as `approve|reject|cancel`.
                let signal = cmd.signal_names().join("|");
                self.rec.status = RunStatus::Waiting {
                    signal: signal.clone(),
                    wait_id: seq.to_string(),
                    deadline_ms: *deadline_ms,
                };
                self.trace(TraceKind::WaitStarted {
                    signal,
                    wait_id: seq.to_string(),
                    metadata: metadata.clone(),
                    deadline_ms: *deadline_ms,
                });
            }
            Command::Sleep { deadline_ms } => {
                self.rec.status = RunStatus::Sleeping {
                    until_ms: *deadline_ms,
                };
                self.trace(TraceKind::SleepStarted {
                    until_ms: *deadline_ms,
                });
            }
            Command::Children { items, detached } => {
                self.rec.status = RunStatus::Running;
                for item in items.iter().filter(|i| i.result.is_none()) {
                    self.trace(TraceKind::ChildStarted {
                        workflow: item.workflow.clone(),
                        child: item.run_id.clone(),
                        input: item.input.clone(),
                        detached: *detached,
                    });
                    self.spawn.push((item.clone(), *detached));
                }
            }
            Command::Batch { items, .. } => {
                self.rec.status = RunStatus::Running;
                // One branch per item in the trace, each with its own idempotency key.
                for (index, item) in items.iter().enumerate() {
                    let key = StepContext::new(self.run_id.as_str(), item.name.as_str(), seq, 1)
                        .with_item(index)
                        .idempotency_key();
                    self.trace(TraceKind::StepScheduled {
                        step: item.name.clone(),
                        input: item.input.clone(),
                        idempotency_key: key,
                    });
                }
            }
        }
        self.rec.pending = Some(cmd);
    }

    /// Stores the results of batch items that arrived (`(index, result)`) in the pending
    /// batch, and hands the workflow every result once all are in. Results for another
    /// batch are ignored by the caller.
    pub(super) fn batch_results(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
        results: Vec<(usize, String, Result<Value, crate::step::StepError>, u64)>,
    ) -> Result<(), StoreError> {
        let Some(Command::Batch { items, .. }) = &mut self.rec.pending else {
            return Ok(());
        };
        let mut completed = Vec::new();
        for (index, name, result, duration_ms) in results {
            let Some(item) = items.get_mut(index).filter(|i| i.result.is_none()) else {
                continue;
            };
            item.result = Some(result.clone());
            completed.push(TraceKind::StepCompleted {
                step: name,
                result,
                duration_ms,
                attempt: 1,
            });
        }
        let all: Option<Vec<_>> = items.iter().map(|i| i.result.clone()).collect();
        self.touched = true;
        for kind in completed {
            self.trace(kind);
        }
        if let Some(results) = all {
            self.drive(d, store, Event::BatchDone(results), None)?;
        }
        Ok(())
    }

    /// Stores the outcomes of awaited children that ended (`(index, outcome)`) in the pending
    /// [`Command::Children`], and hands the workflow every outcome once all are in.
    pub(super) fn child_results(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
        results: Vec<(usize, Result<Value, crate::ChildError>)>,
    ) -> Result<(), StoreError> {
        let Some(Command::Children { items, .. }) = &mut self.rec.pending else {
            return Ok(());
        };
        let mut ended = Vec::new();
        for (index, result) in results {
            let Some(item) = items.get_mut(index).filter(|i| i.result.is_none()) else {
                continue;
            };
            item.result = Some(result.clone());
            ended.push(TraceKind::ChildEnded {
                child: item.run_id.clone(),
                result,
            });
        }
        if ended.is_empty() {
            return Ok(());
        }
        let all: Option<Vec<_>> = items.iter().map(|i| i.result.clone()).collect();
        self.touched = true;
        for kind in ended {
            self.trace(kind);
        }
        if let Some(results) = all {
            self.drive(d, store, Event::ChildrenDone(results), None)?;
        }
        Ok(())
    }

    /// The detached children the run is suspended on have all been created by this commit
    /// (they were deferred, see [`Checkpoint::hold_detached`]): the workflow goes on with their
    /// run ids, as it would have in the transition that asked for them.
    pub(super) fn detached_started(
        &mut self,
        d: &dyn Driver,
        store: &dyn Store,
    ) -> Result<(), StoreError> {
        let Some(Command::Children {
            items,
            detached: true,
        }) = &self.rec.pending
        else {
            return Ok(());
        };
        if items.iter().any(|i| i.deferred) {
            return Ok(());
        }
        let ids = items
            .iter()
            .map(|i| Ok(Value::String(i.run_id.clone())))
            .collect();
        self.touched = true;
        self.drive(d, store, Event::ChildrenDone(ids), None)?;
        Ok(())
    }

    /// Schedules the next attempt of the pending step after a retryable failure: state and seq
    /// stay (the attempt keeps its position, hence its idempotency key), and the attempt may
    /// start at `not_before_ms`, a deadline committed here so that a restart waits out only
    /// what is left of the backoff.
    pub(super) fn retry_step(&mut self, not_before_ms: u64) {
        let Some(Command::Step {
            name,
            attempt,
            not_before_ms: at,
            ..
        }) = &mut self.rec.pending
        else {
            return;
        };
        *attempt += 1;
        *at = Some(not_before_ms);
        self.rec.status = RunStatus::Retrying {
            step: name.clone(),
            attempt: *attempt,
            not_before_ms,
        };
        self.touched = true;
    }

    fn finish_with(&mut self, output: Value, failure: Option<String>) {
        self.rec.ended_at = self.rec.pending.take();
        if let Some(cancel) = &self.rec.cancel {
            let reason = cancel.reason.clone();
            self.rec.status = RunStatus::Cancelled {
                reason: reason.clone(),
            };
            self.trace(TraceKind::Cancelled {
                reason,
                output: Some(output.clone()),
            });
            self.rec.output = Some(output);
            return;
        }
        match failure {
            None => {
                self.rec.status = RunStatus::Completed;
                self.trace(TraceKind::Completed {
                    output: output.clone(),
                });
            }
            Some(message) => {
                self.rec.status = RunStatus::Failed {
                    message: message.clone(),
                };
                self.trace(TraceKind::Failed { message });
            }
        }
        self.rec.output = Some(output);
    }

    /// Fails the run, keeping its last good state.
    pub(super) fn fail(&mut self, message: String) {
        self.touched = true;
        self.rec.ended_at = self.rec.pending.take();
        if let Some(cancel) = &self.rec.cancel {
            // A cancelled run ends cancelled even when its compensation fails; the failure
            // stays in the trace.
            let reason = cancel.reason.clone();
            self.trace(TraceKind::Failed { message });
            self.rec.status = RunStatus::Cancelled {
                reason: reason.clone(),
            };
            self.trace(TraceKind::Cancelled {
                reason,
                output: None,
            });
            return;
        }
        self.rec.status = RunStatus::Failed {
            message: message.clone(),
        };
        self.trace(TraceKind::Failed { message });
    }

    /// Parks a run whose state cannot be decoded; state and pending command stay as stored.
    fn park(&mut self, reason: String) {
        self.rec.status = RunStatus::Incompatible {
            reason: reason.clone(),
        };
        self.trace(TraceKind::Incompatible { reason });
    }

    /// Everything the commit writes, and what to do once it is durable.
    pub(super) fn finish(mut self) -> (CheckpointWrite, Option<Effects>) {
        let mut effects = None;
        if self.touched || self.before.is_none() {
            self.rec.updated_ms = self.now_ms;
            let old = self.before.take().flatten();
            effects = Some(Effects {
                run_id: self.run_id,
                workflow: self.rec.workflow.clone(),
                seq: self.rec.seq,
                cancel_timer: old.as_ref().and_then(deadline),
                start: self.rec.indexed_command().cloned(),
                finished: self.rec.is_finished(),
                parent: self.rec.parent.clone().filter(|_| self.rec.is_purgeable()),
                children: self.children,
            });
            self.write.run = Some(RunWrite::new(self.rec, old));
        }
        (self.write, effects)
    }
}

/// The deadline of a wait or sleep.
pub(super) fn deadline(cmd: &Command) -> Option<u64> {
    match cmd {
        Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms } => Some(*deadline_ms),
        Command::Step { .. } | Command::Batch { .. } | Command::Children { .. } => None,
    }
}
