//! The engine's error type.

use crate::engine::RunStatus;

/// Why an engine operation failed.
///
/// Every variant reads as one line and names the run, signal, workflow or file involved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No run with this id exists in the store.
    #[error("no run with id `{run_id}` exists")]
    UnknownRun {
        /// The run id asked for.
        run_id: String,
    },
    /// The run has already finished, so it accepts nothing more.
    #[error("run `{run_id}` has already finished ({status})")]
    RunFinished {
        /// The run.
        run_id: String,
        /// Its final status.
        status: RunStatus,
    },
    /// The run id is taken by a run of another workflow or with another input.
    #[error("run `{run_id}` already exists {reason}")]
    Conflict {
        /// The run id.
        run_id: String,
        /// What differs, phrased to follow "already exists".
        reason: String,
    },
    /// A signal payload does not decode into the type its wait expects; nothing was changed.
    #[error("signal `{signal}` for run `{run_id}` was refused: {message}")]
    PayloadMismatch {
        /// The run.
        run_id: String,
        /// The signal's name.
        signal: String,
        /// What the workflow said about the payload.
        message: String,
    },
    /// A signal addressed to the current wait names another signal than the one it waits for.
    #[error("wait `{wait_id}` of run `{run_id}` waits for signal `{expected}`, not `{signal}`")]
    WrongSignal {
        /// The run.
        run_id: String,
        /// The wait the signal was addressed to.
        wait_id: String,
        /// The signal the wait expects.
        expected: String,
        /// The signal that was sent.
        signal: String,
    },
    /// No registered version of the run's workflow waits for a signal of this name (a typo,
    /// or a signal meant for another workflow); nothing was stored.
    #[error(
        "run `{run_id}` of workflow `{workflow}` never waits for a signal named `{signal}`; it waits for {}",
        quoted_list(expected)
    )]
    UnknownSignal {
        /// The run.
        run_id: String,
        /// The run's workflow.
        workflow: String,
        /// The signal that was sent.
        signal: String,
        /// The names its registered versions wait on, sorted; empty if it waits on none.
        expected: Vec<String>,
    },
    /// A signal was addressed to a wait id the run never had.
    #[error("run `{run_id}` has no wait with id `{wait_id}`")]
    UnknownWait {
        /// The run.
        run_id: String,
        /// The wait id named by the signal.
        wait_id: String,
    },
    /// The stored run was checkpointed by code whose layout differs from the registered code.
    #[error("run `{run_id}` is incompatible with the registered code: {reason}")]
    Incompatible {
        /// The run.
        run_id: String,
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// The run failed without producing an output (a panic, or an engine-level failure).
    #[error("run `{run_id}` failed: {message}")]
    RunFailed {
        /// The run.
        run_id: String,
        /// What went wrong.
        message: String,
    },
    /// The workflow is not registered with this engine.
    #[error(
        "workflow `{workflow}` is not registered with this engine; \
         call `EngineBuilder::register` or `Engine::register` first"
    )]
    NotRegistered {
        /// The workflow's name.
        workflow: String,
    },
    /// Another engine or process holds the store file.
    #[error("store file {path} is already open by another engine or process")]
    AlreadyOpen {
        /// The file.
        path: String,
    },
    /// The file exists but is not a store written by this library.
    #[error("{path} is not a workflow-runtime store: {reason}")]
    NotAStore {
        /// The file.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The store file is damaged.
    #[error("store file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What the storage layer reported.
        reason: String,
    },
    /// The storage layer failed; nothing of the operation was acknowledged.
    #[error("storage error: {0}")]
    Storage(String),
    /// A value could not be encoded or decoded.
    #[error("encoding error: {0}")]
    Encode(String),
    /// The engine was shut down.
    #[error("the engine has been shut down")]
    ShutDown,
    /// One version of a workflow is registered with two different layouts, so a new run could
    /// start on either.
    #[error(
        "workflow `{workflow}` v{version} is registered twice with different layouts ({layouts}); give the changed one a new version"
    )]
    AmbiguousVersion {
        /// The workflow's name.
        workflow: String,
        /// The version registered twice.
        version: u32,
        /// The layout fingerprints, in hex.
        layouts: String,
    },
    /// A new run was asked for on a version older than the newest registered one.
    #[error(
        "workflow `{workflow}` v{version} is not the newest registered version (v{newest}); new runs start on v{newest}, older versions only drain their runs"
    )]
    NotNewest {
        /// The workflow's name.
        workflow: String,
        /// The version asked for.
        version: u32,
        /// The newest registered version.
        newest: u32,
    },
    /// A run id or signal name the engine does not accept.
    #[error("{what} `{}` is not valid: {reason}", name.escape_debug())]
    InvalidName {
        /// What was named: "run id" or "signal name".
        what: String,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value over the engine's size limit (see `EngineBuilder::max_payload_bytes`).
    #[error("{what} is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size as JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A test engine stopped at the simulated crash it was told to simulate.
    #[error("the engine stopped at a simulated crash")]
    SimulatedCrash,
}

/// `` `a`, `b` `` for a list of names, "no signal at all" for none.
fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no signal at all".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}
