//! A workflow state as a run record holds it: the JSON text it is stored as.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A run's state as stored ([`RunRecord::state`](crate::store::RunRecord::state)): the JSON
/// text of the workflow's state enum, kept as text.
///
/// The engine decodes it once, straight into the workflow's state type, when it drives the
/// run, and encodes the next state straight into text: no JSON tree is built in between.
/// Tools that do not know the type read it as a [`Value`] ([`StoredState::to_value`]).
///
/// Two states compare equal when their JSON values do (so the spacing and the key order a
/// backend stores the text in do not matter), and a state compares with a [`Value`] the same
/// way.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use workflow_runtime::store::StoredState;
/// let state = StoredState::from(json!({ "Waiting": { "amount": 40 } }));
/// assert_eq!(state.as_str(), r#"{"Waiting":{"amount":40}}"#);
/// assert_eq!(state.to_value()["Waiting"]["amount"], 40);
/// assert_eq!(state, json!({ "Waiting": { "amount": 40 } }));
/// ```
#[derive(Clone)]
pub struct StoredState(Box<RawValue>);

impl StoredState {
    /// Encodes a value as a state.
    ///
    /// # Errors
    /// The value's `Serialize` failed, or it is a map with keys that are not text.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::StoredState;
    /// let state = StoredState::encode(&("Start", 3)).unwrap();
    /// assert_eq!(state.as_str(), r#"["Start",3]"#);
    /// ```
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        // `to_raw_value` checks nothing more than `to_string` did: the text is JSON.
        serde_json::value::to_raw_value(value).map(StoredState)
    }

    /// Decodes the state into `T`, straight from its text.
    ///
    /// # Errors
    /// The text does not decode into `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use workflow_runtime::store::StoredState;
    /// let state = StoredState::from(json!([1, 2]));
    /// assert_eq!(state.decode::<Vec<u32>>().unwrap(), vec![1, 2]);
    /// assert!(state.decode::<String>().is_err());
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The state as a JSON value.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use workflow_runtime::store::StoredState;
    /// assert_eq!(StoredState::from(json!("Start")).to_value(), json!("Start"));
    /// ```
    #[must_use]
    pub fn to_value(&self) -> Value {
        // The text was JSON when it was made (encoded by serde_json or parsed by it).
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// The JSON text.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use workflow_runtime::store::StoredState;
    /// assert_eq!(StoredState::from(json!(null)).as_str(), "null");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<Value> for StoredState {
    fn from(value: Value) -> Self {
        Self::from(&value)
    }
}

impl From<&Value> for StoredState {
    fn from(value: &Value) -> Self {
        // A `Value`'s keys are text, so encoding it cannot fail.
        serde_json::value::to_raw_value(value)
            .map(StoredState)
            .unwrap_or_default()
    }
}

/// The state `null`.
impl Default for StoredState {
    fn default() -> Self {
        StoredState(Box::<RawValue>::default())
    }
}

impl PartialEq for StoredState {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for StoredState {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl PartialEq<StoredState> for Value {
    fn eq(&self, other: &StoredState) -> bool {
        other == self
    }
}

impl fmt::Debug for StoredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StoredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StoredState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(StoredState)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_keeps_the_stored_text_byte_for_byte() {
        let text = r#"{"state":{"B":1,"A":[true,null,"é"]},"n":2}"#;
        #[derive(Serialize, Deserialize)]
        struct Rec {
            state: StoredState,
            n: u32,
        }
        let rec: Rec = serde_json::from_str(text).unwrap();
        assert_eq!(rec.state.as_str(), r#"{"B":1,"A":[true,null,"é"]}"#);
        assert_eq!(serde_json::to_string(&rec).unwrap(), text);
        // Through a JSON value and back, as tools that edit records do.
        let value = serde_json::to_value(&rec).unwrap();
        assert_eq!(value["state"]["A"][2], "é");
        let back: Rec = serde_json::from_value(value).unwrap();
        assert_eq!(back.state, json!({ "A": [true, null, "é"], "B": 1 }));
    }

    #[test]
    fn equality_is_of_values_not_of_spelling() {
        let spaced: StoredState = serde_json::from_str(r#"{ "b": 1, "a": 2 }"#).unwrap();
        assert_eq!(spaced, StoredState::from(json!({ "a": 2, "b": 1 })));
        assert_ne!(spaced, StoredState::from(json!({ "a": 2 })));
        assert_eq!(StoredState::default(), json!(null));
    }
}
