//! One checkpoint: the transitions of one run between two commits, and the writes they make.
//!
//! A [`Checkpoint`] starts from the run's stored envelope, runs `advance` until the run is
//! suspended on something that is not immediately satisfiable (a buffered signal satisfies a
//! wait at once), and turns the result into the [`Op`]s of one commit plus the [`Effects`] to
//! carry out once that commit is durable.

use serde_json::Value;

use super::driver::{Advanced, Driver};
use super::types::{PendingWait, RunStatus};
use crate::codec;
use crate::error::EngineError;
use crate::model::{Command, Event, WorkflowContext};
use crate::step::StepContext;
use crate::store::{InboxEntry, Op, Reader, RunRecord, TimerRow};
use crate::telemetry;
use crate::trace::{TraceEvent, TraceKind};

/// A checkpoint's trace events, kept to be reported once the checkpoint is durable.
pub(super) struct Reported {
    run_id: String,
    workflow: String,
    version: u32,
    events: Vec<TraceEvent>,
}

impl Reported {
    pub(super) fn report(&self) {
        telemetry::committed(&self.run_id, &self.workflow, self.version, &self.events);
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
#[derive(Debug)]
pub(super) struct Effects {
    pub(super) run_id: String,
    pub(super) workflow: String,
    pub(super) seq: u64,
    /// The deadline of a wait or sleep that is over.
    pub(super) cancel_timer: Option<u64>,
    /// A command that is new with this checkpoint.
    pub(super) start: Option<Command>,
    pub(super) finished: bool,
}

pub(super) struct Checkpoint {
    pub(super) run_id: String,
    pub(super) now_ms: u64,
    pub(super) rec: RunRecord,
    /// The pending command as stored before this checkpoint; `None` for a new run.
    before: Option<Option<Command>>,
    /// Whether the run was driven, failed or parked, so that its envelope must be written;
    /// checkpoints that only buffer a signal or trace a duplicate leave it alone.
    touched: bool,
    ops: Vec<Op>,
    trace: Vec<TraceEvent>,
    next_trace: u64,
}

impl Checkpoint {
    /// A checkpoint for a run that is not stored yet.
    pub(super) fn create(run_id: &str, now_ms: u64, rec: RunRecord) -> Self {
        Self::new(run_id, now_ms, rec, None, 0)
    }

    /// A checkpoint continuing the stored run `rec`.
    pub(super) fn load(
        reader: &Reader,
        run_id: &str,
        now_ms: u64,
        rec: RunRecord,
    ) -> Result<Self, EngineError> {
        let before = Some(rec.pending.clone());
        let next_trace = reader.next_trace_index(run_id)?;
        Ok(Self::new(run_id, now_ms, rec, before, next_trace))
    }

    fn new(
        run_id: &str,
        now_ms: u64,
        rec: RunRecord,
        before: Option<Option<Command>>,
        next_trace: u64,
    ) -> Self {
        Self {
            run_id: run_id.to_owned(),
            now_ms,
            rec,
            before,
            touched: false,
            ops: Vec::new(),
            trace: Vec::new(),
            next_trace,
        }
    }

    /// The checkpoint as the observer sees it, when this checkpoint writes the run's envelope.
    pub(super) fn snapshot(&self) -> Option<super::hooks::CommittedCheckpoint> {
        (self.touched || self.before.is_none()).then(|| super::hooks::CommittedCheckpoint {
            run_id: self.run_id.clone(),
            workflow: self.rec.workflow.clone(),
            seq: self.rec.seq,
            at_ms: self.now_ms,
            state: self.rec.state.clone(),
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
    pub(super) fn migrate(&mut self, plan: &[crate::model::Migration]) -> Result<(), String> {
        let state = crate::model::Migration::apply_all(plan, self.rec.state.clone())?;
        for m in plan {
            self.trace(TraceKind::Migrated {
                from_version: m.from_version,
                to_version: m.to_version,
            });
        }
        if let Some(last) = plan.last() {
            self.rec.state = state;
            self.rec.version = last.to_version;
            self.rec.layout_hash = last.to_layout;
        }
        Ok(())
    }

    /// The loaded state.
    pub(super) fn state(&self) -> &Value {
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
    pub(super) fn trace(&mut self, kind: TraceKind) {
        self.trace.push(TraceEvent {
            seq: self.next_trace,
            at_ms: self.now_ms,
            checkpoint: self.rec.seq,
            kind,
        });
        self.next_trace += 1;
    }

    /// The trace events this checkpoint will write, for reporting them once it is durable.
    pub(super) fn trace_events(&self) -> Reported {
        Reported {
            run_id: self.run_id.clone(),
            workflow: self.rec.workflow.clone(),
            version: self.rec.version,
            events: self.trace.clone(),
        }
    }

    /// Adds a write that is not derived from the run record (inbox, dedupe keys).
    pub(super) fn op(&mut self, op: Op) {
        self.ops.push(op);
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
        reader: &Reader,
        mut event: Event,
        mut signal: Option<Incoming>,
    ) -> Result<Driven, EngineError> {
        self.touched = true;
        // The envelope names the code that wrote its latest checkpoint.
        self.rec.body_hash = d.body_hash();
        let mut from_inbox = false;
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
            // Still waiting (a new wait, or one whose buffered signal was refused): a buffered
            // signal with the wait's name satisfies it within this same checkpoint.
            let Some(Command::Wait { name, .. }) = &self.rec.pending else {
                return Ok(Driven::Moved);
            };
            if inbox.is_none() {
                inbox = Some(reader.inbox(&self.run_id)?);
            }
            let buffered = inbox.as_mut().expect("loaded above");
            let Some(pos) = buffered.iter().position(|(_, e)| e.name == *name) else {
                return Ok(Driven::Moved);
            };
            let (index, entry) = buffered.remove(pos);
            self.op(Op::DelInbox {
                run_id: self.run_id.clone(),
                index,
            });
            event = Event::Signal(entry.payload.clone());
            signal = Some(Incoming {
                name: entry.name,
                payload: entry.payload,
                dedupe_key: entry.dedupe_key,
            });
            from_inbox = true;
        }
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
                name,
                deadline_ms,
                metadata,
            } => {
                self.rec.status = RunStatus::Waiting {
                    signal: name.clone(),
                    wait_id: seq.to_string(),
                    deadline_ms: *deadline_ms,
                };
                self.trace(TraceKind::WaitStarted {
                    signal: name.clone(),
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
        }
        self.rec.pending = Some(cmd);
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
        self.rec.pending = None;
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
        self.rec.pending = None;
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

    /// Encodes everything into the ops of one commit.
    pub(super) fn finish(mut self) -> Result<(Vec<Op>, Option<Effects>), EngineError> {
        let run_id = self.run_id.clone();
        let encode = |what: &str, e: String| {
            EngineError::Encode(format!("the {what} of run `{run_id}`: {e}"))
        };
        let mut ops = Vec::with_capacity(self.ops.len() + self.trace.len() + 5);
        let mut effects = None;
        if self.touched || self.before.is_none() {
            self.rec.updated_ms = self.now_ms;
            let old = self.before.take().flatten();
            let new = if self.rec.is_finished() {
                None
            } else {
                self.rec.pending.clone()
            };
            // Every transition moves the seq or ends the run, so the old index rows are stale.
            if let Some(old) = &old {
                self.unindex(old, &mut ops);
            }
            if let Some(new) = &new {
                self.index(new, &mut ops)
                    .map_err(|e| encode("pending wait", e))?;
            }
            if self.rec.is_finished() && !matches!(self.rec.status, RunStatus::Incompatible { .. })
            {
                ops.push(Op::ClearInbox {
                    run_id: run_id.clone(),
                });
            }
            let record = codec::to_bytes(&self.rec).map_err(|e| encode("record", e))?;
            ops.push(Op::PutRun {
                run_id: run_id.clone(),
                record,
            });
            effects = Some(Effects {
                run_id: run_id.clone(),
                workflow: self.rec.workflow.clone(),
                seq: self.rec.seq,
                cancel_timer: old.as_ref().and_then(deadline),
                start: new,
                finished: self.rec.is_finished(),
            });
        }
        ops.append(&mut self.ops);
        for event in &self.trace {
            ops.push(Op::PutTrace {
                run_id: run_id.clone(),
                index: event.seq,
                event: codec::to_bytes(event).map_err(|e| encode("trace", e))?,
            });
        }
        Ok((ops, effects))
    }

    fn unindex(&self, cmd: &Command, ops: &mut Vec<Op>) {
        let run_id = self.run_id.clone();
        match cmd {
            // A step in backoff is indexed by its timer, so that a restart re-arms it.
            Command::Step {
                not_before_ms: Some(deadline_ms),
                ..
            } => ops.push(Op::DelTimer {
                deadline_ms: *deadline_ms,
                run_id,
            }),
            Command::Step { .. } => ops.push(Op::DelReady { run_id }),
            Command::Wait { deadline_ms, .. } => {
                ops.push(Op::DelTimer {
                    deadline_ms: *deadline_ms,
                    run_id: run_id.clone(),
                });
                ops.push(Op::DelWait { run_id });
            }
            Command::Sleep { deadline_ms } => ops.push(Op::DelTimer {
                deadline_ms: *deadline_ms,
                run_id,
            }),
        }
    }

    fn index(&self, cmd: &Command, ops: &mut Vec<Op>) -> Result<(), String> {
        let run_id = self.run_id.clone();
        let workflow = self.rec.workflow.clone();
        let timer = |deadline_ms: u64| {
            Op::PutTimer(TimerRow {
                deadline_ms,
                run_id: run_id.clone(),
                seq: self.rec.seq,
                workflow: workflow.clone(),
            })
        };
        match cmd {
            Command::Step {
                not_before_ms: Some(deadline_ms),
                ..
            } => ops.push(timer(*deadline_ms)),
            Command::Step { .. } => ops.push(Op::PutReady {
                run_id: run_id.clone(),
                workflow: workflow.clone(),
            }),
            Command::Wait {
                name,
                deadline_ms,
                metadata,
            } => {
                ops.push(timer(*deadline_ms));
                let wait = PendingWait {
                    run_id: run_id.clone(),
                    workflow: workflow.clone(),
                    wait_id: self.rec.seq.to_string(),
                    signal: name.clone(),
                    metadata: metadata.clone(),
                    deadline_ms: *deadline_ms,
                };
                ops.push(Op::PutWait {
                    run_id: run_id.clone(),
                    wait: codec::to_bytes(&wait)?,
                });
            }
            Command::Sleep { deadline_ms } => ops.push(timer(*deadline_ms)),
        }
        Ok(())
    }
}

/// The deadline of a wait or sleep.
pub(super) fn deadline(cmd: &Command) -> Option<u64> {
    match cmd {
        Command::Wait { deadline_ms, .. } | Command::Sleep { deadline_ms } => Some(*deadline_ms),
        Command::Step { .. } => None,
    }
}
