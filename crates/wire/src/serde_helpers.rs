//! Lenient decoding helpers shared by the reply types.

use serde::{Deserialize, Deserializer, de::Error as _};

/// Decodes a `u64` written as a JSON integer (op-node's refs), a `0x` hex quantity (op-geth's
/// style) or a decimal string. Different node versions and proxies have used each of them.
pub(crate) fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
        Null(()),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Int(value) => Ok(value),
        Raw::Null(()) => Ok(0),
        Raw::Text(text) => parse_u64_text(&text).map_err(D::Error::custom),
    }
}

/// Parses `0x`-prefixed hex or plain decimal text into a `u64`.
pub(crate) fn parse_u64_text(text: &str) -> Result<u64, String> {
    // from_str_radix and parse accept a leading '+'; no node writes one.
    if text.contains('+') {
        return Err(format!("invalid number {text:?}: sign not allowed"));
    }
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16),
        Some(_) => return Err(format!("empty hex quantity {text:?}")),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|err| format!("invalid number {text:?}: {err}"))
}

/// Treats an explicit JSON `null` like a missing key: the type's default.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Like [`null_default`], but only a JSON object (or `null`) is accepted: serde's derived
/// deserializers would otherwise also take an array and fill it positionally, turning a broken
/// reply into a plausible all-zero ref.
pub(crate) fn object_or_null<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)? {
        None => Ok(T::default()),
        Some(object) => serde_json::from_value(serde_json::Value::Object(object)).map_err(D::Error::custom),
    }
}
