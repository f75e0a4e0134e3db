//! Golden checkpoints: states a workflow wrote, kept in fixture files beside the tests, and
//! checked against the current code on every `cargo test`.
//!
//! A change that alters what a parked run has stored (a variant renamed, a held local added or
//! retyped, a step's output type changed) changes the workflow's layout fingerprint; the check
//! then fails and says so, before a deploy parks real runs as incompatible. A change inside a
//! user type that the fingerprint cannot see is caught by decoding every stored state.
//!
//! ```no_run
//! # use workflow_runtime::prelude::*;
//! # use workflow_runtime::testing::{TestEngine, golden};
//! # #[workflow] async fn refund_review(ctx: &mut WorkflowContext, id: String) -> Result<u64, WorkflowError> {
//! #     let n = ctx.wait_for_signal::<u64>("decision", Duration::from_secs(60), ()).await?; Ok(n) }
//! # fn main() {}
//! # async fn demo() {
//! let path = "tests/golden/refund_review.json";
//! if golden::update_requested() || !std::path::Path::new(path).exists() {
//!     let te = TestEngine::builder().register(refund_review).build().await;
//!     te.start(refund_review, "r1", "T-1".into()).await.unwrap();
//!     te.signal("r1", "decision", 5).await.unwrap();
//!     golden::write(refund_review, path, &te.checkpoints("r1")).unwrap();
//! }
//! golden::assert_matches(refund_review, path);
//! # }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CommittedCheckpoint;
use crate::model::{Command, Migration, Workflow};

/// The environment variable that asks tests to record their golden files again.
///
/// # Examples
///
/// ```
/// use workflow_runtime::testing::golden;
/// // `WORKFLOW_GOLDEN_UPDATE=1 cargo test` records every golden file again.
/// assert_eq!(golden::UPDATE_ENV, "WORKFLOW_GOLDEN_UPDATE");
/// ```
pub const UPDATE_ENV: &str = "WORKFLOW_GOLDEN_UPDATE";

/// Whether [`UPDATE_ENV`] is set to `1`.
///
/// # Examples
///
/// ```
/// use workflow_runtime::testing::golden;
/// if golden::update_requested() {
///     println!("recording golden files");
/// }
/// ```
pub fn update_requested() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1")
}

/// A golden file.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::testing::golden::{self, GoldenFile};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkout.json");
/// let te = TestEngine::builder().register(checkout).build().await;
/// te.start(checkout, "o-1", 40).await?;
/// te.signal("o-1", "confirm", true).await?;
/// golden::write(checkout, &path, &te.checkpoints("o-1"))?;
/// let file: GoldenFile = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
/// assert_eq!((file.workflow.as_str(), file.version), ("checkout", 1));
/// let variants: Vec<&str> = file.checkpoints.iter().map(|c| c.variant.as_str()).collect();
/// assert_eq!(variants, ["AwaitingConfirm", "Charge"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenFile {
    /// The workflow's stored name.
    pub workflow: String,
    /// Its version.
    pub version: u32,
    /// Its layout fingerprint, in hex.
    pub layout_hash: String,
    /// One stored state per variant the recording reached.
    pub checkpoints: Vec<GoldenCheckpoint>,
}

/// A stored state in a golden file.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::testing::golden::{self, GoldenFile};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkout.json");
/// let te = TestEngine::builder().register(checkout).build().await;
/// te.start(checkout, "o-1", 40).await?;
/// golden::write(checkout, &path, &te.checkpoints("o-1"))?;
/// let file: GoldenFile = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
/// let waiting = &file.checkpoints[0];
/// assert_eq!(waiting.state, json!({ "AwaitingConfirm": { "amount": 40 } }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenCheckpoint {
    /// The variant's name.
    pub variant: String,
    /// The checkpoint's sequence number in the recording.
    pub seq: u64,
    /// The state, as stored.
    pub state: Value,
    /// What the run waited for.
    pub pending: Option<Command>,
}

/// Writes the checkpoints of a recorded run (the first of each variant, unfinished ones only)
/// to `path`, creating its directory.
///
/// # Errors
/// If the file cannot be written.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::testing::golden;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("golden/checkout.json");
/// let te = TestEngine::builder().register(checkout).build().await;
/// te.start(checkout, "o-1", 40).await?;
/// te.signal("o-1", "confirm", true).await?;
/// golden::write(checkout, &path, &te.checkpoints("o-1"))?;
/// assert!(path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub fn write<W: Workflow>(
    _workflow: W,
    path: impl AsRef<Path>,
    checkpoints: &[CommittedCheckpoint],
) -> std::io::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    let checkpoints = checkpoints
        .iter()
        .filter(|c| c.pending.is_some() && seen.insert(c.variant()))
        .map(|c| GoldenCheckpoint {
            variant: c.variant(),
            seq: c.seq,
            state: c.state.clone(),
            pending: c.pending.clone(),
        })
        .collect();
    let file = GoldenFile {
        workflow: W::NAME.to_owned(),
        version: W::VERSION,
        layout_hash: format!("{:016x}", W::LAYOUT_HASH),
        checkpoints,
    };
    let path = path.as_ref();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

/// Loads a golden file and checks it against the current code: same workflow, same version,
/// same layout fingerprint, and every state decodes into `W::State`. Returns how many states
/// were checked.
///
/// # Errors
/// A message naming the file, what differs and what to do.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::testing::golden;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkout.json");
/// let te = TestEngine::builder().register(checkout).build().await;
/// te.start(checkout, "o-1", 40).await?;
/// te.signal("o-1", "confirm", true).await?;
/// golden::write(checkout, &path, &te.checkpoints("o-1"))?;
/// assert_eq!(golden::check(checkout, &path)?, 2);
/// // A missing file says how to record it.
/// let missing = golden::check(checkout, dir.path().join("none.json")).unwrap_err();
/// assert!(missing.message().contains("WORKFLOW_GOLDEN_UPDATE=1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub fn check<W: Workflow>(_workflow: W, path: impl AsRef<Path>) -> Result<usize, GoldenError> {
    check_states::<W>(path.as_ref()).map_err(GoldenError::new)
}

fn check_states<W: Workflow>(path: &Path) -> Result<usize, String> {
    let file = load(path)?;
    if file.workflow != W::NAME || file.version != W::VERSION {
        return Err(format!(
            "the golden file {} holds `{}` v{}, but the code is `{}` v{}; record a file per version",
            path.display(),
            file.workflow,
            file.version,
            W::NAME,
            W::VERSION
        ));
    }
    let current = format!("{:016x}", W::LAYOUT_HASH);
    if file.layout_hash != current {
        return Err(format!(
            "the stored layout of `{}` v{} changed: {} was recorded with layout {}, the code has {current}. \
             Runs parked by the old code would be reported incompatible. If the change is intended, \
             give the workflow a new version (keeping the old one registered, or with a migration), \
             then record the fixtures again with {UPDATE_ENV}=1",
            W::NAME,
            W::VERSION,
            path.display(),
            file.layout_hash
        ));
    }
    for cp in &file.checkpoints {
        serde_json::from_value::<W::State>(cp.state.clone()).map_err(|e| {
            format!(
                "the state `{}` (checkpoint {}) in {} no longer decodes with the current code: {e}. \
                 A type held in the state changed in a way the layout fingerprint cannot see; \
                 add `#[serde(default)]` to new fields, or version the workflow",
                cp.variant,
                cp.seq,
                path.display()
            )
        })?;
    }
    Ok(file.checkpoints.len())
}

/// Checks that the states of an older version's golden file migrate into `W`: every state is
/// put through `W`'s migration chain (`#[workflow(migrate_from = ..)]`) and must decode into
/// `W::State`. Returns how many states were migrated.
///
/// # Errors
/// A message naming the file, the state and the failing migration.
///
/// # Examples
///
/// ```no_run
/// # use workflow_runtime::prelude::*;
/// use workflow_runtime::testing::golden;
/// # #[workflow(name = "order", version = 2)]
/// # async fn order_v2(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> { Ok(()) }
/// # fn main() {
/// // The states v1 recorded (kept since v1 shipped) must migrate into v2's.
/// let migrated = golden::check_migration(order_v2, "tests/golden/order-v1.json").unwrap();
/// println!("{migrated} v1 states migrate");
/// # }
/// ```
pub fn check_migration<W: Workflow>(
    _workflow: W,
    path: impl AsRef<Path>,
) -> Result<usize, GoldenError> {
    check_migrations::<W>(path.as_ref()).map_err(GoldenError::new)
}

fn check_migrations<W: Workflow>(path: &Path) -> Result<usize, String> {
    let file = load(path)?;
    let layout = u64::from_str_radix(&file.layout_hash, 16).map_err(|e| {
        format!(
            "the golden file {} has a bad layout fingerprint: {e}",
            path.display()
        )
    })?;
    let plan = Migration::path(&W::migrations(), (file.version, layout), (W::VERSION, W::LAYOUT_HASH))
        .map_err(|(version, at)| {
            format!(
                "no migration leads from `{}` v{version} (layout {at:016x}, {}) to v{}: declare `migrate_from` on the new version",
                file.workflow,
                path.display(),
                W::VERSION
            )
        })?;
    for cp in &file.checkpoints {
        let state = Migration::apply_all(&plan, cp.state.clone()).map_err(|e| {
            format!(
                "the state `{}` of {} does not migrate: {}",
                cp.variant,
                path.display(),
                crate::error::with_causes(&e)
            )
        })?;
        serde_json::from_value::<W::State>(state).map_err(|e| {
            format!(
                "the state `{}` of {} migrates, but not into `{}` v{}: {e}",
                cp.variant,
                path.display(),
                W::NAME,
                W::VERSION
            )
        })?;
    }
    Ok(file.checkpoints.len())
}

/// Reads and parses a golden file.
fn load(path: &Path) -> Result<GoldenFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the golden file {}: {e}; record it by running the tests with {UPDATE_ENV}=1, then commit it",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the golden file {} is not valid: {e}", path.display()))
}

/// Why a golden file does not fit the current code: a message naming the file, what differs
/// and what to do.
///
/// # Examples
///
/// ```
/// use workflow_runtime::prelude::*;
/// use workflow_runtime::testing::golden;
/// # #[workflow]
/// # async fn nap(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> { Ok(()) }
/// # fn main() {
/// let e = golden::check(nap, "/nonexistent/nap.json").unwrap_err();
/// assert!(e.to_string().starts_with("cannot read the golden file /nonexistent/nap.json"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GoldenError {
    message: String,
}

impl GoldenError {
    fn new(message: String) -> Self {
        Self { message }
    }

    /// The message.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::prelude::*;
    /// use workflow_runtime::testing::golden;
    /// # #[workflow]
    /// # async fn nap(ctx: &mut WorkflowContext) -> Result<(), WorkflowError> { Ok(()) }
    /// # fn main() {
    /// let e = golden::check(nap, "/nonexistent/nap.json").unwrap_err();
    /// assert_eq!(e.message(), e.to_string());
    /// # }
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// [`check`], panicking with its message.
///
/// # Panics
/// When the check fails.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # use workflow_runtime::testing::TestEngine;
/// # #[function]
/// # async fn charge(amount: u64) -> Result<String, StepError> {
/// #     Ok(format!("receipt-{amount}"))
/// # }
/// # #[workflow]
/// # async fn checkout(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
/// #     let ok = ctx.wait_for_signal::<bool>("confirm", Duration::from_secs(3_600), ()).await;
/// #     if ok != Ok(true) {
/// #         return Ok("cancelled".into());
/// #     }
/// #     Ok(ctx.step(charge, amount).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::testing::golden;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkout.json");
/// if golden::update_requested() || !path.exists() {
///     let te = TestEngine::builder().register(checkout).build().await;
///     te.start(checkout, "o-1", 40).await?;
///     golden::write(checkout, &path, &te.checkpoints("o-1"))?;
/// }
/// golden::assert_matches(checkout, &path);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
pub fn assert_matches<W: Workflow>(workflow: W, path: impl AsRef<Path>) {
    if let Err(e) = check(workflow, path) {
        panic!("{e}");
    }
}
