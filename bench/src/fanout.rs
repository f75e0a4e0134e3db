//! Fan-out: one run starts 1,000 no-op steps at once with `ctx.fan_out`. Each result is
//! checkpointed as it arrives, but results that arrive while a commit is in flight share the
//! next one, so the run needs far fewer commits than steps. Compared with the floor of one
//! commit per step: 1,000 raw redb commits of one value, measured right before.

use std::path::Path;
use std::time::Instant;

use workflow_runtime::Engine;

use crate::floor;
use crate::flows::fan_out;
use crate::stats::{Row, fmt_us, median, percentile, us};

const STEPS: u64 = 1_000;

/// One repetition: (commits the run made, wall time from start to result in µs).
async fn rep(dir: &Path, rep: usize, limit: usize) -> (u64, f64) {
    let engine = Engine::builder()
        .register(fan_out)
        .open(dir.join(format!("fanout-{limit}-{rep}.redb")))
        .await
        .expect("open");
    let before = engine.commit_count();
    let t = Instant::now();
    let run = engine
        .start(fan_out, format!("fan-{rep}"), (STEPS, limit))
        .await
        .expect("start");
    assert_eq!(run.result().await.expect("result"), Ok(STEPS as usize));
    let took = us(t.elapsed());
    let commits = engine.commit_count() - before;
    engine.shutdown().await;
    (commits, took)
}

/// Runs the fan-out unbounded and with a bound of 10, `reps` times each.
pub(crate) async fn run(dir: &Path, reps: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for limit in [0usize, 10] {
        let mut commits = Vec::new();
        let mut took = Vec::new();
        let mut floor_total = Vec::new();
        for r in 0..reps {
            let f = floor::latency_rep(dir, &format!("fanout-{limit}-{r}"));
            // What 1,000 steps cost at one commit each: 1,000 commits at the floor's p50.
            floor_total.push(percentile(&f, 50.0) * STEPS as f64);
            let (c, t) = rep(dir, r, limit).await;
            println!(
                "  fan-out (limit {limit}) rep {r}: {c} commits ({:.1} steps per commit), {}",
                STEPS as f64 / c as f64,
                fmt_us(t)
            );
            commits.push(c as f64);
            took.push(t);
        }
        let c = median(&commits);
        let t = median(&took);
        let f = median(&floor_total);
        let bound = if limit == 0 {
            "unbounded".to_owned()
        } else {
            format!("limit {limit}")
        };
        rows.push(
            Row::info(
                "fan-out",
                &format!("1000 steps ({bound}), commits"),
                format!("{c:.0} ({:.1} steps per commit)", STEPS as f64 / c),
            )
            .floor("1000 (1 step per commit)".to_owned(), c / STEPS as f64),
        );
        rows.push(
            Row::info(
                "fan-out",
                &format!("1000 steps ({bound}), start to result"),
                fmt_us(t),
            )
            .floor(format!("{} (1000 commits)", fmt_us(f)), t / f),
        );
    }
    rows
}
