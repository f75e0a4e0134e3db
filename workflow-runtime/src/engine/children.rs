//! Child workflows: creating the children a checkpoint asks for in that checkpoint's commit,
//! handing their outcomes to the parent, and cancelling or terminating awaited children with
//! their parent.
//!
//! Exactly once: a child run is created by the parent's checkpoint that suspends on
//! [`Command::Children`], in the same store transaction ([`CheckpointWrite::others`]). A crash
//! before that commit loses both; the parent's transition then runs again at the same
//! checkpoint number, derives the same run ids and creates them then. A run id that exists
//! already (a revived parent asking again, or a given id) is adopted when it belongs to a run
//! of the same workflow and input, and is a [`ChildErrorKind::Conflict`] otherwise.
//!
//! Outcomes: a child's record names its parent; the commit that ends the child makes its
//! outcome durable in its own record. Once it is acknowledged, the engine wakes the parent,
//! which reads the outcomes of its ended children from their records and checkpoints them. A
//! parent awaiting children is indexed as ready, so after a crash between the child's end and
//! the parent's checkpoint, the next open resumes the parent, which reads them again: an
//! outcome is never lost, and each reaches the parent once (stored in its pending command).
//!
//! Shared mode (several workers on one store): the parent's commit that creates the children
//! is written under the parent's lease, and each child under [`Fence::Create`], so that an
//! `Engine::start` of the same id in another process at the same instant makes the store
//! refuse the whole commit instead of one overwriting the other; the commit is then planned
//! again, and the child adopted or a conflict. The worker that ends a child collects the
//! parent's outcomes only if it may drive the parent (it registers its workflow and takes its
//! lease); otherwise it announces the parent, and the worker that claims it collects them
//! (claimed parents suspended on children collect, and they are indexed as ready, so polling
//! finds them too; a parent claimed with nothing to collect is deferred, [`Store::defer`], so
//! that the polls reach the other ready runs, and found by them after the deferral). A front
//! end that drives no workflow leaves the children of a run it starts, awaited or detached, to
//! that worker ([`ChildItem::deferred`]); a run that asked for detached children waits for
//! their creation there (`Checkpoint::hold_detached`).
//!
//! [`CheckpointWrite::others`]: crate::store::CheckpointWrite::others
//! [`Store::defer`]: crate::store::Store::defer

use serde_json::Value;

use super::Inner;
use super::checkpoint::Checkpoint;
use crate::children::{ChildError, ChildErrorKind, ChildItem};
use crate::codec::{FNV_OFFSET, fnv1a};
use crate::error::{OpsError, StartError, StoreError};
use crate::model::{Command, Event};
use crate::store::{Fence, StoredState};
use crate::trace::TraceKind;
use crate::types::{RunRecord, RunStatus};

impl Inner {
    /// Whether a run of `workflow` started here must leave the detached children its first
    /// transition asks for to a worker ([`Checkpoint::hold_detached`]): in shared mode, by a
    /// process that does not drive the workflow. Such a process can run the first transition
    /// (it has the typed workflow), but not a child's, whose workflow it knows by name only.
    pub(super) fn holds_detached(&self, workflow: &str) -> bool {
        self.shared.is_some() && !self.registry().contains(workflow)
    }

    /// Creates the children `cp` asked for, in `cp`'s own commit; an awaited child that
    /// cannot be created gets its error as its outcome at once.
    pub(super) fn plan_children(&self, cp: &mut Checkpoint) -> Result<(), StoreError> {
        while !cp.spawn.is_empty() {
            let spawn = std::mem::take(&mut cp.spawn);
            let mut refused = Vec::new();
            for (item, detached) in spawn {
                if let Err(e) = self.create_child(cp, &item, detached)? {
                    let index = match &cp.rec.pending {
                        Some(Command::Children { items, .. }) => {
                            items.iter().position(|i| i.run_id == item.run_id)
                        }
                        _ => None,
                    };
                    match index {
                        Some(index) if !detached => refused.push((index, Err(e))),
                        _ => cp.trace(TraceKind::ChildEnded {
                            child: item.run_id.clone(),
                            result: Err(e),
                        }),
                    }
                }
            }
            if refused.is_empty() {
                continue;
            }
            // The workflow may move on (and ask for more children) once all are in.
            let Some(d) = self.driver(&cp.rec.workflow) else {
                return Ok(());
            };
            cp.child_results(&*d, &*self.store, refused)?;
        }
        Ok(())
    }

    /// Adds child `item`'s creation and first transition to `cp`'s commit, or adopts the run
    /// already at its id; `Ok(Err)` says why it cannot be started.
    fn create_child(
        &self,
        cp: &mut Checkpoint,
        item: &ChildItem,
        detached: bool,
    ) -> Result<Result<(), ChildError>, StoreError> {
        let err = |kind, message: String| Ok(Err(ChildError::new(&item.run_id, kind, message)));
        // Held for the worker that claims the parent (`Checkpoint::hold_detached`).
        if detached
            && let Some(Command::Children { items, .. }) = &cp.rec.pending
            && items.iter().any(|i| i.run_id == item.run_id && i.deferred)
        {
            return Ok(Ok(()));
        }
        if let Err(refused) = super::check_name("child run id", &item.run_id) {
            return err(
                ChildErrorKind::Conflict,
                StartError::from(refused).to_string(),
            );
        }
        if item.run_id == cp.run_id {
            return err(
                ChildErrorKind::Conflict,
                "a run cannot be its own child".to_owned(),
            );
        }
        let input_hash = fnv1a(FNV_OFFSET, item.input.to_string().as_bytes());
        if let Some(existing) = self.store.run(&item.run_id)? {
            if existing.workflow != item.workflow || existing.input_hash != input_hash {
                return err(
                    ChildErrorKind::Conflict,
                    format!(
                        "the id belongs to a run of `{}`{}",
                        existing.workflow,
                        if existing.workflow == item.workflow {
                            " with another input"
                        } else {
                            ""
                        }
                    ),
                );
            }
            // The same child asked for again (a parent revived or retried): it is adopted.
            return Ok(Ok(()));
        }
        let Some(d) = self.driver(&item.workflow) else {
            // A front end sharing the store ran the first transition of a run it does not
            // drive: a worker that drives the parent creates the child when it collects.
            if self.shared.is_some()
                && !detached
                && !self.registry().contains(&cp.rec.workflow)
                && let Some(Command::Children { items, .. }) = &mut cp.rec.pending
                && let Some(pending) = items.iter_mut().find(|i| i.run_id == item.run_id)
            {
                pending.deferred = true;
                return Ok(Ok(()));
            }
            return err(
                ChildErrorKind::Unavailable,
                format!("workflow `{}` is not registered", item.workflow),
            );
        };
        if let Err(refused) = self.check_size(
            || format!("the input of child run `{}`", item.run_id),
            &item.input,
        ) {
            return err(
                ChildErrorKind::Conflict,
                StartError::from(refused).to_string(),
            );
        }
        let now = cp.now_ms;
        let (state, failure) = match d.start_json(&item.input) {
            Ok(Ok(state)) => (state, None),
            Ok(Err(failure)) => (StoredState::default(), Some(failure.to_string())),
            Err(message) => (StoredState::default(), Some(message)),
        };
        let mut rec = RunRecord::new(d.name(), state, now);
        rec.version = d.version();
        rec.layout_hash = d.layout_hash();
        rec.body_hash = d.body_hash();
        rec.input_hash = input_hash;
        rec.parent = Some(cp.run_id.clone());
        let mut child = Checkpoint::create(&item.run_id, now, rec);
        child.trace(TraceKind::Started {
            workflow: d.name().to_owned(),
            version: d.version(),
            input: item.input.clone(),
        });
        child.trace(TraceKind::StartedByParent {
            parent: cp.run_id.clone(),
        });
        if detached {
            // Nothing awaits it: it names no parent to tell.
            child.rec.parent = None;
        }
        match failure {
            Some(message) => child.fail(message),
            None => {
                child.drive(&*d, &*self.store, Event::Start, None)?;
                // Its own children, if its first transition asks for some.
                self.plan_children(&mut child)?;
            }
        }
        // Shared mode: a concurrent `Engine::start` of the same id in another process may
        // create it first; the store then refuses this whole commit rather than overwrite.
        if self.shared.is_some() {
            child.set_fence(Fence::Create);
        }
        // A new run's trace starts at 0.
        let next = crate::telemetry::wants_trace_events().then_some(0);
        cp.create_child(child, next);
        Ok(Ok(()))
    }

    /// Reads the outcomes of run `parent_id`'s awaited children that have ended and
    /// checkpoints them; cancels the unfinished ones again if the parent was cancelled.
    pub(super) async fn collect_children(&self, parent_id: &str) -> Result<(), StoreError> {
        let cancel_again;
        {
            let _lock = self.lock_run(parent_id).await;
            let Some(rec) = self.store.run(parent_id)? else {
                return Ok(());
            };
            let Some(Command::Children { items, detached }) = &rec.pending else {
                return Ok(());
            };
            if rec.is_finished() {
                return Ok(());
            }
            // Detached children wait for nothing but their creation, when a front end left it
            // to a worker (`Checkpoint::hold_detached`).
            if *detached && !items.iter().any(|i| i.deferred) {
                return Ok(());
            }
            // Shared mode: the parent may be another worker's to drive (it holds the lease, or
            // this engine does not register the parent's workflow). The announcement brings
            // that worker here once it can claim the parent; polling finds it otherwise, a
            // parent awaiting children being indexed as ready.
            if !self.may_drive(parent_id, &rec.workflow) {
                self.announce(parent_id);
                return Ok(());
            }
            let mut results = Vec::new();
            let mut open = Vec::new();
            let mut deferred = Vec::new();
            for (index, item) in items.iter().enumerate() {
                if item.result.is_some() {
                    continue;
                }
                if item.deferred {
                    deferred.push(index);
                    continue;
                }
                match self.store.run(&item.run_id)? {
                    None => results.push((
                        index,
                        Err(ChildError::new(
                            &item.run_id,
                            ChildErrorKind::Unavailable,
                            "the child run's record is gone (purged)",
                        )),
                    )),
                    Some(child) => match outcome(&item.run_id, &child) {
                        Some(result) => results.push((index, result)),
                        None => open.push(item.run_id.clone()),
                    },
                }
            }
            if *detached {
                let Ok((d, mut cp)) = self.prepare(parent_id, rec).await? else {
                    return Ok(());
                };
                self.create_detached(&mut cp, &deferred)?;
                cp.detached_started(&*d, &*self.store)?;
                self.commit(cp).await?;
                return Ok(());
            }
            cancel_again = rec.cancel.as_ref().map(|c| (c.reason.clone(), open));
            if results.is_empty() && deferred.is_empty() {
                // Shared mode: nothing to collect until a child ends, and that end claims the
                // parent by id; the polls leave it alone meanwhile (see `defer_unproductive`).
                self.defer_unproductive(parent_id);
            } else {
                let Ok((d, mut cp)) = self.prepare(parent_id, rec).await? else {
                    return Ok(());
                };
                self.create_deferred(&mut cp, &deferred, &mut results)?;
                cp.child_results(&*d, &*self.store, results)?;
                self.commit(cp).await?;
            }
        }
        // A cancellation requested before a crash may not have reached every child.
        if let Some((reason, open)) = cancel_again {
            self.cancel_children(&reason, open).await;
        }
        Ok(())
    }

    /// Creates the awaited children of `cp`'s pending command that the process which asked
    /// for them left to a worker (see [`ChildItem::deferred`]), in `cp`'s commit; one that
    /// cannot be created gets its error as its outcome, in `results`.
    fn create_deferred(
        &self,
        cp: &mut Checkpoint,
        deferred: &[usize],
        results: &mut Vec<(usize, Result<Value, ChildError>)>,
    ) -> Result<(), StoreError> {
        for &index in deferred {
            let Some(item) = undefer(cp, index) else {
                continue;
            };
            // A parent cancelled before its worker got to it does not start the child.
            if let Some(cancel) = &cp.rec.cancel {
                let why = format!("its parent was cancelled: {}", cancel.reason);
                let e = ChildError::new(&item.run_id, ChildErrorKind::Cancelled, why);
                results.push((index, Err(e)));
                continue;
            }
            if let Err(e) = self.create_child(cp, &item, false)? {
                results.push((index, Err(e)));
            }
        }
        Ok(())
    }

    /// Creates the detached children of `cp`'s pending command that a front end left to a
    /// worker, in `cp`'s commit; one that cannot be created is traced as ended with its error,
    /// as in the transition that asks for it. Cancelling a parent leaves its detached
    /// children alone, so a cancelled parent still starts them.
    fn create_detached(&self, cp: &mut Checkpoint, deferred: &[usize]) -> Result<(), StoreError> {
        for &index in deferred {
            let Some(item) = undefer(cp, index) else {
                continue;
            };
            if let Err(e) = self.create_child(cp, &item, true)? {
                cp.trace(TraceKind::ChildEnded {
                    child: item.run_id.clone(),
                    result: Err(e),
                });
            }
        }
        Ok(())
    }

    /// Collects run `parent_id`'s children in the background (after a child ended, after the
    /// parent suspended on them, at open).
    pub(super) fn wake_parent(&self, parent_id: &str) {
        let weak = self.me.clone();
        let parent = parent_id.to_owned();
        let busy = self.busy.guard();
        tokio::spawn(async move {
            let _busy = busy;
            let Some(inner) = weak.upgrade() else { return };
            if let Err(e) = inner.collect_children(&parent).await {
                super::report(&parent, "a child's outcome", &e);
            }
        });
    }

    /// The awaited children of a run suspended on them that have not ended.
    pub(super) fn open_children(&self, rec: &RunRecord) -> Vec<String> {
        let Some(Command::Children {
            items,
            detached: false,
        }) = &rec.pending
        else {
            return Vec::new();
        };
        items
            .iter()
            .filter(|i| i.result.is_none())
            .map(|i| i.run_id.clone())
            .collect()
    }

    /// Cancels each of `children` with `reason` (their parent was cancelled); a child that has
    /// ended already is skipped.
    pub(super) async fn cancel_children(&self, reason: &str, children: Vec<String>) {
        for child in children {
            let reason = format!("its parent was cancelled: {reason}");
            if let Err(e) = Box::pin(self.cancel_run(&child, &reason)).await {
                tracing::debug!(run_id = %child, error = %e, "a child was not cancelled");
            }
        }
    }

    /// Adds the termination of each of `children` that has not ended to `parent`'s commit,
    /// under their locks (returned, to hold until the commit is durable); gives the awaited
    /// children of each, to terminate after it.
    pub(super) async fn terminate_with(
        &self,
        parent: &mut Checkpoint,
        reason: &str,
        children: Vec<String>,
    ) -> Result<(Vec<super::RunLock<'_>>, Vec<(String, Vec<String>)>), OpsError> {
        let mut locks = Vec::new();
        let mut grandchildren = Vec::new();
        for child in children {
            // Always parent before child, as everywhere: no lock order is reversed.
            let lock = self.lock_run(&child).await;
            // Shared mode: the child's record is rewritten under its lease, taken from the
            // worker that drives it (which gives it back once its step ends), so that worker
            // cannot write over the termination.
            self.lease_for_op(&child).await?;
            let Some(rec) = self.store.run(&child)? else {
                continue;
            };
            if rec.is_finished() && !matches!(rec.status, RunStatus::Incompatible { .. }) {
                continue;
            }
            if let Some(step) = super::lock(&self.steps).remove(&child) {
                step.abort();
            }
            self.batches.abort(&child);
            grandchildren.push((child.clone(), self.open_children(&rec)));
            let why = format!("its parent was terminated: {reason}");
            let mut cp = Checkpoint::load(&child, parent.now_ms, rec);
            cp.end(
                RunStatus::Terminated {
                    reason: why.clone(),
                },
                TraceKind::Terminated { reason: why },
            );
            let next = match crate::telemetry::wants_trace_events() {
                true => Some(self.store.last_trace(&child)?.map_or(0, |e| e.seq + 1)),
                false => None,
            };
            cp.set_fence(self.held_fence(&child));
            parent.create_child(cp, next);
            locks.push(lock);
        }
        Ok((locks, grandchildren))
    }

    /// Terminates each of `children` with `reason` (their parent was terminated).
    pub(super) async fn terminate_children(&self, reason: &str, children: Vec<String>) {
        for child in children {
            let reason = format!("its parent was terminated: {reason}");
            if let Err(e) = Box::pin(self.terminate_run(&child, &reason)).await {
                tracing::debug!(run_id = %child, error = %e, "a child was not terminated");
            }
        }
    }
}

/// The outcome an ended child gives its parent; `None` while it has not ended (a child parked
/// as incompatible has not: it may be revived).
fn outcome(run_id: &str, child: &RunRecord) -> Option<Result<Value, ChildError>> {
    let output = child.output.as_ref();
    let err_value = || output.and_then(|o| o.get("Err")).cloned();
    Some(match &child.status {
        RunStatus::Completed => match output.and_then(|o| o.get("Ok")) {
            Some(v) => Ok(v.clone()),
            None => Err(ChildError::new(
                run_id,
                ChildErrorKind::Failed,
                "the child completed without an output",
            )),
        },
        RunStatus::Failed { message } => {
            let mut e = ChildError::new(run_id, ChildErrorKind::Failed, message.clone());
            e.error = err_value();
            Err(e)
        }
        RunStatus::Cancelled { reason } => {
            let mut e = ChildError::new(run_id, ChildErrorKind::Cancelled, reason.clone());
            e.error = err_value();
            Err(e)
        }
        RunStatus::Terminated { reason } => Err(ChildError::new(
            run_id,
            ChildErrorKind::Terminated,
            reason.clone(),
        )),
        _ => return None,
    })
}

/// Marks the `index`-th child of `cp`'s pending children command as created by this commit and
/// returns it; `None` if the run no longer waits on children or has no such child.
fn undefer(cp: &mut Checkpoint, index: usize) -> Option<ChildItem> {
    let Some(Command::Children { items, .. }) = &mut cp.rec.pending else {
        return None;
    };
    let pending = items.get_mut(index)?;
    pending.deferred = false;
    let item = pending.clone();
    cp.touch();
    Some(item)
}
