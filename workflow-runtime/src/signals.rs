//! Waiting on several signals: which enum variant stands for which signal name.
//!
//! `ctx.wait_for_any::<T>(["approve", "reject"], ..)` delivers the first of the named signals
//! as `{ name: payload }`, the form serde gives an externally tagged enum. The names are
//! checked against `T`'s variants here, by asking `T`'s `Deserialize` impl for them: serde
//! passes an enum's variant names (after `rename`/`rename_all`) to `deserialize_enum`.

use serde::de::{self, DeserializeOwned, Visitor};

/// Why the names of a wait on several signals do not fit the type it decodes into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VariantsError {
    /// The type does not deserialize as an externally tagged enum.
    #[error(
        "`wait_for_any::<{ty}>` needs an enum whose variants stand for the signals (serde's default, \
         externally tagged representation); `{ty}` does not deserialize as one"
    )]
    NotAnEnum {
        /// The type's name.
        ty: &'static str,
    },
    /// A name has no variant.
    #[error(
        "`wait_for_any::<{ty}>` waits for signal `{signal}`, but `{ty}` has no variant named \
         `{signal}` (its variants, as serde names them: {variants:?}); add one, or \
         `#[serde(rename = \"{signal}\")]` an existing one"
    )]
    NoVariant {
        /// The type's name.
        ty: &'static str,
        /// The signal without a variant.
        signal: String,
        /// The variants serde knows.
        variants: Vec<&'static str>,
    },
}

/// The variant names of `T` as serde spells them, if `T` deserializes as an enum.
pub(crate) fn variants<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut found = None;
    // The probe always fails; what matters is what it saw on the way.
    let _ = T::deserialize(Probe(&mut found));
    found
}

/// Checks that every name in `names` is a variant of `T`.
pub(crate) fn check_variants<T: DeserializeOwned>(names: &[&str]) -> Result<(), VariantsError> {
    let ty = std::any::type_name::<T>();
    let Some(known) = variants::<T>() else {
        return Err(VariantsError::NotAnEnum { ty });
    };
    match names.iter().find(|n| !known.contains(n)) {
        None => Ok(()),
        Some(missing) => Err(VariantsError::NoVariant {
            ty,
            signal: (*missing).to_owned(),
            variants: known.to_vec(),
        }),
    }
}

struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(variants);
        Err(de::Error::custom("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Review {
        Approve(u64),
        Reject { reason: String },
        Cancel,
    }

    #[test]
    fn variants_are_read_as_serde_names_them() {
        assert_eq!(
            variants::<Review>(),
            Some(&["approve", "reject", "cancel"][..])
        );
        assert_eq!(variants::<u64>(), None);
    }

    #[test]
    fn a_name_without_a_variant_is_refused() {
        assert!(check_variants::<Review>(&["approve", "cancel"]).is_ok());
        let e = check_variants::<Review>(&["approve", "escalate"]).unwrap_err();
        assert!(e.to_string().contains("no variant named `escalate`"), "{e}");
        let e = check_variants::<String>(&["approve"]).unwrap_err();
        assert!(matches!(e, VariantsError::NotAnEnum { .. }));
    }

    #[test]
    fn a_tagged_payload_decodes_into_the_variant() {
        let v: Review = serde_json::from_value(serde_json::json!({ "cancel": null })).unwrap();
        assert!(matches!(v, Review::Cancel));
        let v: Review = serde_json::from_value(serde_json::json!({ "approve": 40 })).unwrap();
        assert!(matches!(v, Review::Approve(40)));
    }
}
