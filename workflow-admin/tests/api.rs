//! The admin API over real HTTP: every action, the token, cross-site refusals, JSON errors.

mod support;

use serde_json::{Value, json};
use support::{TOKEN, serve};
use workflow_runtime::RunStatus;

/// One request; blocking, so it runs off the runtime's threads.
async fn call(
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let res = if method == "GET" {
            let mut req = agent.get(&url);
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            req.call()
        } else {
            let mut req = agent.post(&url);
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            req.send(body.unwrap_or_default())
        };
        let mut res = res.unwrap();
        let status = res.status().as_u16();
        (status, res.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

fn auth() -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {TOKEN}"))]
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let (s, t) = call("GET", format!("{base}{path}"), auth(), None).await;
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let mut h = auth();
    h.push(("Content-Type", "application/json".to_owned()));
    let (s, t) = call("POST", format!("{base}{path}"), h, Some(body.to_string())).await;
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_works_over_http() {
    let s = serve().await;
    let b = s.base.as_str();
    for (id, amount) in [("a", 10), ("b", 13), ("c", 20), ("d", 30)] {
        s.engine.start(support::order, id, amount).await.unwrap();
    }
    workflow_runtime::testing::settle(&s.engine).await;

    let (status, page) = get(b, "/runs?waiting_for=approve&limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["runs"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "b");
    let (_, waits) = get(b, "/waits").await;
    assert_eq!(waits.as_array().unwrap().len(), 4);
    assert_eq!(waits[0]["metadata"]["amount"], 10);

    let (status, out) = post(
        b,
        "/runs/a/signal",
        json!({ "name": "approve", "payload": true }),
    )
    .await;
    assert_eq!((status, out["outcome"].as_str()), (200, Some("delivered")));
    workflow_runtime::testing::settle(&s.engine).await;
    let (_, run) = get(b, "/runs/a").await;
    assert_eq!(run["status"]["status"], "completed", "{run}");

    // b fails at its charge, then is retried (still fails: the amount is unlucky).
    post(
        b,
        "/runs/b/signal",
        json!({ "name": "approve", "payload": true }),
    )
    .await;
    workflow_runtime::testing::settle(&s.engine).await;
    let (status, out) = post(b, "/runs/b/retry", json!({})).await;
    assert_eq!(status, 200, "{out}");
    workflow_runtime::testing::settle(&s.engine).await;
    let (_, trace) = get(b, "/runs/b/trace?kind=retried,failed").await;
    let kinds: Vec<&str> = trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["failed", "retried", "failed"]);

    let (status, out) = post(b, "/runs/c/cancel", json!({ "reason": "asked" })).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        s.engine.status("c").unwrap(),
        RunStatus::Cancelled {
            reason: "asked".into()
        }
    );
    let (status, out) = post(b, "/runs/d/terminate", json!({ "reason": "fraud" })).await;
    assert_eq!(
        (status, &out["status"]["status"]),
        (200, &json!("terminated"))
    );

    let (status, out) = post(b, "/runs/c/purge", json!({})).await;
    assert_eq!((status, &out["purged"]), (200, &json!(true)));
    let (status, out) = get(b, "/runs/c").await;
    assert_eq!(
        (status, &out["error"]["code"]),
        (404, &json!("unknown_run"))
    );
    let (status, out) = post(b, "/purge", json!({ "older_than_secs": 0 })).await;
    assert_eq!((status, &out["purged"]), (200, &json!(3)));

    let (status, versions) = get(b, "/versions").await;
    assert_eq!(status, 200, "{versions}");
    let (status, inc) = get(b, "/incompatible").await;
    assert_eq!((status, inc), (200, json!([])));
    let (status, diagram) = get(b, "/workflows/order/diagram").await;
    assert_eq!(status, 200);
    assert!(diagram.as_str().unwrap().starts_with("stateDiagram-v2"));
    let (status, dot) = get(b, "/workflows/order/diagram?format=dot").await;
    assert_eq!(status, 200);
    let dot = dot.as_str().unwrap();
    assert!(dot.starts_with("digraph \"order\" {"), "{dot}");
    assert!(dot.contains("__start -> \"Start\";"), "{dot}");
    let (status, svg) = get(b, "/workflows/order/diagram?format=svg&current=Start").await;
    assert_eq!(status, 200);
    let svg = svg.as_str().unwrap();
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(
        svg.contains("class=\"state current\" data-state=\"Start\""),
        "{svg}"
    );
    let (status, metrics) = get(b, "/metrics").await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(text.contains("workflow_step_failures_total 2"), "{text}");
    assert!(
        text.contains("workflow_runs{status=\"waiting\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE workflow_transitions_total counter"),
        "{text}"
    );
    // The commit latency histogram: one observation per checkpoint, in every bucket line.
    let checkpoints = text
        .lines()
        .find_map(|l| l.strip_prefix("workflow_checkpoints_total "))
        .expect("the checkpoint counter");
    assert_ne!(checkpoints, "0", "{text}");
    for line in [
        "# TYPE workflow_checkpoint_commit_seconds histogram".to_owned(),
        format!("workflow_checkpoint_commit_seconds_bucket{{le=\"+Inf\"}} {checkpoints}"),
        format!("workflow_checkpoint_commit_seconds_count {checkpoints}"),
    ] {
        assert!(text.lines().any(|l| l == line), "`{line}` missing:\n{text}");
    }
    assert!(
        text.contains("workflow_checkpoint_commit_seconds_bucket{le=\"0.001\"} "),
        "{text}"
    );
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_show_in_the_parent_trace_the_child_record_and_the_diagram() {
    let s = serve().await;
    let b = s.base.as_str();
    s.engine
        .start(support::basket, "k", vec![5, 6])
        .await
        .unwrap();
    workflow_runtime::testing::settle(&s.engine).await;
    let (status, started) = get(b, "/runs/k/trace?kind=child_started").await;
    assert_eq!(status, 200, "{started}");
    let children: Vec<&str> = started
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["child"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["k/order-1.0", "k/order-1.1"]);
    // A child's id holds a slash: encoded in the path, it names the run.
    let (status, child) = get(b, "/runs/k%2Forder-1.0").await;
    assert_eq!(status, 200, "{child}");
    assert_eq!(child["parent"], "k");
    let (_, parent) = get(b, "/runs/k").await;
    assert_eq!(parent["state_name"], "ChildrenOrder");
    assert_eq!(parent["pending"]["kind"], "children");
    let (_, waits) = get(b, "/waits").await;
    assert_eq!(waits.as_array().unwrap().len(), 2);
    let (status, out) = post(
        b,
        "/runs/k%2Forder-1.0/signal",
        json!({ "name": "approve", "payload": true }),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = post(b, "/runs/k/cancel", json!({ "reason": "basket dropped" })).await;
    assert_eq!(status, 200, "{out}");
    workflow_runtime::testing::settle(&s.engine).await;
    let (_, ended) = get(b, "/runs/k/trace?kind=child_ended").await;
    assert_eq!(ended.as_array().unwrap().len(), 2, "{ended}");
    let (_, child) = get(b, "/runs/k%2Forder-1.1").await;
    assert_eq!(child["status"]["status"], "cancelled", "{child}");
    let (_, dot) = call(
        "GET",
        format!("{b}/workflows/basket/diagram?format=dot"),
        auth(),
        None,
    )
    .await;
    assert!(dot.contains("children order"), "{dot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_proper_codes() {
    let s = serve().await;
    let b = s.base.as_str();
    s.engine.start(support::order, "a", 1).await.unwrap();
    let cases = [
        (get(b, "/runs/nope").await, 404, "unknown_run"),
        (get(b, "/runs?status=asleep").await, 400, "invalid"),
        (get(b, "/runs?limit=x").await, 400, "bad_request"),
        (get(b, "/nowhere").await, 404, "not_found"),
        (
            get(b, "/workflows/nope/diagram").await,
            404,
            "unknown_workflow",
        ),
        (
            get(b, "/workflows/order/diagram?format=png").await,
            400,
            "bad_request",
        ),
        (post(b, "/runs/a/retry", json!({})).await, 409, "not_failed"),
        (
            post(b, "/runs/a/purge", json!({})).await,
            409,
            "not_purgeable",
        ),
        (
            post(b, "/runs/a/cancel", json!({})).await,
            400,
            "bad_request",
        ),
        (
            post(b, "/runs/a/cancel", json!({ "reason": " " })).await,
            400,
            "bad_request",
        ),
        (
            post(
                b,
                "/runs/a/signal",
                json!({ "name": "approve", "payload": "yes" }),
            )
            .await,
            422,
            "payload_mismatch",
        ),
        (
            post(b, "/purge", json!({ "older_than_secs": 1, "batch": 0 })).await,
            400,
            "invalid",
        ),
    ];
    for ((status, body), want_status, want_code) in cases {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"]["code"], want_code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // Nothing changed.
    assert!(matches!(
        s.engine.status("a").unwrap(),
        RunStatus::Waiting { .. }
    ));
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_or_from_another_site_are_refused() {
    let s = serve().await;
    let b = s.base.clone();
    s.engine.start(support::order, "a", 1).await.unwrap();
    let (status, body) = call("GET", format!("{b}/runs"), vec![], None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"));
    let wrong = vec![(
        "Authorization",
        "Bearer test-token-0123456789abcdeX".to_owned(),
    )];
    assert_eq!(call("GET", format!("{b}/runs"), wrong, None).await.0, 401);
    let short = vec![("Authorization", "Bearer test".to_owned())];
    assert_eq!(call("GET", format!("{b}/runs"), short, None).await.0, 401);
    // The console page is served without it (a browser cannot send a bearer token with a
    // navigation) and holds no data; its calls need the token.
    let (status, page) = call("GET", format!("{b}/console"), vec![], None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Workflow console</title>"));
    s.engine
        .start(support::order, "distinctive-run-7731", 1)
        .await
        .unwrap();
    let (_, again) = call("GET", format!("{b}/console"), vec![], None).await;
    assert_eq!(again, page, "the page is static");
    assert!(
        !page.contains("distinctive-run-7731"),
        "the page carries no run data"
    );
    // Every other endpoint is behind the token, the unknown ones too.
    assert_eq!(
        call("GET", format!("{b}/metrics"), vec![], None).await.0,
        401
    );
    assert_eq!(
        call("GET", format!("{b}/nowhere"), vec![], None).await.0,
        401
    );

    let cancel = format!("{b}/runs/a/cancel");
    let body = Some(json!({ "reason": "x" }).to_string());
    // A form post (what a cross-site page can send without asking) is refused.
    let mut form = auth();
    form.push((
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    ));
    let (status, text) = call("POST", cancel.clone(), form, Some("reason=x".into())).await;
    assert_eq!(status, 415, "{text}");
    let mut cross = auth();
    cross.push(("Content-Type", "application/json".to_owned()));
    cross.push(("Origin", "http://evil.example".to_owned()));
    let (status, text) = call("POST", cancel.clone(), cross, body.clone()).await;
    assert_eq!(status, 403, "{text}");
    let mut fetch = auth();
    fetch.push(("Content-Type", "application/json".to_owned()));
    fetch.push(("Sec-Fetch-Site", "cross-site".to_owned()));
    assert_eq!(
        call("POST", cancel.clone(), fetch, body.clone()).await.0,
        403
    );
    assert!(matches!(
        s.engine.status("a").unwrap(),
        RunStatus::Waiting { .. }
    ));
    // The same origin is fine.
    let mut same = auth();
    same.push(("Content-Type", "application/json".to_owned()));
    same.push(("Origin", format!("http://{}", s.addr)));
    let (status, text) = call("POST", cancel, same, body).await;
    assert_eq!(status, 200, "{text}");
    s.engine.shutdown().await;
}

#[test]
fn the_default_address_is_loopback() {
    let addr: std::net::SocketAddr = workflow_admin::DEFAULT_ADDR.parse().unwrap();
    assert!(addr.ip().is_loopback());
    let config = workflow_admin::AdminConfig::new(TOKEN);
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "the token leaks into Debug"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_listed_paused_and_resumed_over_http() {
    let s = serve().await;
    let b = s.base.as_str();
    let hourly = workflow_runtime::Schedule::every(std::time::Duration::from_secs(3600));
    s.engine
        .schedule(support::order, "hourly-order", hourly, 5)
        .await
        .unwrap();

    let (status, list) = get(b, "/schedules").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["id"], "hourly-order");
    assert_eq!(list[0]["workflow"], "order");
    assert_eq!(list[0]["spec"], "every 3600000 ms");
    assert_eq!(list[0]["catch_up"], json!({ "policy": "latest" }));
    assert_eq!(list[0]["overlap"], "skip");
    assert!(list[0]["next_ms"].as_u64().is_some());

    let (status, paused) = post(b, "/schedules/hourly-order/pause", json!({})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (paused["paused"].clone(), paused["next_ms"].clone()),
        (json!(true), Value::Null)
    );
    let (status, resumed) = post(b, "/schedules/hourly-order/resume", json!({})).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["next_ms"], list[0]["next_ms"]);

    let (status, err) = post(b, "/schedules/nope/pause", json!({})).await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["code"], "unknown_schedule");
    // The schedule's record shows in the run listing under the internal kind.
    let (_, runs) = get(b, "/runs?workflow=%40schedule").await;
    assert_eq!(runs["runs"][0]["run_id"], "@schedule/hourly-order");
}
