//! A string that never shows in logs, errors or `--help` output.

use std::fmt;
use std::str::FromStr;

/// A secret value (write key, webhook key, password). `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_string()))
    }
}

/// Replaces the user name and password of a URL with `***`, so an error never shows them.
pub fn url_without_userinfo(endpoint: &str) -> String {
    let Some(scheme_end) = endpoint.find("://").map(|i| i + 3) else {
        return endpoint.to_string();
    };
    let authority_end = endpoint[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(endpoint.len(), |i| scheme_end + i);
    match endpoint[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &endpoint[..scheme_end],
            &endpoint[scheme_end + at..]
        ),
        None => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_formatting_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn url_without_userinfo_masks_only_the_authority() {
        for (endpoint, expected) in [
            ("http://u:p@c:1/a@b", "http://***@c:1/a@b"),
            ("http://c:1/a@b", "http://c:1/a@b"),
            ("https://token@c", "https://***@c"),
            ("c@d", "c@d"),
        ] {
            assert_eq!(url_without_userinfo(endpoint), expected);
        }
    }
}
