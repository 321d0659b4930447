//! HTTP intake for GWEN webhooks: authenticate, bound, check the JSON, produce the raw bytes,
//! and respond 200 only after Kafka acknowledged every record.

mod auth;
mod body;
mod error;
mod produce;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

pub use auth::Authenticator;
pub use body::{BodyError, Record, split_records};
pub use error::ApiError;
pub use produce::{ProduceError, producer_config};

use crate::health::Health;
use produce::{RequestHeaders, produce_all};

/// Time allowed to read a request body once the headers arrived.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `X-Request-Id` taken from a sender; longer ones are replaced by a generated id.
const MAX_REQUEST_ID_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub topic: String,
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub produce_timeout: Duration,
}

/// Everything a request handler needs.
pub struct Receiver {
    pub config: ReceiverConfig,
    pub authenticator: Authenticator,
    pub producer: FutureProducer,
    pub health: Health,
}

pub fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/webhooks/gwen", post(receive))
        // The handler applies its own limit, before the body is read whole.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

/// Serves webhooks until `shutdown` completes, then responds to the requests in flight.
pub async fn run(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    info!(address = %listener.local_addr()?, topic = %receiver.config.topic, "receiver listening");
    axum::serve(listener, router(receiver))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let request_id = request_id(request.headers());
    match receiver.handle(request, &request_id).await {
        Ok(accepted) => {
            debug!(request_id, accepted, "webhooks accepted");
            axum::Json(serde_json::json!({ "accepted": accepted })).into_response()
        }
        Err(error) => {
            if let ApiError::Unavailable(detail) = &error {
                warn!(request_id, detail, "webhooks not accepted");
            }
            error.into_response()
        }
    }
}

impl Receiver {
    async fn handle(&self, request: Request, request_id: &str) -> Result<usize, ApiError> {
        if self.health.is_stopping() {
            return Err(ApiError::Unavailable(
                "the receiver is shutting down; retry on another instance".into(),
            ));
        }
        let headers = request.headers();
        if !self.authenticator.authenticate(headers) {
            return Err(ApiError::Unauthorized);
        }
        let content_type = check_content_type(headers)?;
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);

        let body = self.read_body(request).await?;
        let records =
            split_records(&body, self.config.max_record_bytes).map_err(|error| match error {
                BodyError::Invalid(detail) => ApiError::BadRequest(detail),
                too_large @ BodyError::RecordTooLarge { .. } => {
                    ApiError::PayloadTooLarge(too_large.to_string())
                }
            })?;

        let received_at = crate::mapping::format_timestamp(chrono::Utc::now());
        let request_headers = RequestHeaders {
            received_at: &received_at,
            request_id,
            content_type: &content_type,
            traceparent: traceparent.as_deref(),
        };
        let produced = tokio::time::timeout(
            self.config.produce_timeout + Duration::from_secs(1),
            produce_all(
                &self.producer,
                &self.config.topic,
                &records,
                &request_headers,
            ),
        )
        .await;
        match produced {
            Ok(Ok(())) => Ok(records.len()),
            Ok(Err(ProduceError::TooLarge(error))) => Err(ApiError::PayloadTooLarge(format!(
                "Kafka rejected a record as too large ({error}); lower --max-record-bytes or raise the topic's max.message.bytes"
            ))),
            Ok(Err(ProduceError::NotAcknowledged(error))) => Err(ApiError::Unavailable(format!(
                "Kafka did not acknowledge the webhooks: {error}"
            ))),
            Err(_) => Err(ApiError::Unavailable(format!(
                "Kafka did not acknowledge the webhooks within {}",
                humantime::format_duration(self.config.produce_timeout)
            ))),
        }
    }

    /// Reads the body, rejecting it with 413 as soon as it is known to exceed the limit:
    /// from `Content-Length` before reading, else while reading.
    async fn read_body(&self, request: Request) -> Result<bytes::Bytes, ApiError> {
        let limit = self.config.max_body_bytes;
        let too_large = || {
            ApiError::PayloadTooLarge(format!("the body is over --max-body-bytes ({limit} bytes)"))
        };

        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        if let Some(encoding) = request.headers().get(header::CONTENT_ENCODING)
            && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding {encoding:?} is not supported; send the body uncompressed"
            )));
        }

        let body = Body::new(request.into_body());
        match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(_)) => Err(too_large()),
            Err(_) => Err(ApiError::BadRequest(format!(
                "the body was not received within {}",
                humantime::format_duration(BODY_READ_TIMEOUT)
            ))),
        }
    }
}

/// Accepts `application/json` (with parameters) and a missing header, which is taken as JSON.
fn check_content_type(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok("application/json".into());
    };
    let text = value.to_str().unwrap_or_default();
    let media_type = text.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        return Ok(text.to_string());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "Content-Type {text:?} is not supported; send application/json"
    )))
}

/// Returns the sender's `X-Request-Id` when it is short printable text, else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.chars().count() <= MAX_REQUEST_ID_CHARS)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
