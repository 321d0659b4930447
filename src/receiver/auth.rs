//! Webhook authentication: HTTP Basic (key as user name, empty password), Bearer, or an
//! HMAC-SHA256 signature of the decoded body. Any one configured method passing is enough.

use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The configured credentials; several keys and secrets may be active at once, for rotation.
#[derive(Clone)]
pub struct Authenticator {
    keys: Vec<Secret>,
    hmac_secrets: Vec<Secret>,
    signature_header: HeaderName,
}

/// `WWW-Authenticate` for webhook keys.
const KEY_CHALLENGE: &str = "Basic realm=\"gwen-segment\", Bearer";

/// The accepted credentials as a 401 response describes them to the sender.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub detail: String,
    pub www_authenticate: String,
}

/// The outcome of checking the headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    Passed,
    /// No key matched, but an HMAC signature header is present: the body decides.
    NeedsSignature,
    Failed,
}

impl Authenticator {
    /// With neither keys nor HMAC secrets, every request is accepted (`--allow-unauthenticated`).
    pub fn new(keys: Vec<Secret>, hmac_secrets: Vec<Secret>, signature_header: HeaderName) -> Self {
        Authenticator {
            keys,
            hmac_secrets,
            signature_header,
        }
    }

    /// An authenticator with keys only, and the default signature header.
    pub fn with_keys(keys: Vec<Secret>) -> Self {
        Authenticator::new(
            keys,
            Vec::new(),
            HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
        )
    }

    /// Describes the accepted credentials for a 401: its detail and its `WWW-Authenticate` value.
    pub fn challenge(&self) -> Challenge {
        let header = self.signature_header.as_str();
        let key =
            "a webhook key as HTTP Basic user name with an empty password, or as a Bearer token";
        let signature = format!("an HMAC-SHA256 signature of the body in the {header} header");
        let (detail, www_authenticate) = match (self.keys.is_empty(), self.hmac_secrets.is_empty())
        {
            (false, true) => (format!("send {key}"), KEY_CHALLENGE.to_string()),
            (true, false) => (
                format!("send {signature}"),
                format!("HMAC-SHA256 header=\"{header}\""),
            ),
            _ => (
                format!("send {key}, or {signature}"),
                format!("{KEY_CHALLENGE}, HMAC-SHA256 header=\"{header}\""),
            ),
        };
        Challenge {
            detail,
            www_authenticate,
        }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.hmac_secrets.is_empty()
    }

    /// Checks the `Authorization` header against the keys, each compared in constant time.
    pub fn check_headers(&self, headers: &HeaderMap) -> HeaderCheck {
        if self.is_open() {
            return HeaderCheck::Passed;
        }
        let key_matches = presented_key(headers).is_some_and(|presented| {
            self.keys.iter().fold(false, |matched, key| {
                matched
                    | constant_time_eq::constant_time_eq(
                        presented.as_bytes(),
                        key.expose().as_bytes(),
                    )
            })
        });
        if key_matches {
            HeaderCheck::Passed
        } else if !self.hmac_secrets.is_empty() && headers.contains_key(&self.signature_header) {
            HeaderCheck::NeedsSignature
        } else {
            HeaderCheck::Failed
        }
    }

    /// True when the signature header contains the HMAC-SHA256 of `body` under one of the secrets,
    /// as hex or base64, with or without a `sha256=` prefix. Verification is constant time.
    pub fn verify_signature(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(signature) = headers
            .get(&self.signature_header)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(signature) = decode_signature(signature) else {
            return false;
        };
        self.hmac_secrets.iter().fold(false, |matched, secret| {
            let verified = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                .map(|mac| mac.chain_update(body).verify_slice(&signature).is_ok())
                .unwrap_or(false);
            matched | verified
        })
    }
}

/// The header carrying HMAC signatures unless `--webhook-signature-header` names another.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-gwen-signature";

/// Decodes a signature given as 64 hex digits or as base64 (standard or URL-safe, padded or
/// not), after an optional `sha256=` prefix.
fn decode_signature(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let text = match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &text[7..],
        _ => text,
    };
    if text.len() == 64
        && let Ok(bytes) = hex::decode(text)
    {
        return Some(bytes);
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .filter(|bytes| bytes.len() == 32)
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
        Authenticator::with_keys(vec![Secret::new("old-key"), Secret::new("new-key")])
    }

    fn passes(auth: &Authenticator, headers: &HeaderMap) -> bool {
        auth.check_headers(headers) == HeaderCheck::Passed
    }

    fn signed(secret: &str, body: &[u8]) -> [u8; 32] {
        Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .unwrap()
            .chain_update(body)
            .finalize()
            .into_bytes()
            .into()
    }

    fn hmac_authenticator() -> Authenticator {
        Authenticator::new(
            Vec::new(),
            vec![Secret::new("secret-1"), Secret::new("secret-2")],
            HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
        )
    }

    fn with_signature(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            DEFAULT_SIGNATURE_HEADER,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn challenge_names_only_configured_methods() {
        let hmac_only = hmac_authenticator().challenge();
        assert!(
            hmac_only.detail.contains("x-gwen-signature"),
            "{hmac_only:?}"
        );
        assert!(!hmac_only.detail.contains("Bearer"), "{hmac_only:?}");
        assert!(
            !hmac_only.www_authenticate.contains("Basic"),
            "{hmac_only:?}"
        );

        let keys_only = Authenticator::with_keys(vec![Secret::new("k")]).challenge();
        assert!(keys_only.detail.contains("Bearer"), "{keys_only:?}");
        assert!(!keys_only.detail.contains("HMAC"), "{keys_only:?}");

        let both = Authenticator::new(
            vec![Secret::new("k")],
            vec![Secret::new("s")],
            HeaderName::from_static("x-sig"),
        )
        .challenge();
        assert!(both.detail.contains("Bearer"), "{both:?}");
        assert!(both.detail.contains("x-sig"), "{both:?}");
        assert!(both.www_authenticate.starts_with("Basic"), "{both:?}");
    }

    #[test]
    fn signature_in_every_encoding_passes() {
        let body = br#"{"type":"a"}"#;
        let digest = signed("secret-2", body);
        let auth = hmac_authenticator();
        for value in [
            hex::encode(digest),
            format!("sha256={}", hex::encode(digest)),
            format!("SHA256={}", hex::encode_upper(digest)),
            base64::engine::general_purpose::STANDARD.encode(digest),
            format!(
                "sha256={}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
            ),
        ] {
            let headers = with_signature(&value);
            assert_eq!(
                auth.check_headers(&headers),
                HeaderCheck::NeedsSignature,
                "{value}"
            );
            assert!(auth.verify_signature(&headers, body), "{value}");
        }
    }

    #[test]
    fn wrong_signature_fails() {
        let body = br#"{"type":"a"}"#;
        let auth = hmac_authenticator();
        let other_secret = with_signature(&hex::encode(signed("other", body)));
        assert!(!auth.verify_signature(&other_secret, body));
        let other_body = with_signature(&hex::encode(signed("secret-1", b"{}")));
        assert!(!auth.verify_signature(&other_body, body));
        assert!(!auth.verify_signature(&with_signature("sha256=zz"), body));
        assert!(!auth.verify_signature(&HeaderMap::new(), body));
        assert_eq!(auth.check_headers(&HeaderMap::new()), HeaderCheck::Failed);
    }

    #[test]
    fn basic_with_any_active_key_passes() {
        assert!(passes(&authenticator(), &headers(&basic("old-key:"))));
        assert!(passes(&authenticator(), &headers(&basic("new-key:"))));
    }

    #[test]
    fn bearer_key_passes() {
        assert!(passes(&authenticator(), &headers("Bearer new-key")));
        assert!(passes(&authenticator(), &headers("bearer old-key")));
    }

    #[test]
    fn wrong_or_missing_credentials_fail() {
        let auth = authenticator();
        assert!(!passes(&auth, &HeaderMap::new()));
        assert!(!passes(&auth, &headers(&basic("other:"))));
        assert!(!passes(&auth, &headers(&basic("new-key:password"))));
        assert!(!passes(&auth, &headers(&basic("new-key"))));
        assert!(!passes(&auth, &headers("Bearer new-key-2")));
        assert!(!passes(&auth, &headers("Digest new-key")));
    }
}
