//! W4, resume versus history: runs with long and short histories wait; after a reopen, a
//! signal finishes each. A replay engine pays for the history here; this one reads one record.

use std::path::Path;
use std::time::Instant;

use workflow_runtime::Engine;

use crate::floor::Latency;
use crate::flows::history;
use crate::stats::{Row, fmt_us, median, us};

fn run_id(k: u64, i: usize) -> String {
    format!("history-{k}-{i}")
}

/// Runs W4: `2 * reps` runs for each history length in `ks`, all in one store. (Twice the
/// repetitions because one sample is a single commit, whose latency is noisy.)
pub(crate) async fn run(dir: &Path, reps: usize, ks: &[u64], floor: Latency) -> Vec<Row> {
    let reps = 2 * reps;
    let path = dir.join("w4.redb");
    let engine = Engine::builder()
        .register(history)
        .open(&path)
        .await
        .expect("open");
    for &k in ks {
        let t = Instant::now();
        let commits = engine.commit_count();
        let starts: Vec<_> = (0..reps)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(
                    async move { engine.start(history, run_id(k, i), k).await.expect("start") },
                )
            })
            .collect();
        for s in starts {
            s.await.expect("start task");
        }
        // Every run is waiting once `pending` lists all of them.
        let want = reps * (ks.iter().position(|&x| x == k).unwrap_or(0) + 1);
        while engine.pending().expect("pending").len() < want {
            // Rarely, so that the polling does not compete with the runs for the two cores.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        println!(
            "  w4 built {reps} runs of {k} steps in {:.1} s ({} commits)",
            t.elapsed().as_secs_f64(),
            engine.commit_count() - commits
        );
    }
    engine.shutdown().await;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let t = Instant::now();
    let engine = Engine::builder()
        .register(history)
        .open(&path)
        .await
        .expect("reopen");
    let reopen = t.elapsed();
    println!(
        "  w4 reopened a {:.1} MiB store in {}",
        size as f64 / 1048576.0,
        fmt_us(us(reopen))
    );
    // Interleaved, one at a time, so that drift and group commit treat every length alike.
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ks.len()];
    for i in 0..reps {
        for (j, &k) in ks.iter().enumerate() {
            let id = run_id(k, i);
            let run = engine.handle(history, id.as_str()).expect("handle");
            let t = Instant::now();
            engine.signal(&id, "go", 1_u64).await.expect("signal");
            let out = run.result().await.expect("result");
            times[j].push(us(t.elapsed()));
            assert_eq!(out, Ok(k + 1));
        }
    }
    engine.shutdown().await;

    let base = median(&times[0]);
    let mut rows = Vec::new();
    for (j, &k) in ks.iter().enumerate() {
        let m = median(&times[j]);
        println!(
            "  w4 K={k}: signal to result {} (each: {})",
            fmt_us(m),
            times[j]
                .iter()
                .map(|&t| fmt_us(t))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = Row::info(
            "W4",
            &format!("resume + finish, K = {k}"),
            format!("{} ({:.2}× K = {})", fmt_us(m), m / base, ks[0]),
        )
        .floor(
            format!("{} (commit p50)", fmt_us(floor.p50_us)),
            m / floor.p50_us,
        );
        rows.push(if j + 1 == ks.len() && j > 0 {
            row.target(&format!("≤ 1.2× K = {}", ks[0]), m <= 1.2 * base)
        } else {
            row
        });
    }
    rows
}
