//! A typed handle to one run.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::Notify;

use super::{Engine, Inner, RunStatus, lock};
use crate::codec;
use crate::error::{CodecError, EngineError, ResultError};
use crate::model::Workflow;

/// A run of workflow `W`, as returned by [`Engine::start`] and [`Engine::handle`].
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// #[workflow]
/// async fn approval(ctx: &mut WorkflowContext) -> Result<bool, WorkflowError> {
///     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), ()).await?)
/// }
///
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// engine.start(approval, "a-1", ()).await?;
/// // Later, perhaps in another request: re-attach by id.
/// let run = engine.handle(approval, "a-1")?;
/// assert!(matches!(run.status()?, RunStatus::Waiting { ref signal, .. } if signal == "approve"));
/// engine.signal("a-1", "approve", true).await?;
/// assert_eq!(run.result().await?, Ok(true));
/// assert_eq!(run.status()?, RunStatus::Completed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub struct RunHandle<W: Workflow> {
    engine: Engine,
    run_id: String,
    workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> Clone for RunHandle<W> {
    fn clone(&self) -> Self {
        Self::new(self.engine.clone(), self.run_id.clone())
    }
}

impl<W: Workflow> fmt::Debug for RunHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle")
            .field("workflow", &W::NAME)
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl<W: Workflow> RunHandle<W> {
    pub(super) fn new(engine: Engine, run_id: String) -> Self {
        Self {
            engine,
            run_id,
            workflow: PhantomData,
        }
    }

    /// The run's id.
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
    /// assert_eq!(run.run_id(), "r-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where the run stands; see [`Engine::status`].
    ///
    /// # Errors
    /// As [`Engine::status`].
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
    /// match run.status()? {
    ///     RunStatus::Waiting { signal, deadline_ms, .. } => println!("waits for {signal} until {deadline_ms}"),
    ///     other => println!("{other}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn status(&self) -> Result<RunStatus, EngineError> {
        self.engine.status(&self.run_id)
    }

    /// Waits until the run finishes and returns the workflow's output (its `Result`: a
    /// workflow that returned `Err(e)` gives `Ok(Err(e))`).
    ///
    /// # Errors
    /// [`ResultError::RunFailed`] if the run failed without an output (a panic),
    /// [`ResultError::Incompatible`] if it cannot be driven by the registered code,
    /// [`ResultError::NotRegistered`] if its workflow is not registered here,
    /// [`ResultError::ShutDown`] if the engine shuts down first, [`ResultError::Codec`] if the
    /// output does not decode, or [`ResultError::Storage`].
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
    /// use workflow_runtime::ResultError;
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// let run = engine.start(approval, "r-1", 10).await?;
    /// engine.signal("r-1", "approve", false).await?;
    /// match run.result().await {
    ///     Ok(Ok(approved)) => assert!(!approved),
    ///     Ok(Err(workflow_error)) => println!("the workflow returned an error: {workflow_error}"),
    ///     Err(ResultError::Stopped { status, .. }) => println!("stopped by an operator: {status}"),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn result(&self) -> Result<W::Output, ResultError> {
        let Some(bound) = self.engine.inner.wait_bound() else {
            return self.wait_for_end().await;
        };
        // A test engine bounds the wait, so a run that never ends fails the test with a
        // message instead of hanging the suite.
        match tokio::time::timeout(bound, self.wait_for_end()).await {
            Ok(result) => result,
            Err(_) => panic!(
                "waited {bound:?} for the result of run `{}` ({}), which did not end; it stands at: {}",
                self.run_id,
                W::NAME,
                self.status()
                    .map_or_else(|e| format!("(status unreadable: {e})"), |s| s.to_string())
            ),
        }
    }

    async fn wait_for_end(&self) -> Result<W::Output, ResultError> {
        let inner = &self.engine.inner;
        let waiter = Waiter::new(inner, &self.run_id);
        let mut shutdown = inner.shutdown.subscribe();
        loop {
            // Registered before reading the store, so a finish committed in between still wakes us.
            let notified = waiter.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The record the ending commit left for its waiters, else the store's.
            let rec = match inner.ended_record(&self.run_id) {
                Some(rec) => rec,
                None => inner
                    .store
                    .run(&self.run_id)?
                    .ok_or_else(|| ResultError::UnknownRun {
                        run_id: self.run_id.clone(),
                    })?,
            };
            let run_id = || self.run_id.clone();
            // An ended run's answer must rest on acknowledged state (see `Inner::confirm`);
            // while the device fails, the answer waits for the store to recover.
            if rec.is_finished()
                && let Err(e) = inner.confirm(&self.run_id, false).await
            {
                if !e.is_device_failure() {
                    return Err(e.into());
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                    _ = shutdown.wait_for(|down| *down) => return Err(ResultError::ShutDown),
                }
                continue;
            }
            if rec.erased_ms.is_some() {
                return Err(ResultError::Erased {
                    run_id: run_id(),
                    status: rec.status,
                });
            }
            match (inner.status_of(&rec), rec.output) {
                (RunStatus::Completed | RunStatus::Failed { .. }, Some(output)) => {
                    return codec::from_value(output).map_err(|e| {
                        CodecError::decoding(format!("the output of run `{}`", self.run_id), e)
                            .into()
                    });
                }
                (RunStatus::Failed { message }, None) => {
                    return Err(ResultError::RunFailed {
                        run_id: run_id(),
                        message,
                    });
                }
                (status @ (RunStatus::Cancelled { .. } | RunStatus::Terminated { .. }), _) => {
                    return Err(ResultError::Stopped {
                        run_id: run_id(),
                        status,
                    });
                }
                (RunStatus::Incompatible { reason }, _) => {
                    return Err(ResultError::Incompatible {
                        run_id: run_id(),
                        reason,
                    });
                }
                // Nothing in this engine would ever move it.
                _ if !inner.registry().contains(&rec.workflow) && inner.result_poll().is_none() => {
                    return Err(ResultError::NotRegistered {
                        workflow: rec.workflow,
                    });
                }
                _ => {}
            }
            // Shared with other workers, the run may end elsewhere: read it again now and then.
            let poll = inner.result_poll();
            tokio::select! {
                () = &mut notified => {}
                () = async {
                    match poll {
                        Some(every) => tokio::time::sleep(every).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = shutdown.wait_for(|down| *down) => return Err(ResultError::ShutDown),
            }
        }
    }
}

/// Registration of interest in one run's end; removed when the last interested party leaves.
struct Waiter<'a> {
    inner: &'a Inner,
    run_id: &'a str,
    notify: Arc<Notify>,
}

impl<'a> Waiter<'a> {
    fn new(inner: &'a Inner, run_id: &'a str) -> Self {
        let notify = lock(&inner.waiters)
            .entry(run_id.to_owned())
            .or_default()
            .clone();
        Self {
            inner,
            run_id,
            notify,
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.inner.waiters);
        // Two references: the map's and ours.
        if waiters
            .get(self.run_id)
            .is_some_and(|n| Arc::strong_count(n) == 2)
        {
            waiters.remove(self.run_id);
            lock(&self.inner.ended).remove(self.run_id);
        }
    }
}
