//! Reads a request body within the size limit and the read timeout, decompressing gzip.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;

use super::ApiError;

/// Reads the body, rejecting it with 413 as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading, else while reading, and for gzip also while decompressing,
/// so a small compressed body cannot expand past the limit.
pub async fn read_body(
    request: Request,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("the body is over --max-body-bytes ({limit} bytes)"));

    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let gzip = match headers.get(header::CONTENT_ENCODING) {
        None => false,
        Some(encoding) if encoding.as_bytes().eq_ignore_ascii_case(b"identity") => false,
        Some(encoding) if encoding.as_bytes().eq_ignore_ascii_case(b"gzip") => true,
        Some(encoding) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding {encoding:?} is not supported; send the body uncompressed or as gzip"
            )));
        }
    };

    let body = Body::new(request.into_body());
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(ApiError::RequestTimeout(format!(
                "the body was not received within {} (--body-read-timeout)",
                humantime::format_duration(timeout)
            )));
        }
    };
    if !gzip {
        return Ok(bytes);
    }

    let mut decoded = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit));
    let read = flate2::read::MultiGzDecoder::new(bytes.as_ref())
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded);
    match read {
        Ok(size) if size > limit => Err(too_large()),
        Ok(_) => Ok(Bytes::from(decoded)),
        Err(error) => Err(ApiError::BadRequest(format!(
            "the gzip body cannot be decompressed: {error}"
        ))),
    }
}
