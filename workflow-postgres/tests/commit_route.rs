//! Where a store's commits are written: by a committer on the caller's multi-threaded runtime,
//! or by the store's own thread for callers outside one. Whichever carried the earlier
//! commits, a store keeps committing when that runtime is gone, and closing waits for them.

use serde_json::json;
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::store::{CheckpointWrite, Fence, RunRecord, RunWrite, Store, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn create(run_id: &str, seq: u64) -> CheckpointWrite {
    let mut record = RunRecord::new("checkout", json!("Start"), 1_000);
    record.seq = seq;
    let mut write = CheckpointWrite::new(run_id);
    write.run = Some(RunWrite::new(record, None));
    write.fence = Fence::Create;
    write
}

#[test]
fn commits_go_on_after_the_runtime_that_carried_them_shut_down() {
    let store = PgStore::open(&TestCluster::shared().create_database()).expect("the store opens");
    // The first runtime's commit spawns the committer there; the runtime then goes, and its
    // committer with it.
    runtime().block_on(async {
        store.commit(create("r-1", 1)).await.expect("committed");
    });
    // A second runtime gets a committer of its own.
    runtime().block_on(async {
        store.commit(create("r-2", 1)).await.expect("committed");
        // A creation of a taken id is refused, in the one group statement.
        assert!(matches!(
            store.commit(create("r-2", 2)).await,
            Err(StoreError::NotOwner { .. })
        ));
    });
    // Outside a runtime, the store's thread commits.
    block_on_here(store.commit(create("r-3", 1))).expect("committed");
    for run in ["r-1", "r-2", "r-3"] {
        let stored = store.run(run).expect("read").expect("the run is stored");
        assert_eq!(stored.seq, 1, "{run}");
    }
    store.close_blocking();
    assert!(matches!(
        block_on_here(store.commit(create("r-4", 1))),
        Err(StoreError::Closed)
    ));
}

#[test]
fn close_waits_for_the_commits_queued_on_a_runtime() {
    let url = TestCluster::shared().create_database();
    let rt = runtime();
    rt.block_on(async {
        let store = PgStore::open_async(&url).await.expect("the store opens");
        let acks: Vec<_> = (0..50)
            .map(|i| store.commit(create(&format!("q-{i}"), 1)))
            .collect();
        store.close().await.expect("closed");
        for ack in acks {
            ack.await.expect("committed before the close resolved");
        }
    });
    let again = PgStore::open(&url).expect("the store opens again");
    assert_eq!(again.runs().expect("runs").len(), 50);
}

/// Polls a future to its end on this thread, outside any runtime.
fn block_on_here<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let thread = std::thread::current();
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread)));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}
