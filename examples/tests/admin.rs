//! The refund server mounts the operators' admin API under `/admin`: it answers with its own
//! token, refuses requests without it (reads and changes alike), and lists the reviews waiting
//! for a decision. Against a real `refund_review serve` process.

mod common;

use common::{manager, raw, spawn, wait_pending};
use serde_json::Value;

const ADMIN_TOKEN: &str = "adm_test_token_0123456789";

#[test]
fn the_admin_api_is_mounted_and_refuses_requests_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[("REFUND_REVIEW_ADMIN_TOKEN", ADMIN_TOKEN)]);
    let reviewer = manager(&w, &dir, "max");
    reviewer.start("T-1001", None).unwrap();
    wait_pending(&reviewer, "review-T-1001");

    let path = "/admin/runs?waiting_for=refund_decision";
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (status, page) = raw(w.addr(), "GET", path, &[("Authorization", &bearer)], None);
    assert_eq!(status, 200, "{page}");
    let runs = page["runs"].as_array().expect("a page of runs");
    assert_eq!(runs.len(), 1, "{page}");
    assert_eq!(runs[0]["run_id"], "review-T-1001");
    assert_eq!(runs[0]["status"]["status"], "waiting", "{page}");

    // No token, a reviewer's token, a wrong token: refused as JSON, nothing listed.
    let (status, body) = raw(w.addr(), "GET", path, &[], None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let reviewer_token = common::issue(&dir, "ana");
    for token in [reviewer_token.as_str(), "adm_test_token_0123456780"] {
        let auth = format!("Bearer {token}");
        let (status, body) = raw(w.addr(), "GET", path, &[("Authorization", &auth)], None);
        assert_eq!(status, 401, "{body}");
        assert!(body.get("runs").is_none(), "{body}");
    }

    // A change without the token is refused and changes nothing.
    let (status, body) = raw(
        w.addr(),
        "POST",
        "/admin/runs/review-T-1001/cancel",
        &[("Content-Type", "application/json")],
        Some(br#"{"reason":"no token"}"#),
    );
    assert_eq!(status, 401, "{body}");
    let (_, run) = raw(
        w.addr(),
        "GET",
        "/admin/runs/review-T-1001",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(run["status"]["status"], "waiting", "{run}");

    // The console page is served under the mount too (it asks for the token itself).
    let (status, page) = raw(w.addr(), "GET", "/admin/console", &[], None);
    assert_eq!(status, 200);
    assert!(
        matches!(&page, Value::String(html) if html.contains("Workflow console")),
        "{page}"
    );
}

#[test]
fn a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::exe())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("REFUND_REVIEW_ADMIN_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16 bytes"), "{err}");
}
