//! Running a batch of steps (`ctx.join`, `ctx.fan_out`): its unfinished items run at once, up
//! to the batch's bound, and their results are checkpointed as they arrive.
//!
//! Results are committed in groups: an item that finishes queues its result for the run and
//! asks for a flush; the flush takes the run's lock and commits every result queued by then in
//! one checkpoint. While one commit is in flight, the next results queue up behind it, so a
//! fan-out of many fast steps costs far fewer commits than steps. A crash loses only the
//! queued results; after the restart the batch's stored items say which steps are done, and
//! only the others run again, under the same idempotency keys.
//!
//! An item's retries follow its policy, with the backoff waited in memory: unlike a single
//! step's, it is not a durable timer, and a crash starts the item again at attempt 1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};

use super::{Inner, lock, report};
use crate::error::{EngineError, StoreError};
use crate::model::{BatchItem, Command};
use crate::retry::RetryPolicy;
use crate::step::{StepContext, StepError};
use crate::types::panic_text;

/// The batches running in this engine, and the results waiting for their commit.
#[derive(Default)]
pub(super) struct Batches {
    /// The position of the batch running per run, and its task.
    running: Mutex<HashMap<String, (u64, AbortHandle)>>,
    /// Results not yet committed, per run.
    queued: Mutex<HashMap<String, Vec<Finished>>>,
}

impl Batches {
    /// Whether a batch runs for this run (shared mode keeps the run's lease meanwhile).
    pub(super) fn runs(&self, run_id: &str) -> bool {
        lock(&self.running).contains_key(run_id)
    }

    /// Stops the run's batch: another worker owns the run now (shared mode).
    pub(super) fn abort(&self, run_id: &str) {
        if let Some((_, task)) = lock(&self.running).remove(run_id) {
            task.abort();
        }
    }

    /// Stops every batch (shutdown, simulated crash).
    pub(super) fn abort_all(&self) {
        for (_, (_, task)) in lock(&self.running).drain() {
            task.abort();
        }
        lock(&self.queued).clear();
    }
}

/// One item's end.
struct Finished {
    position: u64,
    index: usize,
    name: String,
    result: Result<Value, StepError>,
    duration_ms: u64,
}

impl Inner {
    /// Carries out a pending [`Command::Batch`] at checkpoint `position`: runs its items that
    /// have no result yet. A batch already running for this run and position is left alone.
    pub(super) fn launch_batch(&self, run_id: &str, workflow: &str, position: u64, cmd: &Command) {
        let Command::Batch { items, limit } = cmd else {
            return;
        };
        let mut running = lock(&self.batches.running);
        if running.get(run_id).is_some_and(|(p, _)| *p == position) {
            return;
        }
        let todo: Vec<(usize, BatchItem)> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.result.is_none())
            .map(|(n, i)| (n, i.clone()))
            .collect();
        let permits = if *limit == 0 {
            todo.len().max(1)
        } else {
            *limit as usize
        };
        let gate = Arc::new(Semaphore::new(permits));
        let mut set = JoinSet::new();
        for (index, item) in todo {
            let run = self.prepare_item(run_id, workflow, position, index, &item);
            let gate = gate.clone();
            let weak = self.me.clone();
            let run_id = run_id.to_owned();
            set.spawn(async move {
                let Ok(permit) = gate.acquire_owned().await else {
                    return;
                };
                let Some(done) = run.await else {
                    return;
                };
                // The next item may start while this result waits for its commit: results
                // that arrive meanwhile share the next one.
                drop(permit);
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                lock(&inner.batches.queued)
                    .entry(run_id.clone())
                    .or_default()
                    .push(done);
                if let Err(e) = inner.flush_batch(&run_id).await {
                    report(&run_id, "a batch result", &e);
                }
            });
        }
        let busy = self.busy.guard();
        let task = tokio::spawn(async move {
            let _busy = busy;
            while set.join_next().await.is_some() {}
        });
        running.insert(run_id.to_owned(), (position, task.abort_handle()));
    }

    /// The future that runs one item, with its retries; `None` if the engine went away.
    fn prepare_item(
        &self,
        run_id: &str,
        workflow: &str,
        position: u64,
        index: usize,
        item: &BatchItem,
    ) -> impl Future<Output = Option<Finished>> + Send + 'static {
        let name = item.name.clone();
        let input = item.input.clone();
        let double = self.instrument.as_ref().and_then(|i| i.step_double(&name));
        let entry = self.driver(workflow).and_then(|d| d.step(&name));
        let policy: RetryPolicy = item
            .retry
            .or_else(|| entry.map(|e| e.retry))
            .unwrap_or_default();
        let missing = format!("workflow `{workflow}` has no step named `{name}`");
        let clock = self.clock.clone();
        let data = self.data.clone();
        let run = run_id.to_owned();
        async move {
            let started_ms = clock.now_ms();
            let mut attempt = 1;
            let result = loop {
                let ctx = StepContext::new(run.as_str(), name.as_str(), position, attempt)
                    .with_item(index)
                    .with_data_map(data.clone());
                let key = ctx.idempotency_key();
                let fut = match (&double, entry) {
                    (Some(double), _) => double(ctx, input.clone()),
                    (None, Some(entry)) => (entry.call)(ctx, input.clone()),
                    (None, None) => break Err(StepError::permanent(missing.clone())),
                };
                let outcome = match tokio::spawn(fut).await {
                    Ok(r) => r,
                    Err(e) if e.is_panic() => {
                        let message =
                            format!("step `{name}` panicked: {}", panic_text(&*e.into_panic()));
                        Err(if policy.retry_panics {
                            StepError::retryable(message)
                        } else {
                            StepError::permanent(message)
                        })
                    }
                    // Aborted with the engine: nothing to record.
                    Err(_) => return None,
                };
                match outcome {
                    Err(e) if policy.retries(attempt, &e) => {
                        tokio::time::sleep(policy.backoff(attempt, &key)).await;
                        attempt += 1;
                    }
                    other => break other,
                }
            };
            let duration_ms = clock.now_ms().saturating_sub(started_ms);
            Some(Finished {
                position,
                index,
                name,
                result,
                duration_ms,
            })
        }
    }

    /// Commits the queued results of run `run_id`'s batch, and the workflow's next
    /// transition once every item is in.
    async fn flush_batch(&self, run_id: &str) -> Result<(), StoreError> {
        let _lock = self.lock_run(run_id).await;
        let queued = lock(&self.batches.queued)
            .remove(run_id)
            .unwrap_or_default();
        if queued.is_empty() {
            // An earlier flush took them with its own.
            return Ok(());
        }
        let Some(rec) = self.store.run(run_id)? else {
            return Ok(());
        };
        let position = rec.seq;
        if rec.is_finished() || !matches!(rec.pending, Some(Command::Batch { .. })) {
            return Ok(());
        }
        let Ok((d, mut cp)) = self.prepare(run_id, rec).await? else {
            return Ok(());
        };
        let results = queued
            .into_iter()
            .filter(|f| f.position == position)
            .map(|f| {
                let result = match f.result {
                    Ok(value) => match self
                        .check_size(|| format!("the output of step `{}`", f.name), &value)
                    {
                        Ok(()) => Ok(value),
                        Err(e) => Err(StepError::permanent(EngineError::from(e).to_string())),
                    },
                    Err(e) => Err(e),
                };
                (f.index, f.name, result, f.duration_ms)
            })
            .collect();
        cp.batch_results(&*d, &*self.store, results)?;
        if !matches!(cp.rec.pending, Some(Command::Batch { .. })) || cp.rec.seq != position {
            let mut running = lock(&self.batches.running);
            if running.get(run_id).is_some_and(|(p, _)| *p == position) {
                running.remove(run_id);
            }
        }
        self.commit(cp).await
    }
}
