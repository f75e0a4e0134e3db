//! The effect ledger: a stand-in for an outside system that de-duplicates on idempotency keys,
//! the way a payment provider does. A JSON-lines file, fsync'ed on every append, beside the
//! engine's store.
//!
//! The first request with a key performs the effect (an `applied` line); a later request with
//! the same key performs nothing and returns the first result (a `deduplicated` line, kept so
//! the check can count re-executions and see that they carried the same effect).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use workflow_runtime::StepError;

use crate::flows::effect_value;

/// The ledger's file name inside the data directory.
pub const FILE: &str = "effects.jsonl";

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The effect happened.
    Applied,
    /// The key was known: nothing happened, the first result was returned.
    Deduplicated,
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// What happened.
    pub event: Event,
    /// The step invocation's idempotency key.
    pub key: String,
    /// What the effect is (unique per logical effect of the workload).
    pub tag: String,
    /// The value returned.
    pub value: u64,
}

struct Ledger {
    file: File,
    path: PathBuf,
    done: HashMap<String, u64>,
    /// Shared by several worker processes ([`install_shared`]): how far this process has read
    /// the file.
    shared: Option<u64>,
}

/// Set by [`forget_keys`].
static FORGET_KEYS: AtomicBool = AtomicBool::new(false);

/// Breaks the ledger on purpose: it stops de-duplicating, as if every step ignored its
/// idempotency key. The torture's own test uses it to show that the check catches the
/// doubled effects that follow.
pub fn forget_keys() {
    FORGET_KEYS.store(true, Ordering::SeqCst);
}

fn ledger() -> &'static OnceLock<Mutex<Ledger>> {
    static LEDGER: OnceLock<Mutex<Ledger>> = OnceLock::new();
    &LEDGER
}

/// Opens the ledger in `dir` for this process's steps.
///
/// A torn last line (the process died inside `write`) is cut off first: its append never
/// returned, so its step never reported the effect and will request it again.
///
/// # Errors
/// If the file cannot be read, repaired or opened, or holds an invalid line before its end.
pub fn install(dir: &Path) -> io::Result<()> {
    let path = dir.join(FILE);
    let entries = read(&path, true)?;
    let mut done = HashMap::new();
    for e in entries {
        if e.event == Event::Applied {
            done.insert(e.key, e.value);
        }
    }
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let opened = Ledger {
        file,
        path,
        done,
        shared: None,
    };
    if ledger().set(Mutex::new(opened)).is_err() {
        return Err(io::Error::other("the ledger is already installed"));
    }
    Ok(())
}

/// Opens the ledger in `dir` for this process's steps, shared with other worker processes
/// running at the same time: every request takes an exclusive lock on the file, reads what the
/// others appended since, then appends its own line, so that a key is applied once across all
/// of them. A torn last line (its writer died inside `write`, releasing the lock) is cut off
/// by the next request.
///
/// # Errors
/// If the file cannot be opened.
pub fn install_shared(dir: &Path) -> io::Result<()> {
    let path = dir.join(FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)?;
    let opened = Ledger {
        file,
        path,
        done: HashMap::new(),
        shared: Some(0),
    };
    if ledger().set(Mutex::new(opened)).is_err() {
        return Err(io::Error::other("the ledger is already installed"));
    }
    Ok(())
}

impl Ledger {
    /// Under the file lock: reads the lines other processes appended since this one last
    /// looked, and cuts off a torn last line.
    fn catch_up(&mut self) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let Some(pos) = self.shared else {
            return Ok(());
        };
        let mut reader = File::open(&self.path)?;
        reader.seek(SeekFrom::Start(pos))?;
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail)?;
        let mut good = 0;
        for line in tail.split_inclusive(|b| *b == b'\n') {
            if !line.ends_with(b"\n") {
                break;
            }
            let entry: Entry = serde_json::from_slice(&line[..line.len() - 1])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if entry.event == Event::Applied {
                self.done.insert(entry.key, entry.value);
            }
            good += line.len();
        }
        let good_end = pos + good as u64;
        if good < tail.len() {
            self.file.set_len(good_end)?;
            self.file.sync_all()?;
        }
        self.shared = Some(good_end);
        Ok(())
    }
}

/// Reads every entry of the ledger at `path` (none if it is missing). With `repair`, a torn
/// last line is truncated away; without, it is skipped.
///
/// # Errors
/// If the file cannot be read or a line other than the last is not an entry.
pub fn read(path: &Path, repair: bool) -> io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut good_len: u64 = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        if !line.ends_with('\n') {
            // Torn: only the last line can be, and it was never acknowledged.
            break;
        }
        let entry = serde_json::from_str(line.trim_end()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} line {}: {e}", path.display(), out.len() + 1),
            )
        })?;
        out.push(entry);
        good_len += n as u64;
    }
    if repair && std::fs::metadata(path)?.len() != good_len {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(good_len)?;
        f.sync_all()?;
    }
    Ok(out)
}

/// Performs the effect `tag` under `key` unless `key` was already used, and returns its value.
///
/// # Errors
/// A retryable [`StepError`] if the ledger is not installed or cannot be written (then nothing
/// was performed).
pub async fn apply(key: &str, tag: &str) -> Result<u64, StepError> {
    let (key, tag) = (key.to_owned(), tag.to_owned());
    tokio::task::spawn_blocking(move || apply_blocking(&key, &tag))
        .await
        .map_err(|e| StepError::retryable(format!("ledger task: {e}")))?
}

fn apply_blocking(key: &str, tag: &str) -> Result<u64, StepError> {
    let cell = ledger()
        .get()
        .ok_or_else(|| StepError::retryable("the effect ledger is not installed"))?;
    let mut guard = cell
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ledger = &mut *guard;
    if ledger.shared.is_some() {
        ledger
            .file
            .lock()
            .and_then(|()| ledger.catch_up())
            .map_err(|e| StepError::retryable(format!("ledger {}: {e}", ledger.path.display())))?;
    }
    let result = apply_locked(ledger, key, tag);
    if ledger.shared.is_some() {
        let _ = ledger.file.unlock();
    }
    result
}

fn apply_locked(ledger: &mut Ledger, key: &str, tag: &str) -> Result<u64, StepError> {
    let known = ledger
        .done
        .get(key)
        .filter(|_| !FORGET_KEYS.load(Ordering::SeqCst));
    let (event, value) = match known {
        Some(v) => (Event::Deduplicated, *v),
        None => (Event::Applied, effect_value(tag)),
    };
    let entry = Entry {
        event,
        key: key.to_owned(),
        tag: tag.to_owned(),
        value,
    };
    let mut line = serde_json::to_vec(&entry).map_err(|e| StepError::permanent(e.to_string()))?;
    line.push(b'\n');
    ledger
        .file
        .write_all(&line)
        .and_then(|()| ledger.file.sync_data())
        .map_err(|e| StepError::retryable(format!("ledger {}: {e}", ledger.path.display())))?;
    if let Some(pos) = &mut ledger.shared {
        *pos += line.len() as u64;
    }
    if event == Event::Applied {
        ledger.done.insert(key.to_owned(), value);
        // The effect is durable and its step has not reported back: the window where a crash
        // makes the engine run the step again.
        crate::fault::after_effect();
    }
    Ok(value)
}
