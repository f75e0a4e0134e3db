//! Every symptom of issue 13 ("the refund-review app as a product a support team could run"),
//! reproduced against a real `refund_review serve` process over HTTP or through the CLI. Each
//! test names the symptom it pins; on the code before the fix, each of them failed (paid twice,
//! paid what nobody saw, panicked, answered 500 or text, printed raw control characters).

mod common;

use common::{
    approve, as_reviewer, cli, decision, ledgers, manager, raw, spawn, wait_outcome, wait_pending,
    wait_redraft,
};
use examples::refund::api::{DecisionRequest, DecisionResult, MAX_REASON_CHARS};
use examples::refund::auth::{Role, issue_token};
use examples::refund::client::{Client, ClientError};
use examples::refund::domain::{DecisionStatus, RefundOutcome};
use examples::refund::worker::Worker;
use workflow_runtime::{RunStatus, TraceKind};

/// The status and message of a refused request.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api {
            status, message, ..
        }) => (status, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn json_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("Authorization", format!("Bearer {token}")),
    ]
}

fn post(
    w: &Worker,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, serde_json::Value) {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw(w.addr(), "POST", path, &h, Some(body.as_bytes()))
}

/// Sends the head of a POST announcing a 1 MiB JSON body and 1 KiB of it, then reads the
/// answer: (status, JSON body).
fn announce_huge_body(w: &Worker, path: &str, token: &str) -> (u16, serde_json::Value) {
    use std::io::Write;
    let host = w.addr().trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        1 << 20
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&[b' '; 1024]).unwrap();
    read_answer(&mut conn)
}

/// Sends a POST whose `bytes`-long JSON object comes in chunks, without an announced length,
/// and reads the answer: (status, JSON body).
fn chunked_body(w: &Worker, path: &str, token: &str, bytes: usize) -> (u16, serde_json::Value) {
    use std::io::Write;
    let host = w.addr().trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut body = vec![b' '; bytes];
    body[0] = b'{';
    body[bytes - 1] = b'}';
    // The server may answer and close before the last chunk; the answer is what counts.
    for chunk in body.chunks(1000) {
        let _ = conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = conn.write_all(chunk);
        let _ = conn.write_all(b"\r\n");
    }
    let _ = conn.write_all(b"0\r\n\r\n");
    read_answer(&mut conn)
}

/// Reads an HTTP/1.1 answer to the end: (status, the JSON object in its body).
fn read_answer(conn: &mut std::net::TcpStream) -> (u16, serde_json::Value) {
    use std::io::Read;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    // The body may come chunked: the JSON object is inside it.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or_else(|_| panic!("not JSON: {answer}")),
    )
}

// --- One refund per ticket -------------------------------------------------------------------

#[test]
fn a_second_review_of_a_ticket_is_refused_while_one_is_open_or_paid() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "max");
    assert!(c.start("T-1001", None).unwrap().created);
    // The symptom: `start T-1001 --run-id other` made a second review that paid again.
    let (status, msg) = refusal(c.start("T-1001", Some("other")));
    assert_eq!(status, 409, "{msg}");
    assert!(
        msg.contains("already has an open review, `review-T-1001`"),
        "{msg}"
    );
    // Starting the same review again is harmless: it answers the open one.
    assert!(!c.start("T-1001", None).unwrap().created);
    let p = wait_pending(&c, "review-T-1001");
    c.decide("review-T-1001", &approve(&p)).unwrap();
    wait_outcome(&c, "review-T-1001");
    let (status, msg) = refusal(c.start("T-1001", Some("other")));
    assert_eq!(status, 409, "{msg}");
    assert!(msg.contains("already refunded $129.00"), "{msg}");
    assert_eq!(ledgers(&c).refunds_paid(), 1);
    // A rejected review leaves the ticket free for a fresh one.
    c.start("T-1004", None).unwrap();
    let p = wait_pending(&c, "review-T-1004");
    c.decide(
        "review-T-1004",
        &decision(&p, DecisionStatus::Rejected, "photos missing"),
    )
    .unwrap();
    wait_outcome(&c, "review-T-1004");
    let again = c.start("T-1004", None).unwrap();
    assert_eq!(again.run_id, "review-T-1004-2");
}

#[test]
fn run_ids_with_invisible_or_unprintable_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "max");
    for (id, shown) in [
        ("review-T-1002\u{200B}", "U+200B"),
        ("review\u{1b}[2K", "U+001B"),
        ("a b", "U+0020"),
        ("caf\u{e9}", "U+00E9"),
    ] {
        let (status, msg) = refusal(c.start("T-1002", Some(id)));
        assert_eq!(status, 422, "{id:?}: {msg}");
        assert!(msg.contains(shown), "{id:?}: {msg}");
    }
    let (status, msg) = refusal(c.start("T-1002", Some(&"r".repeat(65))));
    assert_eq!(status, 422, "{msg}");
    // Nothing was started.
    assert_eq!(refusal(c.status("review-T-1002")).0, 404);
}

// --- Decisions bound to what was seen --------------------------------------------------------

#[test]
fn a_decision_naming_no_draft_or_a_future_one_is_refused_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let c = manager(&w, &dir, "max");
    c.start("T-1003", None).unwrap();
    // The symptom: an approval sent before any draft was shown was buffered and paid later.
    let (status, body) = post(
        &w,
        "/reviews/review-T-1003/decision",
        &json_headers(&issue_token(dir.path(), "eve", Role::Manager, None).unwrap()),
        r#"{"status":"approved"}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("wait_id"),
        "{body}"
    );
    let future = DecisionRequest {
        status: DecisionStatus::Approved,
        wait_id: "99".into(),
        reason: String::new(),
        approved_amount_cents: None,
    };
    let (status, msg) = refusal(c.decide("review-T-1003", &future));
    assert_eq!(status, 409, "{msg}");
    assert!(msg.contains("not the draft waiting"), "{msg}");
    let p = wait_pending(&c, "review-T-1003");
    let trace = c.trace("review-T-1003").unwrap();
    assert!(
        !trace
            .iter()
            .any(|e| matches!(e.kind, TraceKind::SignalBuffered { .. })),
        "nothing was buffered"
    );
    assert_eq!(p.draft, 1);
    assert!(ledgers(&c).payments.is_empty());
}

#[test]
fn an_approval_of_a_superseded_draft_is_refused_with_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let ana = as_reviewer(&w, &dir, "ana", Role::Reviewer);
    let max = manager(&w, &dir, "max");
    let run = "review-T-1001";
    ana.start("T-1001", None).unwrap();
    let first = wait_pending(&ana, run);
    ana.decide(
        run,
        &decision(&first, DecisionStatus::RequestChanges, "make it $40"),
    )
    .unwrap();
    // The symptom: a second reviewer approving "a moment later" paid the redraft he never saw.
    let answer = max.decide(run, &approve(&first));
    match answer {
        Err(ClientError::Api {
            status,
            message,
            current,
        }) => {
            assert_eq!(status, 409, "{message}");
            assert!(message.contains("Nothing was decided"), "{message}");
            // Either the redraft is still being written or it is shown in the answer.
            if let Some(cur) = current {
                assert_eq!((cur.draft, cur.amount_cents), (2, 4_000));
            }
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    let second = wait_redraft(&max, run, &first);
    let (status, msg) = refusal(max.decide(run, &approve(&first)));
    assert_eq!(status, 409);
    assert!(msg.contains("draft 2"), "{msg}");
    assert!(ledgers(&max).payments.is_empty());
    // The redraft he does see, he can approve.
    max.decide(run, &approve(&second)).unwrap();
    assert!(matches!(
        wait_outcome(&max, run),
        RefundOutcome::Refunded {
            amount_cents: 4_000,
            ..
        }
    ));
}

#[test]
fn a_double_clicked_request_changes_redrafts_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let ana = as_reviewer(&w, &dir, "ana", Role::Reviewer);
    let run = "review-T-1002";
    ana.start("T-1002", None).unwrap();
    let first = wait_pending(&ana, run);
    let changes = decision(&first, DecisionStatus::RequestChanges, "lower please");
    assert_eq!(
        ana.decide(run, &changes).unwrap().signal,
        DecisionResult::Delivered
    );
    assert_eq!(
        ana.decide(run, &changes).unwrap().signal,
        DecisionResult::Duplicate
    );
    let second = wait_redraft(&ana, run, &first);
    assert_eq!(second.draft, 2);
    assert_eq!(
        ana.decide(run, &changes).unwrap().signal,
        DecisionResult::Duplicate
    );
    let l = ledgers(&ana);
    assert_eq!(l.executions(run, "draft_refund_recommendation"), 2);
    assert_eq!(wait_pending(&ana, run).wait_id, second.wait_id);
}

// --- Identity ----------------------------------------------------------------------------------

#[test]
fn decisions_need_a_token_and_carry_its_reviewer_not_the_bodys() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    let run = "review-T-1002";
    max.start("T-1002", None).unwrap();
    let p = wait_pending(&max, run);
    let anonymous = w.client();
    assert_eq!(refusal(anonymous.decide(run, &approve(&p))).0, 401);
    assert_eq!(refusal(anonymous.pending()).0, 401);
    assert_eq!(
        refusal(w.client().with_token("rr_forged").decide(run, &approve(&p))).0,
        401
    );
    // The symptom: `reviewer_id` was free text in the body.
    let body = format!(
        r#"{{"status":"approved","wait_id":"{}","reviewer_id":"the-ceo"}}"#,
        p.wait_id
    );
    let token = issue_token(dir.path(), "eve", Role::Manager, None).unwrap();
    let (status, answer) = post(
        &w,
        &format!("/reviews/{run}/decision"),
        &json_headers(&token),
        &body,
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("reviewer_id"),
        "{answer}"
    );
    let done = max.decide(run, &approve(&p)).unwrap();
    assert_eq!(done.reviewer_id, "max");
    let RefundOutcome::Refunded { reviewer_id, .. } = wait_outcome(&max, run) else {
        panic!("expected a refund");
    };
    assert_eq!(reviewer_id, "max");
    // The token is stored only as a hash.
    let stored = std::fs::read_to_string(dir.path().join("reviewers.jsonl")).unwrap();
    assert!(!stored.contains(&token) && stored.contains("token_sha256"));
}

#[test]
fn a_cross_site_text_plain_post_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    max.start("T-1002", None).unwrap();
    let p = wait_pending(&max, "review-T-1002");
    let token = issue_token(dir.path(), "eve", Role::Manager, None).unwrap();
    let body = format!(r#"{{"status":"approved","wait_id":"{}"}}"#, p.wait_id);
    let path = "/reviews/review-T-1002/decision";
    // The symptom: a foreign page's form post (text/plain, foreign Origin) paid.
    let (status, answer) = post(
        &w,
        path,
        &[
            ("Content-Type", "text/plain".into()),
            ("Origin", "http://evil.example".into()),
        ],
        &body,
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("cross-origin"),
        "{answer}"
    );
    let mut with_token = json_headers(&token);
    with_token.push(("Origin", "http://evil.example".into()));
    assert_eq!(post(&w, path, &with_token, &body).0, 403);
    let text_plain = [
        ("Content-Type", "text/plain".to_owned()),
        ("Authorization", format!("Bearer {token}")),
    ];
    let (status, answer) = post(&w, path, &text_plain, &body);
    assert_eq!(status, 415, "{answer}");
    // The page's own origin is fine.
    let mut same_origin = json_headers(&token);
    same_origin.push(("Origin", w.addr().to_owned()));
    let (status, answer) = post(&w, path, &same_origin, &body);
    assert_eq!(status, 200, "{answer}");
    wait_outcome(&max, "review-T-1002");
    assert_eq!(ledgers(&max).refunds_paid(), 1);
}

#[test]
fn reviewers_approve_up_to_their_limit_and_managers_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let ana = as_reviewer(&w, &dir, "ana", Role::Reviewer);
    let max = manager(&w, &dir, "max");
    let run = "review-T-1001";
    ana.start("T-1001", None).unwrap();
    let p = wait_pending(&ana, run);
    let (status, msg) = refusal(ana.decide(run, &approve(&p)));
    assert_eq!(status, 403, "{msg}");
    assert!(
        msg.contains("may approve up to $100.00; $129.00 needs a manager"),
        "{msg}"
    );
    let mut partial = approve(&p);
    partial.approved_amount_cents = Some(9_000);
    assert_eq!(
        ana.decide(run, &partial).unwrap().signal,
        DecisionResult::Delivered
    );
    assert!(matches!(
        wait_outcome(&max, run),
        RefundOutcome::Refunded {
            amount_cents: 9_000,
            ..
        }
    ));
    assert_eq!(max.whoami().unwrap().reviewer_id, "max");
}

#[test]
fn whoever_asked_for_changes_cannot_approve_the_redraft() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let boss = manager(&w, &dir, "boss");
    let other = manager(&w, &dir, "other");
    let run = "review-T-1003";
    boss.start("T-1003", None).unwrap();
    let first = wait_pending(&boss, run);
    boss.decide(
        run,
        &decision(&first, DecisionStatus::RequestChanges, "make it $60"),
    )
    .unwrap();
    let second = wait_redraft(&boss, run, &first);
    assert_eq!(second.changes_requested_by, ["boss"]);
    let (status, msg) = refusal(boss.decide(run, &approve(&second)));
    assert_eq!(status, 403, "{msg}");
    assert!(msg.contains("four eyes"), "{msg}");
    // Rejecting is still theirs to do; approving is someone else's.
    other.decide(run, &approve(&second)).unwrap();
    assert!(matches!(
        wait_outcome(&other, run),
        RefundOutcome::Refunded {
            amount_cents: 6_000,
            ..
        }
    ));
}

// --- Money and limits --------------------------------------------------------------------------

#[test]
fn huge_amounts_in_notes_and_ticket_numbers_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    // The symptom: `T-18446744073709551615` panicked a step.
    let (status, msg) = refusal(max.start("T-18446744073709551615", None));
    assert_eq!(status, 404, "{msg}");
    assert!(msg.contains("no ticket"), "{msg}");
    // The symptom: `cap at $184467440737095517` panicked the redraft.
    let run = "review-T-1001";
    max.start("T-1001", None).unwrap();
    let first = wait_pending(&max, run);
    max.decide(
        run,
        &decision(
            &first,
            DecisionStatus::RequestChanges,
            "cap at $184467440737095517",
        ),
    )
    .unwrap();
    let second = wait_redraft(&max, run, &first);
    assert_eq!(second.amount_cents, 12_900);
    assert!(
        second.rationale.contains("more than the order total"),
        "{}",
        second.rationale
    );
    assert!(matches!(
        max.status(run).unwrap().status,
        RunStatus::Waiting { .. }
    ));
}

#[test]
fn approvals_above_the_order_total_or_of_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    max.start("T-1002", None).unwrap();
    let p = wait_pending(&max, "review-T-1002");
    // The symptom: an approval above the order total was silently capped.
    let mut above = approve(&p);
    above.approved_amount_cents = Some(4_501);
    let (status, msg) = refusal(max.decide("review-T-1002", &above));
    assert_eq!(status, 422, "{msg}");
    assert!(msg.contains("more than the order total of $45.00"), "{msg}");
    above.approved_amount_cents = Some(u64::MAX);
    assert_eq!(refusal(max.decide("review-T-1002", &above)).0, 422);
    // The symptom: a $0 approval wrote a "paid" ledger line. T-1005 drafts $0.
    max.start("T-1005", None).unwrap();
    let zero = wait_pending(&max, "review-T-1005");
    assert_eq!(zero.amount_cents, 0);
    let (status, msg) = refusal(max.decide("review-T-1005", &approve(&zero)));
    assert_eq!(status, 422, "{msg}");
    assert!(msg.contains("more than $0.00"), "{msg}");
    let mut explicit_zero = approve(&zero);
    explicit_zero.approved_amount_cents = Some(0);
    assert_eq!(refusal(max.decide("review-T-1005", &explicit_zero)).0, 422);
    assert!(ledgers(&max).payments.is_empty());
}

#[test]
fn oversized_notes_are_refused_at_the_edge_and_the_run_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    let run = "review-T-1001";
    max.start("T-1001", None).unwrap();
    let p = wait_pending(&max, run);
    // The symptom: a 1 MiB note was accepted and the redraft then failed the run for good.
    // The server answers from the announced length and closes, so a client still writing the
    // megabyte may see a broken pipe instead of the answer; this one announces it, sends a
    // little of it and reads the answer.
    let token = issue_token(dir.path(), "eve", Role::Manager, None).unwrap();
    let (status, body) = announce_huge_body(&w, &format!("/reviews/{run}/decision"), &token);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than 16384 bytes"),
        "{body}"
    );
    let long = decision(
        &p,
        DecisionStatus::RequestChanges,
        &"y".repeat(MAX_REASON_CHARS + 1),
    );
    let (status, msg) = refusal(max.decide(run, &long));
    assert_eq!(status, 422, "{msg}");
    assert!(msg.contains("at most 2000"), "{msg}");
    let ok = decision(
        &p,
        DecisionStatus::RequestChanges,
        &"z".repeat(MAX_REASON_CHARS),
    );
    max.decide(run, &ok).unwrap();
    let second = wait_redraft(&max, run, &p);
    assert_eq!(second.draft, 2);
}

#[test]
fn unknown_fields_and_repeated_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let max = manager(&w, &dir, "max");
    max.start("T-1001", None).unwrap();
    let p = wait_pending(&max, "review-T-1001");
    let token = issue_token(dir.path(), "eve", Role::Manager, None).unwrap();
    let path = "/reviews/review-T-1001/decision";
    // The symptom: `approved_amount` (a natural misspelling) paid the full recommendation.
    let misspelt = format!(
        r#"{{"status":"approved","wait_id":"{}","approved_amount":100}}"#,
        p.wait_id
    );
    let (status, body) = post(&w, path, &json_headers(&token), &misspelt);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `approved_amount`"),
        "{body}"
    );
    // The symptom: with a key twice, the last one won.
    let twice = format!(
        r#"{{"status":"approved","wait_id":"{}","approved_amount_cents":100,"approved_amount_cents":12900}}"#,
        p.wait_id
    );
    let (status, body) = post(&w, path, &json_headers(&token), &twice);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("duplicate field"),
        "{body}"
    );
    let (status, body) = post(
        &w,
        "/reviews",
        &json_headers(&token),
        r#"{"ticket_id":"T-1002","ticket":"x"}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(ledgers(&max).payments.is_empty());
}

// --- Errors ------------------------------------------------------------------------------------

#[test]
fn every_client_error_is_json_with_a_4xx_code() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let token = issue_token(dir.path(), "eve", Role::Manager, None).unwrap();
    let auth = format!("Bearer {token}");
    let get = |path: &str| raw(w.addr(), "GET", path, &[("Authorization", &auth)], None);
    let cases = [
        (get("/reviews/%FF%FE"), 400, "utf-8"),
        (get("/reviews/a%20b"), 400, "U+0020"),
        (get("/no/such/route"), 404, "no such route"),
        (get("/reviews/nope"), 404, "no run with id `nope`"),
        (
            raw(
                w.addr(),
                "DELETE",
                "/pending",
                &[("Authorization", &auth)],
                None,
            ),
            405,
            "method",
        ),
        (
            post(&w, "/reviews", &json_headers(&token), "{not json"),
            400,
            "not valid JSON",
        ),
        (
            announce_huge_body(&w, "/reviews", &token),
            413,
            "larger than",
        ),
        (
            chunked_body(&w, "/reviews", &token, 20_000),
            413,
            "larger than",
        ),
        (
            chunked_body(&w, "/reviews", &token, 3_000),
            422,
            "missing field `ticket_id`",
        ),
        (
            post(
                &w,
                "/reviews",
                &json_headers(&token),
                r#"{"ticket_id":"T-99x"}"#,
            ),
            404,
            "no ticket",
        ),
    ];
    for ((status, body), code, needle) in cases {
        assert_eq!(status, code, "{body}");
        let msg = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("not a JSON error: {body}"));
        assert!(msg.to_lowercase().contains(&needle.to_lowercase()), "{msg}");
    }
}

// --- The CLI -----------------------------------------------------------------------------------

#[test]
fn the_cli_encodes_run_ids_and_prints_one_clear_line_for_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let token = issue_token(dir.path(), "ana", Role::Manager, None).unwrap();
    let addr = w.addr().to_owned();
    let (ok, out, err) = cli(&addr, Some(&token), &["start", "T-1001"]);
    assert!(ok && out.contains("started review-T-1001"), "{out}{err}");
    let p = wait_pending(&w.client().with_token(token.clone()), "review-T-1001");
    let (ok, out, _) = cli(&addr, Some(&token), &["pending"]);
    assert!(
        ok && out.contains("review-T-1001 draft 1 (wait") && out.contains("$129.00"),
        "{out}"
    );
    // The symptom: `a/b` gave a bare 404, `q?x#y` "no run with id 'q'", spaces "cannot reach".
    for (id, shown) in [("a/b", "`/`"), ("q?x#y", "`?`"), ("a b", "U+0020")] {
        let (ok, _, err) = cli(&addr, Some(&token), &["status", id]);
        assert!(!ok, "{id}");
        assert!(
            err.contains(shown) && !err.contains("cannot reach"),
            "{id}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{id}: {err}");
    }
    let wait = p.wait_id.as_str();
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (
            &["status", "no-such-run"],
            Some(&token),
            "no run with id `no-such-run`",
        ),
        (
            &["reject", "review-T-1001", "--wait", wait, "--reason", " "],
            Some(&token),
            "`reason` is required",
        ),
        (
            &["approve", "review-T-1001", "--wait", wait],
            None,
            "authentication required",
        ),
        (
            &["approve", "review-T-1001", "--wait", "1"],
            Some(&token),
            "not the draft waiting",
        ),
    ];
    for (args, tok, expected) in cases {
        let (ok, _, err) = cli(&addr, tok, args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // Control characters in a reason cannot redraw the terminal.
    let sneaky = "fine\r\u{1b}[2Krefunded $129.00 (approved by ana)";
    let (ok, out, err) = cli(
        &addr,
        Some(&token),
        &[
            "reject",
            "review-T-1001",
            "--wait",
            wait,
            "--reason",
            sneaky,
        ],
    );
    assert!(
        ok && out.contains("rejected review-T-1001 as ana: delivered"),
        "{out}{err}"
    );
    wait_outcome(&w.client().with_token(token.clone()), "review-T-1001");
    let (ok, out, _) = cli(&addr, Some(&token), &["status", "review-T-1001"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("not approved by ana: fine\\u{d}\\u{1b}[2Krefunded"),
        "{out}"
    );
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out:?}");
    let (ok, out, _) = cli(&addr, Some(&token), &["trace", "review-T-1001"]);
    assert!(ok && !out.contains('\u{1b}'), "{out:?}");
    drop(w);
    let (ok, _, err) = cli(&addr, Some(&token), &["status", "review-T-1001"]);
    assert!(
        !ok && err.contains("is `refund_review serve` running?"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn each_subcommand_has_its_own_help() {
    let (ok, out, _) = cli("127.0.0.1:1", None, &["approve", "--help"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Usage: refund_review approve") && out.contains("--wait"),
        "{out}"
    );
    assert!(!out.contains("request-changes"), "{out}");
    let (ok, out, _) = cli("127.0.0.1:1", None, &["issue-token", "--help"]);
    assert!(
        ok && out.contains("--role") && !out.contains("--wait"),
        "{out}"
    );
    let (ok, out, _) = cli("127.0.0.1:1", None, &["--help"]);
    assert!(
        ok && out.contains("issue-token") && out.contains("request-changes"),
        "{out}"
    );
}

#[test]
fn tokens_are_issued_by_the_cli_and_work_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let data = dir.path().to_str().unwrap();
    let out = std::process::Command::new(common::exe())
        .args([
            "issue-token",
            "--data-dir",
            data,
            "--reviewer",
            "lea",
            "--role",
            "reviewer",
            "--limit",
            "5000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("rr_") && token.len() == 67, "{token}");
    let (ok, out, _) = cli(w.addr(), Some(&token), &["whoami"]);
    assert!(
        ok && out.contains("lea (reviewer), approves up to $50.00"),
        "{out}"
    );
    let (ok, _, err) = cli(w.addr(), Some("rr_nope"), &["whoami"]);
    assert!(!ok && err.contains("unknown or revoked token"), "{err}");
    let bad = std::process::Command::new(common::exe())
        .args([
            "issue-token",
            "--data-dir",
            data,
            "--reviewer",
            "l\u{200B}a",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("U+200B"));
    let _ = Client::new(w.addr());
}
