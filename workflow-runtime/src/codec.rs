//! The stored encoding (JSON) and fingerprint hashing, in one place so either can change.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Encodes a value for storage.
pub(crate) fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

/// Decodes a stored value.
pub(crate) fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Converts a typed value to the in-memory JSON form.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(value)
}

/// Converts the in-memory JSON form to a typed value.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(value)
}

/// Decodes a typed value from the in-memory JSON form without taking (or cloning) it.
pub(crate) fn from_value_ref<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(value)
}

/// The size of a value's stored encoding, counted without building it.
pub(crate) fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// FNV-1a, 64 bit: stable across compiler versions and platforms, unlike `DefaultHasher`.
pub const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds a list of fingerprints into one, order-sensitively.
pub const fn mix(mut hash: u64, parts: &[u64]) -> u64 {
    let mut i = 0;
    while i < parts.len() {
        hash = fnv1a(hash, &parts[i].to_le_bytes());
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_counts_the_stored_bytes() {
        let v = serde_json::json!({ "name": "réclamation", "amounts": [1, 2.5, null], "ok": true });
        assert_eq!(encoded_len(&v), to_bytes(&v).unwrap().len());
    }
}
