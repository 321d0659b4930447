//! Strict checks of one webhook's JSON beyond syntax: no duplicate keys, a bounded depth, and
//! strings that decode to Unicode (no lone surrogate escapes).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting of objects and arrays a webhook may have; the object itself is depth 1.
pub const MAX_JSON_DEPTH: usize = 64;

/// Checks `text`, which must be one JSON value. The error names the problem and where it is.
pub fn check_json(text: &str) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Checked { depth: 1 }
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())
}

/// Visits a value at `depth`, failing on duplicate keys, excess depth and undecodable strings.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

impl Checked {
    /// The seed for the members of the object or array being visited.
    fn members<E: de::Error>(self) -> Result<Checked, E> {
        if self.depth > MAX_JSON_DEPTH {
            return Err(E::custom(format_args!(
                "nesting deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        Ok(Checked {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    // serde_json hands strings over decoded, which fails on lone surrogate escapes.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let element = self.members()?;
        while seq.next_element_seed(element)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            // With `arbitrary_precision`, serde_json presents a number as a one-entry map under
            // this key, so numbers of any size and precision pass unparsed.
            if keys.is_empty() && key == NUMBER_TOKEN {
                let digits: Cow<'de, str> = map.next_value()?;
                return match map.next_key::<Cow<'de, str>>()? {
                    None => Ok(()),
                    Some(_) => Err(de::Error::custom(format_args!(
                        "invalid use of the key {NUMBER_TOKEN:?} ({digits})"
                    ))),
                };
            }
            if keys.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            map.next_value_seed(self.members()?)?;
            keys.push(key);
        }
        Ok(())
    }
}

/// The key serde_json's `arbitrary_precision` feature uses for numbers.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_json_passes() {
        assert_eq!(
            check_json(
                r#"{"a":[1,{"b":"\u00e9\ud83d\ude00"}],"c":null,"d":1e400,"e":123456789012345678901234567890}"#
            ),
            Ok(())
        );
    }

    #[test]
    fn duplicate_keys_rejected_at_any_depth() {
        assert!(
            check_json(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .contains("duplicate key \"a\"")
        );
        assert!(
            check_json(r#"{"x":{"b":1,"b":1}}"#)
                .unwrap_err()
                .contains("duplicate key")
        );
        assert!(
            check_json(r#"{"a":1,"\u0061":2}"#)
                .unwrap_err()
                .contains("duplicate key")
        );
    }

    #[test]
    fn lone_surrogates_rejected() {
        assert!(check_json(r#"{"a":"\ud800"}"#).is_err());
        assert!(check_json(r#"{"\udc00":1}"#).is_err());
    }

    #[test]
    fn depth_limit_enforced() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(check_json(&nested(MAX_JSON_DEPTH)), Ok(()));
        let innermost_number = format!(
            "{}1{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert_eq!(check_json(&innermost_number), Ok(()));
        assert!(
            check_json(&nested(MAX_JSON_DEPTH + 1))
                .unwrap_err()
                .contains("nesting deeper")
        );
    }
}
