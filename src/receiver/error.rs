//! Receiver responses to requests that are not accepted: a status and a short JSON body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Challenge;

/// Seconds a sender is asked to wait after a 503.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug)]
pub enum ApiError {
    Unauthorized(Challenge),
    UnsupportedMediaType(String),
    BadRequest(String),
    PayloadTooLarge(String),
    RequestTimeout(String),
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut www_authenticate = None;
        let (status, error, detail) = match self {
            ApiError::Unauthorized(challenge) => {
                www_authenticate = HeaderValue::from_str(&challenge.www_authenticate).ok();
                (StatusCode::UNAUTHORIZED, "unauthorized", challenge.detail)
            }
            ApiError::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                detail,
            ),
            ApiError::BadRequest(detail) => (StatusCode::BAD_REQUEST, "invalid_body", detail),
            ApiError::PayloadTooLarge(detail) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
            }
            ApiError::RequestTimeout(detail) => {
                (StatusCode::REQUEST_TIMEOUT, "request_timeout", detail)
            }
            ApiError::Unavailable(detail) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            }
        };

        let body = serde_json::json!({ "error": error, "detail": detail }).to_string();
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                if let Some(value) = www_authenticate {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        response
    }
}
