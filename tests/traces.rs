//! Span export over OTLP/HTTP: the receiver and forwarder binaries against a real broker, and an
//! OTLP collector double on 127.0.0.1 that decodes what they send.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

const SENDER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN_ID: &str = "00f067aa0ba902b7";

/// One span as the collector received it, ids in lower-case hex.
#[derive(Clone, Debug)]
struct CollectedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    links: Vec<(String, String)>,
    /// Attributes with their values as the collector decoded them, in debug form.
    attributes: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

impl Collector {
    fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().unwrap().clone()
    }

    fn named(&self, name: &str) -> Vec<CollectedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }
}

/// Starts the collector double and returns it with its base URL.
async fn start_collector() -> (Collector, String) {
    let collector = Collector::default();
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (collector, url)
}

async fn collect(State(collector): State<Collector>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = collector.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| attribute.value.as_ref()?.value.clone())
            .map(|value| match value {
                Value::StringValue(name) => name,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            spans.push(CollectedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex::encode(span.trace_id),
                span_id: hex::encode(span.span_id),
                parent_span_id: hex::encode(span.parent_span_id),
                links: span
                    .links
                    .into_iter()
                    .map(|link| (hex::encode(link.trace_id), hex::encode(link.span_id)))
                    .collect(),
                attributes: span
                    .attributes
                    .into_iter()
                    .map(|attribute| {
                        let value = attribute.value.and_then(|value| value.value);
                        (attribute.key, format!("{value:?}"))
                    })
                    .collect(),
            });
        }
    }
    // An empty ExportTraceServiceResponse.
    Vec::new()
}

/// Starts the receiver binary and waits until it is ready.
async fn spawn_receiver(topic: &str, extra: &[&str]) -> (Child, String) {
    let (listen, admin) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .arg("receiver")
        .args(["--brokers", &brokers(), "--topic", topic])
        .args(["--webhook-keys", WEBHOOK_KEY])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the receiver binary");
    let readyz = format!("http://127.0.0.1:{admin}/readyz");
    wait_for_status(&mut child, &readyz, "the receiver").await;
    (child, format!("http://127.0.0.1:{listen}/webhooks/gwen"))
}

async fn post_with_traceparent(url: &str, body: &str, traceparent: &str) {
    let response = reqwest::Client::new()
        .post(url)
        .basic_auth(WEBHOOK_KEY, Some(""))
        .header("content-type", "application/json")
        .header("traceparent", traceparent)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_link_receiver_requests_to_batches() {
    require_broker();
    let (collector, otlp) = start_collector().await;
    let capture = start_capture().await;
    let topic = unique("traces");
    // The SDK exports every 5 s by default, longer than this test runs, so the spans arrive at
    // shutdown and this also checks the flush.
    let otlp_args = ["--otlp-endpoint", otlp.as_str()];
    let (mut receiver, url) = spawn_receiver(&topic, &otlp_args).await;
    let mut forwarder = spawn_forwarder(
        &topic,
        &unique("traces-dlq"),
        &unique("traces-group"),
        &capture.url,
        &otlp_args,
    )
    .await;

    let sender = format!("00-{SENDER_TRACE_ID}-{SENDER_SPAN_ID}-01");
    // Three webhooks of one request share its context.
    post_with_traceparent(&url, &fixture("batch.json"), &sender).await;
    post_ok(&url, &fixture("wallet_update.json")).await;
    wait_until(Duration::from_secs(30), "four events at capture", || {
        capture.capture.events().len() >= 4
    })
    .await;
    assert!(terminate(&mut receiver).success());
    assert!(terminate(&mut forwarder).success());
    wait_until(Duration::from_secs(10), "spans of both processes", || {
        collector.named("webhook request").len() >= 2
            && !collector.named("segment batch").is_empty()
    })
    .await;

    let requests = collector.named("webhook request");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s.service == "gwen-segment")
    );
    let child_of_sender = requests
        .iter()
        .find(|s| s.trace_id == SENDER_TRACE_ID)
        .expect("a request span in the sender's trace");
    assert_eq!(child_of_sender.parent_span_id, SENDER_SPAN_ID);
    let new_trace = requests
        .iter()
        .find(|s| s.trace_id != SENDER_TRACE_ID)
        .unwrap();
    assert_eq!(
        new_trace.parent_span_id, "",
        "a request without traceparent starts a trace"
    );

    // Each record carries its request span's context, and the batch links to it.
    let records = read_topic(&topic, 4, Duration::from_secs(10));
    let carried: HashSet<String> = records
        .iter()
        .map(|record| header(record, "traceparent").expect("a traceparent header"))
        .collect();
    let expected: HashSet<String> = requests
        .iter()
        .map(|s| format!("00-{}-{}-01", s.trace_id, s.span_id))
        .collect();
    assert_eq!(carried, expected);
    let batches = collector.named("segment batch");
    for batch in &batches {
        let distinct: HashSet<_> = batch.links.iter().collect();
        assert_eq!(
            distinct.len(),
            batch.links.len(),
            "duplicate links: {batch:?}"
        );
        assert!(
            batch.attributes["events"].starts_with("Some(IntValue("),
            "{batch:?}"
        );
    }
    let linked: HashSet<(String, String)> = batches.into_iter().flat_map(|s| s.links).collect();
    for request in &requests {
        let context = (request.trace_id.clone(), request.span_id.clone());
        assert!(
            linked.contains(&context),
            "no batch links to {context:?}: {linked:?}"
        );
    }
}

#[test]
fn otlp_endpoint_invalid_fails_start_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(["capture", "--otlp-endpoint", "collector:4318"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--otlp-endpoint \"collector:4318\""),
        "{stderr}"
    );
    assert!(stderr.contains("http://otel-collector:4318"), "{stderr}");
}
