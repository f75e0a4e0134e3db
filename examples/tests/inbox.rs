//! The reviewer inbox page in headless Chromium, driven over the WebDriver protocol
//! (chromedriver) against a real `serve` process: sign in with a token, see the draft with its
//! rationale and customer, request changes, be refused approving one's own redraft (four eyes),
//! and approve it as someone else.
//!
//! Needs Debian's `chromium` and `chromium-driver`: `scripts/ensure-chromium` installs them
//! when missing (as root, or with password-less sudo); where it cannot, the test fails and
//! says so. `REFUND_REVIEW_SKIP_BROWSER=1` skips it explicitly.

mod common;
#[path = "../../workflow-admin/tests/webdriver/mod.rs"]
mod webdriver;

use common::{manager, spawn, wait_outcome, wait_pending};
use examples::refund::auth::{Role, issue_token};
use examples::refund::domain::RefundOutcome;
use webdriver::Browser;

#[test]
fn a_reviewer_decides_in_the_inbox_page() {
    let Some(browser) = Browser::start("REFUND_REVIEW_SKIP_BROWSER") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let api = manager(&w, &dir, "ops");
    let run = "review-T-1001";
    api.start("T-1001", None).unwrap();
    let first = wait_pending(&api, run);

    browser.goto(&format!("{}/inbox", w.addr()));
    // A wrong token loads nothing and says why.
    browser.type_into("#token", "rr_wrong");
    browser.click("#signin");
    browser.wait_text("#message", "unknown or revoked token");

    let ana = issue_token(dir.path(), "ana", Role::Manager, None).unwrap();
    browser.type_into("#token", &ana);
    browser.click("#signin");
    browser.wait_text("#who", "signed in as ana (manager)");
    let card = format!(".review[data-run=\"{run}\"]");
    let shown = browser.wait_text(&card, "draft 1");
    for needle in [
        "T-1001",
        "Ada Lovelace",
        "$129.00 of $129.00",
        "the item arrived damaged",
    ] {
        assert!(shown.contains(needle), "{needle} missing from {shown}");
    }

    browser.type_into(&format!("{card} textarea"), "make it $60");
    browser.click(&format!("{card} button.request_changes"));
    browser.wait_text("#message", "request_changes review-T-1001: delivered");
    let second = wait_pending(&api, run);
    assert_ne!(second.wait_id, first.wait_id);
    browser.click("#signin"); // reload the list
    let shown = browser.wait_text(&card, "draft 2");
    assert!(shown.contains("$60.00 of $129.00"), "{shown}");

    // Four eyes: ana asked for the changes, so her approval is refused on the page.
    browser.click(&format!("{card} button.approved"));
    browser.wait_text("#message", "refused: four eyes");

    let bo = issue_token(dir.path(), "bo", Role::Manager, None).unwrap();
    browser.type_into("#token", &bo);
    browser.click("#signin");
    browser.wait_text("#who", "signed in as bo");
    browser.wait_text(&card, "draft 2");
    browser.click(&format!("{card} button.approved"));
    browser.wait_text("#message", "approved review-T-1001: delivered");
    browser.wait_text("#reviews", "Nothing is waiting.");
    let outcome = wait_outcome(&api, run);
    assert!(
        matches!(
            &outcome,
            RefundOutcome::Refunded { amount_cents: 6_000, reviewer_id, .. } if reviewer_id == "bo"
        ),
        "{outcome:?}"
    );
}
