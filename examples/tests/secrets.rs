//! Planted secrets: both examples run as processes on a store file, then the store file's
//! bytes and every trace (the process's own output, the engine API, the admin API) are
//! searched for the card numbers, addresses, customer names and ticket texts they handled.
//! With encryption on, none is found anywhere; without it, the state in the file may hold
//! them (and does: the search finds what is there) but no trace does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use examples::refund::keys::KEY_ENV;
use examples::refund::server::store_path;
use examples::saga::place_order;
use workflow_runtime::Engine;
use workflow_runtime::payload::ChaChaCodec;

/// What the saga demo handles: its four card numbers and both addresses.
const SAGA_SECRETS: [&str; 6] = [
    "4242-4242-4242-0119",
    "4000-0000-0000-0002",
    "4242-4242-4242-4242",
    "4242-4242-4242-0500",
    "12 Harbour Road",
    "Poseidon Square",
];
/// The saga demo's key (see `examples/saga.rs`).
const SAGA_KEY: [u8; 32] = *b"saga demo key: never use for it!";

/// What review T-1001 handles: the customer's name and her message.
const REFUND_SECRETS: [&str; 2] = ["Ada Lovelace", "cracked jug"];
const REFUND_KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

fn saga_exe() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let exe = deps.parent().unwrap().join("examples").join("saga");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "examples", "--example", "saga"]);
        if deps.parent().and_then(|p| p.file_name()) == Some("release".as_ref()) {
            build.arg("--release");
        }
        assert!(
            build.status().unwrap().success(),
            "building the saga failed"
        );
        exe
    })
}

fn holds(bytes: &[u8], planted: &str) -> bool {
    bytes
        .windows(planted.len())
        .any(|w| w == planted.as_bytes())
}

fn assert_none_in(what: &str, text: &str, secrets: &[&str]) {
    for planted in secrets {
        assert!(!text.contains(planted), "{what} shows `{planted}`:\n{text}");
    }
}

/// Every trace of `runs` through the engine API (JSON and the printed lines), and through the
/// admin API: the trace, the run's detail, the waits and the run list.
async fn every_trace(engine: &Engine, runs: &[&str]) -> String {
    let mut out = String::new();
    for run in runs {
        let trace = engine.trace(run).unwrap();
        out.push_str(&serde_json::to_string(&trace).unwrap());
        for event in &trace {
            out.push_str(&event.to_string());
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(&engine.inspect(run).unwrap()).unwrap());
        out.push_str(&engine.status(run).unwrap().to_string());
    }
    out.push_str(&serde_json::to_string(&engine.pending().unwrap()).unwrap());

    let token = "planted-secret-admin-token";
    let router = workflow_admin::router(engine.clone(), workflow_admin::AdminConfig::new(token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let mut paths = vec!["/runs".to_owned(), "/waits".to_owned()];
    for run in runs {
        let id = workflow_admin::client::segment(run);
        paths.push(format!("/runs/{id}"));
        paths.push(format!("/runs/{id}/trace"));
    }
    let admin = tokio::task::spawn_blocking(move || {
        let client = workflow_admin::client::Client::new(&base, token);
        paths
            .iter()
            .map(|p| {
                client
                    .get_text(p)
                    .unwrap_or_else(|e| panic!("GET {p}: {e}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await
    .unwrap();
    server.abort();
    assert!(
        admin.contains("<redacted>"),
        "the admin API shows placeholders: {admin}"
    );
    out.push_str(&admin);
    out
}

/// Runs the saga demo into `dir`; returns its output.
fn run_saga(dir: &Path, plain: bool) -> String {
    let mut cmd = Command::new(saga_exe());
    cmd.env("SAGA_DIR", dir).env_remove("SAGA_KEY");
    if plain {
        cmd.env("SAGA_PLAIN", "1");
    } else {
        cmd.env_remove("SAGA_PLAIN");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the saga failed: {stdout}");
    stdout
}

/// The trace lines of the saga's output (its effect lines are the carrier's own ledger,
/// which knows the address).
fn trace_lines(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#') || l.contains("Outcome:"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn saga_engine(dir: &Path, plain: bool) -> Engine {
    let mut builder = Engine::builder().register(place_order);
    if !plain {
        builder = builder.payload_codec(ChaChaCodec::new("saga-demo-1", SAGA_KEY));
    }
    builder.open(dir.join("saga.redb")).await.unwrap()
}

const ORDERS: [&str; 4] = ["ORD-1", "ORD-2", "ORD-3", "ORD-4"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encrypted_saga_leaves_no_card_or_address_in_its_store_or_traces() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_saga(dir.path(), false);
    let lines = trace_lines(&stdout);
    assert!(lines.contains("\"card\":\"<redacted>\""), "{lines}");
    assert_none_in("the demo's traces", &lines, &SAGA_SECRETS);

    let bytes = std::fs::read(dir.path().join("saga.redb")).unwrap();
    for planted in SAGA_SECRETS {
        assert!(!holds(&bytes, planted), "the store file holds `{planted}`");
    }
    // Not even the order ids: every payload is sealed.
    assert!(
        !holds(&bytes, "desk-lamp"),
        "the store file holds a payload"
    );

    let engine = saga_engine(dir.path(), false).await;
    let traces = every_trace(&engine, &ORDERS).await;
    assert!(traces.contains("ORD-3"), "{traces}");
    assert_none_in("the traces", &traces, &SAGA_SECRETS);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_encryption_the_saga_state_holds_the_card_but_no_trace_does() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_saga(dir.path(), true);
    assert_none_in("the demo's traces", &trace_lines(&stdout), &SAGA_SECRETS);

    // The state keeps the card for the workflow, in clear without a codec: the search finds
    // what is there.
    let bytes = std::fs::read(dir.path().join("saga.redb")).unwrap();
    assert!(holds(&bytes, "4242-4242-4242-0500"));

    let engine = saga_engine(dir.path(), true).await;
    let traces = every_trace(&engine, &ORDERS).await;
    assert_none_in("the traces", &traces, &SAGA_SECRETS);
    engine.shutdown().await;
}

/// Runs review T-1001 to a refund on a worker process; returns the trace the app's own API
/// and CLI show, and the store file's bytes while the review waited (its state then holds the
/// customer and the ticket).
fn run_review(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> (String, Vec<u8>) {
    let w = common::spawn(dir, env);
    let c = common::manager(&w, dir, "rev-1");
    c.start("T-1001", None).unwrap();
    let run = "review-T-1001";
    let pending = common::wait_pending(&c, run);
    let waiting = std::fs::read(store_path(dir.path())).unwrap();
    c.decide(run, &common::approve(&pending)).unwrap();
    common::wait_outcome(&c, run);
    let mut shown = serde_json::to_string(&c.trace(run).unwrap()).unwrap();
    let token = examples::refund::auth::issue_token(
        dir.path(),
        "rev-1",
        examples::refund::auth::Role::Manager,
        None,
    )
    .unwrap();
    let (ok, out, err) = common::cli(w.addr(), Some(&token), &["trace", run]);
    assert!(ok, "the CLI's trace failed: {err}");
    assert!(out.contains("<redacted>"), "{out}");
    shown.push_str(&out);
    drop(w);
    (shown, waiting)
}

async fn review_engine(dir: &Path, key: Option<&str>) -> Engine {
    let mut builder = Engine::builder().register(examples::refund::refund_review);
    if let Some(hex) = key {
        let key = ChaChaCodec::key_from_hex(hex).unwrap();
        builder = builder.payload_codec(ChaChaCodec::new("store-1", key));
    }
    builder.open(store_path(dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encrypted_review_leaves_no_name_or_message_in_its_store_or_traces() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, waiting) = run_review(&dir, &[(KEY_ENV, REFUND_KEY_HEX)]);
    assert_none_in("the app's trace", &shown, &REFUND_SECRETS);

    let done = std::fs::read(store_path(dir.path())).unwrap();
    for (when, bytes) in [("while waiting", &waiting), ("at the end", &done)] {
        for planted in REFUND_SECRETS {
            assert!(
                !holds(bytes, planted),
                "the store file holds `{planted}` {when}"
            );
        }
    }

    let engine = review_engine(dir.path(), Some(REFUND_KEY_HEX)).await;
    let traces = every_trace(&engine, &["review-T-1001"]).await;
    assert!(traces.contains("load_customer"), "{traces}");
    assert_none_in("the traces", &traces, &REFUND_SECRETS);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_encryption_the_review_state_holds_the_name_but_no_trace_does() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, waiting) = run_review(&dir, &[]);
    assert_none_in("the app's trace", &shown, &REFUND_SECRETS);
    // The waiting state keeps the customer for the workflow, in clear without a codec: the
    // search finds what is there.
    assert!(holds(&waiting, "Ada Lovelace"));

    let engine = review_engine(dir.path(), None).await;
    let traces = every_trace(&engine, &["review-T-1001"]).await;
    assert_none_in("the traces", &traces, &REFUND_SECRETS);
    engine.shutdown().await;
}

const ROTATED_KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A worker with its store encrypted is killed with SIGKILL after it paid and before the
/// payment was checkpointed; it restarts with a rotated key (the old one given as old) and the
/// refund step runs again under the same idempotency key: paid once. A restart with the old key
/// missing cannot read the parked review and says so.
#[test]
fn an_encrypted_worker_killed_mid_payment_restarts_with_a_rotated_key_and_pays_once() {
    use examples::refund::keys::{KEY_ID_ENV, OLD_KEYS_ENV};
    use examples::refund::ledger::PaymentEvent;

    let dir = tempfile::tempdir().unwrap();
    let first = [
        (KEY_ENV, REFUND_KEY_HEX),
        (KEY_ID_ENV, "k1"),
        ("REFUND_REVIEW_FAULT", "after_payment"),
    ];
    let run = "review-T-1002";
    let mut w = common::spawn(&dir, &first);
    let c = common::manager(&w, &dir, "rev-1");
    c.start("T-1002", None).unwrap();
    let p = common::wait_pending(&c, run);
    c.decide(run, &common::approve(&p)).unwrap();
    let status = w
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("the fault point killed the worker");
    assert!(!status.success());
    drop(w);

    // Only the new key: the review was parked under k1 with its refund step to run again, so
    // the worker cannot resume it; it refuses to start, naming the missing key, and changes
    // nothing.
    let old_keys = format!("k1={REFUND_KEY_HEX}");
    let out = Command::new(common::exe())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env(KEY_ENV, ROTATED_KEY_HEX)
        .env(KEY_ID_ENV, "k2")
        .env_remove(OLD_KEYS_ENV)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sealed with key `k1`, which this engine was not given"),
        "{stderr}"
    );

    let rotated = [
        (KEY_ENV, ROTATED_KEY_HEX),
        (KEY_ID_ENV, "k2"),
        (OLD_KEYS_ENV, old_keys.as_str()),
    ];
    let w = common::spawn(&dir, &rotated);
    let c = common::manager(&w, &dir, "rev-1");
    common::wait_outcome(&c, run);
    let l = common::ledgers(&c);
    let events: Vec<PaymentEvent> = l.payments.iter().map(|p| p.event).collect();
    assert_eq!(events, [PaymentEvent::Paid, PaymentEvent::DuplicateRefused]);
    assert_eq!(l.refunds_paid(), 1);
    drop(w);

    let bytes = std::fs::read(store_path(dir.path())).unwrap();
    for planted in ["Grace Hopper", "came a week late"] {
        assert!(!holds(&bytes, planted), "the store file holds `{planted}`");
    }
}
