//! The meaning of a Segment response for the batch that got it, decided in this one place.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// The meaning of one response to a batch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: Segment has the events.
    Delivered,
    /// 400: Segment will never take this batch as it is; some event in it is rejected.
    Rejected { status: u16, body: String },
    /// 3xx, 401, 403, 404: the write key or the endpoint is wrong. Nothing may be dropped or committed
    /// until an operator fixes it, so the request is retried.
    Halted { status: u16 },
    /// 408, 429, 5xx, other statuses and network errors: try again later.
    Retry {
        status: Option<u16>,
        after: Option<Duration>,
        /// The network error or timeout that left the request without a response, if any.
        error: Option<String>,
    },
}

/// Classifies an HTTP response from Segment.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: String) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        400 | 413 => Verdict::Rejected {
            status: status.as_u16(),
            body,
        },
        // A redirect means --segment-url is wrong (or a proxy in front of Segment misbehaves).
        300..=399 | 401 | 403 | 404 => Verdict::Halted {
            status: status.as_u16(),
        },
        code => Verdict::Retry {
            status: Some(code),
            after: retry_after(headers),
            error: None,
        },
    }
}

/// Reads `Retry-After` (seconds or an HTTP date) or `X-RateLimit-Reset` (a unix time in seconds).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };

    if let Some(value) = text("retry-after") {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(date) = httpdate::parse_http_date(value) {
            return Some(
                date.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default(),
            );
        }
    }
    let reset: u64 = text("x-ratelimit-reset")?.parse().ok()?;
    let reset_at = std::time::UNIX_EPOCH + Duration::from_secs(reset);
    Some(
        reset_at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn verdict(status: u16, headers: &[(&'static str, &str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        classify(StatusCode::from_u16(status).unwrap(), &map, "body".into())
    }

    #[test]
    fn success_statuses_are_delivered() {
        assert_eq!(verdict(200, &[]), Verdict::Delivered);
        assert_eq!(verdict(204, &[]), Verdict::Delivered);
    }

    #[test]
    fn bad_request_is_rejected() {
        assert_eq!(
            verdict(400, &[]),
            Verdict::Rejected {
                status: 400,
                body: "body".into()
            }
        );
    }

    #[test]
    fn auth_and_endpoint_errors_halt() {
        for status in [401, 403, 404] {
            assert_eq!(verdict(status, &[]), Verdict::Halted { status });
        }
    }

    #[test]
    fn redirects_halt() {
        for status in [301, 302, 307] {
            assert_eq!(verdict(status, &[]), Verdict::Halted { status });
        }
    }

    #[test]
    fn transient_statuses_retry() {
        for status in [408, 429, 500, 502, 503] {
            assert_eq!(
                verdict(status, &[]),
                Verdict::Retry {
                    status: Some(status),
                    after: None,
                    error: None
                }
            );
        }
    }

    #[test]
    fn retry_after_seconds_honoured() {
        assert_eq!(
            verdict(429, &[("retry-after", "7")]),
            Verdict::Retry {
                status: Some(429),
                after: Some(Duration::from_secs(7)),
                error: None
            }
        );
    }

    #[test]
    fn rate_limit_reset_in_past_is_zero() {
        assert_eq!(
            verdict(429, &[("x-ratelimit-reset", "1000")]),
            Verdict::Retry {
                status: Some(429),
                after: Some(Duration::ZERO),
                error: None
            }
        );
    }
}
