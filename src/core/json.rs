//! JSON parsing for source records, stricter than `serde_json::Value`'s:
//! an object that names one key twice is an error.
//!
//! serde_json keeps the last of duplicate keys silently, so
//! `{"customer_id":"a","customer_id":"b"}` would be folded as `b` while
//! another reader of the same topic (keeping the first) sees `a`. A record
//! two readers can read two ways is rejected instead. Building the map with
//! `insert` and looking at what it returns costs nothing extra.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON value, rejecting duplicate object keys.
/// serde_json's own limits still hold (128 levels of nesting; numbers out
/// of f64's range are errors, never infinity).
///
/// # Errors
/// The bytes are not JSON, or an object repeats a key.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Marker of a duplicate-key error, so callers can give it its own code.
pub const DUPLICATE_KEY: &str = "duplicate key";

#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Number::from_f64(x).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(Strict)?;
            if m.insert(key, v).is_some() {
                return Err(A::Error::custom(DUPLICATE_KEY));
            }
        }
        Ok(Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json_except_duplicate_keys() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
        let err = parse(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap_err();
        assert!(err.to_string().contains(DUPLICATE_KEY), "{err}");
        assert!(parse(br#"{"a":1} x"#).is_err(), "trailing characters");
        assert!(parse(b"1e400").is_err(), "out of range, never infinity");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(deep.as_bytes()).is_err(), "nesting is bounded");
    }
}
