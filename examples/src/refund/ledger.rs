//! Durable append-only ledgers kept beside the engine's store: the stand-in payment
//! provider's, which refuses to pay an idempotency key twice the way a real provider does,
//! and one recording every step execution so tests can prove a step did not run again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workflow_runtime::StepError;

use super::domain::RefundReceipt;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A JSON-lines file where every append is on disk before it returns.
#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    fn append<T: Serialize>(&mut self, entry: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// Reads every entry of a ledger file; a missing file has none. A torn last line (the process
/// died mid-write, before the append returned) is ignored: it was never acknowledged.
///
/// # Errors
/// If the file cannot be read or an earlier line is not a valid entry.
pub fn read_entries<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(entry) => out.push(entry),
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line {}: {e}", i + 1),
                ));
            }
        }
    }
    Ok(out)
}

/// What the payment provider did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentEvent {
    /// Money moved.
    Paid,
    /// The key was already paid; the original receipt was returned and nothing moved.
    DuplicateRefused,
}

/// One line of the payment ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEntry {
    /// What happened.
    pub event: PaymentEvent,
    /// The key the request carried.
    pub idempotency_key: String,
    /// The ticket refunded.
    pub ticket_id: String,
    /// Amount, in cents.
    pub amount_cents: u64,
    /// The receipt returned.
    pub receipt_id: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A stand-in payment provider with its own durable ledger, keyed by idempotency key. Like a
/// real provider that will not refund a charge beyond what was charged, it also refuses a
/// second refund on a ticket already refunded under another key: that covers a run paid
/// under an older key scheme and re-run after a deploy, and any second run of a ticket.
#[derive(Debug)]
pub struct PaymentProvider {
    state: Mutex<Paid>,
}

#[derive(Debug)]
struct Paid {
    journal: Journal,
    by_key: HashMap<String, RefundReceipt>,
    by_ticket: HashMap<String, RefundReceipt>,
}

impl PaymentProvider {
    /// Opens (or creates) the ledger at `path` and loads the keys already paid.
    ///
    /// # Errors
    /// If the ledger cannot be read or created.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut by_key = HashMap::new();
        let mut by_ticket = HashMap::new();
        for e in read_entries::<PaymentEntry>(path)? {
            if e.event == PaymentEvent::Paid {
                let receipt = RefundReceipt {
                    receipt_id: e.receipt_id,
                    idempotency_key: e.idempotency_key.clone(),
                    amount_cents: e.amount_cents,
                };
                by_ticket.insert(e.ticket_id, receipt.clone());
                by_key.insert(e.idempotency_key, receipt);
            }
        }
        Ok(Self {
            state: Mutex::new(Paid {
                journal: Journal::open(path)?,
                by_key,
                by_ticket,
            }),
        })
    }

    /// Refunds `amount_cents` on `ticket_id` unless `idempotency_key` was already paid or the
    /// ticket was already refunded, in which case the original receipt comes back and no money
    /// moves.
    ///
    /// # Errors
    /// A retryable [`StepError`] if the ledger cannot be written (nothing was paid).
    pub fn refund(
        &self,
        idempotency_key: &str,
        ticket_id: &str,
        amount_cents: u64,
    ) -> Result<RefundReceipt, StepError> {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Paid {
            journal,
            by_key,
            by_ticket,
        } = &mut *guard;
        let earlier = by_key
            .get(idempotency_key)
            .or_else(|| by_ticket.get(ticket_id));
        let (event, receipt) = match earlier {
            Some(r) => (PaymentEvent::DuplicateRefused, r.clone()),
            None => {
                let receipt = RefundReceipt {
                    receipt_id: format!("re_{:016x}", fnv1a(idempotency_key.as_bytes())),
                    idempotency_key: idempotency_key.to_owned(),
                    amount_cents,
                };
                (PaymentEvent::Paid, receipt)
            }
        };
        let entry = PaymentEntry {
            event,
            idempotency_key: idempotency_key.to_owned(),
            ticket_id: ticket_id.to_owned(),
            amount_cents: receipt.amount_cents,
            receipt_id: receipt.receipt_id.clone(),
            at_ms: now_ms(),
        };
        journal.append(&entry).map_err(|e| {
            StepError::retryable(format!("payment ledger {}: {e}", journal.path.display()))
        })?;
        if event == PaymentEvent::Paid {
            by_key.insert(idempotency_key.to_owned(), receipt.clone());
            by_ticket.insert(ticket_id.to_owned(), receipt.clone());
        }
        Ok(receipt)
    }
}

/// One execution of a step, as recorded by the step itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepExecution {
    /// The step's name.
    pub step: String,
    /// The run it belongs to.
    pub run_id: String,
    /// The invocation's idempotency key.
    pub idempotency_key: String,
    /// Which attempt.
    pub attempt: u32,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Records every step execution durably.
#[derive(Debug)]
pub struct StepLedger {
    journal: Mutex<Journal>,
}

impl StepLedger {
    /// Opens (or creates) the ledger at `path`.
    ///
    /// # Errors
    /// If the file cannot be created.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            journal: Mutex::new(Journal::open(path)?),
        })
    }

    /// Records one execution.
    ///
    /// # Errors
    /// A retryable [`StepError`] if the ledger cannot be written.
    pub fn record(&self, ctx: &workflow_runtime::StepContext) -> Result<(), StepError> {
        let entry = StepExecution {
            step: ctx.step_name().to_owned(),
            run_id: ctx.run_id().to_owned(),
            idempotency_key: ctx.idempotency_key(),
            attempt: ctx.attempt(),
            at_ms: now_ms(),
        };
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        journal
            .append(&entry)
            .map_err(|e| StepError::retryable(format!("step ledger: {e}")))
    }
}

/// FNV-1a: a stable hash, so a receipt id is the same in every process that pays the key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_refunded_once_whatever_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.jsonl");
        let provider = PaymentProvider::open(&path).unwrap();
        let first = provider.refund("refund:T-1:100", "T-1", 100).unwrap();
        // A run paid under the key scheme of an older deploy, then re-run under the new one.
        let again = provider
            .refund("refund:review-T-1:T-1", "T-1", 100)
            .unwrap();
        assert_eq!(again, first);
        let other_amount = provider.refund("refund:T-1:250", "T-1", 250).unwrap();
        assert_eq!(other_amount, first);
        provider.refund("refund:T-2:100", "T-2", 100).unwrap();
        drop(provider);
        // The rule holds across a restart of the provider.
        let provider = PaymentProvider::open(&path).unwrap();
        assert_eq!(provider.refund("refund:T-1:7", "T-1", 7).unwrap(), first);
        let events: Vec<PaymentEvent> = read_entries::<PaymentEntry>(&path)
            .unwrap()
            .iter()
            .map(|e| e.event)
            .collect();
        use PaymentEvent::{DuplicateRefused as Dup, Paid};
        assert_eq!(events, [Paid, Dup, Dup, Paid, Dup]);
    }
}
