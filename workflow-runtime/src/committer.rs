//! Group commit: one thread owns writing, and every durable transaction it makes carries all
//! the checkpoints that were queued while the previous one was being written.
//!
//! The thread blocks on its channel when idle and drains it completely when woken, so there is
//! no fixed delay: a lone checkpoint is committed at once, and under load one fsync serves many
//! runs. It never runs user code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use redb::Database;
use tokio::sync::oneshot;

use crate::error::EngineError;
use crate::store::{self, Op};

type Ack = oneshot::Sender<Result<(), EngineError>>;

enum Msg {
    Commit(Vec<Op>, Ack),
    Stop(oneshot::Sender<()>),
}

/// The handle to the committer thread.
pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the thread; it holds `db` until stopped.
    pub(crate) fn spawn(db: Arc<Database>) -> Result<Committer, EngineError> {
        let (tx, rx) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let thread = std::thread::Builder::new()
            .name("workflow-committer".to_owned())
            .spawn(move || run(&db, &rx, &counter))
            .map_err(|e| EngineError::Storage(format!("cannot start the committer thread: {e}")))?;
        Ok(Committer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            commits,
        })
    }

    /// Makes `ops` durable; returns once they are committed, or with the error that prevented it
    /// (then nothing of them was written).
    pub(crate) async fn commit(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let (ack, done) = oneshot::channel();
        {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            let tx = tx.as_ref().ok_or(EngineError::ShutDown)?;
            tx.send(Msg::Commit(ops, ack))
                .map_err(|_| EngineError::ShutDown)?;
        }
        done.await.unwrap_or(Err(EngineError::ShutDown))
    }

    /// How many write transactions were committed.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Commits what is queued, then stops the thread, which releases its database reference.
    pub(crate) async fn stop(&self) {
        let (ack, stopped) = oneshot::channel();
        if self.send_stop(ack) {
            let _ = stopped.await;
        }
        self.join();
    }

    /// [`Committer::stop`] for `Drop`, where nothing can be awaited.
    pub(crate) fn stop_blocking(&self) {
        let (ack, _stopped) = oneshot::channel();
        self.send_stop(ack);
        self.join();
    }

    fn send_stop(&self, ack: oneshot::Sender<()>) -> bool {
        // Dropping the sender too makes later commits fail fast with `ShutDown`.
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        tx.is_some_and(|tx| tx.send(Msg::Stop(ack)).is_ok())
    }

    fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // The thread runs no user code, so a panic there is a bug in this crate or redb;
            // there is nobody left to report it to.
            let _ = thread.join();
        }
    }
}

fn run(db: &Database, rx: &mpsc::Receiver<Msg>, commits: &AtomicU64) {
    let mut stop = None;
    while stop.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut jobs = Vec::new();
        for msg in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match msg {
                Msg::Commit(ops, ack) => jobs.push((ops, ack)),
                Msg::Stop(ack) => {
                    stop = Some(ack);
                    break;
                }
            }
        }
        commit_group(db, jobs, commits);
    }
    // Whatever is still queued arrived after the stop; its senders see `ShutDown`.
    if let Some(ack) = stop {
        let _ = ack.send(());
    }
}

fn commit_group(db: &Database, jobs: Vec<(Vec<Op>, Ack)>, commits: &AtomicU64) {
    if jobs.is_empty() {
        return;
    }
    let batches: Vec<&[Op]> = jobs.iter().map(|(ops, _)| ops.as_slice()).collect();
    // The clock is read only when someone listens at debug level.
    let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
    match store::commit(db, &batches) {
        Ok(()) => {
            if let Some(started) = started {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                tracing::debug!(
                    checkpoints = jobs.len(),
                    latency_us = micros,
                    "committed {} checkpoint(s) in one durable transaction",
                    jobs.len()
                );
            }
            commits.fetch_add(1, Ordering::Relaxed);
            for (_, ack) in jobs {
                let _ = ack.send(Ok(()));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let (_, ack) = jobs.into_iter().next().expect("one job");
            let _ = ack.send(Err(e));
        }
        Err(_) => {
            // One bad checkpoint (say, a value over redb's size limit) must not fail the others
            // it happened to be grouped with: retry each on its own.
            for (ops, ack) in jobs {
                let result = store::commit(db, &[&ops]);
                if result.is_ok() {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                let _ = ack.send(result);
            }
        }
    }
}
