//! Metrics: the engine's counters and commit latency histogram move as runs advance, reach a
//! recorder installed through the `metrics` facade, and read as Prometheus text.
//!
//! One test in this binary: the facade's recorder is global to the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use workflow_runtime::prelude::*;
use workflow_runtime::{COMMIT_LATENCY_BUCKETS, Metrics};

#[function]
async fn charge(amount: u64) -> Result<u64, StepError> {
    if amount == 13 {
        return Err(StepError::permanent("unlucky amount"));
    }
    Ok(amount)
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, amount: u64) -> Result<u64, WorkflowError> {
    let approved = ctx
        .wait_for_signal::<bool>("approve", Duration::from_secs(3600), ())
        .await?;
    if !approved {
        return Ok(0);
    }
    let charged = ctx.step(charge, amount).await?;
    Ok(charged)
}

/// What reached the facade: counter totals, gauge values and histogram observations, by key.
#[derive(Default)]
struct Seen {
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Vec<f64>>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Handle {
    seen: Arc<Mutex<Seen>>,
    key: String,
}

fn key_text(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .seen
            .lock()
            .unwrap()
            .counters
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.seen
            .lock()
            .unwrap()
            .counters
            .insert(self.key.clone(), value);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self
            .seen
            .lock()
            .unwrap()
            .gauges
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn decrement(&self, value: f64) {
        self.increment(-value);
    }
    fn set(&self, value: f64) {
        self.seen
            .lock()
            .unwrap()
            .gauges
            .insert(self.key.clone(), value);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.seen
            .lock()
            .unwrap()
            .histograms
            .entry(self.key.clone())
            .or_default()
            .push(value);
    }
}

impl Capture {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        Arc::new(Handle {
            seen: self.0.clone(),
            key: key_text(key),
        })
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

/// The value of the one line of `text` that starts with `series ` (the name and its labels).
fn sample(text: &str, series: &str) -> f64 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{series} ")))
        .collect();
    assert_eq!(lines.len(), 1, "`{series}` in\n{text}");
    lines[0][series.len() + 1..].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_the_commit_latency_histogram_move_and_reach_the_facade() {
    let capture = Capture::default();
    metrics::set_global_recorder(capture.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .register(order)
        .open(dir.path().join("store.redb"))
        .await
        .unwrap();

    let before: Metrics = engine.metrics().unwrap();
    assert_eq!(before.checkpoints, 0);
    assert_eq!(before.commit_latency.count, 0);
    assert_eq!(before.runs_by_status["waiting"], 0);

    engine.start(order, "paid", 20).await.unwrap();
    engine.start(order, "unlucky", 13).await.unwrap();
    engine.start(order, "open", 5).await.unwrap();
    workflow_runtime::testing::settle(&engine).await;
    engine.signal("paid", "approve", true).await.unwrap();
    engine.signal("unlucky", "approve", true).await.unwrap();
    workflow_runtime::testing::settle(&engine).await;

    let m = engine.metrics().unwrap();
    assert_eq!(m.runs_by_status["completed"], 1, "{m:?}");
    assert_eq!(m.runs_by_status["failed"], 1, "{m:?}");
    assert_eq!(m.runs_by_status["waiting"], 1, "{m:?}");
    assert_eq!(m.step_attempts, 2, "{m:?}");
    assert_eq!(m.step_failures, 1, "{m:?}");
    // Three starts, two signals, two step results at least.
    assert!(m.transitions >= 7, "{m:?}");
    assert!(m.checkpoints >= m.transitions, "{m:?}");
    assert!(m.store_commits >= 1, "{m:?}");
    // Every checkpoint's commit was timed once.
    let h = &m.commit_latency;
    assert_eq!(h.count, m.checkpoints, "{h:?}");
    assert!(h.sum_seconds > 0.0, "{h:?}");
    assert_eq!(h.buckets.len(), COMMIT_LATENCY_BUCKETS.len());
    assert!(
        h.buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
    );
    assert!(h.buckets.last().unwrap().1 <= h.count);

    // The facade saw the same movements.
    {
        let seen = capture.0.lock().unwrap();
        let counter = |name: &str| seen.counters.get(name).copied().unwrap_or(0);
        assert_eq!(counter("workflow_transitions_total"), m.transitions);
        assert_eq!(counter("workflow_checkpoints_total"), m.checkpoints);
        assert_eq!(counter("workflow_step_attempts_total"), 2);
        assert_eq!(counter("workflow_step_failures_total"), 1);
        let observed = &seen.histograms["workflow_checkpoint_commit_seconds"];
        assert_eq!(observed.len() as u64, h.count);
        assert!(observed.iter().all(|s| *s >= 0.0));
        // Gauges are refreshed by each snapshot.
        assert_eq!(seen.gauges["workflow_runs{status=waiting}"], 1.0);
        assert_eq!(seen.gauges["workflow_runs{status=completed}"], 1.0);
    }

    let text = m.prometheus();
    assert!(
        text.contains("# TYPE workflow_checkpoint_commit_seconds histogram"),
        "{text}"
    );
    let name = "workflow_checkpoint_commit_seconds";
    let mut last = 0.0;
    for bound in COMMIT_LATENCY_BUCKETS {
        let n = sample(&text, &format!("{name}_bucket{{le=\"{bound}\"}}"));
        assert!(n >= last, "buckets are cumulative:\n{text}");
        last = n;
    }
    let count = m.checkpoints as f64;
    assert_eq!(
        sample(&text, &format!("{name}_bucket{{le=\"+Inf\"}}")),
        count
    );
    assert_eq!(sample(&text, &format!("{name}_count")), count);
    assert!(sample(&text, &format!("{name}_sum")) > 0.0);
    assert_eq!(sample(&text, "workflow_step_failures_total"), 1.0);
    assert_eq!(sample(&text, "workflow_runs{status=\"failed\"}"), 1.0);

    // The counters keep moving with the next decision.
    engine.signal("open", "approve", false).await.unwrap();
    workflow_runtime::testing::settle(&engine).await;
    let after = engine.metrics().unwrap();
    assert!(after.transitions > m.transitions);
    assert!(after.commit_latency.count > h.count);
    assert_eq!(after.runs_by_status["waiting"], 0);
    assert_eq!(after.runs_by_status["completed"], 2);
    engine.shutdown().await;
}
