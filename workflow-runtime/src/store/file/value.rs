//! The value of a `runs` row (format v2): the run's record and the tail of its trace.
//!
//! A step transition used to write its record into `runs` and its trace events into `trace`,
//! two B-trees per commit. The latest events now ride inside the record's value, so that most
//! transitions write one row, and move to `trace` in bulk once the tail is long (see
//! [`Tail::full`]). Every event in `trace` is older than every event in the tail, so a run's
//! trace reads as its `trace` rows followed by its tail.
//!
//! ```text
//! TAG | record length: u32 LE | record | next trace number: u64 LE | (length: u32 LE | event)*
//! ```
//!
//! The record and the events are encoded as in format v1. A format v1 value is the record
//! alone, as JSON, whose first byte is `{`, never [`TAG`]: it reads as a record with an empty
//! tail whose next trace number is not known here (the `trace` table's next index is). That
//! is why opening a v1 store upgrades it without rewriting a row.

use serde::de::Error as _;

use crate::error::CodecError;
use crate::store::StoreError;

/// The first byte of a v2 value.
const TAG: u8 = 0xB2;

/// How many events the tail holds at most before they move to the `trace` table.
pub(crate) const TAIL_EVENTS: usize = 32;
/// How many bytes of events the tail holds at most (a record and its tail should fit a page).
pub(crate) const TAIL_BYTES: usize = 3 * 1024;

/// A `runs` value, split.
pub(crate) struct Split<'a> {
    /// The encoded record.
    pub(crate) record: &'a [u8],
    /// The number the run's next trace event gets; `None` for a v1 value (ask `trace`).
    pub(crate) next: Option<u64>,
    /// The tail's events, length-prefixed.
    pub(crate) tail: &'a [u8],
}

fn malformed(run_id: &str, why: &str) -> StoreError {
    StoreError::Codec(CodecError::decoding(
        format!("the stored value of run `{run_id}`"),
        serde_json::Error::custom(why),
    ))
}

/// Splits a stored value into its record and tail.
pub(crate) fn split<'a>(run_id: &str, bytes: &'a [u8]) -> Result<Split<'a>, StoreError> {
    if bytes.first() != Some(&TAG) {
        return Ok(Split {
            record: bytes,
            next: None,
            tail: &[],
        });
    }
    let short = || malformed(run_id, "the value ends before its header does");
    let len = u32::from_le_bytes(
        bytes
            .get(1..5)
            .ok_or_else(short)?
            .try_into()
            .expect("4 bytes"),
    );
    let end = 5usize.checked_add(len as usize).ok_or_else(short)?;
    let record = bytes.get(5..end).ok_or_else(short)?;
    let next = u64::from_le_bytes(
        bytes
            .get(end..end + 8)
            .ok_or_else(short)?
            .try_into()
            .expect("8 bytes"),
    );
    Ok(Split {
        record,
        next: Some(next),
        tail: &bytes[end + 8..],
    })
}

/// The encoded events of a tail, oldest first.
pub(crate) fn events<'a>(
    run_id: &'a str,
    mut tail: &'a [u8],
) -> impl Iterator<Item = Result<&'a [u8], StoreError>> + 'a {
    std::iter::from_fn(move || {
        if tail.is_empty() {
            return None;
        }
        let Some((len, rest)) = tail.split_first_chunk::<4>() else {
            tail = &[];
            return Some(Err(malformed(
                run_id,
                "a trace event's length is cut short",
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            tail = &[];
            return Some(Err(malformed(run_id, "a trace event is cut short")));
        }
        let (event, rest) = rest.split_at(len);
        tail = rest;
        Some(Ok(event))
    })
}

/// A run's trace tail as the committer builds it: the events not yet in `trace`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail {
    /// The number the next event gets.
    pub(crate) next: u64,
    /// How many events `bytes` holds.
    pub(crate) count: usize,
    /// The events, length-prefixed.
    pub(crate) bytes: Vec<u8>,
}

impl Tail {
    /// Appends one encoded event, numbered `self.next`.
    #[cfg(test)]
    pub(crate) fn push(&mut self, event: &[u8]) {
        let len = u32::try_from(event.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(event);
        self.count += 1;
        self.next += 1;
    }

    /// Appends one event, numbered `self.next`, encoded straight into the tail: the same bytes
    /// as the [`TraceEvent`](crate::trace::TraceEvent) it is, without an intermediate buffer.
    pub(crate) fn push_event(
        &mut self,
        at_ms: u64,
        checkpoint: u64,
        kind: &crate::trace::TraceKind,
    ) -> Result<(), serde_json::Error> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        if let Err(e) = encode_event(&mut self.bytes, self.next, at_ms, checkpoint, kind) {
            self.bytes.truncate(start);
            return Err(e);
        }
        let len = u32::try_from(self.bytes.len() - start - 4).unwrap_or(u32::MAX);
        self.bytes[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
        self.next += 1;
        Ok(())
    }

    /// Whether the tail has grown past its bounds and moves to `trace`.
    pub(crate) fn full(&self) -> bool {
        self.count > TAIL_EVENTS || self.bytes.len() > TAIL_BYTES
    }

    /// The number of the tail's first event.
    pub(crate) fn first(&self) -> u64 {
        self.next - self.count as u64
    }

    /// Empties the tail, once its events are in `trace`.
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.bytes.clear();
    }
}

/// Appends the JSON of a trace event numbered `seq` to `out`, as `TraceEvent`'s own
/// serialization writes it (its three numbers, then the kind's fields, flattened).
///
/// `#[serde(flatten)]` reaches the kind through serde's generic map adapter, and the event
/// then went through a buffer of its own: together about 500 instructions per event more
/// (callgrind, BENCHMARKS.md, round 5). The kind's own JSON is an object that starts with its
/// tag (an internally tagged enum), so its opening brace becomes the comma after `checkpoint`.
pub(crate) fn encode_event(
    out: &mut Vec<u8>,
    seq: u64,
    at_ms: u64,
    checkpoint: u64,
    kind: &crate::trace::TraceKind,
) -> Result<(), serde_json::Error> {
    use std::io::Write as _;
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"seq\":{seq},\"at_ms\":{at_ms},\"checkpoint\":{checkpoint}"
    );
    let brace = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, kind) {
        out.truncate(start);
        return Err(e);
    }
    match out.get(brace) {
        Some(b'{') if out.len() > brace + 2 => out[brace] = b',',
        // Not an object with a field (never, for a tagged enum): the caller's bytes stay as
        // they were, and the event is encoded the generic way.
        _ => {
            out.truncate(start);
            let event = crate::trace::TraceEvent {
                seq,
                at_ms,
                checkpoint,
                kind: kind.clone(),
            };
            serde_json::to_writer(&mut *out, &event)?;
        }
    }
    Ok(())
}

/// Encodes a value from its record and tail.
pub(crate) fn join(record: &[u8], tail: &Tail) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + record.len() + 8 + tail.bytes.len());
    out.push(TAG);
    out.extend_from_slice(
        &u32::try_from(record.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(record);
    out.extend_from_slice(&tail.next.to_le_bytes());
    out.extend_from_slice(&tail.bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_splits_into_what_was_joined() {
        let mut tail = Tail {
            next: 7,
            ..Tail::default()
        };
        tail.push(b"{\"a\":1}");
        tail.push(b"");
        tail.push(b"{\"b\":2}");
        let value = join(b"{\"record\":true}", &tail);
        let split = split("r", &value).unwrap();
        assert_eq!(split.record, b"{\"record\":true}");
        assert_eq!(split.next, Some(10));
        let events: Vec<&[u8]> = events("r", split.tail).map(Result::unwrap).collect();
        assert_eq!(events, [&b"{\"a\":1}"[..], b"", b"{\"b\":2}"]);
        assert_eq!(tail.first(), 7);
    }

    #[test]
    fn an_event_encoded_into_the_tail_is_the_trace_events_json() {
        use crate::trace::{TraceEvent, TraceKind};
        let kinds = [
            TraceKind::Revived,
            TraceKind::Erased,
            TraceKind::Started {
                workflow: "w \"quoted\"".into(),
                version: 3,
                input: serde_json::json!({"a": [1, 2], "b": null}),
            },
            TraceKind::Completed {
                output: serde_json::json!("done"),
            },
            TraceKind::WaitStarted {
                signal: "approve".into(),
                wait_id: "7".into(),
                deadline_ms: 99,
                metadata: serde_json::json!({}),
            },
        ];
        let mut tail = Tail {
            next: 41,
            ..Tail::default()
        };
        for (i, kind) in kinds.iter().enumerate() {
            let event = TraceEvent {
                seq: 41 + i as u64,
                at_ms: u64::MAX - i as u64,
                checkpoint: i as u64,
                kind: kind.clone(),
            };
            let mut direct = b"prefix".to_vec();
            encode_event(&mut direct, event.seq, event.at_ms, event.checkpoint, kind).unwrap();
            assert_eq!(
                std::str::from_utf8(&direct[6..]).unwrap(),
                serde_json::to_string(&event).unwrap()
            );
            tail.push_event(event.at_ms, event.checkpoint, kind)
                .unwrap();
        }
        let decoded: Vec<TraceEvent> = events("r", &tail.bytes)
            .map(|e| serde_json::from_slice(e.unwrap()).unwrap())
            .collect();
        assert_eq!(decoded.len(), kinds.len());
        assert_eq!(decoded[2].seq, 43);
        assert_eq!(decoded[2].kind, kinds[2]);
        assert_eq!(tail.next, 41 + kinds.len() as u64);
    }

    #[test]
    fn a_format_v1_value_is_a_record_without_a_tail() {
        let split = split("r", b"{\"seq\":3}").unwrap();
        assert_eq!(split.record, b"{\"seq\":3}");
        assert_eq!(split.next, None);
        assert!(split.tail.is_empty());
    }

    #[test]
    fn a_cut_value_is_a_clear_error() {
        let mut tail = Tail::default();
        tail.push(b"{\"a\":1}");
        let value = join(b"{}", &tail);
        let header = 1 + 4 + 2 + 8;
        for cut in (1..value.len()).filter(|&c| c != header) {
            let bytes = &value[..cut];
            let result = split("r", bytes)
                .and_then(|s| events("r", s.tail).collect::<Result<Vec<_>, _>>().map(drop));
            // Cut between the header and an event, a value reads as one with fewer events:
            // redb checksums its pages, so a value is never cut but by a bug.
            let e = result.expect_err("a value cut inside its header or an event is refused");
            assert!(e.to_string().contains("run `r`"), "{e}");
        }
    }
}
