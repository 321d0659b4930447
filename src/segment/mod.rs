//! The Segment HTTP client and the meaning of its responses.

mod batch;
mod response;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

pub use batch::{BatchEncoder, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
pub use response::{Verdict, classify};

use crate::secret::{Secret, url_without_userinfo};

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
    #[error("invalid --segment-ca-file {path}: {reason}; give a PEM file of CA certificates")]
    InvalidCaFile { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Sends batch bodies to `{segment-url}/v1/batch` with the write key as Basic auth user, or
/// prints them to stdout.
#[derive(Clone)]
pub struct SegmentClient {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Http {
        http: reqwest::Client,
        batch_url: reqwest::Url,
        write_key: Secret,
    },
    /// Prints each batch body as one line on stdout and takes it as delivered.
    Stdout,
}

impl SegmentClient {
    /// A client for `segment_url`. `ca_file`, a PEM bundle, adds trusted roots for a private CA
    /// (a proxy in front of Segment); the system roots stay trusted.
    pub fn new(
        segment_url: &str,
        write_key: Secret,
        request_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, SegmentConfigError> {
        validate_write_key(&write_key)?;
        let invalid = |reason: String| SegmentConfigError::InvalidUrl {
            url: url_without_userinfo(segment_url),
            reason,
        };
        let mut base = reqwest::Url::parse(segment_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid(
                "it contains credentials, which are not sent: the write key is the Basic auth user name; remove them".into(),
            ));
        }
        if base.path().trim_end_matches('/').ends_with("/v1/batch") {
            return Err(invalid(
                "it ends with /v1/batch, which the forwarder adds; give the base URL".into(),
            ));
        }
        // Keeps a path prefix such as a proxy's `/segment`: joins below it, not at the root.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let batch_url = base.join("v1/batch").map_err(|e| invalid(e.to_string()))?;

        let mut builder = reqwest::Client::builder()
            .timeout(request_timeout)
            .user_agent(concat!("gwen-segment/", env!("CARGO_PKG_VERSION")))
            // A followed redirect turns the POST into a GET without the batch, which may then
            // get a 2xx: redirects are reported as they are instead.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            let invalid_ca = |reason: String| SegmentConfigError::InvalidCaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| invalid_ca(e.to_string()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid_ca(e.to_string()))?;
            if roots.is_empty() {
                return Err(invalid_ca("it holds no PEM certificate".into()));
            }
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder.build()?;
        Ok(SegmentClient {
            transport: Transport::Http {
                http,
                batch_url,
                write_key,
            },
        })
    }

    /// A client that prints every batch to stdout instead of sending it, for trying the product
    /// without a Segment source.
    pub fn stdout() -> Self {
        SegmentClient {
            transport: Transport::Stdout,
        }
    }

    pub fn encoder(&self) -> BatchEncoder {
        match &self.transport {
            Transport::Http { write_key, .. } => BatchEncoder::new(Some(write_key)),
            Transport::Stdout => BatchEncoder::new(None),
        }
    }

    /// Sends one batch body and classifies the response. Network errors and timeouts are `Retry`.
    pub async fn send_batch(&self, body: Bytes) -> Verdict {
        let (http, batch_url, write_key) = match &self.transport {
            Transport::Http {
                http,
                batch_url,
                write_key,
            } => (http, batch_url, write_key),
            Transport::Stdout => return print_batch(&body),
        };
        let request = http
            .post(batch_url.clone())
            .basic_auth(write_key.expose(), Some(""))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);

        let started = std::time::Instant::now();
        let sent = request.send().await;
        let metrics = crate::metrics::metrics();
        metrics
            .segment_request_seconds
            .observe(started.elapsed().as_secs_f64());
        let status = sent
            .as_ref()
            .ok()
            .map(|response| response.status().as_u16());
        let class = crate::metrics::status_class(status);
        metrics
            .segment_requests
            .get_or_create(&crate::metrics::label("class", class))
            .inc();

        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Verdict::Retry {
                    status: None,
                    after: None,
                    error: Some(error_chain(&error)),
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

impl std::fmt::Display for SegmentClient {
    /// Shows where batches go: the batch URL, or stdout.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Http { batch_url, .. } => write!(f, "{batch_url}"),
            Transport::Stdout => f.write_str("stdout"),
        }
    }
}

fn print_batch(body: &[u8]) -> Verdict {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let printed = stdout
        .write_all(body)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match printed {
        Ok(()) => Verdict::Delivered,
        Err(error) => Verdict::Retry {
            status: None,
            after: None,
            error: Some(format!("cannot print the batch to stdout: {error}")),
        },
    }
}

/// Joins the error and its sources on one line. reqwest's own message is only "error sending
/// request", and the cause (connection refused, timed out, certificate rejected) is in the sources.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_url(segment_url: &str) -> String {
        let client = SegmentClient::new(
            segment_url,
            Secret::new("key"),
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        client.to_string()
    }

    #[test]
    fn batch_url_keeps_path_prefix() {
        assert_eq!(
            batch_url("https://api.segment.io"),
            "https://api.segment.io/v1/batch"
        );
        assert_eq!(
            batch_url("https://api.segment.io/"),
            "https://api.segment.io/v1/batch"
        );
        assert_eq!(
            batch_url("http://proxy:8080/segment"),
            "http://proxy:8080/segment/v1/batch"
        );
        assert_eq!(
            batch_url("http://proxy:8080/segment/"),
            "http://proxy:8080/segment/v1/batch"
        );
    }
}
