//! The seeded workload and what a crash-free execution of it gives, both pure functions of the
//! seed: the worker and the driver compute the same plan, and the check compares the store
//! against [`expected`] without ever running the workload without kills.

use serde::Serialize;
use serde_json::Value;
use workflow_runtime::WorkflowError;

use crate::flows::{
    ANSWER, BatchInput, BatchOutcome, ITEM, OrderInput, OrderOutcome, ReminderInput,
    ReminderOutcome, effect_value,
};

/// A small deterministic random number generator (SplitMix64): the same seed gives the same
/// workload and the same kill schedule on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A generator for stream `stream` of `seed`: streams of one seed, and one stream of
    /// nearby seeds, are unrelated.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let base = Self::new(seed).next_u64();
        Self::new(Self::new(base ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64())
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// What a run is started with.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// An [`order`](const@crate::flows::order).
    Order(OrderInput),
    /// A [`reminder`](const@crate::flows::reminder).
    Reminder(ReminderInput),
    /// A [`batch`](const@crate::flows::batch).
    Batch(BatchInput),
}

/// Why the driver sends a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A signal the run consumes. Re-sent with the same key and payload after a crash until
    /// acknowledged.
    Original,
    /// The previous original again, same dedupe key, a different payload, sent after the
    /// original was acknowledged: it must be reported as a duplicate and never consumed.
    Duplicate,
    /// A fresh signal sent after the run finished: it must be refused.
    Late,
}

/// A signal the driver sends, in plan order; each is sent after the previous one of its run
/// was acknowledged, and a [`Role::Late`] one only after the run finished.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSignal {
    /// The signal's name.
    pub name: &'static str,
    /// Its dedupe key.
    pub key: String,
    /// Its payload.
    pub payload: u64,
    /// Why it is sent.
    pub role: Role,
    /// How long after the previous signal's acknowledgement (or the start's) it is sent; 0
    /// sends it at once, usually before the run waits for it.
    pub delay_ms: u64,
}

/// One run of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Position in the workload.
    pub index: usize,
    /// The run id.
    pub run_id: String,
    /// What it is started with.
    pub spec: Spec,
    /// The signals sent to it.
    pub signals: Vec<PlannedSignal>,
}

/// The workload of `runs` runs for `seed`. Run `i` depends only on `seed` and `i`.
pub fn plan(seed: u64, runs: usize) -> Vec<RunPlan> {
    (0..runs).map(|i| plan_run(seed, i)).collect()
}

const FLAKY: [u32; 5] = [0, 0, 1, 2, 4];

fn plan_run(seed: u64, index: usize) -> RunPlan {
    let mut rng = Rng::derive(seed, index as u64);
    let kind = rng.range(0, 99);
    let mut signals = Vec::new();
    let (run_id, spec) = if kind < 45 {
        let run = format!("r{index:04}-order");
        let items = rng.range(0, 3) as u32;
        for i in 0..items {
            original(&mut rng, &mut signals, ITEM, format!("{run}/item/{i}"), 150);
        }
        let spec = Spec::Order(OrderInput {
            run: run.clone(),
            items,
            nap_ms: rng.range(5, 80),
            flaky_fails: rng.pick(&FLAKY),
        });
        (run, spec)
    } else if kind < 75 {
        let run = format!("r{index:04}-reminder");
        let pings = rng.range(0, 2) as u32;
        let ping_ms = rng.range(20, 120);
        let answered = rng.chance(2, 3);
        if answered {
            let latest = u64::from(pings) * ping_ms + 100;
            original(
                &mut rng,
                &mut signals,
                ANSWER,
                format!("{run}/answer"),
                latest,
            );
        }
        let spec = Spec::Reminder(ReminderInput {
            run: run.clone(),
            pings,
            ping_ms,
            answered,
        });
        (run, spec)
    } else {
        let run = format!("r{index:04}-batch");
        let spec = Spec::Batch(BatchInput {
            run: run.clone(),
            steps: rng.range(1, 5) as u32,
            nap_ms: rng.range(5, 60),
            flaky_fails: rng.pick(&FLAKY),
        });
        (run, spec)
    };
    if rng.chance(1, 5) {
        signals.push(PlannedSignal {
            name: ITEM,
            key: format!("{run_id}/late"),
            payload: 2_000_000,
            role: Role::Late,
            delay_ms: rng.range(0, 50),
        });
    }
    RunPlan {
        index,
        run_id,
        spec,
        signals,
    }
}

/// Plans an original signal (sent at once a third of the time, else after up to `latest_ms`)
/// and, a quarter of the time, its duplicate.
fn original(
    rng: &mut Rng,
    signals: &mut Vec<PlannedSignal>,
    name: &'static str,
    key: String,
    latest_ms: u64,
) {
    let payload = rng.range(1, 999);
    let delay_ms = if rng.chance(1, 3) {
        0
    } else {
        rng.range(1, latest_ms)
    };
    signals.push(PlannedSignal {
        name,
        key: key.clone(),
        payload,
        role: Role::Original,
        delay_ms,
    });
    if rng.chance(1, 4) {
        signals.push(PlannedSignal {
            name,
            key,
            payload: payload + 1_000_000,
            role: Role::Duplicate,
            delay_ms: rng.range(0, 40),
        });
    }
}

/// What a crash-free execution of a run gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// The workflow's output as the engine stores it (`{"Ok": ..}`).
    pub output: Value,
    /// The tag of every effect the run performs, each exactly once.
    pub effects: Vec<String>,
    /// The signals its waits consume, in order: `(dedupe key, payload)`.
    pub received: Vec<(String, u64)>,
}

fn ok<T: Serialize>(outcome: T) -> Value {
    serde_json::to_value(Ok::<T, WorkflowError>(outcome)).expect("outcomes encode")
}

/// What a crash-free execution of `plan` gives; mirrors the workflows in
/// [`flows`](crate::flows) step by step.
pub fn expected(plan: &RunPlan) -> Expected {
    let originals: Vec<(String, u64)> = plan
        .signals
        .iter()
        .filter(|s| s.role == Role::Original)
        .map(|s| (s.key.clone(), s.payload))
        .collect();
    let mut effects = Vec::new();
    let mut fx = |tag: String| {
        let v = effect_value(&tag);
        effects.push(tag);
        v
    };
    let output = match &plan.spec {
        Spec::Order(o) => {
            let mut total = fx(format!("{}/reserve", o.run));
            let mut items = Vec::new();
            for (i, (_, v)) in originals.iter().enumerate() {
                items.push(*v);
                total += fx(format!("{}/item/{i}/{v}", o.run));
            }
            let charge = fx(format!("{}/charge", o.run));
            let refunded = o.flaky_fails >= 4;
            if refunded {
                total += fx(format!("{}/refund", o.run));
            } else {
                total += charge;
            }
            ok(OrderOutcome {
                items,
                total,
                refunded,
            })
        }
        Spec::Reminder(r) => {
            let mut total = 0;
            for n in 1..=r.pings {
                total += fx(format!("{}/nudge/{n}", r.run));
            }
            let answer = originals.first().map(|(_, v)| *v);
            if let Some(a) = answer {
                total += fx(format!("{}/answer/{a}", r.run));
            }
            ok(ReminderOutcome {
                answer,
                pinged: None,
                total,
            })
        }
        Spec::Batch(b) => {
            let mut total = 0;
            for k in 0..b.steps {
                total += fx(format!("{}/batch/{k}", b.run));
            }
            let last = fx(format!("{}/flaky", b.run));
            let failed = if b.flaky_fails >= 4 {
                Some(format!("attempt {}: response lost", b.flaky_fails))
            } else {
                total += last;
                None
            };
            ok(BatchOutcome { total, failed })
        }
    };
    Expected {
        output,
        effects,
        received: originals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_a_pure_function_of_the_seed() {
        assert_eq!(plan(7, 50), plan(7, 50));
        assert_ne!(plan(7, 50), plan(8, 50));
        // Nearby seeds give unrelated workloads, not the same runs in another order.
        let kinds = |seed| {
            plan(seed, 200)
                .iter()
                .filter(|r| matches!(r.spec, Spec::Order(_)))
                .count()
        };
        assert!((1..8).any(|s| kinds(s) != kinds(s + 1)));
        assert_eq!(plan(7, 10)[..], plan(7, 50)[..10]);
    }

    #[test]
    fn the_workload_mixes_every_kind_of_run_and_signal() {
        let p = plan(1, 500);
        let count = |f: &dyn Fn(&RunPlan) -> bool| p.iter().filter(|r| f(r)).count();
        assert!(count(&|r| matches!(r.spec, Spec::Order(_))) > 100);
        assert!(count(&|r| matches!(r.spec, Spec::Reminder(_))) > 100);
        assert!(count(&|r| matches!(r.spec, Spec::Batch(_))) > 50);
        let signals = || p.iter().flat_map(|r| &r.signals);
        for role in [Role::Original, Role::Duplicate, Role::Late] {
            assert!(
                signals().filter(|s| s.role == role).count() > 20,
                "{role:?}"
            );
        }
        assert!(signals().filter(|s| s.delay_ms == 0).count() > 50);
    }
}
