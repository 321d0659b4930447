//! Removes the whitespace between JSON tokens, so an event embedding a webhook that was sent
//! pretty-printed still fits on one line (JSON lines output, logs). Strings and numbers are
//! copied byte for byte.

use std::borrow::Cow;

/// Returns `json`, which must be valid JSON, without whitespace outside strings.
pub fn minify(json: &str) -> Cow<'_, str> {
    let bytes = json.as_bytes();
    let Some(first) = first_insignificant_whitespace(bytes) else {
        return Cow::Borrowed(json);
    };

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
    Cow::Owned(String::from_utf8(output).unwrap_or_else(|_| json.to_string()))
}

/// Finds the position of the first whitespace byte outside a string, if any.
fn first_insignificant_whitespace(bytes: &[u8]) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (index, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' => return Some(index),
                b'"' => in_string = true,
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_between_tokens_removed() {
        let pretty = "{\n  \"a b\": [1, 2.50e3 ,\t\"x \\\" y\"],\r\n  \"c\" : {}\n}";
        assert_eq!(minify(pretty), r#"{"a b":[1,2.50e3,"x \" y"],"c":{}}"#);
    }

    #[test]
    fn compact_json_borrowed() {
        assert!(matches!(
            minify(r#"{"a":"b c","d":[1,2]}"#),
            Cow::Borrowed(_)
        ));
    }
}
