//! Deploying new workflow code while runs are parked: versions side by side, typed
//! migrations, layout changes detected and parked (never misdecoded), body-only fixes reaching
//! parked runs, operations on incompatible runs, and v1 golden states loading in the v2 build.

use workflow_runtime::prelude::*;
use workflow_runtime::testing::{TestEngine, golden};
use workflow_runtime::{EngineError, TraceKind};
use workflow_runtime::{SignalError, StartError};

#[function]
async fn quote(ticket: String) -> Result<u64, StepError> {
    Ok(ticket.len() as u64 * 10)
}

#[function]
async fn pay(ticket: String, amount: u64) -> Result<String, StepError> {
    Ok(format!("paid {amount} for {ticket}"))
}

const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// The version parked runs were started on.
#[workflow(name = "refund", version = 1)]
async fn refund_v1(ctx: &mut WorkflowContext, ticket: String) -> Result<String, WorkflowError> {
    let amount = ctx.step(quote, ticket.clone()).await?;
    let ok = ctx
        .wait_for_signal::<bool>("decision", WEEK, json!({ "amount": amount }))
        .await;
    if ok != Ok(true) {
        return Ok("not approved".into());
    }
    let receipt = ctx.step(pay, (ticket.clone(), amount)).await?;
    Ok(receipt)
}

/// v2 holds a currency across the wait: a layout change, with a migration from v1.
#[workflow(name = "refund", version = 2, migrate_from = refund_v1)]
async fn refund_v2(ctx: &mut WorkflowContext, ticket: String) -> Result<String, WorkflowError> {
    let amount = ctx.step(quote, ticket.clone()).await?;
    let currency = String::from("EUR");
    let ok = ctx
        .wait_for_signal::<bool>("decision", WEEK, json!({ "amount": amount }))
        .await;
    if ok != Ok(true) {
        return Ok("not approved".into());
    }
    let receipt = ctx.step(pay, (ticket.clone(), amount)).await?;
    Ok(format!("{receipt} {currency}"))
}

impl TryFrom<refund_v1::State> for refund_v2::State {
    type Error = String;

    fn try_from(old: refund_v1::State) -> Result<Self, String> {
        use refund_v1::State as V1;
        use refund_v2::State as V2;
        Ok(match old {
            V1::Start { ticket } => V2::Start { ticket },
            V1::Quote { ticket } => V2::Quote { ticket },
            // Runs parked before v2 were quoted in dollars.
            V1::AwaitingDecision { ticket, .. } if ticket == "T-refuse" => {
                return Err(format!("ticket {ticket} needs a manual migration"));
            }
            V1::AwaitingDecision { ticket, amount } => V2::AwaitingDecision {
                ticket,
                amount,
                currency: "USD".into(),
            },
            V1::Pay {} => V2::Pay {
                currency: "USD".into(),
            },
        })
    }
}

/// The same name and version as v1 with one more held local, without a version bump.
#[workflow(name = "refund", version = 1)]
async fn refund_v1_changed(
    ctx: &mut WorkflowContext,
    ticket: String,
) -> Result<String, WorkflowError> {
    let amount = ctx.step(quote, ticket.clone()).await?;
    let note = String::from("changed");
    let ok = ctx
        .wait_for_signal::<bool>("decision", WEEK, json!({ "amount": amount }))
        .await;
    if ok != Ok(true) {
        return Ok(note);
    }
    let receipt = ctx.step(pay, (ticket.clone(), amount)).await?;
    Ok(receipt)
}

/// v1 with a bug fixed between suspension points: the same stored layout.
#[workflow(name = "refund", version = 1)]
async fn refund_v1_fixed(
    ctx: &mut WorkflowContext,
    ticket: String,
) -> Result<String, WorkflowError> {
    let amount = ctx.step(quote, ticket.clone()).await?;
    let ok = ctx
        .wait_for_signal::<bool>("decision", WEEK, json!({ "amount": amount }))
        .await;
    if ok != Ok(true) {
        return Ok("declined by the reviewer".into());
    }
    let receipt = ctx.step(pay, (ticket.clone(), amount)).await?;
    Ok(receipt.to_uppercase())
}

/// Parks a v1 run at its wait and gives back the engine, shut down.
async fn parked_v1(run: &str, ticket: &str) -> TestEngine {
    let te = TestEngine::builder().register(refund_v1).build().await;
    te.start(refund_v1, run, ticket.into()).await.unwrap();
    assert!(matches!(
        te.engine().status(run).unwrap(),
        RunStatus::Waiting { .. }
    ));
    te
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_v1_run_is_migrated_and_finishes_on_v2() {
    let mut te = parked_v1("r1", "T-1").await;
    te.swap(|b| b.register(refund_v2)).await;
    let summary = te.engine().versions().unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!(
        (
            summary[0].version,
            summary[0].in_flight,
            summary[0].handled_by.as_str()
        ),
        (1, 1, "migrates to v2")
    );
    assert!(matches!(
        te.engine().status("r1").unwrap(),
        RunStatus::Waiting { .. }
    ));
    te.signal("r1", "decision", true).await.unwrap();
    let out = te
        .engine()
        .handle(refund_v2, "r1")
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, Ok("paid 30 for T-1 USD".to_owned()));
    let migrated = te.engine().trace("r1").unwrap().into_iter().any(|e| {
        e.kind
            == TraceKind::Migrated {
                from_version: 1,
                to_version: 2,
            }
    });
    assert!(migrated, "the migration is in the trace");
    // New runs start on v2; asking for v1 is refused while v2 is registered.
    let err = te
        .engine()
        .start(refund_v1, "late", "T-2".into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::NotRegistered { .. } | StartError::NotNewest { .. }
        ),
        "{err}"
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_versions_registered_old_runs_drain_on_v1_and_new_runs_start_on_v2() {
    let mut te = parked_v1("old", "T-1").await;
    te.swap(|b| b.register(refund_v1).register(refund_v2)).await;
    te.start(refund_v2, "new", "T-22".into()).await.unwrap();
    let err = te
        .engine()
        .start(refund_v1, "wrong", "T-3".into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::NotNewest {
                version: 1,
                newest: 2,
                ..
            }
        ),
        "{err}"
    );
    te.signal("old", "decision", true).await.unwrap();
    te.signal("new", "decision", true).await.unwrap();
    assert_eq!(
        te.engine()
            .handle(refund_v1, "old")
            .unwrap()
            .result()
            .await
            .unwrap(),
        Ok("paid 30 for T-1".to_owned())
    );
    assert_eq!(
        te.engine()
            .handle(refund_v2, "new")
            .unwrap()
            .result()
            .await
            .unwrap(),
        Ok("paid 40 for T-22 EUR".to_owned())
    );
    let versions: Vec<(u32, u64)> = te
        .engine()
        .versions()
        .unwrap()
        .iter()
        .map(|v| (v.version, v.finished))
        .collect();
    assert_eq!(versions, [(1, 1), (2, 1)]);
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_change_without_a_version_bump_is_parked_not_misdecoded() {
    let mut te = parked_v1("r1", "T-1").await;
    te.swap(|b| b.register(refund_v1_changed)).await;
    let RunStatus::Incompatible { reason } = te.engine().status("r1").unwrap() else {
        panic!("expected an incompatible run")
    };
    assert!(reason.contains("layout"), "{reason}");
    let err = te.signal("r1", "decision", true).await.unwrap_err();
    assert!(matches!(err, SignalError::Incompatible { .. }), "{err}");
    let listed = te.engine().incompatible_runs().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].run_id.as_str(), listed[0].version), ("r1", 1));
    assert!(matches!(
        te.engine().retry_incompatible("r1").await,
        Err(EngineError::Incompatible { .. })
    ));
    // Nothing was lost: the code that wrote the run finishes it.
    te.swap(|b| b.register(refund_v1)).await;
    assert!(matches!(
        te.engine().retry_incompatible("r1").await.unwrap(),
        RunStatus::Waiting { .. }
    ));
    te.signal("r1", "decision", true).await.unwrap();
    assert_eq!(
        te.engine()
            .handle(refund_v1, "r1")
            .unwrap()
            .result()
            .await
            .unwrap(),
        Ok("paid 30 for T-1".to_owned())
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_only_fix_reaches_parked_runs() {
    let mut te = parked_v1("r1", "T-1").await;
    te.swap(|b| b.register(refund_v1_fixed)).await;
    te.signal("r1", "decision", false).await.unwrap();
    let out = te
        .engine()
        .handle(refund_v1_fixed, "r1")
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, Ok("declined by the reviewer".to_owned()));
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_parks_the_run_intact_until_a_fix_is_deployed() {
    let mut te = parked_v1("r1", "T-refuse").await;
    te.swap(|b| b.register(refund_v2)).await;
    let err = te.signal("r1", "decision", true).await.unwrap_err();
    let SignalError::Incompatible { reason, .. } = err else {
        panic!("expected incompatible, got {err}")
    };
    assert!(reason.contains("needs a manual migration"), "{reason}");
    assert!(matches!(
        te.engine().status("r1").unwrap(),
        RunStatus::Incompatible { .. }
    ));
    assert_eq!(te.engine().incompatible_runs().unwrap().len(), 1);
    // The fix: keep v1 registered so the run drains on the code that wrote it.
    te.swap(|b| b.register(refund_v1).register(refund_v2)).await;
    let status = te.engine().retry_incompatible("r1").await.unwrap();
    assert!(matches!(status, RunStatus::Waiting { .. }), "{status}");
    te.signal("r1", "decision", true).await.unwrap();
    let out = te
        .engine()
        .handle(refund_v1, "r1")
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, Ok("paid 80 for T-refuse".to_owned()));
    assert!(te.engine().incompatible_runs().unwrap().is_empty());
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_version_registered_with_two_layouts_refuses_new_runs() {
    let te = TestEngine::builder()
        .register(refund_v1)
        .register(refund_v1_changed)
        .build()
        .await;
    let err = te
        .engine()
        .start(refund_v1, "r1", "T-1".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StartError::AmbiguousVersion { version: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("registered twice with different layouts"),
        "{err}"
    );
    te.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_golden_states_load_in_the_v2_build() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/refund-v1.json");
    if golden::update_requested() {
        let te = parked_v1("golden", "T-1").await;
        golden::write(refund_v1, path, &te.checkpoints("golden")).unwrap();
        te.shutdown().await;
    }
    assert_eq!(golden::check(refund_v1, path), Ok(2));
    assert_eq!(golden::check_migration(refund_v2, path), Ok(2));
    let err = golden::check(refund_v2, path).unwrap_err();
    assert!(
        err.message().contains("v1") && err.message().contains("v2"),
        "{err}"
    );
}
