//! A Segment-compatible HTTP server for tests, benchmarks and demos.
//!
//! It takes `POST /v1/batch` and `POST /v1/track`, checks the write key and Segment's size
//! limits, writes each accepted event as one JSON line, and can be scripted to fail.

mod script;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::info;

pub use script::Script;

use crate::secret::Secret;

/// Segment responds 400 to request bodies larger than this.
pub const MAX_REQUEST_BYTES: usize = 500_000;
/// Segment responds 400 to a request containing an event larger than this.
pub const MAX_EVENT_BYTES: usize = 32_000;

pub struct CaptureConfig {
    /// The write key requests must carry; any non-empty key is taken when `None`.
    pub write_key: Option<Secret>,
    /// Where each accepted event goes, as one JSON line.
    pub output: Box<dyn Write + Send>,
    /// Also keep accepted events in memory, for tests.
    pub keep_in_memory: bool,
    pub script: Script,
}

/// What a running capture server has seen; shared with the caller of [`run`].
pub struct Capture {
    write_key: Option<Secret>,
    output: Mutex<Box<dyn Write + Send>>,
    keep_in_memory: bool,
    events: Mutex<Vec<String>>,
    requests: Mutex<u64>,
    pub script: Script,
}

impl Capture {
    pub fn new(config: CaptureConfig) -> Arc<Self> {
        Arc::new(Capture {
            write_key: config.write_key,
            output: Mutex::new(config.output),
            keep_in_memory: config.keep_in_memory,
            events: Mutex::new(Vec::new()),
            requests: Mutex::new(0),
            script: config.script,
        })
    }

    /// The events accepted so far, when kept in memory.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let raw = lock(&self.events);
        raw.iter()
            .filter_map(|event| serde_json::from_str(event).ok())
            .collect()
    }

    /// The events accepted so far as the bytes they arrived as, when kept in memory.
    pub fn raw_events(&self) -> Vec<String> {
        lock(&self.events).clone()
    }

    /// Every request received, accepted or not.
    pub fn request_count(&self) -> u64 {
        *lock(&self.requests)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn router(capture: Arc<Capture>) -> Router {
    Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/track", post(track))
        .with_state(capture)
}

/// Serves until `shutdown` completes.
/// Serves until `shutdown` completes, over TLS when `tls` is given.
pub async fn run(
    listener: TcpListener,
    capture: Arc<Capture>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(address = %listener.local_addr()?, scheme, "capture listening");
    crate::http_server::serve(
        listener,
        router(capture),
        tls,
        HEADER_READ_TIMEOUT,
        shutdown,
    )
    .await;
    Ok(())
}

/// Time a client has to send its request headers (and complete the TLS handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

#[derive(Deserialize)]
struct WriteKeyField {
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

async fn batch(State(capture): State<Arc<Capture>>, request: Request) -> Response {
    let (headers, body) = match capture.prepare(request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let parsed: BatchBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid batch body: {e}")),
    };
    capture.accept(&headers, parsed.write_key, &parsed.batch)
}

async fn track(State(capture): State<Arc<Capture>>, request: Request) -> Response {
    let (headers, body) = match capture.prepare(request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let event: &RawValue = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
    };
    let write_key = serde_json::from_str::<WriteKeyField>(event.get())
        .ok()
        .and_then(|f| f.write_key);
    capture.accept(&headers, write_key, &[event])
}

impl Capture {
    /// Counts the request, applies the scripted latency and failure, and reads the body within
    /// Segment's limit.
    async fn prepare(&self, request: Request) -> Result<(HeaderMap, bytes::Bytes), Response> {
        *lock(&self.requests) += 1;
        let (latency, failure) = self.script.next_answer();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(failure) = failure {
            return Err(failure.into_response());
        }

        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(Body::new(body), MAX_REQUEST_BYTES).await {
            Ok(bytes) => Ok((parts.headers, bytes)),
            Err(_) => Err(error(
                StatusCode::BAD_REQUEST,
                &format!("request body over {MAX_REQUEST_BYTES} bytes"),
            )),
        }
    }

    fn accept(
        &self,
        headers: &HeaderMap,
        body_write_key: Option<String>,
        events: &[&RawValue],
    ) -> Response {
        let Some(key) = basic_auth_user(headers).or(body_write_key) else {
            return error(StatusCode::UNAUTHORIZED, "missing write key");
        };
        let key_matches = match &self.write_key {
            Some(expected) => {
                constant_time_eq::constant_time_eq(key.as_bytes(), expected.expose().as_bytes())
            }
            None => !key.is_empty(),
        };
        if !key_matches {
            return error(StatusCode::UNAUTHORIZED, "invalid write key");
        }

        for event in events {
            if !event.get().starts_with('{') {
                return error(StatusCode::BAD_REQUEST, "every event must be a JSON object");
            }
            if event.get().len() > MAX_EVENT_BYTES {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("event over {MAX_EVENT_BYTES} bytes"),
                );
            }
        }
        if self.script.rejects_any() {
            let rejected = events
                .iter()
                .filter_map(|event| message_id(event))
                .find(|id| self.script.rejects(id));
            if let Some(id) = rejected {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("scripted rejection of event {id}"),
                );
            }
        }

        if let Err(e) = self.record(events) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot write the output: {e}"),
            );
        }
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"success":true}"#,
        )
            .into_response()
    }

    fn record(&self, events: &[&RawValue]) -> std::io::Result<()> {
        let mut output = lock(&self.output);
        for event in events {
            output.write_all(event.get().as_bytes())?;
            output.write_all(b"\n")?;
        }
        output.flush()?;
        drop(output);

        if self.keep_in_memory {
            lock(&self.events).extend(events.iter().map(|event| event.get().to_string()));
        }
        Ok(())
    }
}

fn message_id(event: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "messageId")]
        message_id: Option<String>,
    }
    serde_json::from_str::<Event>(event.get()).ok()?.message_id
}

fn basic_auth_user(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
    Some(user.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A scripted failure: the response status and an optional `Retry-After` in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = error(self.status, "scripted failure");
        if let Some(after) = self.retry_after
            && let Ok(value) = after.as_secs().to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
