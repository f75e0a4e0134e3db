//! Codec: what encoding and decoding cost in one transition, on a real checkpoint of the
//! refund-like workflow parked at its decision wait.
//!
//! The envelope is read from a store the engine wrote, and decoded into a mirror of the
//! engine's private record type; the mirror is checked to re-encode to the same bytes, so it
//! costs what the engine's own type costs.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use workflow_runtime::payload::{ChaChaCodec, open_json, seal_json};
use workflow_runtime::prelude::*;
use workflow_runtime::store::StoredState;
use workflow_runtime::testing::{Command, Event, Transition};

use crate::floor::Latency;
use crate::flows::{Decision, refund_like};
use crate::stats::{Row, fmt_us, median};

/// The engine's run table (see `workflow-runtime/src/store.rs`).
const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
const ITERATIONS: u32 = 20_000;
const RUN_ID: &str = "codec-T-1001";

/// The stored envelope, field for field (`RunRecord` in `workflow-runtime/src/store.rs`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: u32,
    workflow: String,
    version: u32,
    layout_hash: u64,
    body_hash: u64,
    seq: u64,
    status: RunStatus,
    state: StoredState,
    pending: Option<Command>,
    output: Option<Value>,
    input_hash: u64,
    created_ms: u64,
    updated_ms: u64,
}

/// Mean time of one call of `f`, in nanoseconds, over `ITERATIONS` calls.
fn time_ns<T>(mut f: impl FnMut() -> T) -> f64 {
    let t = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(f());
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(ITERATIONS)
}

/// Parks one refund-like run at its wait and returns its stored envelope.
async fn stored_envelope(dir: &Path) -> Vec<u8> {
    let path = dir.join("codec.redb");
    let engine = Engine::builder()
        .register(refund_like)
        .open(&path)
        .await
        .expect("open");
    engine
        .start(refund_like, RUN_ID, "T-1001".to_owned())
        .await
        .expect("start");
    while engine.pending().expect("pending").is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    engine.shutdown().await;
    let db = Database::open(&path).expect("redb open");
    let txn = db.begin_read().expect("read");
    let runs = txn.open_table(RUNS).expect("runs table");
    let bytes = runs.get(RUN_ID).expect("get").expect("the run is stored");
    record_bytes(bytes.value()).to_vec()
}

/// The record in a `runs` value: the store's format v2 puts a tag byte (0xB2) and the
/// record's length (u32, little-endian) before it and the run's trace tail after it; a
/// format v1 value is the record alone.
fn record_bytes(value: &[u8]) -> &[u8] {
    match value {
        [0xB2, a, b, c, d, rest @ ..] => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            rest.get(..len).expect("a v2 value holds its record whole")
        }
        _ => value,
    }
}

/// Runs the codec workload `reps` times.
pub(crate) async fn run(dir: &Path, reps: usize, floor: Latency) -> Vec<Row> {
    let bytes = stored_envelope(dir).await;
    let envelope: Envelope = serde_json::from_slice(&bytes).expect("the mirror decodes it");
    let exact = serde_json::to_vec(&envelope).expect("encode") == bytes;
    if !exact {
        println!("  codec: warning: the mirror re-encodes the envelope differently");
    }
    let state_value = envelope.state.to_value();
    let state: refund_like::State = envelope.state.decode().expect("the state decodes");
    println!(
        "  codec: envelope {} bytes, of which state {} bytes (`{}`)",
        bytes.len(),
        serde_json::to_vec(&state_value).map_or(0, |v| v.len()),
        <refund_like::Def as Workflow>::variant_name(&state)
    );
    let payload = serde_json::to_value(Decision {
        approved: true,
        request_changes: false,
        reviewer_id: "rev-ana".into(),
        reason: "photo of the cracked jug attached".into(),
        approved_amount_cents: None,
    })
    .expect("payload");

    let names = [
        "envelope decode (bytes → record)",
        "state decode (stored text → State)",
        "advance (signal → next suspension)",
        "state encode (State → stored text)",
        "envelope encode (record → bytes)",
        "seal the state (XChaCha20-Poly1305: JSON value → sealed value)",
        "open the state (sealed value → JSON value)",
        "seal the signal payload",
        "redact the state-sized value (trace payload walk)",
    ];
    // What encryption at rest adds: the engine seals each stored payload separately.
    let cipher = ChaChaCodec::new("bench-1", [42; 32]);
    let sealed_state = seal_json(&cipher, RUN_ID, &state_value).expect("seal");
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for rep in 0..reps {
        let results = [
            time_ns(|| serde_json::from_slice::<Envelope>(&bytes).expect("decode")),
            // The engine decodes the state straight from its stored text, as timed here.
            time_ns(|| {
                envelope
                    .state
                    .decode::<refund_like::State>()
                    .expect("decode")
            }),
            time_ns(|| {
                let mut ctx = WorkflowContext::new(RUN_ID, 1_800_000_000_000, envelope.seq + 1);
                let t = <refund_like::Def as Workflow>::advance(
                    state.clone(),
                    Event::Signal(payload.clone()),
                    &mut ctx,
                );
                assert!(matches!(t, Transition::Suspend(..)));
                t
            }),
            time_ns(|| StoredState::encode(&state).expect("encode")),
            time_ns(|| serde_json::to_vec(&envelope).expect("encode")),
            time_ns(|| seal_json(&cipher, RUN_ID, &state_value).expect("seal")),
            time_ns(|| open_json(&cipher, RUN_ID, &sealed_state).expect("open")),
            time_ns(|| seal_json(&cipher, RUN_ID, &payload).expect("seal")),
            time_ns(|| workflow_runtime::secret::redacted(&state_value)),
        ];
        for (s, r) in samples.iter_mut().zip(results) {
            s.push(r);
        }
        println!(
            "  codec rep {rep}: {}",
            results
                .iter()
                .map(|ns| format!("{ns:.0} ns"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let medians: Vec<f64> = samples.iter().map(|s| median(s)).collect();
    let codec_us = (medians[0] + medians[1] + medians[3] + medians[4]) / 1e3;
    let mut rows: Vec<Row> = names
        .iter()
        .zip(&medians)
        .map(|(name, ns)| Row::info("codec", name, format!("{ns:.0} ns")))
        .collect();
    rows.push(
        Row::info(
            "codec",
            "codec per transition (the four above, without advance)",
            fmt_us(codec_us),
        )
        .floor(
            format!("{} (commit p50)", fmt_us(floor.p50_us)),
            codec_us / floor.p50_us,
        ),
    );
    // A transition with the cipher on seals the new state and opens the stored one; the
    // signal payload is sealed in the trace (other trace payloads are of its order).
    let sealed_us = codec_us + (medians[5] + medians[6] + medians[7]) / 1e3;
    rows.push(
        Row::info(
            "codec",
            "codec per transition with encryption (the four above + seal and open the state + seal the payload)",
            fmt_us(sealed_us),
        )
        .floor(
            format!("{} (commit p50)", fmt_us(floor.p50_us)),
            sealed_us / floor.p50_us,
        ),
    );
    rows.push(Row::info(
        "codec",
        "sealed state size",
        format!(
            "{} bytes (plain {} bytes)",
            serde_json::to_vec(&sealed_state).map_or(0, |v| v.len()),
            serde_json::to_vec(&state_value).map_or(0, |v| v.len())
        ),
    ));
    rows.push(Row::info(
        "codec",
        "envelope size",
        format!(
            "{} bytes{}",
            bytes.len(),
            if exact { "" } else { " (mirror inexact)" }
        ),
    ));
    rows
}
