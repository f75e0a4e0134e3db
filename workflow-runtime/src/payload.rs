//! Encryption at rest: a [`PayloadCodec`] transforms every payload on its way to and from the
//! store.
//!
//! # What is transformed
//!
//! Every payload a run stores: its state, its output, the input of its pending step, the
//! metadata of its pending wait, buffered signals, the texts that may quote data (a failure
//! message, an operator's reason), and in its trace every input, output, signal payload,
//! error message and state. What a store must read to keep its indexes stays as it is: run
//! ids, workflow names and versions, statuses without their texts, deadlines, sequence
//! numbers, step and signal names, de-duplication keys and timings.
//!
//! The transformation sits between the engine and any [`Store`], field by
//! field rather than on whole rows, for that reason: a backend keeps indexing the fields it
//! needs, and a new backend gets encryption without doing anything. A sealed payload is stored
//! as `{"$sealed": "<base64>"}` (a text as `"$sealed:<base64>"`); the codec's bytes are bound
//! to the run id, so a payload copied into another run does not decode.
//!
//! An engine without a codec that reads a sealed payload, or an engine whose codec does not
//! hold the payload's key, fails that read with
//! [`StoreError::Sealed`] and writes nothing: the run stays as
//! stored until an engine with the right key opens it. Nothing is ever decoded into a wrong
//! value: the provided cipher is authenticated.
//!
//! # The provided cipher
//!
//! With the crate feature `encryption`, `ChaChaCodec` seals with XChaCha20-Poly1305 (a
//! random 192-bit nonce per payload) under keys identified by id: new payloads use the
//! current key, and payloads sealed under an older key still decode as long as that key is
//! given with `ChaChaCodec::with_old_key`, so keys rotate while runs are parked.

use std::sync::Arc;

use serde_json::Value;

use crate::error::StoreError;
use crate::model::Command;
use crate::store::StoredState;
use crate::store::{
    Acknowledgement, ArmedTimer, CheckpointWrite, Claim, DueTimer, Lease, ReadyEntry, ReadyRun,
    Store, TraceEvent,
};
use crate::types::{InboxEntry, PendingWait, RunRecord, RunStatus};

/// The key of the object a sealed payload is stored as.
pub const SEALED_KEY: &str = "$sealed";
/// The prefix of a sealed text.
const SEALED_TEXT: &str = "$sealed:";

/// Transforms stored payloads: encrypts them on their way to the store and decrypts them on
/// their way back ([`EngineBuilder::payload_codec`](crate::EngineBuilder::payload_codec)).
///
/// `context` is the run id the payload belongs to; an implementation should bind it (as
/// associated data of an authenticated cipher) so that a payload moved to another run fails
/// to decode. `decode` must fail, never return wrong bytes, for a payload it did not produce.
pub trait PayloadCodec: Send + Sync + 'static {
    /// Seals one payload.
    ///
    /// # Errors
    /// [`SealError::Failed`] if it cannot (a random source failed).
    fn encode(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError>;

    /// Opens one payload sealed by `encode` (of this codec or one with the same keys).
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] for a key it does not hold, [`SealError::Rejected`] if the
    /// payload does not authenticate, [`SealError::Malformed`] if it is not one of its payloads.
    fn decode(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// Why a payload could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The payload is sealed and this engine has no payload codec.
    #[error(
        "the payload is encrypted and this engine has no payload codec \
         (open it with `EngineBuilder::payload_codec` and the store's keys)"
    )]
    NoCodec,
    /// The payload was sealed with a key this codec was not given.
    #[error("the payload was sealed with key `{key_id}`, which this engine was not given")]
    UnknownKey {
        /// The id of the key it was sealed with.
        key_id: String,
    },
    /// The payload does not authenticate under its key: the key with that id is not the one
    /// that sealed it, or the stored bytes were altered.
    #[error(
        "the payload sealed with key `{key_id}` does not authenticate: \
         the key given under that id is wrong, or the stored bytes were altered"
    )]
    Rejected {
        /// The id of the key it names.
        key_id: String,
    },
    /// The stored bytes are not a sealed payload of this codec.
    #[error("the payload is not a sealed payload of this codec: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// Sealing failed.
    #[error("sealing failed: {reason}")]
    Failed {
        /// Why.
        reason: String,
    },
}

/// Seals one JSON payload of run `run_id` into its stored form, `{"$sealed": "<base64>"}`, as
/// the engine does for every payload it stores (for tools that write or inspect a store).
///
/// # Errors
/// As [`PayloadCodec::encode`].
pub fn seal_json(
    codec: &dyn PayloadCodec,
    run_id: &str,
    value: &Value,
) -> Result<Value, SealError> {
    // Encoding a `Value` cannot fail.
    let plain = serde_json::to_vec(value).unwrap_or_default();
    let sealed = codec.encode(run_id.as_bytes(), &plain)?;
    let mut map = serde_json::Map::with_capacity(1);
    map.insert(
        SEALED_KEY.to_owned(),
        Value::String(base64::encode(&sealed)),
    );
    Ok(Value::Object(map))
}

/// Opens a payload of run `run_id` sealed by [`seal_json`]; a value that is not sealed is
/// returned as it is.
///
/// # Errors
/// As [`PayloadCodec::decode`], or [`SealError::Malformed`] for a sealed form that is not
/// base64 or does not open to JSON.
pub fn open_json(
    codec: &dyn PayloadCodec,
    run_id: &str,
    value: &Value,
) -> Result<Value, SealError> {
    let text = match value {
        Value::Object(map) if map.len() == 1 => match map.get(SEALED_KEY) {
            Some(Value::String(text)) => text,
            _ => return Ok(value.clone()),
        },
        _ => return Ok(value.clone()),
    };
    let sealed = base64::decode(text).ok_or_else(|| SealError::Malformed {
        reason: "it is not base64".to_owned(),
    })?;
    let plain = codec.decode(run_id.as_bytes(), &sealed)?;
    serde_json::from_slice(&plain).map_err(|e| SealError::Malformed {
        reason: format!("it opens to bytes that are not JSON: {e}"),
    })
}

/// Whether a payload is in the sealed form.
fn is_sealed(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.len() == 1 && map.contains_key(SEALED_KEY))
}

/// Applies the codec to everything a run stores. Always installed: without a codec it only
/// refuses sealed payloads, so that a store written with a codec is never read as plain data.
pub(crate) struct PayloadStore {
    inner: Arc<dyn Store>,
    codec: Option<Arc<dyn PayloadCodec>>,
}

impl PayloadStore {
    pub(crate) fn new(inner: Arc<dyn Store>, codec: Option<Arc<dyn PayloadCodec>>) -> Self {
        Self { inner, codec }
    }

    fn sealer<'a>(&'a self, run_id: &'a str) -> Sealer<'a> {
        Sealer {
            codec: self.codec.as_deref(),
            run_id,
        }
    }

    /// Opens the metadata of each wait, each with its own run's keys.
    fn open_waits(&self, mut waits: Vec<PendingWait>) -> Result<Vec<PendingWait>, StoreError> {
        for wait in &mut waits {
            let run_id = std::mem::take(&mut wait.run_id);
            let opened = self
                .sealer(&run_id)
                .open_value(&mut wait.metadata, "the wait metadata");
            wait.run_id = run_id;
            opened?;
        }
        Ok(waits)
    }
}

/// Seals or opens the payloads of one run.
struct Sealer<'a> {
    codec: Option<&'a dyn PayloadCodec>,
    run_id: &'a str,
}

impl Sealer<'_> {
    fn error(&self, what: &str, source: SealError) -> StoreError {
        StoreError::Sealed {
            what: format!("{what} of run `{}`", self.run_id),
            source,
        }
    }

    fn seal_value(&self, value: &mut Value, what: &str) -> Result<(), StoreError> {
        let Some(codec) = self.codec else {
            return Ok(());
        };
        *value = seal_json(codec, self.run_id, value).map_err(|e| self.error(what, e))?;
        Ok(())
    }

    fn open_value(&self, value: &mut Value, what: &str) -> Result<(), StoreError> {
        if !is_sealed(value) {
            return Ok(());
        }
        let codec = self
            .codec
            .ok_or_else(|| self.error(what, SealError::NoCodec))?;
        *value = open_json(codec, self.run_id, value).map_err(|e| self.error(what, e))?;
        Ok(())
    }

    fn open_bytes(&self, text: &str, what: &str) -> Result<Vec<u8>, StoreError> {
        let codec = self
            .codec
            .ok_or_else(|| self.error(what, SealError::NoCodec))?;
        let sealed = base64::decode(text).ok_or_else(|| {
            self.error(
                what,
                SealError::Malformed {
                    reason: "it is not base64".to_owned(),
                },
            )
        })?;
        codec
            .decode(self.run_id.as_bytes(), &sealed)
            .map_err(|e| self.error(what, e))
    }

    fn seal_text(&self, text: &mut String, what: &str) -> Result<(), StoreError> {
        let Some(codec) = self.codec else {
            return Ok(());
        };
        let sealed = codec
            .encode(self.run_id.as_bytes(), text.as_bytes())
            .map_err(|e| self.error(what, e))?;
        *text = format!("{SEALED_TEXT}{}", base64::encode(&sealed));
        Ok(())
    }

    fn open_text(&self, text: &mut String, what: &str) -> Result<(), StoreError> {
        let Some(body) = text.strip_prefix(SEALED_TEXT) else {
            return Ok(());
        };
        let plain = self.open_bytes(body, what)?;
        *text = String::from_utf8(plain).map_err(|_| {
            self.error(
                what,
                SealError::Malformed {
                    reason: "it opens to a text that is not UTF-8".to_owned(),
                },
            )
        })?;
        Ok(())
    }

    /// Applies `value` and `text` to every payload of a record.
    fn record(
        &self,
        rec: &mut RunRecord,
        state: fn(&Self, &mut StoredState) -> Result<(), StoreError>,
        value: fn(&Self, &mut Value, &str) -> Result<(), StoreError>,
        text: fn(&Self, &mut String, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        state(self, &mut rec.state)?;
        if let Some(output) = &mut rec.output {
            value(self, output, "the output")?;
        }
        for cmd in [&mut rec.pending, &mut rec.ended_at].into_iter().flatten() {
            match cmd {
                Command::Step { input, .. } => value(self, input, "the step input")?,
                Command::Wait { metadata, .. } => value(self, metadata, "the wait metadata")?,
                Command::Sleep { .. } => {}
                Command::Batch { items, .. } => {
                    for item in items {
                        value(self, &mut item.input, "a batch step input")?;
                        if let Some(Ok(output)) = &mut item.result {
                            value(self, output, "a batch step output")?;
                        }
                    }
                }
                Command::Children { items, .. } => {
                    for item in items {
                        value(self, &mut item.input, "a child's input")?;
                        if let Some(Ok(output)) = &mut item.result {
                            value(self, output, "a child's output")?;
                        }
                    }
                }
            }
        }
        match &mut rec.status {
            RunStatus::Failed { message } => text(self, message, "the failure message")?,
            RunStatus::Incompatible { reason }
            | RunStatus::Cancelled { reason }
            | RunStatus::Terminated { reason } => text(self, reason, "the status reason")?,
            _ => {}
        }
        if let Some(cancel) = &mut rec.cancel {
            text(self, &mut cancel.reason, "the cancellation reason")?;
        }
        Ok(())
    }

    fn event(
        &self,
        event: &mut TraceEvent,
        value: fn(&Self, &mut Value, &str) -> Result<(), StoreError>,
        text: fn(&Self, &mut String, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for payload in event.kind.payloads_mut() {
            value(self, payload, "a trace payload")?;
        }
        for t in event.kind.texts_mut() {
            text(self, t, "a trace message")?;
        }
        Ok(())
    }

    /// Seals a run's state, kept as its JSON text: parsed only when there is a codec.
    fn seal_state(&self, state: &mut StoredState) -> Result<(), StoreError> {
        if self.codec.is_none() {
            return Ok(());
        }
        let mut value = state.to_value();
        self.seal_value(&mut value, "the state")?;
        *state = StoredState::from(value);
        Ok(())
    }

    /// Opens a run's state: parsed only when its text names the sealed form's key at all,
    /// and replaced only when it is the sealed form.
    fn open_state(&self, state: &mut StoredState) -> Result<(), StoreError> {
        if !state.as_str().contains(SEALED_KEY) {
            return Ok(());
        }
        let mut value = state.to_value();
        if !is_sealed(&value) {
            return Ok(());
        }
        self.open_value(&mut value, "the state")?;
        *state = StoredState::from(value);
        Ok(())
    }

    fn seal_record(&self, rec: &mut RunRecord) -> Result<(), StoreError> {
        self.record(rec, Self::seal_state, Self::seal_value, Self::seal_text)
    }

    fn open_record(&self, rec: &mut RunRecord) -> Result<(), StoreError> {
        self.record(rec, Self::open_state, Self::open_value, Self::open_text)
    }

    fn seal_event(&self, event: &mut TraceEvent) -> Result<(), StoreError> {
        self.event(event, Self::seal_value, Self::seal_text)
    }

    fn open_event(&self, event: &mut TraceEvent) -> Result<(), StoreError> {
        self.event(event, Self::open_value, Self::open_text)
    }
}

impl Store for PayloadStore {
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let mut rec = self.inner.run(run_id)?;
        if let Some(rec) = &mut rec {
            self.sealer(run_id).open_record(rec)?;
        }
        Ok(rec)
    }

    fn runs(&self) -> Result<Vec<(String, RunRecord)>, StoreError> {
        let mut runs = self.inner.runs()?;
        for (run_id, rec) in &mut runs {
            self.sealer(run_id).open_record(rec)?;
        }
        Ok(runs)
    }

    fn inbox(&self, run_id: &str) -> Result<Vec<(u64, InboxEntry)>, StoreError> {
        let mut inbox = self.inner.inbox(run_id)?;
        let sealer = self.sealer(run_id);
        for (_, entry) in &mut inbox {
            sealer.open_value(&mut entry.payload, "a buffered signal")?;
        }
        Ok(inbox)
    }

    fn has_dedupe(&self, run_id: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.has_dedupe(run_id, key)
    }

    fn dedupe_keys(&self, run_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.dedupe_keys(run_id)
    }

    fn trace(&self, run_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        let mut trace = self.inner.trace(run_id)?;
        let sealer = self.sealer(run_id);
        for event in &mut trace {
            sealer.open_event(event)?;
        }
        Ok(trace)
    }

    fn last_trace(&self, run_id: &str) -> Result<Option<TraceEvent>, StoreError> {
        let mut last = self.inner.last_trace(run_id)?;
        if let Some(event) = &mut last {
            self.sealer(run_id).open_event(event)?;
        }
        Ok(last)
    }

    fn pending_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        self.open_waits(self.inner.pending_waits()?)
    }

    fn signalled_waits(&self) -> Result<Vec<PendingWait>, StoreError> {
        // Signal names are not sealed: the inner store matches them as they are.
        self.open_waits(self.inner.signalled_waits()?)
    }

    fn probe_writes(&self) -> Acknowledgement {
        self.inner.probe_writes()
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch()
    }

    fn ready(&self) -> Result<Vec<ReadyEntry>, StoreError> {
        self.inner.ready()
    }

    fn timers(&self, due_by_ms: u64) -> Result<Vec<ArmedTimer>, StoreError> {
        self.inner.timers(due_by_ms)
    }

    fn timers_page(
        &self,
        after: Option<(u64, &str)>,
        due_by_ms: u64,
        limit: usize,
    ) -> Result<Vec<ArmedTimer>, StoreError> {
        self.inner.timers_page(after, due_by_ms, limit)
    }

    fn claim_ready(&self, claim: &Claim<'_>) -> Result<Vec<ReadyRun>, StoreError> {
        self.inner.claim_ready(claim)
    }

    fn claim_timers(&self, claim: &Claim<'_>, due_by_ms: u64) -> Result<Vec<DueTimer>, StoreError> {
        self.inner.claim_timers(claim, due_by_ms)
    }

    fn renew(&self, lease: &Lease, now_ms: u64, lease_ms: u64) -> Result<Lease, StoreError> {
        self.inner.renew(lease, now_ms, lease_ms)
    }

    fn renew_all(
        &self,
        leases: &[Lease],
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Vec<Result<Lease, StoreError>>, StoreError> {
        self.inner.renew_all(leases, now_ms, lease_ms)
    }

    fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release(lease)
    }

    fn defer(&self, lease: &Lease, not_before_ms: u64) -> Result<(), StoreError> {
        self.inner.defer(lease, not_before_ms)
    }

    fn claim_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.inner.claim_run(claim, run_id)
    }

    fn lease_new_run(&self, claim: &Claim<'_>, run_id: &str) -> Result<Option<Lease>, StoreError> {
        self.inner.lease_new_run(claim, run_id)
    }

    fn announce(&self, run_id: &str) -> Result<(), StoreError> {
        self.inner.announce(run_id)
    }

    fn wait_for_work(&self, poll: std::time::Duration) -> crate::store::WorkWait<'_> {
        self.inner.wait_for_work(poll)
    }

    fn commit(&self, mut checkpoint: CheckpointWrite) -> Acknowledgement {
        if self.codec.is_some() {
            let run_id = std::mem::take(&mut checkpoint.run_id);
            let sealed = seal_checkpoint(&self.sealer(&run_id), &mut checkpoint);
            checkpoint.run_id = run_id;
            if let Err(e) = sealed {
                return Acknowledgement::ready(Err(e));
            }
        }
        self.inner.commit(checkpoint)
    }

    fn commit_count(&self) -> u64 {
        self.inner.commit_count()
    }

    fn close(&self) -> Acknowledgement {
        self.inner.close()
    }

    fn close_blocking(&self) {
        self.inner.close_blocking();
    }
}

fn seal_checkpoint(sealer: &Sealer<'_>, cp: &mut CheckpointWrite) -> Result<(), StoreError> {
    if let Some(write) = &mut cp.run {
        sealer.seal_record(&mut write.record)?;
    }
    if let Some(entry) = &mut cp.buffer {
        sealer.seal_value(&mut entry.payload, "a buffered signal")?;
    }
    for event in &mut cp.trace {
        sealer.seal_event(event)?;
    }
    Ok(())
}

/// Standard base64 with padding; small enough not to be worth a dependency.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    const INVALID: u8 = 0xff;
    /// Each byte's value in the alphabet, or `INVALID`.
    const DECODE: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut i = 0;
        while i < 64 {
            table[ALPHABET[i] as usize] = i as u8;
            i += 1;
        }
        table
    };

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
        for (i, chunk) in bytes.chunks(4).enumerate() {
            let last = i + 1 == bytes.len() / 4;
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last) {
                return None;
            }
            let mut n = 0u32;
            for &c in &chunk[..4 - pad] {
                let v = DECODE[usize::from(c)];
                if v == INVALID {
                    return None;
                }
                n = (n << 6) | u32::from(v);
            }
            n <<= 6 * pad as u32;
            let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&full[..3 - pad]);
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_every_length() {
            for len in 0..40u8 {
                let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(97)).collect();
                let text = super::encode(&bytes);
                assert_eq!(super::decode(&text).as_deref(), Some(bytes.as_slice()));
            }
            assert_eq!(super::encode(b"foobar"), "Zm9vYmFy");
            assert_eq!(super::encode(b"fo"), "Zm8=");
            assert_eq!(super::decode("Zm9=Zm9v"), None);
            assert_eq!(super::decode("Zm9"), None);
        }
    }
}

#[cfg(feature = "encryption")]
pub use self::chacha::ChaChaCodec;

#[cfg(feature = "encryption")]
mod chacha {
    use std::collections::BTreeMap;

    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

    use super::{PayloadCodec, SealError};

    /// The first byte of every payload this codec seals: its layout's version.
    const VERSION: u8 = 1;
    const NONCE_LEN: usize = 24;

    /// XChaCha20-Poly1305 under keys identified by id (crate feature `encryption`).
    ///
    /// A sealed payload is `version (1) | key id length (1) | key id | nonce (24) | ciphertext
    /// with its 16-byte tag`, the run id as associated data. The key id is stored in clear so
    /// that an engine knows which of its keys opens a payload; it must not itself be secret.
    ///
    /// ```
    /// use workflow_runtime::payload::{ChaChaCodec, PayloadCodec, SealError};
    ///
    /// let old = ChaChaCodec::new("2026-01", [7; 32]);
    /// let sealed = old.encode(b"run-1", b"4242").unwrap();
    /// // Rotated: new payloads use 2026-06; payloads of 2026-01 still open.
    /// let rotated = ChaChaCodec::new("2026-06", [9; 32]).with_old_key("2026-01", [7; 32]);
    /// assert_eq!(rotated.decode(b"run-1", &sealed).unwrap(), b"4242");
    /// // Without the old key: a clear error, never a wrong value.
    /// let forgetful = ChaChaCodec::new("2026-06", [9; 32]);
    /// assert!(matches!(forgetful.decode(b"run-1", &sealed), Err(SealError::UnknownKey { .. })));
    /// ```
    #[derive(Clone)]
    pub struct ChaChaCodec {
        current: String,
        keys: BTreeMap<String, XChaCha20Poly1305>,
    }

    /// Shows the key ids, never the keys.
    impl std::fmt::Debug for ChaChaCodec {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ChaChaCodec")
                .field("current", &self.current)
                .field("keys", &self.keys.keys().collect::<Vec<_>>())
                .finish()
        }
    }

    impl ChaChaCodec {
        /// A codec that seals with `key` under the id `key_id` (at most 255 bytes; an id
        /// such as a date or a number, never derived from the key).
        ///
        /// # Panics
        /// If `key_id` is empty or longer than 255 bytes.
        pub fn new(key_id: impl Into<String>, key: [u8; 32]) -> Self {
            let current = key_id.into();
            assert!(
                !current.is_empty() && current.len() <= 255,
                "a key id is 1 to 255 bytes long, `{current}` is not"
            );
            let mut keys = BTreeMap::new();
            keys.insert(current.clone(), XChaCha20Poly1305::new(&Key::from(key)));
            Self { current, keys }
        }

        /// Also opens payloads sealed under an earlier key; new payloads still use the current
        /// key. Keep an old key while runs or traces sealed with it are stored.
        ///
        /// # Panics
        /// If `key_id` is the current key's id, or is empty or longer than 255 bytes.
        #[must_use]
        pub fn with_old_key(mut self, key_id: impl Into<String>, key: [u8; 32]) -> Self {
            let id = key_id.into();
            assert!(
                !id.is_empty() && id.len() <= 255,
                "a key id is 1 to 255 bytes long, `{id}` is not"
            );
            assert!(
                id != self.current,
                "`{id}` is the current key's id; an old key needs an id of its own"
            );
            self.keys
                .insert(id, XChaCha20Poly1305::new(&Key::from(key)));
            self
        }

        /// A 32-byte key from 64 hexadecimal digits (as kept in an environment variable or a
        /// secret manager); `None` if `hex` is not that.
        pub fn key_from_hex(hex: &str) -> Option<[u8; 32]> {
            let hex = hex.trim().as_bytes();
            if hex.len() != 64 {
                return None;
            }
            let mut key = [0u8; 32];
            for (i, pair) in hex.chunks(2).enumerate() {
                let text = std::str::from_utf8(pair).ok()?;
                key[i] = u8::from_str_radix(text, 16).ok()?;
            }
            Some(key)
        }

        /// The id new payloads are sealed with.
        pub fn current_key_id(&self) -> &str {
            &self.current
        }
    }

    impl PayloadCodec for ChaChaCodec {
        fn encode(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
            let cipher = &self.keys[&self.current];
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::fill(&mut nonce).map_err(|e| SealError::Failed {
                reason: format!("the system's random source failed: {e}"),
            })?;
            let sealed = cipher
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: plain,
                        aad: context,
                    },
                )
                .map_err(|_| SealError::Failed {
                    reason: "the cipher refused the payload (too large)".to_owned(),
                })?;
            let id = self.current.as_bytes();
            let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
            out.push(VERSION);
            // At most 255 bytes, checked when the key was given.
            out.push(id.len() as u8);
            out.extend_from_slice(id);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
            Ok(out)
        }

        fn decode(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
            let malformed = |reason: &str| SealError::Malformed {
                reason: reason.to_owned(),
            };
            let (&version, rest) = sealed
                .split_first()
                .ok_or_else(|| malformed("it is empty"))?;
            if version != VERSION {
                return Err(malformed(&format!(
                    "its layout version is {version}, this codec reads {VERSION}"
                )));
            }
            let (&id_len, rest) = rest
                .split_first()
                .ok_or_else(|| malformed("it is cut short"))?;
            let id_len = usize::from(id_len);
            if rest.len() < id_len + NONCE_LEN {
                return Err(malformed("it is cut short"));
            }
            let (id, rest) = rest.split_at(id_len);
            let key_id = String::from_utf8_lossy(id).into_owned();
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            let cipher = self
                .keys
                .get(&key_id)
                .ok_or_else(|| SealError::UnknownKey {
                    key_id: key_id.clone(),
                })?;
            let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| malformed("bad nonce"))?;
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: context,
                    },
                )
                .map_err(|_| SealError::Rejected { key_id })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_payload_opens_only_with_its_key_and_its_run() {
            let codec = ChaChaCodec::new("k1", [1; 32]);
            let sealed = codec.encode(b"run-a", b"secret").unwrap();
            assert!(!sealed.windows(6).any(|w| w == b"secret"));
            assert_eq!(codec.decode(b"run-a", &sealed).unwrap(), b"secret");
            assert_eq!(
                codec.decode(b"run-b", &sealed),
                Err(SealError::Rejected {
                    key_id: "k1".into()
                })
            );
            let impostor = ChaChaCodec::new("k1", [2; 32]);
            assert_eq!(
                impostor.decode(b"run-a", &sealed),
                Err(SealError::Rejected {
                    key_id: "k1".into()
                })
            );
            let mut flipped = sealed.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert!(matches!(
                codec.decode(b"run-a", &flipped),
                Err(SealError::Rejected { .. })
            ));
            assert!(matches!(
                codec.decode(b"run-a", &sealed[..10]),
                Err(SealError::Malformed { .. })
            ));
            // A fresh nonce each time: the same payload never seals to the same bytes.
            assert_ne!(codec.encode(b"run-a", b"secret").unwrap(), sealed);
        }

        #[test]
        fn hex_keys_parse() {
            let hex = "00".repeat(31) + "ff";
            assert_eq!(ChaChaCodec::key_from_hex(&hex).unwrap()[31], 255);
            assert!(ChaChaCodec::key_from_hex("abc").is_none());
            assert!(ChaChaCodec::key_from_hex(&"zz".repeat(32)).is_none());
        }
    }
}
