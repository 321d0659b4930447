//! Logs on stderr and, when an OTLP endpoint is given, traces exported over OTLP/HTTP.
//!
//! Spans are made only while export is on, so the hot paths pay nothing for them otherwise. The
//! receiver opens one span per request, a child of the sender's `traceparent`, and writes that
//! span's context to Kafka as the record's `traceparent` header. The forwarder opens one span per
//! Segment batch, linked to the contexts its records carry. A batch contains events of many
//! traces, so a link, not a parent, ties it to each of them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::secret::url_without_userinfo;

/// The service name on exported spans unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// sets another.
const SERVICE_NAME: &str = "gwen-segment";

/// The OTLP/HTTP path for traces, appended to the endpoint as the OTLP specification requires.
const TRACES_PATH: &str = "/v1/traces";

/// An OpenTelemetry span takes at most this many links (the SDK's default span limit).
pub const MAX_LINKS: usize = 128;

static EXPORTING: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

pub struct TelemetryConfig<'a> {
    pub log_format: LogFormat,
    /// A filter such as `info` or `info,gwen_segment=debug`. `RUST_LOG`, when set, wins.
    pub log_level: &'a str,
    /// Base URL of an OTLP/HTTP collector, such as `http://otel-collector:4318`.
    pub otlp_endpoint: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "invalid --otlp-endpoint {endpoint:?}: {reason}; give the collector's OTLP/HTTP base URL, such as http://otel-collector:4318"
    )]
    Endpoint { endpoint: String, reason: String },
    #[error(
        "invalid {option} {filter:?}: {reason}; give a level such as info or debug, or a filter such as info,gwen_segment=debug"
    )]
    LogFilter {
        /// `--log-level` or `RUST_LOG`, whichever the filter came from.
        option: &'static str,
        filter: String,
        reason: String,
    },
    #[error(
        "cannot start the OTLP span exporter for --otlp-endpoint {endpoint:?}: {reason}; give the collector's OTLP/HTTP base URL, such as http://otel-collector:4318"
    )]
    Exporter { endpoint: String, reason: String },
}

/// Flushes and stops the span export when dropped, at the end of `main`.
#[must_use = "spans are flushed when this is dropped"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(error) = provider.shutdown() {
            tracing::warn!(error = %error, "exporting the last spans failed; they are lost");
        }
    }
}

/// Installs the global subscriber: logs on stderr, and span export when an endpoint is given.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    // An empty endpoint, as an empty OTEL_EXPORTER_OTLP_ENDPOINT gives, means no export.
    let endpoint = config
        .otlp_endpoint
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty() && !sdk_disabled());
    // The SDK warns about invalid OTEL_* variables while the provider is built, so those
    // warnings need a subscriber before the global one exists.
    let startup_logs = Registry::default()
        .with(log_layer(config.log_format).with_filter(log_filter(config.log_level)?));
    let provider = tracing::subscriber::with_default(startup_logs, || {
        endpoint.map(tracer_provider).transpose()
    })?;

    let logs = log_layer(config.log_format).with_filter(log_filter(config.log_level)?);
    let traces = provider.as_ref().map(|provider| {
        // Only this crate's spans are exported, because they are few and named.
        let spans = Targets::new().with_target("gwen_segment", LevelFilter::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(spans)
    });
    Registry::default().with(logs).with(traces).init();

    if let Some(endpoint) = endpoint {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!(endpoint, "exporting spans over OTLP/HTTP");
        warn_ignored_variables();
    } else if config.otlp_endpoint.is_some_and(|e| !e.trim().is_empty()) {
        tracing::info!("OTEL_SDK_DISABLED is true, so no spans are exported");
    }
    Ok(Telemetry { provider })
}

/// Returns whether `OTEL_SDK_DISABLED` is `true`, which turns span export off.
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// Warns about an OpenTelemetry variable that has no effect here and that the SDK does not
/// warn about.
fn warn_ignored_variables() {
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
        tracing::warn!(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is ignored: spans go to --otlp-endpoint with /v1/traces appended"
        );
    }
}

/// Returns whether spans are exported. Callers make no spans when they are not.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Opens a span for one webhook request, a child of the sender's `traceparent` when it is valid.
pub fn request_span(traceparent: Option<&str>, request_id: &str) -> Span {
    if !exporting() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "webhook request",
        otel.kind = "server",
        request_id,
        records = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = traceparent.and_then(remote_context) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    span
}

/// Returns the `traceparent` header value of the span's context while spans are exported.
pub fn traceparent(span: &Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Opens a span for one Segment batch, linked to the distinct valid contexts among the records'
/// `traceparent` headers (at most [`MAX_LINKS`]).
pub fn batch_span<'a>(events: usize, traceparents: impl Iterator<Item = Option<&'a str>>) -> Span {
    if !exporting() {
        return Span::none();
    }
    // Records of one request share a context, so duplicates are skipped before the limit.
    let mut seen = HashSet::new();
    let contexts: Vec<SpanContext> = traceparents
        .flatten()
        .filter_map(remote_context)
        .filter(|context| seen.insert((context.trace_id(), context.span_id())))
        .collect();
    let span = tracing::info_span!(
        "segment batch",
        otel.kind = "client",
        events = events as i64,
        contexts = contexts.len() as i64,
        rejected = tracing::field::Empty,
    );
    for context in contexts.into_iter().take(MAX_LINKS) {
        span.add_link(context);
    }
    span
}

/// Parses a W3C `traceparent` header value, or returns None when it is invalid.
fn remote_context(traceparent: &str) -> Option<SpanContext> {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let traces_url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .build()
        .map_err(|error| TelemetryError::Exporter {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        })?;

    // The SDK's resource detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = Resource::builder();
    let named_by_attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .is_ok_and(|attributes| attributes.contains("service.name="));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() && !named_by_attributes {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Builds the traces URL from a collector's base URL: `http://collector:4318` gives
/// `http://collector:4318/v1/traces`.
fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let invalid = |reason: &str| TelemetryError::Endpoint {
        endpoint: url_without_userinfo(endpoint),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(endpoint).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not sent; put them in OTEL_EXPORTER_OTLP_HEADERS, for example Authorization=Basic%20...",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment"));
    }
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        return Err(invalid(
            "it ends with /v1/traces, which is added to the base URL",
        ));
    }
    Ok(format!("{base}{TRACES_PATH}"))
}

/// Builds the log filter from `RUST_LOG` when it is set, else from `--log-level`.
fn log_filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    let (option, filter) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(filter) => ("RUST_LOG", filter),
        Err(_) => ("--log-level", level.to_string()),
    };
    EnvFilter::try_new(&filter).map_err(|error| TelemetryError::LogFilter {
        option,
        filter,
        reason: error.to_string(),
    })
}

fn log_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_traces_path_once() {
        for (endpoint, expected) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/base",
                "https://otel.example/base/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(endpoint).unwrap(), expected);
        }
    }

    #[test]
    fn traces_url_rejects_invalid_urls() {
        for endpoint in [
            "collector:4318",
            "ftp://collector",
            "http://c/?a=1",
            "",
            "4318",
            "http://c:4318/v1/traces",
        ] {
            let error = traces_url(endpoint).unwrap_err().to_string();
            assert!(error.contains("--otlp-endpoint"), "{error}");
            assert!(error.contains(&format!("{endpoint:?}")), "{error}");
        }
    }

    #[test]
    fn traces_url_rejects_credentials_without_showing_them() {
        let error = traces_url("http://user:secret@c:4318")
            .unwrap_err()
            .to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{error}");
        assert!(error.contains("http://***@c:4318"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn remote_context_accepts_only_valid_traceparents() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = remote_context(valid).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.is_sampled());
        for invalid in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(remote_context(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn spans_are_not_made_while_nothing_is_exported() {
        assert!(request_span(None, "id").is_none());
        assert!(batch_span(1, std::iter::once(None)).is_none());
        assert_eq!(traceparent(&Span::none()), None);
    }
}
