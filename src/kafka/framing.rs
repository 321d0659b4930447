//! The Confluent wire format: magic byte 0, the schema id as 4 big-endian bytes, then the value.
//!
//! A JSON value never starts with byte 0, so framed and plain values tell themselves apart.

const MAGIC: u8 = 0;
const HEADER_BYTES: usize = 5;

/// Prefixes the JSON bytes, unchanged, with the header for `schema_id`.
pub fn frame(schema_id: u32, json: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_BYTES + json.len());
    value.push(MAGIC);
    value.extend_from_slice(&schema_id.to_be_bytes());
    value.extend_from_slice(json);
    value
}

/// A record value as the forwarder reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Plain(&'a [u8]),
    Framed {
        schema_id: u32,
        json: &'a [u8],
    },
    /// Starts with the magic byte but is shorter than the header.
    Truncated,
}

/// Splits a record value into its schema id, when framed, and the JSON bytes.
pub fn unframe(value: &[u8]) -> Value<'_> {
    if value.first() != Some(&MAGIC) {
        return Value::Plain(value);
    }
    let Some((header, json)) = value.split_at_checked(HEADER_BYTES) else {
        return Value::Truncated;
    };
    let schema_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Value::Framed { schema_id, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_value_round_trips() {
        let framed = frame(258, br#"{"type":"a"}"#);
        assert_eq!(&framed[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(
            unframe(&framed),
            Value::Framed {
                schema_id: 258,
                json: br#"{"type":"a"}"#
            }
        );
    }

    #[test]
    fn plain_and_truncated_values() {
        assert_eq!(unframe(b"{}"), Value::Plain(b"{}"));
        assert_eq!(unframe(b""), Value::Plain(b""));
        assert_eq!(unframe(&[0, 0, 1]), Value::Truncated);
    }
}
