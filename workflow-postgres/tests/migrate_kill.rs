//! `workflow-migrate` killed with SIGKILL in the middle of a copy into PostgreSQL: the next
//! run refuses the non-empty destination, the run after it (`--allow-non-empty`) finishes the
//! copy, and the destination then holds every run exactly as the source does, buffered
//! signals included, none twice.

use std::process::{Command, Stdio};

use serde_json::json;
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::store::{
    CheckpointWrite, CopyOptions, FileStore, InboxEntry, RunRecord, RunWrite, Store, copy_runs,
};

const RUNS: usize = 400;

fn migrate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_workflow-migrate"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_killed_midway_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("source.db");
    let source_spec = format!("file:{}", path.display());
    {
        let source = FileStore::open(&path).expect("the source opens");
        let mut acks = Vec::new();
        for i in 0..RUNS {
            let run_id = format!("run-{i:04}");
            let mut write = CheckpointWrite::new(run_id.clone());
            let record = RunRecord::new("wf", json!({ "n": i }), 1_000);
            write.run = Some(RunWrite::new(record, None));
            acks.push(source.commit(write));
            for signal in ["a", "b"] {
                let mut write = CheckpointWrite::new(run_id.clone());
                let key = format!("{signal}-{i}");
                write.buffer = Some(InboxEntry::new(signal, json!(i), Some(key.clone())));
                write.dedupe = Some((key, 2_000));
                acks.push(source.commit(write));
            }
        }
        for ack in acks {
            ack.await.expect("a source commit");
        }
        source.close().await.expect("close");
    }
    let url = TestCluster::shared().create_database();
    let watcher = PgStore::open_async(&url).await.expect("the store opens");

    // One run per round: the copy takes many transactions, and is killed once some are in.
    let mut child = migrate()
        .args(["--from", &source_spec, "--to", &url, "--batch", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the command starts");
    let mut copied = 0;
    for _ in 0..60_000 {
        copied = watcher.runs().expect("runs").len();
        if copied >= 10 {
            break;
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // `Child::kill` is SIGKILL: no destructor, no close of the connections.
    let _ = child.kill();
    child.wait().expect("reap");
    let after_kill = watcher.runs().expect("runs").len();
    assert!(copied >= 10, "the copy never got going");
    eprintln!("killed with {after_kill} of {RUNS} runs in the destination");

    let refused = migrate()
        .args(["--from", &source_spec, "--to", &url])
        .output()
        .expect("the command runs");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let resumed = migrate()
        .args(["--from", &source_spec, "--to", &url, "--allow-non-empty"])
        .output()
        .expect("the command runs");
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "copied: {}; already in the destination: {after_kill}",
            RUNS - after_kill
        )),
        "{stdout}"
    );

    // Every run as in the source: a copy allowed into the destination finds each identical.
    let source = FileStore::open(&path).expect("the source opens");
    let check = copy_runs(
        &source,
        &watcher,
        CopyOptions::default().allow_non_empty(true),
    )
    .await
    .expect("the check");
    assert_eq!((check.already_there, check.copied), (RUNS, 0));
    for i in [0, RUNS / 2, RUNS - 1] {
        let inbox = watcher.inbox(&format!("run-{i:04}")).expect("inbox");
        assert_eq!(inbox.len(), 2, "two buffered signals, none twice");
    }
    watcher.close().await.expect("close");
}
