//! The Segment HTTP client and the meaning of its responses.

mod batch;
mod response;

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tracing::debug;

pub use batch::{BatchEncoder, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
pub use response::{Verdict, classify};

use crate::secret::Secret;

/// Maximum response body kept for logs and dead-letter headers.
const MAX_KEPT_BODY_BYTES: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum SegmentConfigError {
    #[error(
        "the Segment write key is empty; set --segment-write-key or SEGMENT_WRITE_KEY to your source's write key"
    )]
    EmptyWriteKey,
    #[error(
        "the Segment write key contains whitespace or control characters; copy it again from the source's settings"
    )]
    MalformedWriteKey,
    #[error("invalid --segment-url {url:?}: {reason}; use for example https://api.segment.io")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Sends batch bodies to `{segment-url}/v1/batch` with the write key as Basic auth user.
#[derive(Clone)]
pub struct SegmentClient {
    http: reqwest::Client,
    batch_url: reqwest::Url,
    write_key: Secret,
}

impl SegmentClient {
    pub fn new(
        segment_url: &str,
        write_key: Secret,
        request_timeout: Duration,
    ) -> Result<Self, SegmentConfigError> {
        validate_write_key(&write_key)?;
        let invalid = |reason: String| SegmentConfigError::InvalidUrl {
            url: segment_url.to_string(),
            reason,
        };
        let base = reqwest::Url::parse(segment_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        let batch_url = base.join("/v1/batch").map_err(|e| invalid(e.to_string()))?;

        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .user_agent(concat!("gwen-segment/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(SegmentClient {
            http,
            batch_url,
            write_key,
        })
    }

    pub fn encoder(&self) -> BatchEncoder {
        BatchEncoder::new(&self.write_key)
    }

    /// Sends one batch body and classifies the response. Network errors and timeouts are `Retry`.
    pub async fn send_batch(&self, body: Bytes) -> Verdict {
        let request = self
            .http
            .post(self.batch_url.clone())
            .basic_auth(self.write_key.expose(), Some(""))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);

        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                debug!(error = %error, "Segment request failed");
                return Verdict::Retry {
                    status: None,
                    after: None,
                };
            }
        };

        let status = response.status();
        let headers = response.headers().clone();
        let mut text = response.text().await.unwrap_or_default();
        if text.len() > MAX_KEPT_BODY_BYTES {
            let cut = text.floor_char_boundary(MAX_KEPT_BODY_BYTES);
            text.truncate(cut);
        }
        classify(status, &headers, text)
    }
}

fn validate_write_key(write_key: &Secret) -> Result<(), SegmentConfigError> {
    let key = write_key.expose();
    if key.is_empty() {
        return Err(SegmentConfigError::EmptyWriteKey);
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SegmentConfigError::MalformedWriteKey);
    }
    Ok(())
}
