//! The step path's shortcuts keep what the store holds exact: the file store's committer numbers
//! trace events from what it remembers (across a purge that reuses the id, and across a
//! restart that forgets), and the in-memory store, which commits on the caller's thread and
//! mostly non-durably, holds every commit for later reads.

use workflow_runtime::prelude::*;
use workflow_runtime::store::{FileStore, MemoryDisk};

#[function]
async fn bump(n: u64) -> Result<u64, StepError> {
    Ok(n + 1)
}

/// `steps` sequential steps, then the count.
#[workflow]
async fn count(ctx: &mut WorkflowContext, steps: u64) -> Result<u64, WorkflowError> {
    let mut n: u64 = 0;
    for _ in 0..steps {
        n = ctx.step(bump, n).await?;
    }
    Ok(n)
}

/// The run's trace numbers, which must be 0, 1, 2, ... with no gap and no repeat.
fn assert_numbered_from_zero(engine: &Engine, run_id: &str) -> usize {
    let seqs: Vec<u64> = engine
        .trace(run_id)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "the trace of `{run_id}` is numbered 0, 1, 2, ..."
    );
    seqs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_numbers_stay_contiguous_across_purge_reuse_and_restart() {
    let disk = MemoryDisk::new();
    let open = || async {
        Engine::builder()
            .register(count)
            .open_store(FileStore::open_disk(disk.clone()).unwrap())
            .await
            .unwrap()
    };
    let engine = open().await;
    let run = engine.start(count, "c-1", 5).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(5));
    let first = assert_numbered_from_zero(&engine, "c-1");
    assert!(first > 5, "a start, five steps and the end: {first} events");

    // The committer remembers where `c-1`'s trace ended; the purge must make it start over,
    // or the new run's events would be numbered after rows that are gone.
    engine.purge("c-1").await.unwrap();
    let run = engine.start(count, "c-1", 2).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(2));
    let second = assert_numbered_from_zero(&engine, "c-1");
    assert!(
        second < first,
        "only the new run's events: {second} of {first}"
    );

    // A run left in the middle, then a restart: the new committer remembers nothing and must
    // number on from the stored rows.
    let run = engine.start(count, "c-2", 3).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(3));
    let before = assert_numbered_from_zero(&engine, "c-2");
    engine.shutdown().await;
    let engine = open().await;
    engine.purge("c-2").await.unwrap();
    let run = engine.start(count, "c-2", 4).await.unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(4));
    let after = assert_numbered_from_zero(&engine, "c-2");
    assert!(after > before, "four steps leave more events than three");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_store_keeps_every_commit_past_many_non_durable_ones() {
    let engine = Engine::builder()
        .register(count)
        .open_in_memory()
        .await
        .unwrap();
    // Well over the one-in-64 durable commits, and runs side by side so that commits from
    // several tasks interleave on the caller-thread writer.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("m-{i}");
            let run = engine.start(count, id.clone(), 40).await.unwrap();
            assert_eq!(run.result().await.unwrap(), Ok(40));
            id
        }));
    }
    for task in tasks {
        let id = task.await.unwrap();
        assert_numbered_from_zero(&engine, &id);
        assert_eq!(engine.status(&id).unwrap(), RunStatus::Completed);
    }
    assert!(engine.commit_count() > 8 * 40, "a commit per step at least");
    engine.shutdown().await;
}

/// Held across a wait: its fields serialize in this order, which is not their names' order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    zeta: u64,
    alpha: String,
}

/// Holds an [`Order`] across a wait.
#[workflow]
async fn held(ctx: &mut WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    let order: Order = Order {
        zeta: n * 10,
        alpha: format!("n={n}"),
    };
    let add: u64 = ctx
        .wait_for_signal::<u64>("go", std::time::Duration::from_secs(3600), json!({}))
        .await?;
    Ok(order.zeta + add + order.alpha.len() as u64)
}

/// A run's state is kept as the text it is stored as and decoded from it straight into the
/// workflow's type. Before, it went through a JSON value, which spells an object's keys in
/// sorted order: a store written that way opens and runs on unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_stored_with_sorted_keys_by_the_earlier_encoding_still_runs() {
    use workflow_runtime::store::{CheckpointWrite, RunWrite, Store, StoredState};
    let disk = MemoryDisk::new();
    let open = || async {
        Engine::builder()
            .register(held)
            .open_store(FileStore::open_disk(disk.clone()).unwrap())
            .await
            .unwrap()
    };
    let engine = open().await;
    engine.start(held, "h-1", 4).await.unwrap();
    while engine.pending().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    engine.shutdown().await;

    // Rewrite the stored state as the earlier code wrote it: through a JSON value.
    let store = FileStore::open_disk(disk.clone()).unwrap();
    let mut rec = store.run("h-1").unwrap().expect("the run is stored");
    let written = rec.state.clone();
    let earlier = StoredState::from(written.to_value());
    assert_ne!(
        written.as_str(),
        earlier.as_str(),
        "the state is written in the fields' order, not sorted: {written}"
    );
    assert_eq!(written, earlier, "the same value, spelt differently");
    rec.state = earlier.clone();
    let previous = rec.pending.clone();
    let mut write = CheckpointWrite::new("h-1");
    write.run = Some(RunWrite::new(rec, previous));
    store.commit(write).await.unwrap();
    assert_eq!(
        store.run("h-1").unwrap().unwrap().state.as_str(),
        earlier.as_str(),
        "kept byte for byte"
    );
    drop(store);

    let engine = open().await;
    engine.signal("h-1", "go", 2_u64).await.unwrap();
    let run = engine.handle(held, "h-1").unwrap();
    assert_eq!(run.result().await.unwrap(), Ok(40 + 2 + "n=4".len() as u64));
    engine.shutdown().await;
}
