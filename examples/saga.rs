//! The order saga: reserve stock, charge the card, ship; a failure that outlasts its retries
//! (or cannot be retried) undoes the earlier steps in reverse order.
//!
//! `cargo run --example saga` places four orders on an engine over a store file in a temporary
//! directory and prints, for each, the outcome, what the outside systems did, and the trace.
//!
//! The card numbers and addresses are [`Secret`]s: the traces print `<redacted>` in their
//! place. The store file is encrypted at rest with [`ChaChaCodec`] under the key in
//! `SAGA_KEY` (64 hex digits), or a fixed demo key if it is unset; `SAGA_PLAIN=1` turns the
//! encryption off (the traces stay redacted; the state in the file then holds the values).
//! `SAGA_DIR=<dir>` keeps the store there instead of removing it at the end.

use std::process::ExitCode;

use examples::saga::{Order, effects, place_order};
use workflow_runtime::payload::ChaChaCodec;
use workflow_runtime::{Engine, Secret};

/// The id of the demo key. A real deployment keeps its keys in a secret manager, never in code.
pub const DEMO_KEY_ID: &str = "saga-demo-1";
/// The demo key, for a demo only.
pub const DEMO_KEY: [u8; 32] = *b"saga demo key: never use for it!";

fn order(id: &str, sku: &str, card: &str, address: &str, what: &str) -> (Order, String) {
    let order = Order {
        id: id.to_owned(),
        sku: sku.to_owned(),
        quantity: 2,
        total_cents: 4_000,
        card: Secret::new(card.to_owned()),
        address: Secret::new(address.to_owned()),
    };
    (order, what.to_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("saga: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let kept = std::env::var_os("SAGA_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("workflow-saga-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let mut builder = Engine::builder().register(place_order);
    if std::env::var_os("SAGA_PLAIN").is_none() {
        let key = match std::env::var("SAGA_KEY") {
            Ok(hex) => ChaChaCodec::key_from_hex(&hex).ok_or("SAGA_KEY is not 64 hex digits")?,
            Err(_) => DEMO_KEY,
        };
        builder = builder.payload_codec(ChaChaCodec::new(DEMO_KEY_ID, key));
    }
    let engine = builder.open(dir.join("saga.redb")).await?;
    let orders = [
        order(
            "ORD-1",
            "desk-lamp",
            "4242-4242-4242-0119",
            "12 Harbour Road, Leith",
            "the payment gateway times out twice, then the charge goes through",
        ),
        order(
            "ORD-2",
            "desk-lamp",
            "4000-0000-0000-0002",
            "12 Harbour Road, Leith",
            "the card is declined: a permanent error, not retried",
        ),
        order(
            "ORD-3",
            "desk-lamp",
            "4242-4242-4242-4242",
            "1 Poseidon Square, Atlantis",
            "the carrier cannot deliver: refund, then release the stock",
        ),
        order(
            "ORD-4",
            "desk-lamp",
            "4242-4242-4242-0500",
            "12 Harbour Road, Leith",
            "the gateway stays down: four attempts, then the stock is released",
        ),
    ];
    for (i, (order, what)) in orders.into_iter().enumerate() {
        let id = order.id.clone();
        println!("{}. Order {id}: {what}", i + 1);
        let run = engine.start(place_order, id.as_str(), order).await?;
        let outcome = run.result().await?;
        println!("   Outcome: {outcome:?}");
        println!("   Effects: {}", effects(&id).join(", "));
        println!("   Trace:");
        for event in engine.trace(&id)? {
            println!("     {event}");
        }
        println!();
    }
    engine.shutdown().await;
    if kept.is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    println!(
        "Done: retryable failures were retried after durable backoffs; permanent ones were undone in reverse order."
    );
    Ok(())
}
