//! Real process deaths: an action the admin API acknowledged survives `kill -9` of the process
//! that owns the store, for cancel, terminate and purge.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use support::TOKEN;
use workflow_admin::client::Client;

/// Starts the demo process on `store` and returns it with its admin API's base URL.
fn launch(store: &Path, runs: u32) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workflow-admin-demo"))
        .args([
            "--store",
            store.to_str().unwrap(),
            "--runs",
            &runs.to_string(),
        ])
        .env("WORKFLOW_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, format!("http://{addr}"))
}

fn kill9(mut child: Child) {
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no clean close.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn acknowledged_actions_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ops.redb");
    let (child, base) = launch(&store, 3);
    let c = Client::new(&base, TOKEN);
    let waiting = c.get("/runs?status=waiting").unwrap();
    assert_eq!(waiting["runs"].as_array().unwrap().len(), 3, "{waiting}");
    c.post("/runs/order-0/cancel", &json!({ "reason": "asked" }))
        .unwrap();
    c.post("/runs/order-1/terminate", &json!({ "reason": "fraud" }))
        .unwrap();
    kill9(child);

    let (child, base) = launch(&store, 3);
    let c = Client::new(&base, TOKEN);
    let run = c.get("/runs/order-0").unwrap();
    assert_eq!(run["status"]["status"], "cancelled", "{run}");
    let run = c.get("/runs/order-1").unwrap();
    assert_eq!(run["status"]["status"], "terminated", "{run}");
    let run = c.get("/runs/order-2").unwrap();
    assert_eq!(run["status"]["status"], "waiting", "{run}");
    c.post("/runs/order-0/purge", &json!({})).unwrap();
    let purged = c.post("/purge", &json!({ "older_than_secs": 0 })).unwrap();
    assert_eq!(purged["purged"], 1);
    kill9(child);

    // Relaunching starts order-0 and order-1 afresh: their ids were free again.
    let (child, base) = launch(&store, 3);
    let c = Client::new(&base, TOKEN);
    let page = c.get("/runs?status=waiting").unwrap();
    assert_eq!(page["runs"].as_array().unwrap().len(), 3, "{page}");
    let trace = c.get("/runs/order-0/trace").unwrap();
    assert_eq!(trace[0]["seq"], 0);
    assert!(
        trace
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] != "cancel_requested"),
        "{trace}"
    );
    kill9(child);
}
