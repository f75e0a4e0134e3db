//! Sensitive values: [`Secret`], kept in a run's state but never shown.
//!
//! # How the redaction works
//!
//! A run's state, its step inputs and outputs and its signals are all one JSON form, produced
//! once by serde; the trace records the same JSON the state holds. Rather than serializing
//! every value twice (once for the state, once redacted for the trace), a [`Secret`] serializes
//! as a marker object, `{"$secret": <value>}`, and every path that shows JSON to people (trace
//! events as they are recorded, the failure message of a run, `Engine::inspect`,
//! `Engine::pending`, `Engine::trace`) rewrites each marker object into the placeholder
//! [`REDACTED`] with [`redact`]. The state keeps the marker with its value, so the workflow
//! still has it after a restart. The rewrite is one walk over values that are already built,
//! on paths that build them anyway; the state itself is not touched.
//!
//! A [`Secret`] also decodes from a bare value, so that marking a field of a type already held
//! in stored states is a compatible change: runs parked by the old code decode, and their next
//! checkpoint stores the marker. The other side of that: a caller that sends JSON without the
//! Rust types (an HTTP client signalling a run) must mark a secret itself,
//! `{"$secret": "4242-..."}`, because a trace records a signal's payload as it was sent.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key of the marker object a [`Secret`] serializes as.
pub const SECRET_KEY: &str = "$secret";

/// What a redacted value shows instead of its content.
pub const REDACTED: &str = "<redacted>";

/// A value the workflow needs but nobody should read in a trace, a log line, an error message
/// or the operations API: a card number, an address, a customer's name.
///
/// It is stored with the run's state (so that the workflow has it after a restart; turn on
/// encryption at rest with [`EngineBuilder::payload_codec`](crate::EngineBuilder::payload_codec)
/// to keep it out of the store file too), and shows as [`REDACTED`] everywhere else: `Debug`
/// and `Display` print the placeholder, and trace events, failure messages and the operations
/// API show it in place of the value.
///
/// ```
/// use workflow_runtime::prelude::*;
///
/// let card = Secret::new("4242-4242-4242-4242".to_owned());
/// assert_eq!(format!("{card:?}"), "Secret(<redacted>)");
/// assert_eq!(card.expose(), "4242-4242-4242-4242");
/// let json = serde_json::to_value(&card).unwrap();
/// assert_eq!(json, json!({ "$secret": "4242-4242-4242-4242" }));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Marks `value` as sensitive.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The value, for the code that needs it (a payment call); keep it out of log lines.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// The value, unmarked.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(SECRET_KEY, &self.0)?;
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = match Value::deserialize(deserializer)? {
            Value::Object(mut map) if map.len() == 1 && map.contains_key(SECRET_KEY) => {
                map.remove(SECRET_KEY).unwrap_or_default()
            }
            // A value stored before the field was marked.
            bare => bare,
        };
        // The inner decoder's message may quote the value ("invalid type: string \"4242..\""),
        // and such a message reaches traces and callers; it is replaced by one that does not.
        T::deserialize(inner).map(Secret).map_err(|_| {
            de::Error::custom(format!(
                "a secret does not decode into `{}` (its value is withheld)",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Replaces every [`Secret`] marker object in `value` with [`REDACTED`], in place.
///
/// ```
/// use workflow_runtime::secret::{REDACTED, redact};
/// use serde_json::json;
///
/// let mut v = json!({ "card": { "$secret": "4242" }, "amount": 500 });
/// redact(&mut v);
/// assert_eq!(v, json!({ "card": REDACTED, "amount": 500 }));
/// ```
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.len() == 1 && map.contains_key(SECRET_KEY) {
                *value = Value::String(REDACTED.to_owned());
            } else {
                map.values_mut().for_each(redact);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Replaces every [`Secret`] marker object in `value` with the value it marks, in place: for
/// JSON that leaves the process on purpose (a request to a payment provider or a language
/// model), never for anything stored or logged.
///
/// ```
/// use workflow_runtime::secret::reveal;
/// use serde_json::json;
///
/// let mut v = json!({ "card": { "$secret": "4242" }, "amount": 500 });
/// reveal(&mut v);
/// assert_eq!(v, json!({ "card": "4242", "amount": 500 }));
/// ```
pub fn reveal(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.len() == 1 && map.contains_key(SECRET_KEY) {
                let inner = map.remove(SECRET_KEY).unwrap_or_default();
                *value = inner;
                reveal(value);
            } else {
                map.values_mut().for_each(reveal);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reveal),
        _ => {}
    }
}

/// A redacted copy of `value`.
pub fn redacted(value: &Value) -> Value {
    let mut copy = value.clone();
    redact(&mut copy);
    copy
}

/// Whether `value` holds a [`Secret`] marker anywhere.
pub fn contains_secret(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            (map.len() == 1 && map.contains_key(SECRET_KEY)) || map.values().any(contains_secret)
        }
        Value::Array(items) => items.iter().any(contains_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Payment {
        card: Secret<String>,
        amount: u64,
    }

    #[test]
    fn a_secret_round_trips_through_the_state_form() {
        let p = Payment {
            card: Secret::new("4242".into()),
            amount: 5,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v, json!({"card": {"$secret": "4242"}, "amount": 5}));
        assert_eq!(serde_json::from_value::<Payment>(v).unwrap(), p);
    }

    #[test]
    fn redaction_replaces_markers_at_any_depth() {
        let mut v = json!([{"a": {"b": {"$secret": {"deep": 1}}}}, {"$secret": 2}, 3]);
        assert!(contains_secret(&v));
        redact(&mut v);
        assert_eq!(v, json!([{"a": {"b": REDACTED}}, REDACTED, 3]));
        assert!(!contains_secret(&v));
    }

    #[test]
    fn a_value_stored_before_it_was_marked_still_decodes() {
        let p: Payment = serde_json::from_value(json!({"card": "4242-9999", "amount": 5})).unwrap();
        assert_eq!(p.card.expose(), "4242-9999");
    }

    #[test]
    fn a_secret_that_does_not_decode_is_not_quoted() {
        for bad in [json!({"$secret": "4242-9999"}), json!("4242-9999")] {
            let e = serde_json::from_value::<Secret<u64>>(bad)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("4242-9999"), "{e}");
            assert!(e.contains("withheld"), "{e}");
        }
    }

    #[test]
    fn debug_and_display_show_the_placeholder() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert_eq!(format!("{:?}", Some(s)), "Some(Secret(<redacted>))");
    }
}
