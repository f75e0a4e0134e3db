//! Erasure over the admin API: refused for open runs (all or none by prefix), then only the
//! status and times of the erased runs remain.

mod support;

use serde_json::{Value, json};
use support::{TOKEN, serve};

async fn call(url: String, body: Option<Value>) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let auth = format!("Bearer {TOKEN}");
        let res = match body {
            None => agent.get(&url).header("Authorization", &auth).call(),
            Some(b) => agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
        };
        let mut res = res.unwrap();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_refuses_open_runs_then_leaves_status_and_times() {
    let s = serve().await;
    let b = s.base.as_str();
    for (id, amount) in [("cust1-a", 1701), ("cust1-b", 1702), ("cust2-a", 1703)] {
        s.engine.start(support::order, id, amount).await.unwrap();
    }
    workflow_runtime::testing::settle(&s.engine).await;

    let (status, out) = call(format!("{b}/erase"), Some(json!({ "prefix": "cust1-" }))).await;
    assert_eq!(
        (status, &out["error"]["code"]),
        (409, &json!("not_erasable")),
        "{out}"
    );
    let (status, out) = call(format!("{b}/runs/cust1-a/erase"), Some(json!({}))).await;
    assert_eq!(status, 409, "{out}");

    for id in ["cust1-a", "cust1-b"] {
        let (status, out) = call(
            format!("{b}/runs/{id}/signal"),
            Some(json!({ "name": "approve", "payload": true })),
        )
        .await;
        assert_eq!(status, 200, "{out}");
    }
    workflow_runtime::testing::settle(&s.engine).await;
    let (status, out) = call(format!("{b}/runs/cust1-a/erase"), Some(json!({}))).await;
    assert_eq!((status, &out["erased"]), (200, &json!(true)), "{out}");
    let (status, out) = call(format!("{b}/erase"), Some(json!({ "prefix": "cust1-" }))).await;
    assert_eq!(
        (status, &out["erased"]),
        (200, &json!(["cust1-a", "cust1-b"])),
        "{out}"
    );

    let (_, run) = call(format!("{b}/runs/cust1-b"), None).await;
    assert_eq!(run["status"]["status"], "completed", "{run}");
    assert_eq!(
        (&run["state"], &run["output"]),
        (&Value::Null, &Value::Null),
        "{run}"
    );
    let (_, trace) = call(format!("{b}/runs/cust1-b/trace"), None).await;
    let text = trace.to_string();
    assert!(!text.contains("1702"), "{text}");
    assert_eq!(trace.as_array().unwrap().last().unwrap()["event"], "erased");
    // The other customer's run keeps everything.
    let (_, other) = call(format!("{b}/runs/cust2-a/trace"), None).await;
    assert!(other.to_string().contains("1703"), "{other}");
}
