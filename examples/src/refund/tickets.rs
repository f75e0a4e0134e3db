//! The ticket is the review's business key: `tickets.jsonl` in the data directory records which
//! runs reviewed which ticket, so the server can refuse a second review while one is open or
//! after one paid, whatever run id the second one asks for.
//!
//! A line is written (and synced) before the run is started: a crash in between leaves a line
//! naming a run that does not exist, which counts as no review.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ledger::read_entries;

/// One line of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReview {
    /// The ticket.
    pub ticket_id: String,
    /// The run reviewing it.
    pub run_id: String,
}

/// The registry file of a data directory.
pub fn registry_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tickets.jsonl")
}

/// The runs recorded for `ticket_id`, oldest first.
///
/// # Errors
/// If the registry cannot be read.
pub fn reviews_of(data_dir: &Path, ticket_id: &str) -> io::Result<Vec<String>> {
    Ok(read_entries::<TicketReview>(&registry_path(data_dir))?
        .into_iter()
        .filter(|r| r.ticket_id == ticket_id)
        .map(|r| r.run_id)
        .collect())
}

/// The ticket a run reviews, if the registry knows it.
///
/// # Errors
/// If the registry cannot be read.
pub fn ticket_of(data_dir: &Path, run_id: &str) -> io::Result<Option<String>> {
    Ok(read_entries::<TicketReview>(&registry_path(data_dir))?
        .into_iter()
        .find(|r| r.run_id == run_id)
        .map(|r| r.ticket_id))
}

/// Records that `run_id` reviews `ticket_id`, durably.
///
/// # Errors
/// If the registry cannot be written.
pub fn record(data_dir: &Path, ticket_id: &str, run_id: &str) -> io::Result<()> {
    let entry = TicketReview {
        ticket_id: ticket_id.to_owned(),
        run_id: run_id.to_owned(),
    };
    let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(registry_path(data_dir))?;
    file.write_all(&line)?;
    file.sync_data()
}
