//! Writes a JSON number as plain decimal text: `1.5e3` is `1500`, `12.50` is `12.5`.

use std::borrow::Cow;

/// Exponents beyond this keep their text as written, so `1e1000000` cannot become a megabyte.
const MAX_EXPONENT: i64 = 100;

/// Returns `number`, valid JSON number text, without exponent or trailing fraction zeros.
pub fn decimal_text(number: &str) -> Cow<'_, str> {
    if !number.contains(['.', 'e', 'E']) {
        return Cow::Borrowed(number);
    }
    let (sign, unsigned) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => match exponent.parse::<i64>() {
            Ok(exponent) if exponent.abs() <= MAX_EXPONENT => (mantissa, exponent),
            _ => return Cow::Borrowed(number),
        },
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));

    // All digits, and where the decimal point falls among them.
    let digits = format!("{integer}{fraction}");
    let point = integer.len() as i64 + exponent;
    let (whole, fractional) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        let (whole, fractional) = digits.split_at(point as usize);
        (whole.to_string(), fractional.to_string())
    };

    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fractional = fractional.trim_end_matches('0');
    if fractional.is_empty() {
        Cow::Owned(format!("{sign}{whole}"))
    } else {
        Cow::Owned(format!("{sign}{whole}.{fractional}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_plain_decimals() {
        let cases = [
            ("42", "42"),
            ("98765432109876543210", "98765432109876543210"),
            ("1.5e3", "1500"),
            ("1E+2", "100"),
            ("12.50", "12.5"),
            ("12.0", "12"),
            ("-2.5e-3", "-0.0025"),
            ("0.000", "0"),
            ("123e-2", "1.23"),
            ("1e1000", "1e1000"),
        ];
        for (number, expected) in cases {
            assert_eq!(decimal_text(number), expected, "for {number}");
        }
    }
}
