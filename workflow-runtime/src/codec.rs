//! The stored encoding (JSON) and fingerprint hashing, in one place so either can change.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Encodes a value for storage.
pub(crate) fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

/// Decodes a stored value.
pub(crate) fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Converts a typed value to the in-memory JSON form.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Converts the in-memory JSON form to a typed value.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
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
