//! Sensitive data: `Secret` values stay out of traces, the operations API and messages;
//! a payload codec keeps every payload out of the store file; keys rotate while runs are
//! parked; a wrong or missing key is a clear error that leaves the run intact; erasure leaves
//! only a run's status and times.

use serde::{Deserialize, Serialize};
use workflow_runtime::payload::{ChaChaCodec, SealError};
use workflow_runtime::prelude::*;
use workflow_runtime::testing::TestEngine;
use workflow_runtime::{OpsError, ResultError, StoreError, TraceKind};

const CARD: &str = "4111-2222-3333-4444";
const NAME: &str = "Ottoline Quaritch";
const NOTE: &str = "zebra-quartz-note";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    order_id: String,
    card: Secret<String>,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Approval {
    approved: bool,
    reviewer: Secret<String>,
}

#[function]
async fn charge_card(card: Secret<String>, cents: u64) -> Result<Secret<String>, StepError> {
    // The step sees the value; what it returns is marked again.
    Ok(Secret::new(format!("charged {cents} to {}", card.expose())))
}

#[workflow]
async fn checkout(
    ctx: &mut WorkflowContext,
    order: Order,
) -> Result<Secret<String>, WorkflowError> {
    let approval = ctx
        .wait_for_signal::<Approval>(
            "approval",
            Duration::from_secs(3600),
            json!({ "order": order.order_id, "card": order.card }),
        )
        .await?;
    if !approval.approved {
        return Ok(Secret::new("refused".into()));
    }
    let receipt = ctx
        .step(charge_card, (order.card.clone(), order.cents))
        .await?;
    // The output quotes the card, so it is a secret too.
    Ok(Secret::new(format!(
        "{} ({})",
        receipt.expose(),
        approval.reviewer.expose().len()
    )))
}

fn order(id: &str) -> Order {
    Order {
        order_id: id.into(),
        card: Secret::new(CARD.into()),
        cents: 1250,
    }
}

fn approval() -> Approval {
    Approval {
        approved: true,
        reviewer: Secret::new(NAME.into()),
    }
}

fn codec(id: &str, byte: u8) -> ChaChaCodec {
    ChaChaCodec::new(id, [byte; 32])
}

fn shows_no_secret(what: &str, text: &str) {
    for planted in [CARD, NAME, NOTE] {
        assert!(!text.contains(planted), "{what} shows `{planted}`: {text}");
    }
}

fn file_holds(path: &std::path::Path, planted: &str) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(planted.len())
        .any(|w| w == planted.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_workflow_but_not_the_trace_or_the_operations_api() {
    let engine = Engine::builder()
        .register(checkout)
        .open_in_memory()
        .await
        .unwrap();
    let run = engine.start(checkout, "o-1", order("o-1")).await.unwrap();
    let pending = engine.pending().unwrap();
    shows_no_secret("pending", &serde_json::to_string(&pending).unwrap());
    assert_eq!(pending[0].metadata["card"], "<redacted>");
    shows_no_secret(
        "inspect",
        &serde_json::to_string(&engine.inspect("o-1").unwrap()).unwrap(),
    );
    engine.signal("o-1", "approval", approval()).await.unwrap();
    let out = run.result().await.unwrap().unwrap();
    // The workflow had the values: the state kept them.
    assert_eq!(
        out.expose(),
        &format!("charged 1250 to {CARD} ({})", NAME.len())
    );
    let trace = engine.trace("o-1").unwrap();
    let shown: Vec<String> = trace.iter().map(ToString::to_string).collect();
    shows_no_secret("trace lines", &shown.join("\n"));
    shows_no_secret("trace JSON", &serde_json::to_string(&trace).unwrap());
    let started = &trace[0].kind;
    assert!(
        matches!(started, TraceKind::Started { input, .. } if input["card"] == "<redacted>"),
        "{started:?}"
    );
    shows_no_secret("inspect", &format!("{:?}", engine.inspect("o-1").unwrap()));
    engine.shutdown().await;
}

#[workflow]
async fn fails_with_secret(
    ctx: &mut WorkflowContext,
    card: Secret<String>,
) -> Result<(), Secret<String>> {
    let _ = ctx;
    Err(card)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_message_does_not_quote_a_secret() {
    let engine = Engine::builder()
        .register(fails_with_secret)
        .open_in_memory()
        .await
        .unwrap();
    let run = engine
        .start(fails_with_secret, "f-1", Secret::new(CARD.to_owned()))
        .await
        .unwrap();
    // The caller gets its own error value back.
    assert_eq!(run.result().await.unwrap().unwrap_err().expose(), CARD);
    let status = engine.status("f-1").unwrap();
    shows_no_secret("status", &status.to_string());
    assert!(matches!(status, RunStatus::Failed { .. }), "{status}");
    shows_no_secret(
        "trace",
        &serde_json::to_string(&engine.trace("f-1").unwrap()).unwrap(),
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_codec_the_store_file_holds_no_payload_and_keys_rotate_while_runs_are_parked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let open = |codec: ChaChaCodec| {
        Engine::builder()
            .register(checkout)
            .payload_codec(codec)
            .open(&path)
    };

    // Key k1: two runs park on their approval wait; the order id (plain, not a Secret) is
    // encrypted too.
    let engine = open(codec("k1", 1)).await.unwrap();
    for id in ["a", "b"] {
        engine
            .start(checkout, id, order(&format!("{NOTE}-{id}")))
            .await
            .unwrap();
    }
    engine.shutdown().await;
    for planted in [CARD, NOTE] {
        assert!(
            !file_holds(&path, planted),
            "the store file holds `{planted}`"
        );
    }

    // Rotated to k2, k1 kept for what it sealed: the parked runs finish.
    let engine = open(codec("k2", 2).with_old_key("k1", [1; 32]))
        .await
        .unwrap();
    engine.signal("a", "approval", approval()).await.unwrap();
    let out = engine
        .handle(checkout, "a")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    assert!(out.expose().contains(CARD));
    engine.shutdown().await;
    for planted in [CARD, NAME, NOTE] {
        assert!(
            !file_holds(&path, planted),
            "the store file holds `{planted}`"
        );
    }

    // k2 alone: run `a` was rewritten under k2 as it finished, so its record opens; its early
    // trace events were sealed under k1 and say so.
    let engine = open(codec("k2", 2)).await.unwrap();
    assert_eq!(engine.status("a").unwrap(), RunStatus::Completed);
    match engine.trace("a") {
        Err(EngineError::Storage(StoreError::Sealed {
            source: SealError::UnknownKey { key_id },
            ..
        })) => assert_eq!(key_id, "k1"),
        other => panic!("expected the missing key k1, got {other:?}"),
    }
    // Run `b` is still sealed under k1 only: a signal fails clearly and changes nothing.
    let refused = engine
        .signal("b", "approval", approval())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("`k1`"), "{refused}");
    engine.shutdown().await;

    // The right keys again: `b` is intact and finishes.
    let engine = open(codec("k2", 2).with_old_key("k1", [1; 32]))
        .await
        .unwrap();
    engine.signal("b", "approval", approval()).await.unwrap();
    let out = engine
        .handle(checkout, "b")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    assert!(out.expose().contains(CARD));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_no_codec_is_a_clear_error_and_the_run_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let engine = Engine::builder()
        .register(checkout)
        .payload_codec(codec("k1", 1))
        .open(&path)
        .await
        .unwrap();
    engine.start(checkout, "w", order("w")).await.unwrap();
    engine.shutdown().await;

    // The same id, another key: rejected, never misdecoded.
    let engine = Engine::builder()
        .register(checkout)
        .payload_codec(codec("k1", 9))
        .open(&path)
        .await
        .unwrap();
    match engine.signal("w", "approval", approval()).await {
        Err(e) => assert!(
            e.to_string().contains("does not authenticate"),
            "unexpected error: {e}"
        ),
        Ok(outcome) => panic!("a wrong key accepted a signal: {outcome:?}"),
    }
    assert!(matches!(
        engine.inspect("w"),
        Err(OpsError::Storage(StoreError::Sealed {
            source: SealError::Rejected { .. },
            ..
        }))
    ));
    engine.shutdown().await;

    // No codec at all: refused as encrypted, not parked as incompatible.
    let engine = Engine::builder()
        .register(checkout)
        .open(&path)
        .await
        .unwrap();
    assert!(matches!(
        engine.status("w"),
        Err(EngineError::Storage(StoreError::Sealed {
            source: SealError::NoCodec,
            ..
        }))
    ));
    engine.shutdown().await;

    // The right key: the run was left as it was and finishes.
    let engine = Engine::builder()
        .register(checkout)
        .payload_codec(codec("k1", 1))
        .open(&path)
        .await
        .unwrap();
    assert!(matches!(
        engine.status("w").unwrap(),
        RunStatus::Waiting { .. }
    ));
    engine.signal("w", "approval", approval()).await.unwrap();
    let out = engine
        .handle(checkout, "w")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    assert!(out.expose().contains(CARD));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_status_and_times_and_refuses_open_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let engine = Engine::builder()
        .register(checkout)
        .open(&path)
        .await
        .unwrap();
    for id in ["cust-7/1", "cust-7/2", "cust-8/1"] {
        engine
            .start(checkout, id, order(&format!("{NOTE}-{id}")))
            .await
            .unwrap();
    }
    engine
        .signal("cust-7/1", "approval", approval())
        .await
        .unwrap();
    engine
        .handle(checkout, "cust-7/1")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();

    // cust-7/2 is still waiting: nothing of cust-7 is erased.
    match engine.erase_prefix("cust-7/").await {
        Err(OpsError::NotErasable { run_id, .. }) => assert_eq!(run_id, "cust-7/2"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        engine.erase("cust-7/2").await,
        Err(OpsError::NotErasable { .. })
    ));
    assert!(engine.trace("cust-7/1").unwrap().len() > 3);

    engine.terminate("cust-7/2", "customer left").await.unwrap();
    let before = engine.inspect("cust-7/1").unwrap();
    let erased = engine.erase_prefix("cust-7/").await.unwrap();
    assert_eq!(erased, ["cust-7/1", "cust-7/2"]);
    // Twice is fine.
    engine.erase("cust-7/1").await.unwrap();
    engine.shutdown().await;

    // Durable: a new engine over the file sees the erased runs.
    let engine = Engine::builder()
        .register(checkout)
        .open(&path)
        .await
        .unwrap();
    let after = engine.inspect("cust-7/1").unwrap();
    assert_eq!(after.status, RunStatus::Completed);
    assert_eq!(
        (after.created_ms, after.state.clone(), after.output.clone()),
        (before.created_ms, serde_json::Value::Null, None)
    );
    assert!(matches!(
        engine.handle(checkout, "cust-7/1").unwrap().result().await,
        Err(ResultError::Erased { .. })
    ));
    let trace = engine.trace("cust-7/1").unwrap();
    assert!(matches!(trace.last().unwrap().kind, TraceKind::Erased));
    let text = serde_json::to_string(&trace).unwrap();
    assert!(!text.contains(NOTE), "{text}");
    assert!(text.contains("charge_card"), "step names stay: {text}");
    assert!(
        engine
            .status("cust-7/2")
            .unwrap()
            .to_string()
            .contains("<erased>")
    );
    // The other customer's run is untouched.
    assert!(
        serde_json::to_string(&engine.inspect("cust-8/1").unwrap())
            .unwrap()
            .contains(NOTE)
    );
    engine.shutdown().await;
    // The grep finds what is there: the unencrypted store holds the other customer's note.
    assert!(file_holds(&path, &format!("{NOTE}-cust-8/1")));
    // The live rows hold nothing of cust-7; freed pages may, until reused (see the README).
    assert!(matches!(
        Engine::builder()
            .register(checkout)
            .open(&path)
            .await
            .unwrap()
            .erase_prefix("")
            .await,
        Err(OpsError::Invalid { .. })
    ));
}

/// The provided cipher, counting what it seals and opens.
#[derive(Clone)]
struct Counting {
    inner: ChaChaCodec,
    sealed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    opened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl workflow_runtime::payload::PayloadCodec for Counting {
    fn encode(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        self.sealed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.encode(context, plain)
    }

    fn decode(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.decode(context, sealed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_commit_with_the_codec_on_keeps_the_outcome() {
    use std::sync::atomic::Ordering;
    use workflow_runtime::testing::{Script, crash_test};
    let counting = Counting {
        inner: codec("crash", 3),
        sealed: Default::default(),
        opened: Default::default(),
    };
    let report = crash_test(
        TestEngine::builder()
            .register(checkout)
            .payload_codec(counting.clone()),
        checkout,
        order("crash"),
        Script::new().signal("approval", approval()),
    )
    .await;
    report.assert_ok();
    assert!(report.commits >= 3, "{}", report.commits);
    // Every crashed engine was restarted on its sealed store and read it back.
    assert!(counting.sealed.load(Ordering::SeqCst) > 0);
    assert!(counting.opened.load(Ordering::SeqCst) > 0);
    // The outcome is the typed output, compared across crashes by value; the trace lines of
    // the report are redacted.
    assert_eq!(
        report.outcome.as_ref().unwrap(),
        &json!({ "Ok": { "$secret": format!("charged 1250 to {CARD} ({})", NAME.len()) } })
    );
    shows_no_secret("the report's trace", &report.trace.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_engine_keeps_its_codec_across_a_restart() {
    let mut te = TestEngine::builder()
        .register(checkout)
        .payload_codec(codec("t", 4))
        .build()
        .await;
    te.start(checkout, "t-1", order(NOTE)).await.unwrap();
    te.restart().await;
    te.signal("t-1", "approval", approval()).await.unwrap();
    let out = te
        .engine()
        .handle(checkout, "t-1")
        .unwrap()
        .result()
        .await
        .unwrap()
        .unwrap();
    assert!(out.expose().contains(CARD));
    for planted in [CARD, NAME, NOTE] {
        assert!(!te.disk().contains(planted.as_bytes()), "{planted}");
    }

    // The control: the same run without a codec leaves its payloads in the bytes.
    let plain = TestEngine::builder().register(checkout).build().await;
    plain.start(checkout, "t-1", order(NOTE)).await.unwrap();
    plain.engine().shutdown().await;
    assert!(plain.disk().contains(CARD.as_bytes()));
}
