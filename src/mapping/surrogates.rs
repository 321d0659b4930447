//! Detects `\uD800`-style escapes that are not part of a surrogate pair.
//!
//! serde_json checks such escapes only when it decodes a string, and raw values are never
//! decoded, so valid-looking JSON can still carry text that is not Unicode. Segment and most
//! JSON tools reject it.

/// Returns the byte position of the first lone surrogate escape in `json`, which must already be
/// valid JSON (outside strings a backslash cannot occur).
pub fn find_lone_surrogate(json: &str) -> Option<usize> {
    let bytes = json.as_bytes();
    let mut position = 0;
    while let Some(offset) = bytes[position..].iter().position(|&b| b == b'\\') {
        let start = position + offset;
        let &escaped = bytes.get(start + 1)?;
        if escaped != b'u' {
            position = start + 2;
            continue;
        }

        let unit = hex_unit(bytes, start + 2)?;
        match unit {
            0xD800..=0xDBFF => {
                let pairs = bytes.get(start + 6..start + 8) == Some(b"\\u".as_slice())
                    && matches!(hex_unit(bytes, start + 8), Some(0xDC00..=0xDFFF));
                if !pairs {
                    return Some(start);
                }
                position = start + 12;
            }
            0xDC00..=0xDFFF => return Some(start),
            _ => position = start + 6,
        }
    }
    None
}

fn hex_unit(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_found() {
        assert_eq!(find_lone_surrogate(r#"{"a":"\ud800"}"#), Some(6));
        assert_eq!(find_lone_surrogate(r#"{"a":"x\uDC00"}"#), Some(7));
        assert_eq!(find_lone_surrogate(r#"{"a":"\ud800\u0041"}"#), Some(6));
        assert_eq!(find_lone_surrogate(r#"{"a":"\ud800\\ud800"}"#), Some(6));
    }

    #[test]
    fn valid_escapes_pass() {
        assert_eq!(
            find_lone_surrogate(r#"{"a":"\ud83d\ude00 \u00e9 \\ud800 \" \n"}"#),
            None
        );
        assert_eq!(find_lone_surrogate(r#"{"a":"plain"}"#), None);
    }
}
