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
pub const UPDATE_ENV: &str = "WORKFLOW_GOLDEN_UPDATE";

/// Whether [`UPDATE_ENV`] is set to `1`.
pub fn update_requested() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1")
}

/// A golden file.
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
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// [`check`], panicking with its message.
///
/// # Panics
/// When the check fails.
pub fn assert_matches<W: Workflow>(workflow: W, path: impl AsRef<Path>) {
    if let Err(e) = check(workflow, path) {
        panic!("{e}");
    }
}
