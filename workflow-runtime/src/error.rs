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
/// async fn approve(
///     engine: &Engine,
///     run_id: &str,
/// ) -> Result<Result<bool, WorkflowError>, EngineError> {
///     // `?` converts a SignalError and a ResultError alike.
///     engine.signal(run_id, "approve", true).await?;
///     Ok(engine.handle(approval, run_id)?.result().await?)
/// }
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// assert_eq!(approve(&engine, "r-1").await?, Ok(true));
/// match approve(&engine, "r-2").await {
///     Err(EngineError::UnknownRun { run_id }) => assert_eq!(run_id, "r-2"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
    /// The run ended, and an operator has since erased its payloads, its output with them.
    #[error("run `{run_id}` ended ({status}) and its payloads were erased")]
    Erased {
        /// The run.
        run_id: String,
        /// Its final status, without its texts.
        status: RunStatus,
    },
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
/// match engine.start(approval, "bad\nid", 10).await {
///     Err(StartError::InvalidName { what, .. }) => assert_eq!(what, "run id"),
///     other => panic!("{other:?}"),
/// }
/// engine.start(approval, "r-1", 10).await?;
/// let e = engine.start(approval, "r-1", 11).await.unwrap_err();
/// assert_eq!(e.to_string(), "run `r-1` already exists with a different input");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
/// match engine.signal("r-1", "aprove", true).await {
///     Err(SignalError::UnknownSignal { signal, expected, .. }) => {
///         assert_eq!((signal.as_str(), expected), ("aprove", vec!["approve".to_owned()]));
///     }
///     other => panic!("{other:?}"),
/// }
/// assert!(matches!(
///     engine.signal("nope", "approve", true).await,
///     Err(SignalError::UnknownRun { .. })
/// ));
/// engine.signal("r-1", "approve", true).await?;
/// assert!(matches!(
///     engine.signal("r-1", "approve", true).await,
///     Err(SignalError::RunFinished { status: RunStatus::Completed, .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
/// engine.terminate("r-1", "a duplicate request").await?;
/// match run.result().await {
///     Err(ResultError::Stopped { status, .. }) => assert_eq!(status.kind(), "terminated"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// No run with this id exists in the store.
    #[error("no run with id `{run_id}` exists")]
    UnknownRun {
        /// The run id asked for.
        run_id: String,
    },
    /// The run ended, and an operator has since erased its payloads, its output with them.
    #[error("run `{run_id}` ended ({status}) and its payloads were erased")]
    Erased {
        /// The run.
        run_id: String,
        /// Its final status, without its texts.
        status: RunStatus,
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
    Erased { run_id, status },
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::{EngineError, StoreError};
    ///
    /// fn disk_full(e: &EngineError) -> bool {
    ///     e.storage().and_then(StoreError::io_kind) == Some(std::io::ErrorKind::StorageFull)
    /// }
    /// let full = EngineError::Storage(StoreError::io(
    ///     "committing a checkpoint",
    ///     std::io::Error::from(std::io::ErrorKind::StorageFull),
    /// ));
    /// assert!(disk_full(&full));
    /// assert!(!disk_full(&EngineError::ShutDown));
    /// ```
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
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// use workflow_runtime::OpenError;
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("notes.txt");
/// std::fs::write(&path, "not a database")?;
/// match Engine::open(&path).await {
///     Err(EngineError::Open(OpenError::NotAStore { reason, .. })) => println!("refused: {reason}"),
///     other => panic!("{other:?}"),
/// }
/// // The file is untouched.
/// assert_eq!(std::fs::read_to_string(&path)?, "not a database");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
    /// The store was written by a newer version of this library (its schema is newer than
    /// the code): nothing was changed; upgrade the library to open it.
    #[error(
        "store {path} has schema version {found}, newer than version {supported}, the newest \
         this library knows; upgrade the library to open it"
    )]
    SchemaTooNew {
        /// The store's path or name.
        path: String,
        /// The schema version found in the store.
        found: u32,
        /// The newest schema version this library reads.
        supported: u32,
    },
    /// The store's server is configured so that an acknowledged commit could be lost in a
    /// power cut (a setting such as `fsync` is off); the store refuses to run on it.
    #[error("store {path} is not durable: {setting} is `{value}`, and it must be `{required}`")]
    NotDurable {
        /// The store's path or name.
        path: String,
        /// The server setting at fault.
        setting: String,
        /// Its value.
        value: String,
        /// The value the store requires.
        required: String,
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
    /// writer no longer owns the run, and nothing was written. Also the answer to a checkpoint
    /// that creates a run ([`Fence::Create`](crate::store::Fence::Create)) whose id another
    /// writer took first.
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
    /// A stored payload could not be sealed or opened by the engine's payload codec (a
    /// missing or wrong key, or an encrypted store opened without a codec); nothing was
    /// written, and the run stays as stored.
    #[error("{what} could not be sealed or opened: {source}")]
    Sealed {
        /// Which payload, of which run.
        what: String,
        /// Why.
        #[source]
        source: crate::payload::SealError,
    },
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StoreError;
    /// let e = StoreError::io("writing a checkpoint", std::io::Error::from(std::io::ErrorKind::StorageFull));
    /// assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull));
    /// assert_eq!(StoreError::Closed.io_kind(), None);
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StoreError;
    /// let e = StoreError::io("committing a checkpoint", std::io::Error::other("the device is gone"));
    /// assert!(e.to_string().starts_with("the storage device failed while committing a checkpoint"));
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::StoreError;
    /// // A backend keeps its own error as the source.
    /// let cause = std::fmt::Error;
    /// let e = StoreError::backend("reading a run", cause);
    /// assert_eq!(e.to_string(), "the storage backend failed while reading a run");
    /// assert_eq!(e.io_kind(), None);
    /// ```
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
/// struct NotJson;
/// impl serde::Serialize for NotJson {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("no JSON form"))
///     }
/// }
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// engine.start(approval, "r-1", 10).await?;
/// match engine.signal("r-1", "approve", NotJson).await {
///     Err(SignalError::Codec(e)) => assert_eq!(e.what(), "the payload of signal `approve`"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
    /// `what` could not be encoded: for storage backends outside this crate.
    pub fn encoding(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self {
            what: what.into(),
            encoding: true,
            source: Arc::new(source),
        }
    }

    /// A stored `what` could not be decoded: for storage backends outside this crate.
    pub fn decoding(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self {
            what: what.into(),
            encoding: false,
            source: Arc::new(source),
        }
    }

    /// What could not be encoded or decoded.
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
    /// struct NotJson;
    /// impl serde::Serialize for NotJson {
    ///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
    ///         Err(serde::ser::Error::custom("no JSON form"))
    ///     }
    /// }
    /// let engine = Engine::builder().register(approval).open_in_memory().await?;
    /// // Refused before anything is read: the run need not exist.
    /// let Err(SignalError::Codec(e)) = engine.signal("any", "approve", NotJson).await else {
    ///     panic!("the payload has no JSON form");
    /// };
    /// assert_eq!(e.what(), "the payload of signal `approve`");
    /// assert_eq!(e.to_string(), "the payload of signal `approve` could not be encoded");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Why an operations call ([`Engine::cancel`](crate::Engine::cancel),
/// [`Engine::terminate`](crate::Engine::terminate), [`Engine::retry`](crate::Engine::retry),
/// [`Engine::purge`](crate::Engine::purge), [`Engine::runs`](crate::Engine::runs)) refused or
/// could not record its change; the run is as it was.
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
/// use workflow_runtime::{OpsError, RunFilter};
/// let engine = Engine::builder().register(approval).open_in_memory().await?;
/// let bad = RunFilter { status: Some("stuck".into()), ..RunFilter::default() };
/// match engine.runs(&bad) {
///     Err(OpsError::Invalid { what, .. }) => assert_eq!(what, "status filter"),
///     other => panic!("{other:?}"),
/// }
/// engine.start(approval, "r-1", 10).await?;
/// assert!(matches!(engine.retry("r-1").await, Err(OpsError::NotFailed { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
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
    /// Only a run that ended (completed, failed, cancelled, terminated) can be erased; an
    /// open run or one parked as incompatible keeps its payloads. Nothing was erased.
    #[error(
        "run `{run_id}` has not ended ({status}), so its payloads cannot be erased; \
         cancel or terminate it first"
    )]
    NotErasable {
        /// The run.
        run_id: String,
        /// Its status.
        status: RunStatus,
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
    /// Shared mode: another worker drives the run and kept its lease for as long as this
    /// operation waited (one lease time); nothing was written.
    #[error(
        "run `{run_id}` is being driven by another worker, which kept its lease for the \
         {waited_ms} ms this operation waited (a long step?); nothing was changed, try again"
    )]
    LeasedElsewhere {
        /// The run.
        run_id: String,
        /// How long the operation waited for the lease, in milliseconds.
        waited_ms: u64,
    },
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

/// A signal payload that does not decode into the type its wait expects.
///
/// [`Workflow::check_signal`](crate::Workflow::check_signal) returns it for the waits a
/// workflow names literally; [`Engine::send`](crate::Engine::send) turns it into
/// [`SignalError::PayloadMismatch`] and leaves the run as it was. The decoder's own error is the
/// [`source`](std::error::Error::source).
///
/// # Examples
///
/// ```
/// use workflow_runtime::PayloadError;
///
/// let e = PayloadError::check::<u64>(&serde_json::json!("ten")).unwrap_err();
/// assert_eq!(e.to_string(), "the payload does not decode into `u64`");
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("the payload does not decode into `{expected}`")]
pub struct PayloadError {
    expected: &'static str,
    #[source]
    source: Arc<serde_json::Error>,
}

/// Errors compare by what they say: the type expected and the decoder's message.
impl PartialEq for PayloadError {
    fn eq(&self, other: &Self) -> bool {
        self.expected == other.expected && self.source.to_string() == other.source.to_string()
    }
}

impl PayloadError {
    /// Checks that `payload` decodes into `T`.
    ///
    /// # Errors
    /// The payload does not decode into `T`; the error names `T` and keeps the decoder's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::PayloadError;
    /// assert!(PayloadError::check::<u64>(&serde_json::json!(7)).is_ok());
    /// assert!(PayloadError::check::<u64>(&serde_json::json!("seven")).is_err());
    /// ```
    pub fn check<T: serde::de::DeserializeOwned>(payload: &serde_json::Value) -> Result<(), Self> {
        T::deserialize(payload)
            .map(drop)
            .map_err(Self::decoding::<T>)
    }

    /// The decoder's refusal to produce a `T`.
    pub(crate) fn decoding<T>(source: serde_json::Error) -> Self {
        PayloadError {
            expected: std::any::type_name::<T>(),
            source: Arc::new(source),
        }
    }

    /// The name of the type the payload was expected to decode into.
    ///
    /// ```
    /// # use workflow_runtime::PayloadError;
    /// let e = PayloadError::check::<bool>(&serde_json::json!(3)).unwrap_err();
    /// assert_eq!(e.expected(), "bool");
    /// ```
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

/// Why a stored state could not be migrated to a newer version of its workflow.
///
/// `#[workflow(migrate_from = ..)]` migrations produce it when the old state does not decode,
/// when the user's `TryFrom` refuses it, or when the new state does not encode; the run is then
/// parked as incompatible with its state untouched. A hand-written migration builds one with
/// [`MigrationError::new`] or, to keep the cause, [`MigrationError::with_source`].
///
/// # Examples
///
/// ```
/// use workflow_runtime::MigrationError;
///
/// let bad: Result<u64, _> = "x".parse::<u64>();
/// let e = MigrationError::with_source("the amount is not a number", bad.unwrap_err());
/// assert_eq!(e.to_string(), "the amount is not a number");
/// assert_eq!(
///     std::error::Error::source(&e).map(ToString::to_string).as_deref(),
///     Some("invalid digit found in string")
/// );
/// assert!(std::error::Error::source(&MigrationError::new("refused")).is_none());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct MigrationError {
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl MigrationError {
    /// An error with this message and no underlying cause.
    ///
    /// ```
    /// # use workflow_runtime::MigrationError;
    /// assert_eq!(MigrationError::new("no v1 state has a draft").message(), "no v1 state has a draft");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with this message, caused by `source`.
    ///
    /// ```
    /// # use workflow_runtime::MigrationError;
    /// let cause = serde_json::from_str::<u64>("{}").unwrap_err();
    /// let e = MigrationError::with_source("the v1 state does not decode", cause);
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The message, without the cause.
    ///
    /// ```
    /// # use workflow_runtime::MigrationError;
    /// assert_eq!(MigrationError::new("refused").message(), "refused");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Errors compare by what they say: message and source message.
impl PartialEq for MigrationError {
    fn eq(&self, other: &Self) -> bool {
        let source = |e: &Self| e.source.as_ref().map(ToString::to_string);
        self.message == other.message && source(self) == source(other)
    }
}

/// An error and its causes as one line, `error: cause: cause`, for the places that keep a reason
/// as text (a parked run's reason, a refused signal's message).
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
