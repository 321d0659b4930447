//! Webhook authentication: HTTP Basic (key as user name, empty password) or Bearer.

use axum::http::{HeaderMap, header};
use base64::Engine;

use crate::secret::Secret;

/// The configured webhook keys; several may be active at once, for rotation.
#[derive(Clone)]
pub struct Authenticator {
    keys: Vec<Secret>,
}

impl Authenticator {
    /// `None` keys means every request is accepted (`--allow-unauthenticated`).
    pub fn new(keys: Vec<Secret>) -> Self {
        Authenticator { keys }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the request carries one of the keys. Every key is compared in constant time.
    pub fn authenticate(&self, headers: &HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(presented) = presented_key(headers) else {
            return false;
        };
        self.keys.iter().fold(false, |matched, key| {
            matched
                | constant_time_eq::constant_time_eq(presented.as_bytes(), key.expose().as_bytes())
        })
    }
}

/// Extracts the key from `Authorization: Basic base64(key:)` or `Authorization: Bearer key`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();

    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return password.is_empty().then(|| user.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(vec![Secret::new("old-key"), Secret::new("new-key")])
    }

    #[test]
    fn basic_with_any_active_key_passes() {
        assert!(authenticator().authenticate(&headers(&basic("old-key:"))));
        assert!(authenticator().authenticate(&headers(&basic("new-key:"))));
    }

    #[test]
    fn bearer_key_passes() {
        assert!(authenticator().authenticate(&headers("Bearer new-key")));
        assert!(authenticator().authenticate(&headers("bearer old-key")));
    }

    #[test]
    fn wrong_or_missing_credentials_fail() {
        let auth = authenticator();
        assert!(!auth.authenticate(&HeaderMap::new()));
        assert!(!auth.authenticate(&headers(&basic("other:"))));
        assert!(!auth.authenticate(&headers(&basic("new-key:password"))));
        assert!(!auth.authenticate(&headers(&basic("new-key"))));
        assert!(!auth.authenticate(&headers("Bearer new-key-2")));
        assert!(!auth.authenticate(&headers("Digest new-key")));
    }
}
