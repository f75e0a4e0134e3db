//! The order saga under the testing toolkit: every path (a transient failure retried to
//! success, a permanent decline, an undeliverable address undone in reverse order, retries
//! used up), the effects each leaves in the outside systems, and a crash at every commit.

use examples::saga::{Order, OrderOutcome, charge_card, effects, place_order, refund_payment};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Script, TestEngine, crash_test};

fn order(id: &str, card: &str, address: &str) -> Order {
    Order {
        id: id.to_owned(),
        sku: "desk-lamp".to_owned(),
        quantity: 2,
        total_cents: 4_000,
        card: Secret::new(card.to_owned()),
        address: Secret::new(address.to_owned()),
    }
}

const GOOD_CARD: &str = "4242-4242-4242-4242";
const FLAKY_GATEWAY: &str = "4242-4242-4242-0119";
const GATEWAY_DOWN: &str = "4242-4242-4242-0500";
const DECLINED: &str = "4000-0000-0000-0002";
const HOME: &str = "12 Harbour Road, Leith";
const ATLANTIS: &str = "1 Poseidon Square, Atlantis";

fn cancelled(failed_step: &str, reason: &str, undone: &[&str]) -> OrderOutcome {
    OrderOutcome::Cancelled {
        failed_step: failed_step.to_owned(),
        reason: reason.to_owned(),
        undone: undone.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_timeout_is_retried_and_the_card_is_charged_once() {
    let te = TestEngine::builder().register(place_order).build().await;
    let run = te
        .start(place_order, "S-1", order("S-1", FLAKY_GATEWAY, HOME))
        .await
        .unwrap();
    assert!(matches!(
        run.status().unwrap(),
        RunStatus::Retrying { ref step, attempt: 2, .. } if step == "charge_card"
    ));
    te.advance(Duration::from_millis(200)).await;
    te.advance(Duration::from_millis(400)).await;
    assert_eq!(
        run.result().await.unwrap(),
        Ok(OrderOutcome::Shipped {
            tracking: "trk-S-1".into(),
            payment_id: "pay-S-1".into(),
        })
    );
    assert_eq!(
        effects("S-1"),
        [
            "reserved 2 x desk-lamp",
            "charged $40.00",
            "shipped to 12 Harbour Road, Leith"
        ]
    );
    assert_eq!(te.calls_of::<charge_card>("S-1"), 3);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_releases_the_stock_without_retrying() {
    let te = TestEngine::builder().register(place_order).build().await;
    let run = te
        .start(place_order, "S-2", order("S-2", DECLINED, HOME))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(cancelled(
            "charge_card",
            "card declined",
            &["release_stock"]
        ))
    );
    assert_eq!(te.calls_of::<charge_card>("S-2"), 1);
    assert_eq!(
        effects("S-2"),
        ["reserved 2 x desk-lamp", "released res-S-2"]
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_order_is_undone_in_reverse_order() {
    let te = TestEngine::builder().register(place_order).build().await;
    let run = te
        .start(place_order, "S-3", order("S-3", GOOD_CARD, ATLANTIS))
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        Ok(cancelled(
            "ship_parcel",
            "the carrier cannot deliver to the order's address",
            &["refund_payment", "release_stock"]
        ))
    );
    assert_eq!(
        effects("S-3"),
        [
            "reserved 2 x desk-lamp",
            "charged $40.00",
            "refunded $40.00 (pay-S-3)",
            "released res-S-3"
        ]
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_used_up_reach_the_workflow_which_compensates() {
    let te = TestEngine::builder().register(place_order).build().await;
    let run = te
        .start(place_order, "S-4", order("S-4", GATEWAY_DOWN, HOME))
        .await
        .unwrap();
    for wait in [200, 400, 800] {
        te.advance(Duration::from_millis(wait)).await;
    }
    assert_eq!(
        run.result().await.unwrap(),
        Ok(cancelled(
            "charge_card",
            "payment gateway timed out",
            &["release_stock"]
        ))
    );
    assert_eq!(te.calls_of::<charge_card>("S-4"), 4);
    assert_eq!(
        effects("S-4"),
        ["reserved 2 x desk-lamp", "released res-S-4"]
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensation_that_fails_for_a_while_is_retried_with_its_own_policy() {
    // The refund provider is down for the first three attempts; the saga's `UNDO` policy
    // (10 attempts) outlasts the step's default of 3.
    let te = TestEngine::builder()
        .register(place_order)
        .replace::<refund_payment>(|ctx, (_order, payment)| {
            if ctx.attempt() <= 3 {
                Err(StepError::retryable("refund service unavailable"))
            } else {
                Ok(format!("refund-{}", payment.id))
            }
        })
        .build()
        .await;
    let run = te
        .start(place_order, "S-5", order("S-5", GOOD_CARD, ATLANTIS))
        .await
        .unwrap();
    for wait in [1, 2, 4] {
        te.advance(Duration::from_secs(wait)).await;
    }
    assert_eq!(
        run.result().await.unwrap(),
        Ok(cancelled(
            "ship_parcel",
            "the carrier cannot deliver to the order's address",
            &["refund_payment", "release_stock"]
        ))
    );
    assert_eq!(te.calls_of::<refund_payment>("S-5"), 4);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_survives_a_crash_at_every_commit() {
    let undone = crash_test(
        TestEngine::builder().register(place_order),
        place_order,
        order("S-6", GOOD_CARD, ATLANTIS),
        Script::new(),
    )
    .await;
    undone.assert_ok();
    assert_eq!(
        undone.outcome.as_ref().unwrap()["Ok"]["Cancelled"]["undone"],
        json!(["refund_payment", "release_stock"])
    );

    let retried = crash_test(
        TestEngine::builder().register(place_order),
        place_order,
        order("S-7", FLAKY_GATEWAY, HOME),
        Script::new()
            .advance(Duration::from_millis(200))
            .advance(Duration::from_millis(400)),
    )
    .await;
    retried.assert_ok();
    assert_eq!(
        retried.outcome.as_ref().unwrap()["Ok"]["Shipped"]["payment_id"],
        "pay-S-7"
    );
}
