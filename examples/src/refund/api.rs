//! The HTTP API's request and answer bodies, shared by the server and the client, and the
//! limits the server enforces at its edge.
//!
//! Request bodies refuse unknown fields and repeated keys: a misspelt `approved_amount` must
//! not silently mean "the full recommendation".

use serde::{Deserialize, Serialize};
use workflow_runtime::RunStatus;

use super::domain::{DecisionStatus, RefundOutcome};

/// The largest request body accepted, in bytes; larger bodies answer 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest reason or note accepted, in characters. Well under the engine's payload limit:
/// a note is copied into the redraft's rationale, and an oversized redraft would fail the run.
pub const MAX_REASON_CHARS: usize = 2_000;
/// The longest run id or ticket id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// The largest ticket number the helpdesk knows.
pub const MAX_TICKET_NUMBER: u64 = 999_999_999;

/// `POST /reviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The ticket to review, like `T-1001`: the review's business key.
    pub ticket_id: String,
    /// The run id; by default `review-<ticket>` (with `-2`, `-3`.. for later reviews of a
    /// ticket whose earlier review ended without a refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The answer to `POST /reviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResponse {
    /// The review's run id.
    pub run_id: String,
    /// The ticket.
    pub ticket_id: String,
    /// False when this exact review already existed (a repeated start).
    pub created: bool,
    /// Where the run stands.
    pub status: RunStatus,
}

/// `POST /reviews/{run}/decision`. The reviewer is the holder of the bearer token: a body
/// naming one is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The verdict.
    pub status: DecisionStatus,
    /// The wait this decision answers, as shown by `GET /pending` beside the draft. A decision
    /// naming any other wait (an earlier draft, or one not drafted yet) is refused with the
    /// current draft in the answer.
    pub wait_id: String,
    /// Why; required to reject or request changes.
    #[serde(default)]
    pub reason: String,
    /// The amount to pay on approval, in cents; absent means the drafted amount. Must be more
    /// than zero and at most the order total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_amount_cents: Option<u64>,
}

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionResult {
    /// The review took it; its effect is durable.
    Delivered,
    /// The same reviewer already sent this decision on this draft; nothing changed.
    Duplicate,
}

/// The answer to `POST /reviews/{run}/decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionResponse {
    /// The review.
    pub run_id: String,
    /// Who decided (from the credential).
    pub reviewer_id: String,
    /// The verdict.
    pub status: DecisionStatus,
    /// What became of it.
    pub signal: DecisionResult,
}

/// A review waiting for a decision, as `GET /pending` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReview {
    /// The review.
    pub run_id: String,
    /// The wait a decision must name.
    pub wait_id: String,
    /// Which draft of this review is shown: 1, then 2 after a request for changes, ..
    pub draft: u32,
    /// The ticket.
    pub ticket_id: String,
    /// The customer's name.
    pub customer: String,
    /// The drafted amount, in cents.
    pub amount_cents: u64,
    /// What the order cost, in cents: the most that can be approved.
    pub order_total_cents: u64,
    /// The policy rule behind the draft.
    pub rule: String,
    /// Why the agent proposes this amount.
    pub rationale: String,
    /// When the review times out, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// Reviewers who asked for changes on earlier drafts: they may not approve this one.
    pub changes_requested_by: Vec<String>,
}

/// The answer to `GET /reviews/{run}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewStatus {
    /// The review.
    pub run_id: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RefundOutcome>,
    /// Why it failed, if it did (one line of text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to `GET /whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The reviewer id bound to the token.
    pub reviewer_id: String,
    /// The role.
    pub role: super::auth::Role,
    /// The largest refund this reviewer may approve, in cents.
    pub approval_limit_cents: u64,
}

/// Every error answer: one line, and for a refused decision the draft that is current now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The draft waiting now, when a decision named another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<PendingReview>,
}

/// Checks an identifier (a run id or a ticket id): 1 to [`MAX_ID_LEN`] bytes of ASCII letters,
/// digits, `-`, `_`, `.` and `:`. Ids are shown to reviewers and typed on command lines, so
/// nothing invisible, look-alike or needing normalisation gets in.
///
/// # Errors
/// A sentence saying what is wrong, naming an offending character by its code point.
pub fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        let shown = if c.is_control() || !c.is_ascii() || c == ' ' {
            format!("U+{:04X}", u32::from(c))
        } else {
            format!("`{c}` (U+{:04X})", u32::from(c))
        };
        return Err(format!(
            "the {what} `{}` contains {shown}; use ASCII letters, digits, `-`, `_`, `.` and `:`",
            escape_text(id)
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "the {what} is {} bytes long; at most {MAX_ID_LEN} are allowed",
            id.len()
        ));
    }
    Ok(())
}

/// The number of a ticket id `T-<n>`, if it is one the helpdesk could know.
pub fn ticket_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("T-")?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n <= MAX_TICKET_NUMBER)
}

/// Text made safe for a terminal: control characters (escape sequences, carriage returns,
/// backspaces) and invisible format characters are shown as `\u{..}` escapes, so a reason can
/// never redraw what the terminal displays.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let invisible = matches!(
            c,
            '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        );
        if c.is_control() || invisible {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// How a review ended, in words, with the reviewer's text escaped for a terminal:
/// "refunded $129.00 (receipt .., approved by ana)", "not approved by bob: ..", "timed out: ..".
pub fn describe_outcome(outcome: &RefundOutcome) -> String {
    match outcome {
        RefundOutcome::Refunded {
            receipt_id,
            amount_cents,
            reviewer_id,
        } => format!(
            "refunded {} (receipt {}, approved by {})",
            super::agent::dollars(*amount_cents),
            escape_text(receipt_id),
            escape_text(reviewer_id)
        ),
        RefundOutcome::NotApproved {
            reason,
            reviewer_id,
        } => format!(
            "not approved by {}: {}; nothing paid",
            escape_text(reviewer_id),
            escape_text(reason)
        ),
        RefundOutcome::TimedOut => {
            "timed out: nobody decided within 7 days; nothing paid".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_ascii_and_bounded() {
        assert!(validate_id("run id", "review-T-1001").is_ok());
        let zw = validate_id("run id", "review-T-1002\u{200B}").unwrap_err();
        assert!(zw.contains("U+200B"), "{zw}");
        assert!(validate_id("run id", "a/b").unwrap_err().contains("`/`"));
        assert!(validate_id("run id", "").is_err());
        assert!(validate_id("run id", &"x".repeat(65)).is_err());
        assert!(validate_id("run id", "caf\u{e9}").is_err());
    }

    #[test]
    fn ticket_numbers_are_bounded() {
        assert_eq!(ticket_number("T-1001"), Some(1001));
        assert_eq!(ticket_number("T-18446744073709551615"), None);
        assert_eq!(ticket_number("T-+1"), None);
        assert_eq!(ticket_number("T-"), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_text("ok\r\x1b[2Kpaid"), "ok\\u{d}\\u{1b}[2Kpaid");
        assert_eq!(escape_text("a\u{200B}b"), "a\\u{200b}b");
    }

    #[test]
    fn unknown_and_repeated_fields_are_refused() {
        let e = serde_json::from_str::<DecisionRequest>(
            r#"{"status":"approved","wait_id":"4","approved_amount":100}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = serde_json::from_str::<DecisionRequest>(
            r#"{"status":"approved","wait_id":"4","approved_amount_cents":1,"approved_amount_cents":2}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
    }
}
