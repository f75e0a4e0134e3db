//! Wake-ups through LISTEN/NOTIFY: [`Store::announce`](workflow_runtime::store::Store::announce)
//! sends `NOTIFY` on [`CHANNEL`] with the run id; every store keeps one connection listening on
//! it and hands what it hears to the engine's poller
//! ([`Store::wait_for_work`](workflow_runtime::store::Store::wait_for_work)).
//!
//! PostgreSQL delivers a notification to every session listening when it was committed, so
//! none is missed while the listening connection is up. When it drops, the store opens another
//! and reports that announcements may have been lost in between ([`Wakeups::lost`]); the
//! engine then looks for the work it was not told about. Polling stays the fallback either
//! way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};
use workflow_runtime::store::Wakeups;

use crate::Reconnect;

/// The notification channel runs are announced on.
pub const CHANNEL: &str = "workflow_work";

/// What the listening connection heard and the poller has not taken yet.
#[derive(Default)]
pub(crate) struct Inbox {
    runs: Mutex<Vec<String>>,
    lost: AtomicBool,
    heard: Notify,
}

impl Inbox {
    /// Resolves with what was heard, as soon as there is something, or after `poll`.
    pub(crate) async fn wait(&self, poll: Duration) -> Wakeups {
        let ready = !self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
            || self.lost.load(Ordering::SeqCst);
        if !ready {
            tokio::select! {
                () = self.heard.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(PoisonError::into_inner));
        Wakeups::new(runs, self.lost.swap(false, Ordering::SeqCst))
    }

    fn heard(&self, run_id: String) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(run_id);
        // A permit is kept when nobody waits, so a notification between two waits still
        // ends the next one at once.
        self.heard.notify_one();
    }

    fn lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.heard.notify_one();
    }
}

/// Listens until the store's runtime ends, opening the connection again whenever it drops.
pub(crate) async fn run(reconnect: Arc<Reconnect>, inbox: Arc<Inbox>) {
    let mut first = true;
    let mut backoff = Duration::from_millis(50);
    loop {
        match listen_once(&reconnect, &inbox, &mut first).await {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::debug!(database = %reconnect.label, "listening for announcements: {e}");
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One listening connection, until it drops.
async fn listen_once(
    reconnect: &Reconnect,
    inbox: &Arc<Inbox>,
    first: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = reconnect.config.connect(NoTls).await?;
    let heard = inbox.clone();
    let messages = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => heard.heard(n.payload().to_owned()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if !*first {
        // Listening again: whatever was announced while the connection was down is unheard.
        inbox.lost();
    }
    *first = false;
    let _ = messages.await;
    drop(client);
    inbox.lost();
    Ok(())
}
