//! The order saga: reserve stock, charge the card, ship; a failure that outlasts its retries
//! (or cannot be retried) undoes the earlier steps in reverse order.
//!
//! `cargo run --example saga` places four orders on an engine over a store file in a temporary
//! directory and prints, for each, the outcome, what the outside systems did, and the trace.

use std::process::ExitCode;

use examples::saga::{Order, effects, place_order};
use workflow_runtime::Engine;

fn order(id: &str, sku: &str, card: &str, address: &str, what: &str) -> (Order, String) {
    let order = Order {
        id: id.to_owned(),
        sku: sku.to_owned(),
        quantity: 2,
        total_cents: 4_000,
        card: card.to_owned(),
        address: address.to_owned(),
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
    let dir = std::env::temp_dir().join(format!("workflow-saga-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let engine = Engine::builder()
        .register(place_order)
        .open(dir.join("saga.redb"))
        .await?;
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
    std::fs::remove_dir_all(&dir)?;
    println!(
        "Done: retryable failures were retried after durable backoffs; permanent ones were undone in reverse order."
    );
    Ok(())
}
