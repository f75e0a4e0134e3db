//! The error types: one per operation family, and [`EngineError`] for `?` across them.

use std::sync::Arc;

use crate::types::RunStatus;

/// Why an engine operation failed: the umbrella over every operation family, for `?`.
///
/// The operations with an error type of their own ([`Engine::start`](crate::Engine::start):
/// [`StartError`]; [`Engine::send`](crate::Engine::send) and
/// [`Engine::signal`](crate::Engine::signal): [`SignalError`];
/// [`RunHandle::result`](crate::RunHandle::result): [`ResultError`]; opening: [`OpenError`])
/// convert into it variant for variant, so a function returning `Result<_, EngineError>` can
/// use `?` on all of them and still match what went wrong. Storage and codec failures keep
/// their cause as the [`source`](std::error::Error::source).
///
/// Every variant reads as one sentence and names the run, signal, workflow or file involved.
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
        /// What differs, phrased to follow "already exists": "for workflow `a`, not `b`",
        /// "with a different input".
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
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The store failed; nothing of the operation was acknowledged.
    #[error(transparent)]
    Storage(StoreError),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The engine was shut down.
    #[error("the engine has been shut down")]
    ShutDown,
    /// An operator cancelled or terminated the run.
    #[error("run `{run_id}` was stopped by an operator ({status})")]
    Stopped {
        /// The run.
        run_id: String,
        /// [`RunStatus::Cancelled`] or [`RunStatus::Terminated`], with the reason.
        status: RunStatus,
    },
    /// An operations call refused its change (see [`OpsError`]).
    #[error(transparent)]
    Ops(OpsError),
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
}

macro_rules! from_family {
    ($family:ident: $($variant:ident { $($field:ident),* }),* ; $($tuple:ident),*) => {
        impl From<$family> for EngineError {
            fn from(e: $family) -> Self {
                match e {
                    $($family::$variant { $($field),* } => EngineError::$variant { $($field),* },)*
                    $($family::$tuple(inner) => EngineError::$tuple(inner),)*
                    $family::ShutDown => EngineError::ShutDown,
                }
            }
        }

        impl From<StoreError> for $family {
            fn from(e: StoreError) -> Self {
                match e {
                    StoreError::Closed => $family::ShutDown,
                    e => $family::Storage(e),
                }
            }
        }
    };
}

/// Why [`Engine::start`](crate::Engine::start) did not start (or find) a run; nothing was
/// created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The run id is taken by a run of another workflow or with another input.
    #[error("run `{run_id}` already exists {reason}")]
    Conflict {
        /// The run id.
        run_id: String,
        /// What differs, phrased to follow "already exists".
        reason: String,
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
    /// One version of the workflow is registered with two different layouts.
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
    /// The run id is not accepted.
    #[error("{what} `{}` is not valid: {reason}", name.escape_debug())]
    InvalidName {
        /// What was named: "run id".
        what: String,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is over the engine's size limit.
    #[error("{what} is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size as JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The input could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The store failed; nothing was created.
    #[error(transparent)]
    Storage(StoreError),
    /// The engine was shut down.
    #[error("the engine has been shut down")]
    ShutDown,
}

from_family!(StartError:
    Conflict { run_id, reason },
    NotRegistered { workflow },
    AmbiguousVersion { workflow, version, layouts },
    NotNewest { workflow, version, newest },
    InvalidName { what, name, reason },
    TooLarge { what, bytes, limit };
    Codec, Storage);

/// Why [`Engine::send`](crate::Engine::send) refused a signal or could not record it; the run
/// is as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
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
    /// The payload does not decode into the type its wait expects.
    #[error("signal `{signal}` for run `{run_id}` was refused: {message}")]
    PayloadMismatch {
        /// The run.
        run_id: String,
        /// The signal's name.
        signal: String,
        /// What the workflow said about the payload.
        message: String,
    },
    /// The signal is addressed to the current wait, which waits for another signal.
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
    /// The signal is addressed to a wait id the run never had.
    #[error("run `{run_id}` has no wait with id `{wait_id}`")]
    UnknownWait {
        /// The run.
        run_id: String,
        /// The wait id named by the signal.
        wait_id: String,
    },
    /// The run cannot be driven by the registered code.
    #[error("run `{run_id}` is incompatible with the registered code: {reason}")]
    Incompatible {
        /// The run.
        run_id: String,
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// The run's workflow is not registered with this engine.
    #[error(
        "workflow `{workflow}` is not registered with this engine; \
         call `EngineBuilder::register` or `Engine::register` first"
    )]
    NotRegistered {
        /// The workflow's name.
        workflow: String,
    },
    /// The run id or signal name is not accepted.
    #[error("{what} `{}` is not valid: {reason}", name.escape_debug())]
    InvalidName {
        /// What was named: "run id" or "signal name".
        what: String,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload is over the engine's size limit.
    #[error("{what} is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size as JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The store failed; the signal was not recorded.
    #[error(transparent)]
    Storage(StoreError),
    /// The engine was shut down.
    #[error("the engine has been shut down")]
    ShutDown,
}

from_family!(SignalError:
    UnknownRun { run_id },
    RunFinished { run_id, status },
    PayloadMismatch { run_id, signal, message },
    WrongSignal { run_id, wait_id, expected, signal },
    UnknownSignal { run_id, workflow, signal, expected },
    UnknownWait { run_id, wait_id },
    Incompatible { run_id, reason },
    NotRegistered { workflow },
    InvalidName { what, name, reason },
    TooLarge { what, bytes, limit };
    Codec, Storage);

/// Why [`RunHandle::result`](crate::RunHandle::result) has no output to return.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// No run with this id exists in the store.
    #[error("no run with id `{run_id}` exists")]
    UnknownRun {
        /// The run id asked for.
        run_id: String,
    },
    /// The run failed without producing an output (a panic, or an engine-level failure).
    #[error("run `{run_id}` failed: {message}")]
    RunFailed {
        /// The run.
        run_id: String,
        /// What went wrong.
        message: String,
    },
    /// The run cannot be driven by the registered code, so it will not finish here.
    #[error("run `{run_id}` is incompatible with the registered code: {reason}")]
    Incompatible {
        /// The run.
        run_id: String,
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// The run's workflow is not registered with this engine, so nothing here moves it.
    #[error(
        "workflow `{workflow}` is not registered with this engine; \
         call `EngineBuilder::register` or `Engine::register` first"
    )]
    NotRegistered {
        /// The workflow's name.
        workflow: String,
    },
    /// An operator cancelled or terminated the run (`Engine::cancel`, `Engine::terminate`);
    /// what a cancelled workflow returned is in its trace.
    #[error("run `{run_id}` was stopped by an operator ({status})")]
    Stopped {
        /// The run.
        run_id: String,
        /// [`RunStatus::Cancelled`] or [`RunStatus::Terminated`], with the reason.
        status: RunStatus,
    },
    /// The stored output does not decode into the workflow's output type.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The store failed while reading the run.
    #[error(transparent)]
    Storage(StoreError),
    /// The engine was shut down before the run finished.
    #[error("the engine has been shut down")]
    ShutDown,
}

from_family!(ResultError:
    UnknownRun { run_id },
    Stopped { run_id, status },
    RunFailed { run_id, message },
    Incompatible { run_id, reason },
    NotRegistered { workflow };
    Codec, Storage);

/// A run id or signal name refused, or a value over the size limit, before anything is read;
/// converts into the error of the operation that checked it.
#[derive(Debug)]
pub(crate) enum Refused {
    InvalidName {
        what: String,
        name: String,
        reason: String,
    },
    TooLarge {
        what: String,
        bytes: usize,
        limit: usize,
    },
}

macro_rules! from_refused {
    ($($family:ident),*) => {$(
        impl From<Refused> for $family {
            fn from(r: Refused) -> Self {
                match r {
                    Refused::InvalidName { what, name, reason } => {
                        $family::InvalidName { what, name, reason }
                    }
                    Refused::TooLarge { what, bytes, limit } => {
                        $family::TooLarge { what, bytes, limit }
                    }
                }
            }
        }
    )*};
}

from_refused!(StartError, SignalError, EngineError);

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => EngineError::ShutDown,
            e => EngineError::Storage(e),
        }
    }
}

impl EngineError {
    /// The storage error at the root of this one, if the store failed.
    pub fn storage(&self) -> Option<&StoreError> {
        match self {
            EngineError::Storage(e) | EngineError::Open(OpenError::Storage { source: e, .. }) => {
                Some(e)
            }
            _ => None,
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another engine or process holds the store.
    #[error("store {path} is already open by another engine or process")]
    AlreadyOpen {
        /// The store's path or name.
        path: String,
    },
    /// The file exists but is not a store written by this library.
    #[error("{path} is not a workflow-runtime store: {reason}")]
    NotAStore {
        /// The store's path or name.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The store is damaged.
    #[error("store {path} is damaged: {reason}")]
    Corrupt {
        /// The store's path or name.
        path: String,
        /// What the storage layer reported.
        reason: String,
    },
    /// Reading or initialising the store failed.
    #[error("store {path} could not be opened")]
    Storage {
        /// The store's path or name.
        path: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

/// Why the store failed an operation. Nothing of a refused commit was written, with one
/// exception: a commit refused with [`StoreError::Io`] because the device failed to sync may
/// have reached the disk after all (a failed `fsync` leaves that unknown), so the engine
/// reloads runs from the store after such a failure instead of trusting either outcome.
///
/// A full disk is matchable:
///
/// ```
/// # use workflow_runtime::store::StoreError;
/// fn is_full(e: &StoreError) -> bool {
///     matches!(e, StoreError::NoSpace { .. })
/// }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store has been closed (the engine shut down).
    #[error("the store has been closed")]
    Closed,
    /// The checkpoint was written under a lease that is no longer the run's current one: the
    /// writer no longer owns the run, and nothing was written.
    #[error("run `{run_id}` is no longer leased to this writer, so its checkpoint was refused")]
    NotOwner {
        /// The run.
        run_id: String,
    },
    /// The storage device failed.
    #[error("the storage device failed while {operation} ({})", source.kind())]
    Io {
        /// What the store was doing.
        operation: &'static str,
        /// The device's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The device is out of space (or over a quota): nothing of the refused commit was
    /// written. The store keeps serving reads and, once space returns, accepts writes again by
    /// itself.
    #[error("the storage device is full while {operation} ({})", source.kind())]
    NoSpace {
        /// What the store was doing.
        operation: &'static str,
        /// The device's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The storage backend failed for a reason other than the device.
    #[error("the storage backend failed while {operation}")]
    Backend {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value or a value to store could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A purge named a run that has not ended for good (it is open, or parked as
    /// incompatible); nothing was removed.
    #[error("run `{run_id}` has not ended, so it cannot be purged")]
    NotPurgeable {
        /// The run.
        run_id: String,
    },
}

/// Errors compare by what they say: variant, message and source message.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        let source = |e: &Self| std::error::Error::source(e).map(ToString::to_string);
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
            && source(self) == source(other)
    }
}

impl StoreError {
    /// The kind of the device error at the root of this one, if the device failed.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            StoreError::Io { source, .. } | StoreError::NoSpace { source, .. } => {
                Some(source.kind())
            }
            _ => None,
        }
    }

    /// Whether the device failed ([`StoreError::Io`] or [`StoreError::NoSpace`]): the store
    /// may need to recover before it accepts writes again, and a commit refused this way while
    /// the device was syncing may have reached the disk after all.
    pub fn is_device_failure(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::NoSpace { .. })
    }

    /// A device failure while doing `operation`: [`StoreError::NoSpace`] for a full device or
    /// an exceeded quota, [`StoreError::Io`] otherwise.
    pub fn io(operation: &'static str, source: std::io::Error) -> Self {
        let source = Arc::new(source);
        match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::NoSpace { operation, source }
            }
            _ => StoreError::Io { operation, source },
        }
    }

    /// A backend failure while doing `operation`.
    pub fn backend(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            operation,
            source: Arc::new(source),
        }
    }
}

/// A value that could not be encoded to, or decoded from, its stored JSON form.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} could not be {}", if *.encoding { "encoded" } else { "decoded" })]
pub struct CodecError {
    what: String,
    encoding: bool,
    #[source]
    source: Arc<serde_json::Error>,
}

/// Errors compare by what they say: the value named and the decoder's message.
impl PartialEq for CodecError {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
            && self.encoding == other.encoding
            && self.source.to_string() == other.source.to_string()
    }
}

impl CodecError {
    pub(crate) fn encoding(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self {
            what: what.into(),
            encoding: true,
            source: Arc::new(source),
        }
    }

    pub(crate) fn decoding(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self {
            what: what.into(),
            encoding: false,
            source: Arc::new(source),
        }
    }

    /// What could not be encoded or decoded.
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Why an operations call ([`Engine::cancel`](crate::Engine::cancel),
/// [`Engine::terminate`](crate::Engine::terminate), [`Engine::retry`](crate::Engine::retry),
/// [`Engine::purge`](crate::Engine::purge), [`Engine::runs`](crate::Engine::runs)) refused or
/// could not record its change; the run is as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// No run with this id exists in the store.
    #[error("no run with id `{run_id}` exists")]
    UnknownRun {
        /// The run id asked for.
        run_id: String,
    },
    /// The run has already ended, so it cannot be cancelled or terminated.
    #[error("run `{run_id}` has already finished ({status})")]
    RunFinished {
        /// The run.
        run_id: String,
        /// Its final status.
        status: RunStatus,
    },
    /// Only a failed run can be retried.
    #[error("run `{run_id}` is not failed ({status}); only a failed run can be retried")]
    NotFailed {
        /// The run.
        run_id: String,
        /// Its status.
        status: RunStatus,
    },
    /// The failed run did not fail at a step (it failed as it started, or at a wait or a
    /// sleep), so there is no step to run again.
    #[error("run `{run_id}` did not fail at a step, so there is nothing to retry")]
    NothingToRetry {
        /// The run.
        run_id: String,
    },
    /// Only a run that ended (completed, failed, cancelled, terminated) can be purged; an open
    /// run or one parked as incompatible stays.
    #[error("run `{run_id}` has not ended ({status}), so it cannot be purged")]
    NotPurgeable {
        /// The run.
        run_id: String,
        /// Its status.
        status: RunStatus,
    },
    /// Cancelling runs workflow code, and the run cannot be driven by the registered code;
    /// terminate it instead.
    #[error(
        "run `{run_id}` is incompatible with the registered code ({reason}); \
         terminate it instead of cancelling it"
    )]
    Incompatible {
        /// The run.
        run_id: String,
        /// Both fingerprints, or why the state could not be decoded.
        reason: String,
    },
    /// Cancelling or retrying runs workflow code, and the run's workflow is not registered.
    #[error(
        "workflow `{workflow}` is not registered with this engine; \
         call `EngineBuilder::register` or `Engine::register` first"
    )]
    NotRegistered {
        /// The workflow's name.
        workflow: String,
    },
    /// A run filter or a retention setting that makes no sense.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        reason: String,
    },
    /// The store failed; nothing of the change was written.
    #[error(transparent)]
    Storage(StoreError),
    /// The engine has been shut down.
    #[error("the engine has been shut down")]
    ShutDown,
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Closed => OpsError::ShutDown,
            e => OpsError::Storage(e),
        }
    }
}

impl From<OpsError> for EngineError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::UnknownRun { run_id } => EngineError::UnknownRun { run_id },
            OpsError::RunFinished { run_id, status } => EngineError::RunFinished { run_id, status },
            OpsError::Incompatible { run_id, reason } => {
                EngineError::Incompatible { run_id, reason }
            }
            OpsError::NotRegistered { workflow } => EngineError::NotRegistered { workflow },
            OpsError::Storage(e) => EngineError::Storage(e),
            OpsError::ShutDown => EngineError::ShutDown,
            other => EngineError::Ops(other),
        }
    }
}

/// `` `a`, `b` `` for a list of names, "no signal at all" for none.
fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no signal at all".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}
