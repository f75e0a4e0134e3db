//! A real process death: a child process commits checkpoints on a [`PgStore`], several in
//! flight at once (group commit), printing each one the store acknowledged; the parent kills
//! it with SIGKILL mid-stream, then checks from a fresh store that every acknowledged
//! checkpoint is there whole (record, index row, dedupe key, trace).
//!
//! A stalled process: a child claims a run and is stopped with SIGSTOP; its lease lapses, the
//! parent takes the run over and moves it on; resumed with SIGCONT, the child's checkpoint
//! under its old lease is refused and the parent's state stands.
//!
//! One binary plays both parts (`harness = false`): with `PG_DEATH_CHILD_URL` set it is a
//! child (`PG_DEATH_CHILD_ROLE` says which).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::json;
use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::TraceKind;
use workflow_runtime::store::{
    CheckpointWrite, Claim, RunRecord, RunWrite, Store, StoreError, TraceEvent,
};

const CHILD: &str = "PG_DEATH_CHILD_URL";
const ROLE: &str = "PG_DEATH_CHILD_ROLE";
/// The parent kills the child once it has seen this many acknowledgements.
const KILL_AFTER: usize = 120;

fn main() {
    match (std::env::var(CHILD), std::env::var(ROLE).as_deref()) {
        (Ok(url), Ok("stalled")) => stalled_child(&url),
        (Ok(url), _) => child(&url),
        (Err(_), _) => {
            killed_mid_commit();
            stalled_past_its_lease();
        }
    }
}

fn checkpoint(i: u64) -> CheckpointWrite {
    let mut value = serde_json::to_value(RunRecord::new("wf", json!({ "i": i }), 1_000))
        .expect("a record encodes");
    value["seq"] = json!(1);
    value["pending"] = json!({
        "kind": "step", "name": "charge", "input": null, "retry": null, "attempt": 1,
        "not_before_ms": null
    });
    let record: RunRecord = serde_json::from_value(value).expect("a record decodes");
    let mut cp = CheckpointWrite::new(format!("r{i:06}"));
    cp.run = Some(RunWrite::new(record, None));
    cp.dedupe = Some((format!("key-{i}"), i));
    cp.trace.push(TraceEvent {
        seq: 0,
        at_ms: 1_000,
        checkpoint: 1,
        kind: TraceKind::Woke { until_ms: i },
    });
    cp
}

/// Commits forever, eight at a time, printing `ack N` for each acknowledged checkpoint.
fn child(url: &str) {
    let store = PgStore::open(url).expect("the child's store opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut out = std::io::stdout().lock();
    for batch in 0u64.. {
        let acks: Vec<_> = (0..8)
            .map(|k| (batch * 8 + k, store.commit(checkpoint(batch * 8 + k))))
            .collect();
        for (i, ack) in acks {
            runtime.block_on(ack).expect("acknowledged");
            writeln!(out, "ack {i}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

fn killed_mid_commit() {
    let url = TestCluster::shared().create_database();
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD, &url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut lines = BufReader::new(child.stdout.take().expect("the child's stdout")).lines();
    let mut acked = Vec::new();
    while acked.len() < KILL_AFTER {
        let line = lines
            .next()
            .expect("the child died before it was killed")
            .expect("a line");
        acked.push(parse(&line));
    }
    child.kill().expect("SIGKILL");
    // Whatever the child printed before it died was acknowledged too.
    acked.extend(lines.map_while(Result::ok).map(|line| parse(&line)));
    let status = child.wait().expect("the child is reaped");
    assert!(!status.success(), "the child was killed: {status}");

    let store = PgStore::open(&url).expect("the store reopens");
    for i in &acked {
        let run = format!("r{i:06}");
        let rec = store
            .run(&run)
            .expect("read")
            .unwrap_or_else(|| panic!("acknowledged run {run} is missing"));
        assert_eq!(rec.state, json!({ "i": i }));
        assert!(store.has_dedupe(&run, &format!("key-{i}")).expect("dedupe"));
        assert_eq!(store.trace(&run).expect("trace").len(), 1);
    }
    let ready = store.ready().expect("ready").len();
    let stored = store.runs().expect("runs").len();
    assert_eq!(ready, stored, "every stored run has its index row");
    assert!(stored >= acked.len());
    println!(
        "process_death: {} checkpoints acknowledged before SIGKILL, all present ({stored} stored)",
        acked.len()
    );
}

fn parse(line: &str) -> u64 {
    line.strip_prefix("ack ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected child output: {line}"))
}

/// Claims `r000000` for 1 s from time 0, says so, waits for a line on stdin, then tries to
/// finish the run under that lease and says how it went.
fn stalled_child(url: &str) {
    let store = PgStore::open(url).expect("the child's store opens");
    let claim = Claim {
        owner: "stalled",
        now_ms: 0,
        lease_ms: 1_000,
        limit: 1,
        workflows: None,
    };
    let claimed = store.claim_ready(&claim).expect("claim");
    assert_eq!(claimed.len(), 1, "the child claims the run");
    println!("claimed {}", claimed[0].lease.token);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    let mut cp = CheckpointWrite::new("r000000");
    cp.fence = claimed[0].lease.fence();
    cp.run = Some(RunWrite::new(
        RunRecord::new("wf", json!("stalled child"), 1_000),
        None,
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    match runtime.block_on(store.commit(cp)) {
        Ok(()) => println!("committed"),
        Err(StoreError::NotOwner { .. }) => println!("refused"),
        Err(e) => println!("failed {e}"),
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{sig}");
}

fn stalled_past_its_lease() {
    let url = TestCluster::shared().create_database();
    let store = PgStore::open(&url).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime
        .block_on(store.commit(checkpoint(0)))
        .expect("the run starts");
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD, &url)
        .env(ROLE, "stalled")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let claimed = lines.next().expect("a line").expect("a line");
    assert!(claimed.starts_with("claimed "), "{claimed}");
    signal(&child, "STOP");

    // The lease (1 s from time 0) has lapsed at time 2 s: this process takes the run over.
    let claim = Claim {
        owner: "healthy",
        now_ms: 2_000,
        lease_ms: 1_000,
        limit: 1,
        workflows: None,
    };
    let taken = store.claim_ready(&claim).expect("claim");
    assert_eq!(taken.len(), 1, "the lapsed lease is taken over");
    let mut cp = CheckpointWrite::new("r000000");
    cp.fence = taken[0].lease.fence();
    cp.run = Some(RunWrite::new(
        RunRecord::new("wf", json!("healthy worker"), 1_000),
        None,
    ));
    runtime
        .block_on(store.commit(cp))
        .expect("the new holder writes");

    signal(&child, "CONT");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "go").expect("wake the child");
    drop(stdin);
    let outcome = lines.next().expect("a line").expect("a line");
    assert!(child.wait().expect("the child ends").success());
    assert_eq!(outcome, "refused", "the stalled child's checkpoint");
    let rec = store.run("r000000").expect("read").expect("the run");
    assert_eq!(
        rec.state,
        json!("healthy worker"),
        "the new holder's state stands"
    );
    println!(
        "process_death: a process stalled past its lease (SIGSTOP, SIGCONT) committed nothing"
    );
}
