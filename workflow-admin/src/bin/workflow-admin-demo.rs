//! A demo process to try the admin API and CLI by hand, and the process the kill -9 tests
//! kill: an engine over a store file with an `order` workflow (wait for approval, then charge),
//! `--runs N` orders started at launch (ids `order-0`...; starting is idempotent), and the
//! admin API on `--addr`. Prints `listening <addr>` once it serves.
//!
//! ```text
//! workflow-admin-demo --store /tmp/demo.redb --runs 3 --token demo-token-0123456789
//! WORKFLOW_ADMIN_TOKEN=demo-token-0123456789 workflow-admin runs
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use workflow_admin::AdminConfig;
use workflow_runtime::prelude::*;

/// Serves the admin API over a demo store.
#[derive(Parser)]
struct Args {
    /// The store file.
    #[arg(long)]
    store: PathBuf,
    /// How many orders to start at launch.
    #[arg(long, default_value_t = 0)]
    runs: u32,
    /// The bearer token (at least 16 bytes).
    #[arg(long, env = "WORKFLOW_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Where to listen; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
}

#[function]
async fn charge(ctx: StepContext, amount: u64) -> Result<String, StepError> {
    Ok(format!("{}:{amount}", ctx.idempotency_key()))
}

/// Waits for approval, then charges.
#[workflow]
async fn order(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    match ctx
        .wait_for_signal::<bool>(
            "approve",
            Duration::from_secs(86_400),
            json!({ "amount": amount }),
        )
        .await
    {
        Ok(_) => {}
        Err(WaitError::Cancelled) => return Err(WorkflowError::new("cancelled before charging")),
        Err(e) => return Err(e.into()),
    }
    let receipt = ctx.step(charge, amount).await?;
    Ok(receipt)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let engine = Engine::builder().register(order).open(&args.store).await?;
    for i in 0..args.runs {
        engine
            .start(order, format!("order-{i}"), u64::from(i) * 10)
            .await?;
    }
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("listening {}", listener.local_addr()?);
    let app = workflow_admin::router(engine, AdminConfig::new(args.token).addr(args.addr));
    axum::serve(listener, app).await?;
    Ok(())
}
