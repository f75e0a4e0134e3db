//! The worker process: an engine on the data directory's store, running the workload's runs
//! as the driver asks, over a line protocol on stdin and stdout.
//!
//! Requests (one per line, answered in any order):
//!
//! ```text
//! start <req> <index>                          -> ack <req> ok | ack <req> error <message>
//! signal <req> <index> <name> <key> <payload>  -> ack <req> delivered|buffered|duplicate|stale|finished
//!                                                 | ack <req> error <message>
//! ```
//!
//! A request the store refused because its device failed (`--outage`) is answered
//! `ack <req> refused no-space|io`.
//!
//! Once open, the worker prints `ready <pid>`; after every successful `start` it watches the
//! run and prints `done <index>` when it finishes (at once if it already had). With `--outage`,
//! it prints `outage <fault>` when the device starts failing and `healed` when it is made to
//! work again. End of input shuts the engine down cleanly.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;
use workflow_runtime::prelude::*;

use workflow_runtime::store::{FileStore, StoreError};
use workflow_runtime::testing::{DiskFault, PowerLossDisk};
use workflow_runtime::{
    EngineError, LeaseSettings, ResultError, Signal, SignalError, SignalOutcome,
};

use crate::fault::{Fault, kill_self};
use crate::flows::{batch, order, reminder};
use crate::ledger;
use crate::workload::{self, RunPlan, Spec};

/// The store's file name inside the data directory.
pub const STORE: &str = "store.redb";

/// What a worker is started with.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The data directory (store and ledger).
    pub dir: PathBuf,
    /// The workload's seed.
    pub seed: u64,
    /// The workload's size.
    pub runs: usize,
    /// An exact-point fault armed for this life.
    pub fault: Option<Fault>,
    /// Break the ledger's de-duplication ([`ledger::forget_keys`]).
    pub forget_keys: bool,
    /// Open the store through the power-loss layer ([`PowerLossDisk`]): only synced writes
    /// survive a death, and a `power-cut` fault tears and reorders the unsynced ones.
    pub power_loss: bool,
    /// With `power_loss`, a disk that acknowledges syncs it did not make (the check's blind
    /// spot test).
    pub lying_sync: bool,
    /// With `power_loss`, a device failure in this life (full-disk mode).
    pub outage: Option<Outage>,
    /// Multi-worker mode: the PostgreSQL database the workers share (the store and the
    /// ledger's lock stay beside it in `dir`), and this worker's name.
    pub pg: Option<(String, String)>,
}

/// The leases of multi-worker mode: short, so that a killed worker's runs move on soon.
pub fn lease_settings(name: &str) -> LeaseSettings {
    LeaseSettings::new(Duration::from_secs(2))
        .renew_every(Duration::from_millis(500))
        .poll_every(Duration::from_millis(50))
        .owner(name)
}

/// A device failure: `fault` from the `after_ops`-th store operation of the life on, for
/// `for_ms` milliseconds once it has started; then again `after_ops` operations after it
/// healed, with the other fault, and so on. Written `no-space:OPS:MS` or `failing-sync:OPS:MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// What fails.
    pub fault: DiskFault,
    /// When it starts, in store operations (writes, resizes, syncs) from the open.
    pub after_ops: u64,
    /// How long it lasts once started.
    pub for_ms: u64,
}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.fault {
            DiskFault::NoSpace => "no-space",
            _ => "failing-sync",
        };
        write!(f, "{kind}:{}:{}", self.after_ops, self.for_ms)
    }
}

impl std::str::FromStr for Outage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an outage (no-space|failing-sync:OPS:MS)");
        let mut parts = s.split(':');
        let fault = match parts.next() {
            Some("no-space") => DiskFault::NoSpace,
            Some("failing-sync") => DiskFault::FailingSync,
            _ => return Err(bad()),
        };
        let mut number =
            || -> Result<u64, String> { parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad) };
        let (after_ops, for_ms) = (number()?, number()?);
        Ok(Outage {
            fault,
            after_ops,
            for_ms,
        })
    }
}

/// How a refusal by a failing device is answered: `no-space` or `io`.
fn refusal(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::NoSpace { .. } => Some("no-space"),
        StoreError::Io { .. } => Some("io"),
        _ => None,
    }
}

/// Runs a worker until its input ends (or a fault kills it).
///
/// # Errors
/// If the ledger or the store cannot be opened.
pub fn run(args: &WorkerArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    rt.block_on(serve(args))
}

async fn serve(args: &WorkerArgs) -> Result<(), String> {
    if args.pg.is_some() {
        ledger::install_shared(&args.dir).map_err(|e| format!("ledger: {e}"))?;
    } else {
        ledger::install(&args.dir).map_err(|e| format!("ledger: {e}"))?;
    }
    if args.forget_keys {
        ledger::forget_keys();
    }
    let mut builder = Engine::builder()
        .register(order)
        .register(reminder)
        .register(batch);
    if let Some(fault) = args.fault {
        fault.arm();
        builder = builder.instrument(fault.hooks());
    }
    let mut faults = None;
    let engine = if let Some((url, name)) = &args.pg {
        // The database may be restarting (the torture stops it once): wait for it, as a
        // deployed worker would.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let store = loop {
            let url = url.clone();
            let opened =
                tokio::task::spawn_blocking(move || workflow_postgres::PgStore::open(&url))
                    .await
                    .map_err(|e| format!("open: {e}"))?;
            match opened {
                Ok(store) => break store,
                Err(e) if std::time::Instant::now() > deadline => return Err(format!("open: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        builder.shared(lease_settings(name)).open_store(store).await
    } else if args.power_loss {
        let disk = power_loss_disk(args).await?;
        faults = Some(disk.faults());
        let store = FileStore::open_power_loss(disk).map_err(|e| format!("open: {e}"))?;
        builder.open_store(store).await
    } else {
        builder.open(args.dir.join(STORE)).await
    }
    .map_err(|e| format!("open: {e}"))?;
    let plans = Arc::new(workload::plan(args.seed, args.runs));
    println!("ready {}", std::process::id());
    if let (Some(first), Some(faults)) = (args.outage, faults) {
        // The outage recurs for the whole life, the two faults taking turns, so that a long
        // life heals many times.
        tokio::spawn(async move {
            let mut outage = first;
            loop {
                let failed_before = faults.failed_operations();
                faults.start_after(outage.fault, outage.after_ops);
                while faults.active().is_none() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                println!("outage {outage}");
                tokio::time::sleep(Duration::from_millis(outage.for_ms)).await;
                faults.clear();
                eprintln!(
                    "outage healed: {outage}, {} store operations failed",
                    faults.failed_operations() - failed_before
                );
                println!("healed");
                outage.fault = match outage.fault {
                    DiskFault::NoSpace => DiskFault::FailingSync,
                    _ => DiskFault::NoSpace,
                };
            }
        });
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let (engine, plans) = (engine.clone(), plans.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(&engine, &plans, &line).await {
                eprintln!("worker: bad request `{line}`: {e}");
            }
        });
    }
    engine.shutdown().await;
    Ok(())
}

/// The store file through the power-loss layer. The file is created first by a plain open,
/// which makes it complete before linking it into place: the layer models the loss of
/// unsynced data, not of file system metadata.
async fn power_loss_disk(args: &WorkerArgs) -> Result<PowerLossDisk, String> {
    let path = args.dir.join(STORE);
    if !path.exists() {
        Engine::open(&path)
            .await
            .map_err(|e| format!("creating the store: {e}"))?
            .shutdown()
            .await;
    }
    let cut_at = match args.fault {
        Some(Fault::PowerCut(n)) => n,
        _ => 0,
    };
    let disk = PowerLossDisk::open(&path, args.seed, cut_at, |report| {
        eprintln!("power cut: {report:?}");
        kill_self("power-cut");
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(if args.lying_sync {
        disk.lying_about_sync()
    } else {
        disk
    })
}

async fn handle(engine: &Engine, plans: &[RunPlan], line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let plan = |i: &str| -> Result<&RunPlan, String> {
        let i: usize = i.parse().map_err(|e| format!("index: {e}"))?;
        plans.get(i).ok_or_else(|| format!("no run {i}"))
    };
    match words.as_slice() {
        ["start", req, index] => {
            let plan = plan(index)?;
            let answer = match start(engine, plan).await {
                Ok(()) => "ok".to_owned(),
                Err(e) => match e.storage().and_then(refusal) {
                    Some(kind) => format!("refused {kind}"),
                    None => format!("error {}", one_line(&e.to_string())),
                },
            };
            println!("ack {req} {answer}");
            Ok(())
        }
        ["signal", req, index, name, key, payload] => {
            let plan = plan(index)?;
            let payload: u64 = payload.parse().map_err(|e| format!("payload: {e}"))?;
            let signal = Signal::new(*name, payload).dedupe_key(*key);
            let answer = match engine.send(&plan.run_id, signal).await {
                Ok(SignalOutcome::Delivered) => "delivered".to_owned(),
                Ok(SignalOutcome::Buffered) => "buffered".to_owned(),
                Ok(SignalOutcome::Duplicate) => "duplicate".to_owned(),
                Ok(SignalOutcome::Stale) => "stale".to_owned(),
                Ok(other) => format!("error an outcome this worker does not know: {other:?}"),
                Err(SignalError::RunFinished { .. }) => "finished".to_owned(),
                Err(SignalError::Storage(e)) if refusal(&e).is_some() => {
                    format!("refused {}", refusal(&e).unwrap_or_default())
                }
                Err(e) => format!("error {}", one_line(&e.to_string())),
            };
            println!("ack {req} {answer}");
            Ok(())
        }
        _ => Err("unknown request".to_owned()),
    }
}

/// Starts the run (or finds it) and prints `done` once it has finished.
async fn start(engine: &Engine, plan: &RunPlan) -> Result<(), EngineError> {
    let id = plan.run_id.clone();
    let index = plan.index;
    // The output itself is read from the store by the check; here only the moment matters.
    match plan.spec.clone() {
        Spec::Order(input) => {
            let run = engine.start(order, id, input).await?;
            tokio::spawn(async move { finished(index, wait_end(run).await) });
        }
        Spec::Reminder(input) => {
            let run = engine.start(reminder, id, input).await?;
            tokio::spawn(async move { finished(index, wait_end(run).await) });
        }
        Spec::Batch(input) => {
            let run = engine.start(batch, id, input).await?;
            tokio::spawn(async move { finished(index, wait_end(run).await) });
        }
    }
    Ok(())
}

/// Waits for the run's end; a storage error (the shared database restarting) is waited out.
async fn wait_end<W: workflow_runtime::Workflow>(
    run: workflow_runtime::RunHandle<W>,
) -> Result<(), ResultError> {
    loop {
        match run.result().await {
            Err(ResultError::Storage(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return other.map(drop),
        }
    }
}

fn finished(index: usize, result: Result<(), ResultError>) {
    match result {
        Ok(()) => println!("done {index}"),
        // Shut down while waiting: the next life reports it.
        Err(ResultError::ShutDown) => {}
        Err(e) => println!("failed {index} {}", one_line(&e.to_string())),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
