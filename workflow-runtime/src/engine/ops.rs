//! What moves a run: starting it, signals and timers (step attempts run in `attempts`).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::checkpoint::{Checkpoint, Driven, Incoming};
use super::driver::{Typed, start_state};
use super::{Engine, Inner, RunHandle, Signal, SignalOutcome, check_name, report};
use crate::codec::{self, FNV_OFFSET, fnv1a};
use crate::error::{CodecError, SignalError, StartError, StoreError};
use crate::model::{Command, Event, Workflow};
use crate::store::StoredState;
use crate::trace::TraceKind;
use crate::types::{InboxEntry, RunRecord, RunStatus};

impl Engine {
    /// Starts a run of `workflow` with this id, or returns the existing run with this id.
    ///
    /// The run's first transition (up to its first step, wait or sleep) is committed together
    /// with the run record before this returns, so a returned handle always names a durable run.
    ///
    /// # Errors
    /// [`StartError::Conflict`] if the id belongs to a run of another workflow or with another
    /// input, [`StartError::NotRegistered`] if the workflow is not registered,
    /// [`StartError::InvalidName`] or [`StartError::TooLarge`] for a refused id or input,
    /// [`StartError::Codec`] if the input cannot be encoded, or [`StartError::Storage`] (then
    /// nothing was created).
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
    /// use workflow_runtime::StartError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// let run = engine.start(approval, "refund-17", 120).await?;
    /// // Starting again with the same id and input finds the same run.
    /// let again = engine.start(approval, "refund-17", 120).await?;
    /// assert_eq!(again.run_id(), run.run_id());
    /// // Another input under the same id is a conflict; nothing changes.
    /// let clash = engine.start(approval, "refund-17", 999).await;
    /// assert!(matches!(clash, Err(StartError::Conflict { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn start<W: Workflow>(
        &self,
        _workflow: W,
        run_id: impl Into<String>,
        input: W::Input,
    ) -> Result<RunHandle<W>, StartError> {
        let inner = &self.inner;
        inner.check_open()?;
        let run_id = run_id.into();
        let d = match inner
            .registry()
            .for_start(W::NAME, W::VERSION, W::LAYOUT_HASH)
        {
            Ok(d) => d,
            // A process sharing the store may start runs that only other workers drive: the
            // first transition needs the workflow's code, which the caller has.
            Err(StartError::NotRegistered { .. }) if inner.shared.is_some() => {
                Arc::new(Typed::<W>::new())
            }
            Err(e) => return Err(e),
        };
        check_name("run id", &run_id)?;
        let input_json = codec::to_value(&input)
            .map_err(|e| CodecError::encoding(format!("the input of run `{run_id}`"), e))?;
        inner.check_size(|| format!("the input of run `{run_id}`"), &input_json)?;
        let input_hash = fnv1a(FNV_OFFSET, input_json.to_string().as_bytes());

        let _lock = inner.lock_run_unclaimed(&run_id).await;
        if let Some(rec) = inner.store.run(&run_id)? {
            inner.confirm(&run_id, true).await?;
            return self.started_already::<W>(run_id, &rec, input_hash);
        }

        let now = inner.clock.now_ms();
        let (state, panicked) = match start_state::<W>(input) {
            Ok(state) => (state, None),
            Err(failure) => (StoredState::default(), Some(failure.to_string())),
        };
        let rec = new_record::<W>(state, input_hash, now);
        let mut cp = Checkpoint::create(&run_id, now, rec);
        cp.hold_detached = inner.holds_detached(W::NAME);
        cp.trace(TraceKind::Started {
            workflow: W::NAME.to_owned(),
            version: W::VERSION,
            input: input_json,
        });
        match panicked {
            None => {
                cp.drive(&*d, &*inner.store, Event::Start, None)?;
            }
            Some(message) => cp.fail(message),
        }
        match inner.commit(cp).await {
            Ok(()) => Ok(RunHandle::new(self.clone(), run_id)),
            // Shared mode: another process created the run between the read above and this
            // commit (its id was free then); the store refused this creation, and the answer
            // is the one this call gives when the run was there first.
            Err(StoreError::NotOwner { .. })
                if inner.shared.is_some()
                    && let Some(rec) = inner.store.run(&run_id)? =>
            {
                self.started_already::<W>(run_id, &rec, input_hash)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The answer of [`Engine::start`] for an id stored already: the same run for the same
    /// workflow and input, a conflict otherwise.
    fn started_already<W: Workflow>(
        &self,
        run_id: String,
        rec: &RunRecord,
        input_hash: u64,
    ) -> Result<RunHandle<W>, StartError> {
        if rec.workflow != W::NAME {
            return Err(StartError::Conflict {
                reason: format!("for workflow `{}`, not `{}`", rec.workflow, W::NAME),
                run_id,
            });
        }
        if rec.input_hash != input_hash {
            return Err(StartError::Conflict {
                reason: "with a different input".to_owned(),
                run_id,
            });
        }
        Ok(RunHandle::new(self.clone(), run_id))
    }

    /// Creates a run of `workflow` already suspended at checkpoint `seq` in `state` (the JSON of
    /// a `W::State` value) waiting on `pending`, as if it had got there by itself; used by
    /// `workflow_runtime::testing` to resume from a recorded or hand-built checkpoint.
    ///
    /// # Errors
    /// [`StartError::NotRegistered`], [`StartError::Conflict`] if the id exists, or a storage
    /// error.
    pub(crate) async fn import<W: Workflow>(
        &self,
        _workflow: W,
        run_id: impl Into<String>,
        state: Value,
        seq: u64,
        pending: Command,
    ) -> Result<RunHandle<W>, StartError> {
        let inner = &self.inner;
        inner.check_open()?;
        let run_id = run_id.into();
        inner
            .registry()
            .for_start(W::NAME, W::VERSION, W::LAYOUT_HASH)?;
        let _lock = inner.lock_run(&run_id).await;
        if inner.store.run(&run_id)?.is_some() {
            return Err(StartError::Conflict {
                reason: "and cannot be imported over".to_owned(),
                run_id,
            });
        }
        let now = inner.clock.now_ms();
        let rec = new_record::<W>(&state, 0, now);
        let mut cp = Checkpoint::create(&run_id, now, rec);
        cp.trace(TraceKind::Imported { state });
        cp.place(seq, pending);
        inner.commit(cp).await?;
        Ok(RunHandle::new(self.clone(), run_id))
    }

    /// Sends the signal `name` with `payload` to a run; shorthand for
    /// [`Engine::send`]`(run_id, Signal::new(name, payload))`.
    ///
    /// # Errors
    /// As [`Engine::send`].
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
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// assert_eq!(engine.signal("r-1", "approve", true).await?, SignalOutcome::Delivered);
    /// assert_eq!(run.result().await?, Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn signal(
        &self,
        run_id: &str,
        name: &str,
        payload: impl Serialize,
    ) -> Result<SignalOutcome, SignalError> {
        self.send(run_id, Signal::new(name, payload)).await
    }

    /// Sends a signal to a run.
    ///
    /// If the run waits for a signal of this name, the wait consumes it and the resulting
    /// checkpoint is committed before this returns ([`SignalOutcome::Delivered`]); otherwise it
    /// is stored in the run's inbox for the next such wait ([`SignalOutcome::Buffered`]).
    ///
    /// # Errors
    /// In this order: [`SignalError::InvalidName`], [`SignalError::TooLarge`] or
    /// [`SignalError::Codec`] for a refused signal; [`SignalError::UnknownRun`]; (a repeated
    /// dedupe key is [`SignalOutcome::Duplicate`]); [`SignalError::RunFinished`] with the final
    /// status; (a signal for an earlier wait is [`SignalOutcome::Stale`]);
    /// [`SignalError::UnknownSignal`] if no registered version of the run's workflow waits for
    /// a signal of this name (checked when every wait names its signal literally);
    /// [`SignalError::UnknownWait`] or [`SignalError::WrongSignal`] for a bad
    /// [`Signal::for_wait`]; [`SignalError::PayloadMismatch`] if the payload does not decode
    /// into the waited type (the run is untouched); [`SignalError::NotRegistered`] or
    /// [`SignalError::Incompatible`] if the run cannot be driven by the registered code;
    /// [`SignalError::Storage`].
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
    /// use workflow_runtime::SignalError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// engine.start(approval, "r-1", 10).await?;
    ///
    /// // A typo is refused with the names the workflow does wait for.
    /// let typo = engine.send("r-1", Signal::new("aprove", true)).await;
    /// assert!(matches!(typo, Err(SignalError::UnknownSignal { ref expected, .. }) if expected == &["approve"]));
    /// // So is a payload of the wrong type, and the run keeps waiting.
    /// let wrong = engine.send("r-1", Signal::new("approve", "yes")).await;
    /// assert!(matches!(wrong, Err(SignalError::PayloadMismatch { .. })));
    ///
    /// // A dedupe key makes re-sending safe.
    /// let decision = Signal::new("approve", true).dedupe_key("ticket-8812");
    /// assert_eq!(engine.send("r-1", decision.clone()).await?, SignalOutcome::Delivered);
    /// assert_eq!(engine.send("r-1", decision).await?, SignalOutcome::Duplicate);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn send(&self, run_id: &str, signal: Signal) -> Result<SignalOutcome, SignalError> {
        // Boxed: the delivery holds the loaded record and the checkpoint across its awaits
        // (about 6 KB), and a caller that spawns a task per signal would have tokio copy all of
        // it as the task is spawned and as it completes; boxed, it is allocated once, in place.
        Box::pin(self.deliver(run_id, signal)).await
    }

    /// The body of [`Engine::send`].
    async fn deliver(&self, run_id: &str, signal: Signal) -> Result<SignalOutcome, SignalError> {
        let inner = &self.inner;
        inner.check_open()?;
        let Signal {
            name,
            payload,
            dedupe_key,
            wait_id,
        } = signal;
        check_name("run id", run_id)?;
        check_name("signal name", &name)?;
        let payload = payload?;
        inner.check_size(
            || format!("the payload of signal `{name}` for `{run_id}`"),
            &payload,
        )?;

        let _lock = inner.lock_run(run_id).await;
        let store = &*inner.store;
        let rec = store.run(run_id)?.ok_or_else(|| SignalError::UnknownRun {
            run_id: run_id.to_owned(),
        })?;
        let now = inner.clock.now_ms();
        let run = || run_id.to_owned();

        if let Some(key) = &dedupe_key
            && store.has_dedupe(run_id, key)?
        {
            let mut cp = Checkpoint::load(run_id, now, rec);
            cp.trace(TraceKind::SignalDuplicate {
                signal: name,
                dedupe_key: key.clone(),
            });
            inner.commit(cp).await?;
            return Ok(SignalOutcome::Duplicate);
        }
        if rec.is_finished() {
            inner.confirm(run_id, true).await?;
            return Err(match rec.status {
                RunStatus::Incompatible { reason } => SignalError::Incompatible {
                    run_id: run(),
                    reason,
                },
                status => SignalError::RunFinished {
                    run_id: run(),
                    status,
                },
            });
        }
        // The wait the run is suspended on, if any: it is what a signal is delivered to.
        let wait = rec
            .pending
            .clone()
            .filter(|c| matches!(c, Command::Wait { .. }));
        let answers = wait.as_ref().is_some_and(|w| w.waits_for(&name));
        inner.check_signal_name(run_id, &rec.workflow, answers, &name)?;
        if let Some(wanted) = wait_id
            && let Some(outcome) = check_addressed(run_id, &rec, wait.as_ref(), wanted, &name)?
        {
            inner.confirm(run_id, true).await?;
            return Ok(outcome);
        }
        if inner.must_buffer(run_id, &rec.workflow, &name)? {
            return inner
                .send_buffered(run_id, rec, name, payload, dedupe_key)
                .await;
        }
        let workflow = rec.workflow.clone();
        let (d, mut cp) = match inner.prepare(run_id, rec).await? {
            Ok(ready) => ready,
            Err(Some(reason)) => {
                return Err(SignalError::Incompatible {
                    run_id: run(),
                    reason,
                });
            }
            Err(None) => return Err(SignalError::NotRegistered { workflow }),
        };
        let mismatch = |message| SignalError::PayloadMismatch {
            run_id: run(),
            signal: name.clone(),
            message,
        };

        let outcome = if let Some(wait) = wait.filter(|_| answers) {
            let incoming = Incoming {
                name: name.clone(),
                payload: payload.clone(),
                dedupe_key: dedupe_key.clone(),
            };
            let event = wait.signal_event(&name, payload);
            match cp.drive(&*d, store, event, Some(incoming))? {
                Driven::Refused(message) => return Err(mismatch(message)),
                Driven::Parked(reason) => {
                    inner.commit(cp).await?;
                    return Err(SignalError::Incompatible {
                        run_id: run(),
                        reason,
                    });
                }
                Driven::Moved => SignalOutcome::Delivered,
            }
        } else {
            if let Some(message) = d.refuse_payload(&name, &payload) {
                return Err(mismatch(message));
            }
            cp.buffer(InboxEntry::new(
                name.clone(),
                payload.clone(),
                dedupe_key.clone(),
            ));
            cp.trace(TraceKind::SignalBuffered {
                signal: name.clone(),
                payload,
                dedupe_key: dedupe_key.clone(),
            });
            SignalOutcome::Buffered
        };
        if let Some(key) = dedupe_key {
            cp.dedupe(key);
        }
        inner.commit(cp).await?;
        Ok(outcome)
    }
}

impl Inner {
    /// Refuses a signal name that no registered version of `workflow` waits on, so that a
    /// mistyped name fails the call instead of waiting in the inbox forever. The name the run
    /// waits on now (`answers`) is always accepted.
    pub(super) fn check_signal_name(
        &self,
        run_id: &str,
        workflow: &str,
        answers: bool,
        name: &str,
    ) -> Result<(), SignalError> {
        let Some(known) = self.registry().signal_names(workflow) else {
            return Ok(());
        };
        if answers || known.contains(&name) {
            return Ok(());
        }
        Err(SignalError::UnknownSignal {
            run_id: run_id.to_owned(),
            workflow: workflow.to_owned(),
            signal: name.to_owned(),
            expected: known.iter().map(|&n| n.to_owned()).collect(),
        })
    }
}

/// Checks a signal addressed to wait `wanted`: `Some(Stale)` if that wait is over, `None` if it
/// is the current wait, an error if it never existed or waits for another signal.
fn check_addressed(
    run_id: &str,
    rec: &RunRecord,
    wait: Option<&Command>,
    wanted: String,
    name: &str,
) -> Result<Option<SignalOutcome>, SignalError> {
    // A wait's id is the seq of the checkpoint that began it, so ids below the current seq
    // name waits that are over.
    match wait {
        Some(wait) if wanted == rec.seq.to_string() => {
            if wait.waits_for(name) {
                Ok(None)
            } else {
                Err(SignalError::WrongSignal {
                    run_id: run_id.to_owned(),
                    wait_id: wanted,
                    expected: wait.signal_names().join("|"),
                    signal: name.to_owned(),
                })
            }
        }
        _ if wanted.parse::<u64>().is_ok_and(|w| w < rec.seq) => Ok(Some(SignalOutcome::Stale)),
        _ => Err(SignalError::UnknownWait {
            run_id: run_id.to_owned(),
            wait_id: wanted,
        }),
    }
}

impl Inner {
    /// A timer came due: time out the wait or end the sleep it belongs to, if the run is still
    /// suspended there, or cut off a step's attempt or end its backoff.
    pub(super) async fn on_timer(&self, run_id: String, seq: u64) {
        self.note_fired(&run_id);
        if let Err(e) = self.fire(&run_id, seq).await {
            report(&run_id, "a timer", &e);
        }
    }

    async fn fire(&self, run_id: &str, seq: u64) -> Result<(), StoreError> {
        let _lock = self.lock_run(run_id).await;
        let Some(rec) = self.store.run(run_id)? else {
            return Ok(());
        };
        if rec.is_finished() || rec.seq != seq {
            return Ok(());
        }
        if rec.workflow == super::SCHEDULE_WORKFLOW {
            return self.fire_schedule(run_id, rec).await;
        }
        let (event, kind) = match &rec.pending {
            Some(Command::Step { .. }) => return self.on_step_timer(run_id, rec).await,
            Some(wait @ Command::Wait { .. }) => (
                Event::TimedOut,
                TraceKind::TimedOut {
                    signal: wait.signal_names().join("|"),
                    wait_id: seq.to_string(),
                },
            ),
            Some(Command::Sleep { deadline_ms }) => (
                Event::Woke,
                TraceKind::Woke {
                    until_ms: *deadline_ms,
                },
            ),
            _ => return Ok(()),
        };
        let Ok((d, mut cp)) = self.prepare(run_id, rec).await? else {
            return Ok(());
        };
        cp.trace(kind);
        cp.drive(&*d, &*self.store, event, None)?;
        self.commit(cp).await
    }
}

/// The envelope of a run of `W` that has not made its first transition yet.
pub(super) fn new_record<W: Workflow>(
    state: impl Into<StoredState>,
    input_hash: u64,
    now: u64,
) -> RunRecord {
    let mut rec = RunRecord::new(W::NAME, state, now);
    rec.version = W::VERSION;
    rec.layout_hash = W::LAYOUT_HASH;
    rec.body_hash = W::BODY_HASH;
    rec.input_hash = input_hash;
    rec
}
