//! HTTP intake for GWEN webhooks: authenticate, bound, check the JSON, produce the raw bytes,
//! and respond 200 only after Kafka acknowledged every record.

mod auth;
mod body;
mod error;
mod produce;
mod read;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, info, warn};

pub use auth::{Authenticator, DEFAULT_SIGNATURE_HEADER, HeaderCheck};
pub use body::{BodyError, Record, split_records};
pub use error::ApiError;
pub use produce::{ProduceError, check_produce_timeout, producer_config};

use crate::health::Health;
use crate::kafka::KafkaProducer;
use crate::metrics::{label, metrics};
use crate::registry::SchemaRegistry;
use crate::telemetry;
use produce::{RequestHeaders, produce_all};
use read::read_body;

/// Longest `X-Request-Id` taken from a sender; longer ones are replaced by a generated id.
const MAX_REQUEST_ID_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub topic: String,
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub produce_timeout: Duration,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Time a client has to send its body once the headers arrived.
    pub body_read_timeout: Duration,
    /// Requests handled at once; more get 503 at once.
    pub max_concurrent_requests: usize,
}

/// Everything a request handler needs.
pub struct Receiver {
    config: ReceiverConfig,
    authenticator: Authenticator,
    producer: KafkaProducer,
    health: Health,
    permits: Semaphore,
    registry: Option<Arc<SchemaRegistry>>,
}

impl Receiver {
    pub fn new(
        config: ReceiverConfig,
        authenticator: Authenticator,
        producer: KafkaProducer,
        health: Health,
    ) -> Self {
        let permits = Semaphore::new(config.max_concurrent_requests);
        Receiver {
            config,
            authenticator,
            producer,
            health,
            permits,
            registry: None,
        }
    }

    /// Frames every value with the webhook schema's id from `registry`.
    pub fn with_registry(mut self, registry: Arc<SchemaRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The schema id values are framed with, registering the schema on first use; `None`
    /// without a registry.
    async fn schema_id(&self) -> Result<Option<u32>, ApiError> {
        let Some(registry) = &self.registry else {
            return Ok(None);
        };
        let lookup = tokio::time::timeout(
            self.config.produce_timeout,
            registry.webhook_schema_id(&self.config.topic),
        );
        match lookup.await {
            Ok(Ok(id)) => Ok(Some(id)),
            Ok(Err(error)) => Err(ApiError::Unavailable(format!(
                "cannot register the webhook schema: {error}"
            ))),
            Err(_) => Err(ApiError::Unavailable(
                "the Schema Registry did not respond in time".into(),
            )),
        }
    }
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
    let header_read_timeout = receiver.config.header_read_timeout;
    crate::http_server::serve(
        listener,
        router(receiver),
        None,
        header_read_timeout,
        shutdown,
    )
    .await;
    Ok(())
}

async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let request_id = request_id(request.headers());
    let (span, traceparent) = trace_request(request.headers(), &request_id);
    let handled = receiver
        .handle(request, &request_id, traceparent.as_deref())
        .instrument(span.clone())
        .await;
    let response = match handled {
        Ok(accepted) => {
            span.record("records", accepted as i64);
            debug!(request_id, accepted, "webhooks accepted");
            metrics().receiver_webhooks_accepted.inc_by(accepted as u64);
            axum::Json(serde_json::json!({ "accepted": accepted })).into_response()
        }
        Err(error) => {
            if let ApiError::Unavailable(detail) = &error {
                warn!(request_id, detail, "webhooks not accepted");
            }
            error.into_response()
        }
    };
    metrics()
        .receiver_requests
        .get_or_create(&label("status", response.status().as_u16()))
        .inc();
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    response
}

/// Returns the request's span and the `traceparent` its records carry. While spans are exported,
/// that is the span's own context; otherwise it is the sender's header unchanged.
fn trace_request(headers: &HeaderMap, request_id: &str) -> (tracing::Span, Option<String>) {
    let incoming = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    let span = telemetry::request_span(incoming, request_id);
    let traceparent = telemetry::traceparent(&span).or_else(|| incoming.map(str::to_string));
    (span, traceparent)
}

impl Receiver {
    async fn handle(
        &self,
        request: Request,
        request_id: &str,
        traceparent: Option<&str>,
    ) -> Result<usize, ApiError> {
        if self.health.is_stopping() {
            return Err(ApiError::Unavailable(
                "the receiver is shutting down; retry on another instance".into(),
            ));
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            return Err(ApiError::Unavailable(format!(
                "more than --max-concurrent-requests ({}) requests at once; retry later",
                self.config.max_concurrent_requests
            )));
        };

        let headers = request.headers();
        let header_check = self.authenticator.check_headers(headers);
        if header_check == HeaderCheck::Failed {
            return Err(ApiError::Unauthorized(self.authenticator.challenge()));
        }
        let content_type = check_content_type(headers)?;
        let headers = headers.clone();

        let body = read_body(
            request,
            self.config.max_body_bytes,
            self.config.body_read_timeout,
        )
        .await?;
        if header_check == HeaderCheck::NeedsSignature
            && !self.authenticator.verify_signature(&headers, &body)
        {
            return Err(ApiError::Unauthorized(self.authenticator.challenge()));
        }
        let records =
            split_records(&body, self.config.max_record_bytes).map_err(|error| match error {
                BodyError::Invalid(detail) => ApiError::BadRequest(detail),
                too_large @ BodyError::RecordTooLarge { .. } => {
                    ApiError::PayloadTooLarge(too_large.to_string())
                }
            })?;

        let schema_id = self.schema_id().await?;
        let received_at = crate::mapping::format_timestamp(chrono::Utc::now());
        let request_headers = RequestHeaders {
            schema_id,
            received_at: &received_at,
            request_id,
            content_type: &content_type,
            traceparent,
        };
        let started = std::time::Instant::now();
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
        metrics()
            .produce_seconds
            .observe(started.elapsed().as_secs_f64());
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
