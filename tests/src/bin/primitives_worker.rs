//! A worker process for the primitives' crash tests (`tests/tests/primitives_crash.rs`): it
//! opens the store at the given path with the system clock and drives one run, while the test
//! kills it with SIGKILL at chosen moments and starts it again.
//!
//! Every step writes to a side-effect ledger in the given directory, as a payment provider
//! would: `exec.log` gets one line per execution (`key\twhat`), `effects.log` one line per
//! idempotency key, the first time the key is seen (a retried key applies nothing again).
//!
//! Usage:
//! - `primitives_worker fanout <store> <ledger dir> <items> <limit>`: starts (or finds) run
//!   `fan-1`, which joins two steps and then fans one step out over the items; prints
//!   `done <output>` when it is over and exits.
//! - `primitives_worker webhook <store> <ledger dir>`: reads `sws <name> <dedupe key> <json>`
//!   lines on stdin and hands each to `signal_with_start` for run `wh-1`, printing
//!   `outcome <outcome>`; prints `done <output>` when the run is over. Its first step holds
//!   until a file `gate` exists in the ledger directory, so signals pile up in its inbox.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use workflow_runtime::prelude::*;

const DAY: Duration = Duration::from_secs(86_400);

/// The stand-in for an external system that dedupes by idempotency key.
struct Ledger {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl Ledger {
    fn apply(&self, key: &str, what: &str) -> Result<(), StepError> {
        let io = |e: std::io::Error| StepError::retryable(format!("ledger: {e}"));
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        append(&self.dir.join("exec.log"), &format!("{key}\t{what}\n")).map_err(io)?;
        let seen = match std::fs::read_to_string(self.dir.join("effects.log")) {
            Ok(text) => text.lines().any(|l| l.split('\t').next() == Some(key)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(e)),
        };
        if !seen {
            append(&self.dir.join("effects.log"), &format!("{key}\t{what}\n")).map_err(io)?;
        }
        Ok(())
    }
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    // A SIGKILL loses nothing the process wrote: the page cache outlives it.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// Long enough that several items are in flight when the test's kill lands.
const STEP_TIME: Duration = Duration::from_millis(40);

#[function]
async fn fetch_ticket(ctx: StepContext, id: String) -> Result<String, StepError> {
    ctx.data::<Ledger>()?
        .apply(&ctx.idempotency_key(), &format!("ticket {id}"))?;
    tokio::time::sleep(STEP_TIME).await;
    Ok(format!("ticket {id}"))
}

#[function]
async fn fetch_customer(ctx: StepContext, id: u64) -> Result<u64, StepError> {
    ctx.data::<Ledger>()?
        .apply(&ctx.idempotency_key(), &format!("customer {id}"))?;
    tokio::time::sleep(STEP_TIME).await;
    Ok(id * 10)
}

/// Its output names its item, so the trace's `step_completed` events say which items were
/// checkpointed.
#[function]
async fn process(ctx: StepContext, item: u32) -> Result<(u32, u64), StepError> {
    ctx.data::<Ledger>()?
        .apply(&ctx.idempotency_key(), &format!("item {item}"))?;
    tokio::time::sleep(STEP_TIME).await;
    Ok((item, u64::from(item) * u64::from(item) + 1))
}

#[workflow]
async fn fan(ctx: &mut WorkflowContext, n: u32, limit: usize) -> Result<String, WorkflowError> {
    let (ticket, customer) = ctx
        .join((fetch_ticket, "T-9".to_owned()), (fetch_customer, 42))
        .await?;
    let items: Vec<u32> = (0..n).collect();
    let out = ctx.fan_out(process, items, limit).await?;
    Ok(format!("{ticket} / {customer} / {out:?}"))
}

/// A reviewer's answer, one variant per signal name.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve { amount: u64 },
    Reject { reason: String },
    Escalate,
}

#[function]
async fn open_case(ctx: StepContext, id: String) -> Result<String, StepError> {
    let ledger = ctx.data::<Ledger>()?;
    ledger.apply(&ctx.idempotency_key(), &format!("open {id}"))?;
    while !ledger.dir.join("gate").exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(format!("case {id}"))
}

#[function]
async fn act(ctx: StepContext, what: String) -> Result<String, StepError> {
    ctx.data::<Ledger>()?.apply(&ctx.idempotency_key(), &what)?;
    Ok(what)
}

#[workflow]
async fn webhook(ctx: &mut WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let case = ctx.step(open_case, id).await?;
    let first = ctx
        .wait_for_any::<Decision>(["approve", "reject", "escalate"], DAY, ())
        .await?;
    let did = ctx.step(act, format!("act on {first:?}")).await?;
    // Takes what the first wait left in the inbox.
    let second = ctx
        .wait_for_any::<Decision>(["approve", "reject", "escalate"], DAY, ())
        .await?;
    Ok(format!("{case}: {did}; then {second:?}"))
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: primitives_worker <fanout|webhook> <store> <ledger dir> [items limit]";
    let (mode, store, dir) = match &args[..] {
        [mode, store, dir, ..] => (mode.as_str(), store, PathBuf::from(dir)),
        _ => return Err(usage.into()),
    };
    let ledger = Ledger {
        dir,
        lock: Mutex::new(()),
    };
    let engine = Engine::builder()
        .register(fan)
        .register(webhook)
        .data(ledger)
        .open(store)
        .await?;
    match mode {
        "fanout" => {
            let n: u32 = args.get(3).ok_or(usage)?.parse()?;
            let limit: usize = args.get(4).ok_or(usage)?.parse()?;
            let run = engine.start(fan, "fan-1", (n, limit)).await?;
            let out = run.result().await?;
            println!("done {out:?}");
        }
        "webhook" => serve_webhooks(&engine).await?,
        other => return Err(format!("unknown mode {other:?}; {usage}").into()),
    }
    engine.shutdown().await;
    Ok(())
}

async fn serve_webhooks(engine: &Engine) -> Result<(), Error> {
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut watching = false;
    let mut watch = |engine: &Engine| -> Result<(), Error> {
        if watching {
            return Ok(());
        }
        let Ok(run) = engine.handle(webhook, "wh-1") else {
            return Ok(());
        };
        watching = true;
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let out = run.result().await;
            let _ = done_tx.send(format!("{out:?}"));
        });
        Ok(())
    };
    watch(engine)?;
    println!("ready");
    loop {
        tokio::select! {
            Some(out) = done.recv() => {
                println!("done {out}");
                return Ok(());
            }
            Some(line) = commands.recv() => {
                let mut parts = line.splitn(4, ' ');
                let (Some("sws"), Some(name), Some(key), Some(payload)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!("bad command {line:?}").into());
                };
                let payload: serde_json::Value = serde_json::from_str(payload)?;
                let signal = Signal::new(name, payload).dedupe_key(key);
                let (_, outcome) = engine
                    .signal_with_start(webhook, "wh-1", "wh-1".into(), signal)
                    .await?;
                println!("outcome {outcome:?}");
                watch(engine)?;
            }
        }
    }
}
