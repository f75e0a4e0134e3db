//! The refund workflow under the testing toolkit: a crash at every commit on every decision
//! path, and golden checkpoints that fail `cargo test` when a stored state stops fitting.

use examples::refund::domain::{Decision, DecisionStatus};
use examples::refund::{Services, refund_review, refund_review_v1};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::{Script, TestEngine, TestEngineBuilder, crash_test, golden};

/// Recorded from version 1 (sequential loads); version 1 stays registered so that its runs
/// drain, and its stored states must keep fitting it.
const GOLDEN_V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/refund_review-v1.json"
);
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/refund_review-v2.json"
);

/// A test engine whose steps talk to ledgers in a temporary directory.
fn builder(dir: &tempfile::TempDir) -> TestEngineBuilder {
    TestEngine::builder()
        .register(refund_review)
        .data(Services::in_dir(dir.path()).unwrap())
}

fn decision(status: DecisionStatus, reason: &str, amount: Option<u64>) -> Decision {
    Decision {
        status,
        reviewer_id: "rev-1".into(),
        reason: reason.into(),
        approved_amount_cents: amount,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refund_review_survives_a_crash_at_every_commit_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let paths = [
        (
            "approve",
            Script::new().signal(
                "refund_decision",
                decision(DecisionStatus::Approved, "", None),
            ),
        ),
        (
            "reject",
            Script::new().signal(
                "refund_decision",
                decision(DecisionStatus::Rejected, "no", None),
            ),
        ),
        (
            "redraft",
            Script::new()
                .signal(
                    "refund_decision",
                    decision(DecisionStatus::RequestChanges, "make it $40", None),
                )
                .signal(
                    "refund_decision",
                    decision(DecisionStatus::Approved, "", Some(4_000)),
                ),
        ),
        (
            "timeout",
            Script::new().advance(Duration::from_secs(7 * 86_400)),
        ),
    ];
    for (name, script) in paths {
        let report = crash_test(builder(&dir), refund_review, "T-1002".into(), script).await;
        report.assert_ok();
        assert!(report.commits >= 4, "{name}: {report}");
        println!("{name}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_refund_states_still_fit_the_code() {
    let dir = tempfile::tempdir().unwrap();
    if golden::update_requested() {
        let te = builder(&dir).build().await;
        te.start(refund_review, "golden", "T-1001".into())
            .await
            .unwrap();
        te.signal(
            "golden",
            "refund_decision",
            decision(DecisionStatus::RequestChanges, "lower", None),
        )
        .await
        .unwrap();
        te.signal(
            "golden",
            "refund_decision",
            decision(DecisionStatus::Approved, "", None),
        )
        .await
        .unwrap();
        golden::write(refund_review, GOLDEN, &te.checkpoints("golden")).unwrap();
        te.shutdown().await;
    }
    golden::assert_matches(refund_review, GOLDEN);
    golden::assert_matches(refund_review_v1, GOLDEN_V1);
}
