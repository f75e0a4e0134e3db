//! The web console in headless Chromium, driven over the WebDriver protocol (chromedriver):
//! sign in with the token, list runs, filter them, open a run (state, pending wait with its
//! metadata, the diagram with the current state highlighted, the trace) and cancel it behind
//! its confirmation.
//!
//! Needs Debian's `chromium` and `chromium-driver`: `scripts/ensure-chromium` installs them
//! when missing; where it cannot, the test fails and says so. `WORKFLOW_ADMIN_SKIP_BROWSER=1`
//! skips it explicitly.

mod support;
mod webdriver;

use serde_json::json;
use support::{TOKEN, order, serve};
use webdriver::Browser;
use workflow_runtime::RunStatus;

#[test]
fn an_operator_finds_and_cancels_a_run_in_the_console() {
    let Some(browser) = Browser::start("WORKFLOW_ADMIN_SKIP_BROWSER") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = rt.block_on(async {
        let s = serve().await;
        s.engine.start(order, "order-a", 10).await.unwrap();
        s.engine.start(order, "order-b", 13).await.unwrap();
        s.engine.signal("order-b", "approve", true).await.unwrap();
        workflow_runtime::testing::settle(&s.engine).await;
        s
    });

    browser.goto(&format!("{}/console", served.base));
    browser.type_into("#token", TOKEN);
    browser.click("#login button");
    browser.wait_text("#runs", "order-b");
    let listed = browser.wait_text("#runs", "order-a");
    assert!(listed.contains("waiting (approve)"), "{listed}");
    assert!(listed.contains("failed"), "{listed}");

    // Filter: only the waiting run stays.
    let select = browser.find("#f-status");
    browser.call(
        "POST",
        &browser.session(&format!("/element/{select}/value")),
        Some(json!({ "text": "waiting" })),
    );
    browser.click("#filters button");
    browser.wait("the filter to apply", || {
        let t = browser.text(&browser.find("#runs"));
        (!t.contains("order-b")).then_some(())
    });

    browser.click("tr[data-run=\"order-a\"] a");
    browser.wait_text("#run-status", "waiting (approve)");
    let wait = browser.wait_text("#run-wait", "approve");
    assert!(wait.contains("\"amount\": 10"), "{wait}");
    // The diagram is drawn (one box per state of the workflow), and the one highlighted is
    // the state the run is stored in: the wait.
    let states = order::MERMAID.lines().filter(|l| l.contains(": ")).count();
    browser.wait("the diagram to be drawn", || {
        (browser.count("#run-diagram svg g.state") == states).then_some(())
    });
    assert_eq!(browser.count("#run-diagram svg g.state.current"), 1);
    let node = browser.find("#run-diagram svg g.state.current");
    let waiting_state = served.engine.state_name("order-a").unwrap();
    assert_eq!(
        browser.attribute(&node, "data-state").as_deref(),
        Some(waiting_state.as_str())
    );
    assert!(
        order::MERMAID.contains(&format!("{waiting_state}: wait approve")),
        "{waiting_state} is not the wait in\n{}",
        order::MERMAID
    );
    browser.wait_text("#run-diagram svg g.state.current", "wait approve");
    browser.wait_text("#run-trace", "wait_started");

    browser.click("#do-cancel");
    browser.answer_prompt("customer withdrew");
    browser.wait_text("#run-status", "cancelled (customer withdrew)");
    browser.wait_text("#run-trace", "cancel_requested");
    assert_eq!(
        served.engine.status("order-a").unwrap(),
        RunStatus::Cancelled {
            reason: "customer withdrew".into()
        }
    );
    rt.block_on(served.engine.shutdown());
}
