//! The order review: an order fans out to one child review workflow per line item, each
//! waiting for a human decision; the order charges once for the approved lines.
//!
//! `cargo run --example order_review` runs the demo: it places an order with three lines on
//! an engine over a store file in a temporary directory, decides each line (approve, reject,
//! approve), and prints the outcome, the ledger of effects and the traces of the order and of
//! its children.
//!
//! `order_review serve --dir <dir> [--place <order id>] [--decide <review run>=approve|reject]..
//! [--exit-when-done <order id>]` runs a worker on `<dir>` that prints `waiting <run>` for each
//! review waiting for a decision, then `outcome <order id> <json>` when the order ends. Kill
//! it with `kill -9` at any moment and start it again on the same directory: every run
//! continues from its last checkpoint, each child started once, each effect once.
//! `ORDER_REVIEW_ABORT_AFTER=<n>` makes the worker die right after its `n`th effect, before the
//! step's checkpoint (the at-least-once window).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use examples::order_review::{
    Ledger, LineDecision, demo_order, line_review, order_review, review_run,
};
use workflow_runtime::{Engine, RunFilter, Signal, SignalOutcome};

#[derive(Parser)]
#[command(about = "An order that fans out to one child review per line item")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a worker on a data directory.
    Serve {
        /// The data directory: the store file and the ledger.
        #[arg(long)]
        dir: PathBuf,
        /// Place the demo order under this id (idempotent).
        #[arg(long)]
        place: Option<String>,
        /// Decide a review: `<review run>=approve` or `<review run>=reject`.
        #[arg(long)]
        decide: Vec<String>,
        /// Exit once this order has ended.
        #[arg(long)]
        exit_when_done: Option<String>,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => demo().await,
        Some(Cmd::Serve {
            dir,
            place,
            decide,
            exit_when_done,
        }) => serve(&dir, place, &decide, exit_when_done).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("order_review: {e}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

async fn open(dir: &Path) -> Result<Engine, Error> {
    std::fs::create_dir_all(dir)?;
    let mut ledger = Ledger::new(dir);
    if let Ok(n) = std::env::var("ORDER_REVIEW_ABORT_AFTER") {
        ledger = ledger.abort_after(n.parse()?);
    }
    Ok(Engine::builder()
        .register(order_review)
        .register(line_review)
        .data(ledger)
        .open(dir.join("orders.redb"))
        .await?)
}

fn decision(approve: bool) -> LineDecision {
    LineDecision {
        approve,
        reviewer: "rev-7".to_owned(),
        reason: if approve { "in stock" } else { "discontinued" }.to_owned(),
    }
}

async fn serve(
    dir: &Path,
    place: Option<String>,
    decide: &[String],
    exit_when_done: Option<String>,
) -> Result<(), Error> {
    let engine = open(dir).await?;
    if let Some(id) = place {
        engine
            .start(order_review, id.clone(), demo_order(&id))
            .await?;
        println!("placed {id}");
    }
    for d in decide {
        let (run, verdict) = d
            .split_once('=')
            .ok_or_else(|| format!("`{d}`: expected <review run>=approve|reject"))?;
        let approve = match verdict {
            "approve" => true,
            "reject" => false,
            other => return Err(format!("`{other}`: expected approve or reject").into()),
        };
        // Keyed by the review run: a decision sent again after a crash changes nothing.
        let signal = Signal::new("line_decision", decision(approve)).dedupe_key(run);
        let outcome = engine.send(run, signal).await?;
        println!("decided {run} {verdict} ({outcome:?})");
    }
    let mut announced = std::collections::BTreeSet::new();
    loop {
        for wait in engine.pending()? {
            if announced.insert(wait.run_id.clone()) {
                println!("waiting {}", wait.run_id);
            }
        }
        if let Some(id) = &exit_when_done
            && let Some(out) = engine.inspect(id)?.output
        {
            println!("outcome {id} {out}");
            engine.shutdown().await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn demo() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("workflow-order-review-{}", std::process::id()));
    let engine = open(&dir).await?;
    let order = demo_order("ORD-7");
    let run = engine.start(order_review, "ORD-7", order.clone()).await?;
    println!(
        "placed ORD-7 with {} lines; each gets a review of its own",
        order.lines.len()
    );
    // Wait until every review waits for its decision.
    while engine.pending()?.len() < order.lines.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for wait in engine.pending()? {
        println!(
            "  {} waits for `{}` {}",
            wait.run_id, wait.signal, wait.metadata
        );
    }
    for (i, approve) in [true, false, true].into_iter().enumerate() {
        let review = review_run("ORD-7", i);
        let outcome = engine
            .send(&review, Signal::new("line_decision", decision(approve)))
            .await?;
        assert_eq!(outcome, SignalOutcome::Delivered);
    }
    let outcome = run.result().await?;
    println!("\noutcome: {}", serde_json::to_string_pretty(&outcome)?);
    println!("\nledger (one effect per idempotency key):");
    for (key, what) in Ledger::new(&dir).effects()? {
        println!("  {key}  {what}");
    }
    let mut runs: Vec<String> = engine
        .runs(&RunFilter::default())?
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    runs.sort();
    for id in runs {
        println!("\ntrace of {id}:");
        for event in engine.trace(&id)? {
            println!("  {event}");
        }
    }
    engine.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
