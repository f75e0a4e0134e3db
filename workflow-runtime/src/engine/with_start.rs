//! Signal-with-start: one durable operation that starts a run if it does not exist and
//! delivers a signal to it, for webhooks that cannot know whether the run is there yet.

use serde_json::Value;

use super::checkpoint::{Checkpoint, Driven, Incoming};
use super::driver::start_state;
use super::ops::new_record;
use super::{Engine, RunHandle, Signal, SignalOutcome, check_name};
use crate::codec::{self, FNV_OFFSET, fnv1a};
use crate::error::{CodecError, EngineError, SignalError, StartError};
use crate::model::{Event, Workflow};
use crate::store::{StoreError, StoredState};
use crate::trace::TraceKind;
use crate::types::InboxEntry;

/// Why [`Engine::signal_with_start`] neither started nor signalled; nothing was created or
/// stored, except as each variant says.
///
/// # Examples
///
/// ```
/// use workflow_runtime::{SignalError, SignalWithStartError, StartError};
/// let e = SignalWithStartError::from(SignalError::UnknownRun { run_id: "r".into() });
/// assert!(matches!(e, SignalWithStartError::Signal(_)));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalWithStartError {
    /// The run could not be started: the id belongs to a run of another workflow, the
    /// workflow is not registered, the input was refused, or storage failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The signal was refused (its name, size or payload), or storage failed. When the run
    /// existed already, this is what [`Engine::send`] would have said; when it did not, the
    /// run was not created either.
    #[error(transparent)]
    Signal(#[from] SignalError),
}

impl From<SignalWithStartError> for EngineError {
    fn from(e: SignalWithStartError) -> Self {
        match e {
            SignalWithStartError::Start(e) => e.into(),
            SignalWithStartError::Signal(e) => e.into(),
        }
    }
}

impl Engine {
    /// Delivers `signal` to run `run_id` of `workflow`, starting the run with `input` first if
    /// no run has that id: the start, the run's first transition and the signal (delivered to
    /// the run's wait, or buffered for a later one) are one commit, so a crash leaves either
    /// nothing or both.
    ///
    /// Made for webhooks: the same call serves the first event of a business object (which
    /// starts its run) and every later one. Give the signal a
    /// [`dedupe_key`](Signal::dedupe_key) (the webhook's event id) and a retried delivery is
    /// [`SignalOutcome::Duplicate`], whether the first attempt started the run or not.
    ///
    /// `input` is used only to create the run; an existing run of `workflow` receives the
    /// signal whatever input it was started with (unlike [`Engine::start`], which refuses
    /// another input as a conflict).
    ///
    /// # Errors
    /// [`SignalWithStartError::Start`] with [`StartError::Conflict`] if the id belongs to a run
    /// of another workflow, or with what [`Engine::start`] reports for the workflow and input;
    /// [`SignalWithStartError::Signal`] with what [`Engine::send`] reports for the signal
    /// (unknown name, payload mismatch, a finished run, storage). A refused signal creates no
    /// run.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// #[workflow]
    /// async fn ticket(ctx: &mut WorkflowContext, id: String) -> Result<Vec<String>, WorkflowError> {
    ///     let mut notes: Vec<String> = Vec::new();
    ///     for _ in 0..2u8 {
    ///         let note = ctx.wait_for_signal::<String>("comment", Duration::from_secs(60), ()).await?;
    ///         notes.push(note);
    ///     }
    ///     Ok(notes)
    /// }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = Engine::builder().register(ticket).open_in_memory().await?;
    /// // The first webhook starts the run and its signal answers the first wait.
    /// let first = Signal::new("comment", "hello").dedupe_key("evt-1");
    /// let (run, outcome) = engine.signal_with_start(ticket, "T-1", "T-1".into(), first.clone()).await?;
    /// assert_eq!(outcome, SignalOutcome::Delivered);
    /// // A retried delivery changes nothing; the next event reaches the same run.
    /// let (_, again) = engine.signal_with_start(ticket, "T-1", "T-1".into(), first).await?;
    /// assert_eq!(again, SignalOutcome::Duplicate);
    /// engine.signal_with_start(ticket, "T-1", "T-1".into(), Signal::new("comment", "bye")).await?;
    /// assert_eq!(run.result().await?, Ok(vec!["hello".to_owned(), "bye".to_owned()]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn signal_with_start<W: Workflow>(
        &self,
        workflow: W,
        run_id: impl Into<String>,
        input: W::Input,
        signal: Signal,
    ) -> Result<(RunHandle<W>, SignalOutcome), SignalWithStartError> {
        let inner = &self.inner;
        inner.check_open().map_err(StartError::from)?;
        let run_id = run_id.into();
        let d = inner
            .registry()
            .for_start(W::NAME, W::VERSION, W::LAYOUT_HASH)?;
        check_name("run id", &run_id).map_err(StartError::from)?;
        check_name("signal name", &signal.name).map_err(SignalError::from)?;
        let input_json = codec::to_value(&input)
            .map_err(|e| CodecError::encoding(format!("the input of run `{run_id}`"), e))
            .map_err(StartError::from)?;
        inner
            .check_size(|| format!("the input of run `{run_id}`"), &input_json)
            .map_err(StartError::from)?;

        let (exists, signal) = {
            let _lock = inner.lock_run_unclaimed(&run_id).await;
            match inner.store.run(&run_id).map_err(StartError::from)? {
                Some(rec) => (Some(rec.workflow), signal),
                None => {
                    // Shared mode: kept for the send below if another process creates the run
                    // at the same instant (the store then refuses this creation).
                    let again = inner.shared.as_ref().map(|_| signal.clone());
                    match self
                        .create_signalled::<W>(&*d, &run_id, input, input_json, signal)
                        .await
                    {
                        Ok(outcome) => {
                            return Ok((RunHandle::new(self.clone(), run_id), outcome));
                        }
                        Err(SignalWithStartError::Start(StartError::Storage(
                            StoreError::NotOwner { .. },
                        ))) if let Some(signal) = again
                            && let Some(rec) =
                                inner.store.run(&run_id).map_err(StartError::from)? =>
                        {
                            (Some(rec.workflow), signal)
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        // The run exists: this is an ordinary send, under its own lock. A purge between the
        // two locks makes the send report an unknown run, which the caller may retry.
        if let Some(found) = exists
            && found != W::NAME
        {
            return Err(StartError::Conflict {
                reason: format!("for workflow `{found}`, not `{}`", W::NAME),
                run_id,
            }
            .into());
        }
        let _ = workflow;
        let outcome = self.send(&run_id, signal).await?;
        Ok((RunHandle::new(self.clone(), run_id), outcome))
    }

    /// Creates run `run_id` and hands it `signal` in the same checkpoint; called under the
    /// run's lock when no run has the id. A refused signal leaves nothing behind.
    async fn create_signalled<W: Workflow>(
        &self,
        d: &dyn super::driver::Driver,
        run_id: &str,
        input: W::Input,
        input_json: Value,
        signal: Signal,
    ) -> Result<SignalOutcome, SignalWithStartError> {
        let inner = &self.inner;
        let Signal {
            name,
            payload,
            dedupe_key,
            wait_id,
        } = signal;
        let payload = payload.map_err(SignalError::from)?;
        inner
            .check_size(
                || format!("the payload of signal `{name}` for `{run_id}`"),
                &payload,
            )
            .map_err(SignalError::from)?;
        inner.check_signal_name(run_id, W::NAME, false, &name)?;
        if let Some(wait_id) = wait_id {
            // A run that does not exist yet has no wait to address.
            return Err(SignalError::UnknownWait {
                run_id: run_id.to_owned(),
                wait_id,
            }
            .into());
        }
        let mismatch = |message| SignalError::PayloadMismatch {
            run_id: run_id.to_owned(),
            signal: name.clone(),
            message,
        };
        if let Some(message) = d.refuse_payload(&name, &payload) {
            return Err(mismatch(message).into());
        }

        let input_hash = fnv1a(FNV_OFFSET, input_json.to_string().as_bytes());
        let now = inner.clock.now_ms();
        let (state, panicked) = match start_state::<W>(input) {
            Ok(state) => (state, None),
            Err(failure) => (StoredState::default(), Some(failure.to_string())),
        };
        let mut cp = Checkpoint::create(run_id, now, new_record::<W>(state, input_hash, now));
        cp.hold_detached = inner.holds_detached(W::NAME);
        cp.trace(TraceKind::Started {
            workflow: W::NAME.to_owned(),
            version: W::VERSION,
            input: input_json,
        });
        let store = &*inner.store;
        let outcome = match panicked {
            Some(message) => {
                cp.fail(message);
                None
            }
            None => {
                cp.drive(d, store, Event::Start, None)
                    .map_err(StartError::from)?;
                match cp.rec.pending.clone().filter(|w| w.waits_for(&name)) {
                    Some(wait) if !cp.rec.is_finished() => {
                        let incoming = Incoming {
                            name: name.clone(),
                            payload: payload.clone(),
                            dedupe_key: dedupe_key.clone(),
                        };
                        let event = wait.signal_event(&name, payload.clone());
                        match cp
                            .drive(d, store, event, Some(incoming))
                            .map_err(SignalError::from)?
                        {
                            Driven::Refused(message) => return Err(mismatch(message).into()),
                            Driven::Moved | Driven::Parked(_) => Some(SignalOutcome::Delivered),
                        }
                    }
                    _ => None,
                }
            }
        };
        let outcome = match outcome {
            Some(delivered) => delivered,
            None => {
                cp.buffer(InboxEntry::new(
                    name.clone(),
                    payload.clone(),
                    dedupe_key.clone(),
                ));
                cp.trace(TraceKind::SignalBuffered {
                    signal: name,
                    payload,
                    dedupe_key: dedupe_key.clone(),
                });
                SignalOutcome::Buffered
            }
        };
        if let Some(key) = dedupe_key {
            cp.dedupe(key);
        }
        inner.commit(cp).await.map_err(StartError::from)?;
        Ok(outcome)
    }
}
