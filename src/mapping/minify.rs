//! Removes the whitespace between JSON tokens, so an event embedding a webhook that was sent
//! pretty-printed still fits on one line (JSON lines output, logs). Strings and numbers are
//! copied byte for byte. The same pass finds lone surrogate escapes, so the mapping reads each
//! webhook's text once after parsing it.

use std::borrow::Cow;

use super::surrogates::{LoneSurrogate, skip_escape};

/// Returns `json`, which must be valid JSON, without whitespace outside strings, or the first
/// lone surrogate escape in it.
pub fn minify(json: &str) -> Result<Cow<'_, str>, LoneSurrogate> {
    let bytes = json.as_bytes();
    let mut first_whitespace = None;
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'"' => position = string_end(bytes, position + 1)?,
            b' ' | b'\t' | b'\n' | b'\r' => {
                first_whitespace.get_or_insert(position);
                position += 1;
            }
            _ => position += 1,
        }
    }

    Ok(match first_whitespace {
        None => Cow::Borrowed(json),
        Some(first) => Cow::Owned(remove_whitespace(json, first)),
    })
}

/// Returns the position after the closing quote of the string whose contents start at `position`.
fn string_end(bytes: &[u8], mut position: usize) -> Result<usize, LoneSurrogate> {
    // Strings hold most of a webhook's bytes, so memchr's vectorized search pays off here.
    while let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[position..]) {
        let found = position + offset;
        if bytes[found] == b'"' {
            return Ok(found + 1);
        }
        position = skip_escape(bytes, found)?;
    }
    Ok(bytes.len())
}

/// Copies `json` without whitespace outside strings, given the position of the first such
/// whitespace byte.
fn remove_whitespace(json: &str, first: usize) -> String {
    let bytes = json.as_bytes();
    let mut output = Vec::with_capacity(bytes.len());
    output.extend_from_slice(&bytes[..first]);
    let mut in_string = false;
    let mut escaped = false;
    for &byte in &bytes[first..] {
        if in_string {
            output.push(byte);
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                output.push(byte);
            }
            _ => output.push(byte),
        }
    }
    // Only ASCII whitespace was removed from valid UTF-8, so the rest is still valid UTF-8.
    String::from_utf8(output).unwrap_or_else(|_| json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_between_tokens_removed() {
        let pretty = "{\n  \"a b\": [1, 2.50e3 ,\t\"x \\\" y\"],\r\n  \"c\" : {}\n}";
        assert_eq!(
            minify(pretty).unwrap(),
            r#"{"a b":[1,2.50e3,"x \" y"],"c":{}}"#
        );
    }

    #[test]
    fn compact_json_borrowed() {
        assert!(matches!(
            minify(r#"{"a":"b c","d":[1,2],"e":"\" \\ \u00e9"}"#),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn lone_surrogate_found_in_same_pass() {
        let cases = [
            (r#"{"a":"\ud800"}"#, 6),
            (r#"{ "a" : "x\uDC00" }"#, 10),
            (r#"{"a":"\ud83d\ude00","b":"\ud800\u0041"}"#, 25),
            (r#"{"\udc00":1}"#, 2),
        ];
        for (json, position) in cases {
            assert_eq!(minify(json), Err(LoneSurrogate { position }), "for {json}");
        }
    }

    #[test]
    fn escaped_backslash_before_u_passes() {
        assert!(minify(r#"{"a":"\\ud800"}"#).is_ok());
    }
}
