//! Several versions of one workflow side by side: which code drives a stored run, migrations
//! from older versions, and the operations around incompatible runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::driver::Driver;
use super::{Engine, Inner, RunStatus};
use crate::error::{EngineError, StartError, StoreError, with_causes};
use crate::model::Migration;
use crate::types::RunRecord;

/// The registered workflows: every version of every name, oldest first.
#[derive(Default)]
pub(super) struct Registry {
    by_name: HashMap<&'static str, Vec<Arc<dyn Driver>>>,
}

/// Which code drives a stored run.
pub(super) enum Resolution {
    /// The version and layout that wrote it are registered.
    Ready(Arc<dyn Driver>),
    /// Its version is not registered, but a chain of migrations leads to the newest one.
    Migrate(Arc<dyn Driver>, Vec<Migration>),
    /// No registered code fits, and nothing migrates it; the reason says which.
    Incompatible(String),
    /// Nothing of its name is registered: the run belongs to another deployment.
    Unregistered,
}

impl Registry {
    /// Adds a version; the same version with the same layout twice is one registration.
    pub(super) fn add(&mut self, d: Arc<dyn Driver>) {
        let versions = self.by_name.entry(d.name()).or_default();
        if versions
            .iter()
            .any(|v| v.version() == d.version() && v.layout_hash() == d.layout_hash())
        {
            return;
        }
        versions.push(d);
        versions.sort_by_key(|v| v.version());
    }

    pub(super) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every signal name some registered version of `name` waits on, sorted; `None` when one
    /// of them computes a name (any name may then be right) or `name` is not registered.
    pub(super) fn signal_names(&self, name: &str) -> Option<Vec<&'static str>> {
        let mut names = Vec::new();
        for d in self.by_name.get(name)? {
            names.extend_from_slice(d.signals()?);
        }
        names.sort_unstable();
        names.dedup();
        Some(names)
    }

    /// The newest version of `name`.
    pub(super) fn newest(&self, name: &str) -> Option<Arc<dyn Driver>> {
        self.by_name.get(name).and_then(|v| v.last()).cloned()
    }

    /// The code a new run of `name` v`version` with `layout` starts on: it must be registered,
    /// be the newest version, and not be registered twice with different layouts.
    pub(super) fn for_start(
        &self,
        name: &str,
        version: u32,
        layout: u64,
    ) -> Result<Arc<dyn Driver>, StartError> {
        let versions = self
            .by_name
            .get(name)
            .ok_or_else(|| StartError::NotRegistered {
                workflow: name.to_owned(),
            })?;
        let same: Vec<&Arc<dyn Driver>> =
            versions.iter().filter(|d| d.version() == version).collect();
        if same.len() > 1 {
            let layouts: Vec<String> = same
                .iter()
                .map(|d| format!("{:016x}", d.layout_hash()))
                .collect();
            return Err(StartError::AmbiguousVersion {
                workflow: name.to_owned(),
                version,
                layouts: layouts.join(", "),
            });
        }
        let d = same
            .into_iter()
            .find(|d| d.layout_hash() == layout)
            .ok_or_else(|| StartError::NotRegistered {
                workflow: format!("{name} v{version}"),
            })?;
        let newest = versions.last().map_or(version, |n| n.version());
        if newest > version {
            return Err(StartError::NotNewest {
                workflow: name.to_owned(),
                version,
                newest,
            });
        }
        Ok(d.clone())
    }

    /// The code that drives a stored run, or why none does.
    pub(super) fn resolve(&self, rec: &RunRecord) -> Resolution {
        let Some(versions) = self.by_name.get(rec.workflow.as_str()) else {
            return Resolution::Unregistered;
        };
        let mut same = versions.iter().filter(|d| d.version() == rec.version);
        if let Some(d) = same.clone().find(|d| d.layout_hash() == rec.layout_hash) {
            return Resolution::Ready(d.clone());
        }
        if let Some(d) = same.next() {
            return Resolution::Incompatible(d.incompatibility(rec).unwrap_or_default());
        }
        let newest = versions
            .last()
            .expect("a registered name has a version")
            .clone();
        let to = (newest.version(), newest.layout_hash());
        match Migration::path(&newest.migrations(), (rec.version, rec.layout_hash), to) {
            Ok(plan) => Resolution::Migrate(newest, plan),
            Err(_) => {
                let registered: Vec<String> = versions
                    .iter()
                    .map(|d| format!("v{}", d.version()))
                    .collect();
                Resolution::Incompatible(format!(
                    "the checkpoint was written by `{}` v{} (layout {:016x}); registered: {}; no migration leads \
                     from it to v{}: keep v{} registered until its runs drain, or declare \
                     `#[workflow(version = {}, migrate_from = ..)]`",
                    rec.workflow,
                    rec.version,
                    rec.layout_hash,
                    registered.join(", "),
                    newest.version(),
                    rec.version,
                    newest.version()
                ))
            }
        }
    }
}

/// Runs of one workflow version in the store.
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
/// engine.start(approval, "r-1", 10).await?;
/// let versions = engine.versions()?;
/// assert_eq!(versions.len(), 1);
/// let v = &versions[0];
/// assert_eq!((v.workflow.as_str(), v.version, v.in_flight), ("approval", 1, 1));
/// assert_eq!(v.handled_by, "current");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    /// The workflow's stored name.
    pub workflow: String,
    /// The version that wrote the runs' latest checkpoints.
    pub version: u32,
    /// That version's layout fingerprint, in hex.
    pub layout: String,
    /// Runs still moving (running, waiting, sleeping).
    pub in_flight: u64,
    /// Runs that completed or failed.
    pub finished: u64,
    /// Runs the registered code cannot drive (see [`Engine::incompatible_runs`]).
    pub incompatible: u64,
    /// How the registered code treats these runs: `current`, `migrates to vN`, `incompatible`
    /// or `not registered`; `the engine` for schedules ([`crate::SCHEDULE_WORKFLOW`]).
    pub handled_by: String,
}

/// A run the registered code cannot drive.
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
/// engine.start(approval, "r-1", 10).await?;
/// // A run checkpointed by code that no longer fits would be listed here, with the reason.
/// for run in engine.incompatible_runs()? {
///     println!("{} ({} v{}): {}", run.run_id, run.workflow, run.version, run.reason);
/// }
/// assert!(engine.incompatible_runs()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompatibleRun {
    /// The run.
    pub run_id: String,
    /// Its workflow.
    pub workflow: String,
    /// The version that wrote it.
    pub version: u32,
    /// Why it is parked.
    pub reason: String,
}

impl Engine {
    /// Counts the stored runs per workflow version, with how the registered code treats each.
    /// Reads every run record: an operations call, not one for a hot path.
    ///
    /// # Errors
    /// A storage error.
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
    /// engine.start(approval, "r-1", 10).await?;
    /// for v in engine.versions()? {
    ///     println!("{} v{}: {} in flight, {}", v.workflow, v.version, v.in_flight, v.handled_by);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn versions(&self) -> Result<Vec<VersionSummary>, EngineError> {
        let runs = self.inner.store.runs()?;
        let mut out: BTreeMap<(String, u32, u64), VersionSummary> = BTreeMap::new();
        let registry = self.inner.registry();
        for (_, rec) in runs {
            // One resolution gives both how the code treats the run and, for a run still
            // moving, whether it is incompatible (what `status_of` would compute again).
            let resolution = registry.resolve(&rec);
            let incompatible = matches!(rec.status, RunStatus::Incompatible { .. })
                || (!rec.is_finished() && matches!(resolution, Resolution::Incompatible(_)));
            let e = out
                .entry((rec.workflow.clone(), rec.version, rec.layout_hash))
                .or_insert_with(|| VersionSummary {
                    workflow: rec.workflow.clone(),
                    version: rec.version,
                    layout: format!("{:016x}", rec.layout_hash),
                    in_flight: 0,
                    finished: 0,
                    incompatible: 0,
                    handled_by: match &resolution {
                        // Schedules are the engine's own records, driven without a workflow.
                        _ if rec.workflow == super::SCHEDULE_WORKFLOW => "the engine".to_owned(),
                        Resolution::Ready(_) => "current".to_owned(),
                        Resolution::Migrate(d, _) => format!("migrates to v{}", d.version()),
                        Resolution::Incompatible(_) => "incompatible".to_owned(),
                        Resolution::Unregistered => "not registered".to_owned(),
                    },
                });
            if incompatible {
                e.incompatible += 1;
            } else if rec.is_finished() {
                e.finished += 1;
            } else {
                e.in_flight += 1;
            }
        }
        Ok(out.into_values().collect())
    }

    /// Every stored run the registered code cannot drive, with the reason.
    ///
    /// # Errors
    /// A storage error.
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
    /// assert!(engine.incompatible_runs()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn incompatible_runs(&self) -> Result<Vec<IncompatibleRun>, EngineError> {
        let mut out = Vec::new();
        for (run_id, rec) in self.inner.store.runs()? {
            if let RunStatus::Incompatible { reason } = self.inner.status_of(&rec) {
                out.push(IncompatibleRun {
                    run_id,
                    workflow: rec.workflow,
                    version: rec.version,
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// Tries an incompatible run again, after the code that fits it (or a migration) was
    /// deployed: the run continues from the checkpoint it was parked at. Returns its status.
    ///
    /// # Errors
    /// [`EngineError::UnknownRun`]; [`EngineError::Incompatible`] with the reason if the
    /// registered code still does not fit (the run stays parked, untouched).
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
    /// engine.start(approval, "r-1", 10).await?;
    /// // After deploying code that fits each parked run, take them all back.
    /// for run in engine.incompatible_runs()? {
    ///     match engine.retry_incompatible(&run.run_id).await {
    ///         Ok(status) => println!("{}: {status}", run.run_id),
    ///         Err(EngineError::Incompatible { reason, .. }) => println!("still parked: {reason}"),
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// // A run that fits the registered code just continues.
    /// assert_eq!(engine.retry_incompatible("r-1").await?.kind(), "waiting");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub async fn retry_incompatible(&self, run_id: &str) -> Result<RunStatus, EngineError> {
        let inner = &self.inner;
        inner.check_open()?;
        {
            let _lock = inner.lock_run(run_id).await;
            let rec = inner.record(run_id)?;
            let parked = matches!(rec.status, RunStatus::Incompatible { .. });
            if parked || !rec.is_finished() {
                let incompatible = |reason| EngineError::Incompatible {
                    run_id: run_id.to_owned(),
                    reason,
                };
                let (d, plan) = match inner.registry().resolve(&rec) {
                    Resolution::Ready(d) => (d, Vec::new()),
                    Resolution::Migrate(d, plan) => (d, plan),
                    Resolution::Incompatible(reason) => return Err(incompatible(reason)),
                    Resolution::Unregistered => {
                        return Err(EngineError::NotRegistered {
                            workflow: rec.workflow.clone(),
                        });
                    }
                };
                let mut cp = Checkpoint::load(run_id, inner.clock.now_ms(), rec);
                cp.migrate(&plan)
                    .map_err(|e| incompatible(with_causes(&e)))?;
                d.decodes(cp.state())
                    .map_err(|e| incompatible(format!("the stored state does not decode: {e}")))?;
                if parked {
                    cp.revive();
                    inner.commit(cp).await?;
                } else if !plan.is_empty() {
                    cp.touch();
                    inner.commit(cp).await?;
                }
            }
        }
        inner.resume_run(run_id).await?;
        self.status(run_id)
    }
}

impl Inner {
    /// The loaded checkpoint of a run and the code that drives it, migrated to that code's
    /// version when needed; `None` when the run cannot be driven (then it was parked or
    /// noted as incompatible, or belongs to an unregistered workflow).
    pub(super) async fn prepare(
        &self,
        run_id: &str,
        rec: RunRecord,
    ) -> Result<Result<(Arc<dyn Driver>, Checkpoint), Option<String>>, StoreError> {
        let resolution = self.registry().resolve(&rec);
        match resolution {
            Resolution::Unregistered => Ok(Err(None)),
            Resolution::Incompatible(reason) => {
                // Boxed, as is the parking below: rare paths whose futures would otherwise
                // make every caller's future (a step's result, a signal) larger.
                Box::pin(self.note_incompatible(run_id, rec, reason.clone())).await?;
                Ok(Err(Some(reason)))
            }
            Resolution::Ready(d) => Ok(Ok((d, Checkpoint::load(run_id, self.clock.now_ms(), rec)))),
            Resolution::Migrate(d, plan) => {
                let mut cp = Checkpoint::load(run_id, self.clock.now_ms(), rec);
                match cp.migrate(&plan) {
                    Ok(()) => Ok(Ok((d, cp))),
                    Err(e) => {
                        let reason = with_causes(&e);
                        // A refused migration leaves the loaded state as it was: park the run
                        // with it intact.
                        cp.park_with(reason.clone());
                        Box::pin(self.commit(cp)).await?;
                        Ok(Err(Some(reason)))
                    }
                }
            }
        }
    }
}
