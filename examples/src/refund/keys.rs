//! Encryption at rest for the worker's store: the key comes from the environment.
//!
//! `REFUND_REVIEW_STORE_KEY` holds the current key as 64 hex digits, under the id in
//! `REFUND_REVIEW_STORE_KEY_ID` (default `store-1`). To rotate, give the new key and id there
//! and the old one in `REFUND_REVIEW_STORE_OLD_KEYS` as `id=hex` (comma-separated): reviews
//! parked under the old key still open, new checkpoints use the new one. Without a key the
//! store is not encrypted; the customer's personal fields are redacted from traces either way.

use workflow_runtime::payload::ChaChaCodec;

/// The current key, 64 hex digits.
pub const KEY_ENV: &str = "REFUND_REVIEW_STORE_KEY";
/// The current key's id.
pub const KEY_ID_ENV: &str = "REFUND_REVIEW_STORE_KEY_ID";
/// Earlier keys, `id=hex,id=hex`.
pub const OLD_KEYS_ENV: &str = "REFUND_REVIEW_STORE_OLD_KEYS";

/// The codec the environment asks for, if any.
///
/// # Errors
/// A message naming the variable that does not hold a key.
pub fn codec_from_env() -> Result<Option<ChaChaCodec>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(hex) = var(KEY_ENV) else {
        return Ok(None);
    };
    let parse = |name: &str, hex: &str| {
        ChaChaCodec::key_from_hex(hex).ok_or_else(|| format!("{name} is not 64 hex digits"))
    };
    let id = var(KEY_ID_ENV).unwrap_or_else(|| "store-1".to_owned());
    if id.len() > 255 {
        return Err(format!("{KEY_ID_ENV} is longer than 255 bytes"));
    }
    let mut codec = ChaChaCodec::new(id.clone(), parse(KEY_ENV, &hex)?);
    for entry in var(OLD_KEYS_ENV).iter().flat_map(|v| v.split(',')) {
        let (old_id, old_hex) = entry
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("{OLD_KEYS_ENV} entries are `id=hex`"))?;
        if old_id.is_empty() || old_id.len() > 255 || old_id == id {
            return Err(format!(
                "{OLD_KEYS_ENV}: `{old_id}` is not a usable id for an old key"
            ));
        }
        codec = codec.with_old_key(old_id, parse(OLD_KEYS_ENV, old_hex)?);
    }
    Ok(Some(codec))
}
