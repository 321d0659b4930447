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
    while let Some(offset) = memchr::memchr(b'\\', &bytes[position..]) {
        let start = position + offset;
        match skip_escape(bytes, start) {
            Ok(next) => position = next,
            Err(lone) => return Some(lone.position),
        }
    }
    None
}

/// A `\uD800`-style escape without its other half.
#[derive(Debug, PartialEq, Eq)]
pub struct LoneSurrogate {
    /// Byte position of the escape's backslash.
    pub position: usize,
}

/// Returns the position after the escape that starts with the backslash at `start`, reading a
/// surrogate pair as one escape.
///
/// Valid JSON has no escape cut off by its end, so such an escape only ends the scan.
pub(super) fn skip_escape(bytes: &[u8], start: usize) -> Result<usize, LoneSurrogate> {
    if bytes.get(start + 1) != Some(&b'u') {
        return Ok((start + 2).min(bytes.len()));
    }
    let Some(unit) = hex_unit(bytes, start + 2) else {
        return Ok(bytes.len());
    };

    match unit {
        0xD800..=0xDBFF => {
            let pairs = bytes.get(start + 6..start + 8) == Some(b"\\u".as_slice())
                && matches!(hex_unit(bytes, start + 8), Some(0xDC00..=0xDFFF));
            if pairs {
                Ok(start + 12)
            } else {
                Err(LoneSurrogate { position: start })
            }
        }
        0xDC00..=0xDFFF => Err(LoneSurrogate { position: start }),
        _ => Ok(start + 6),
    }
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
