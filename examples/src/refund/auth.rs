//! Who may decide: bearer tokens issued by `refund_review issue-token`, stored as SHA-256
//! hashes in `reviewers.jsonl` in the data directory, each bound to a reviewer id, a role and
//! an approval limit.
//!
//! The policy, enforced by the server for every decision:
//! - the reviewer id recorded in the decision and the trace is the token's, never the body's;
//! - a `reviewer` approves refunds up to their limit (default $100.00); a `manager` approves
//!   any amount up to the order total;
//! - four eyes: whoever asked for changes on a review cannot approve any later draft of it.
//!
//! The token itself is printed once when issued and never stored; revoking one means deleting
//! its line from `reviewers.jsonl` (the server reads the file on every request).

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::api::validate_id;
use super::ledger::read_entries;

/// The default approval limit of a `reviewer`: $100.00.
pub const DEFAULT_REVIEWER_LIMIT_CENTS: u64 = 10_000;

/// A reviewer's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Approves up to a limit.
    Reviewer,
    /// Approves any amount.
    Manager,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "manager" => Ok(Role::Manager),
            _ => Err(format!("a role is `reviewer` or `manager`, not `{s}`")),
        }
    }
}

/// One issued credential, as stored: the token's hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The reviewer the token speaks for.
    pub reviewer_id: String,
    /// The role.
    pub role: Role,
    /// The largest refund this reviewer may approve, in cents.
    pub approval_limit_cents: u64,
    /// SHA-256 of the token, lowercase hex.
    pub token_sha256: String,
}

/// The credentials file of a data directory.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("reviewers.jsonl")
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issues a token for `reviewer_id`: 32 random bytes from the operating system, printed once
/// by the caller; only their hash is appended to the data directory's credentials file.
/// `limit_cents` defaults to [`DEFAULT_REVIEWER_LIMIT_CENTS`] for a reviewer and no limit for a
/// manager.
///
/// # Errors
/// A bad reviewer id, or the file or the random source cannot be used.
pub fn issue_token(
    data_dir: &Path,
    reviewer_id: &str,
    role: Role,
    limit_cents: Option<u64>,
) -> Result<String, String> {
    validate_id("reviewer id", reviewer_id)?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let token = random_token("rr_")?;
    let cred = Credential {
        reviewer_id: reviewer_id.to_owned(),
        role,
        approval_limit_cents: limit_cents.unwrap_or(match role {
            Role::Reviewer => DEFAULT_REVIEWER_LIMIT_CENTS,
            Role::Manager => u64::MAX,
        }),
        token_sha256: sha256_hex(&token),
    };
    let path = credentials_path(data_dir);
    let mut line = serde_json::to_vec(&cred).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(token)
}

/// `prefix` and 32 random bytes from the operating system, in hex.
///
/// # Errors
/// If the system's random source cannot be read.
pub fn random_token(prefix: &str) -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read random bytes: {e}"))?;
    Ok(std::iter::once(prefix.to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect())
}

/// The credential a bearer token belongs to, if any.
///
/// # Errors
/// If the credentials file cannot be read.
pub fn authenticate(data_dir: &Path, token: &str) -> io::Result<Option<Credential>> {
    let hash = sha256_hex(token);
    Ok(read_entries::<Credential>(&credentials_path(data_dir))?
        .into_iter()
        .find(|c| c.token_sha256 == hash))
}
