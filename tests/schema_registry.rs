//! Schema Registry framing end to end, against a Confluent-compatible registry double serving
//! `POST /subjects/{subject}/versions` and `GET /schemas/ids/{id}`, including while it is down.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post as post_route};
use axum::{Json, Router};
use common::*;
use gwen_segment::kafka::framing::frame;
use gwen_segment::mapping::message_id;
use gwen_segment::registry::WEBHOOK_SCHEMA;
use tokio::net::TcpListener;

/// Subjects and schemas by id; answers 503 to everything while `down`.
#[derive(Default)]
struct Registry {
    schemas: Mutex<Vec<(String, String)>>,
    down: AtomicBool,
}

async fn register(
    State(registry): State<Arc<Registry>>,
    Path(subject): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if registry.down.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let schema = body["schema"].as_str().unwrap_or_default().to_string();
    let mut schemas = registry.schemas.lock().unwrap();
    let id = match schemas.iter().position(|(_, known)| *known == schema) {
        Some(index) => index + 1,
        None => {
            schemas.push((subject, schema));
            schemas.len()
        }
    };
    Json(serde_json::json!({ "id": id })).into_response()
}

async fn schema_by_id(State(registry): State<Arc<Registry>>, Path(id): Path<usize>) -> Response {
    if registry.down.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let schemas = registry.schemas.lock().unwrap();
    match id.checked_sub(1).and_then(|index| schemas.get(index)) {
        Some((_, schema)) => {
            Json(serde_json::json!({ "schema": schema, "schemaType": "JSON" })).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error_code": 40403, "message": "Schema not found"})),
        )
            .into_response(),
    }
}

async fn start_registry() -> (Arc<Registry>, String) {
    let registry = Arc::new(Registry::default());
    let app = Router::new()
        .route("/subjects/{subject}/versions", post_route(register))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .with_state(registry.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (registry, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_values_carry_schema_id_and_same_message_id() {
    require_broker();
    let (registry, registry_url) = start_registry().await;
    let topic = unique("registry");
    let capture = start_capture().await;
    let receiver = start_receiver_with_registry(&topic, &registry_url).await;
    let mut options = forwarder_options(&topic, &unique("dlq"), &unique("group"), &capture.url);
    options.schema_registry_url = Some(registry_url.clone());
    let forwarder = start_forwarder(options).await;

    let webhook = fixture("wallet_update.json");
    post_ok(&receiver.url, &webhook).await;

    let subjects: HashMap<String, String> =
        registry.schemas.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        subjects.get(&format!("{topic}-value")).map(String::as_str),
        Some(WEBHOOK_SCHEMA)
    );

    let records = read_topic(&topic, 1, Duration::from_secs(20));
    use rdkafka::Message;
    let value = records[0].payload().unwrap();
    assert_eq!(
        value,
        frame(1, webhook.trim().as_bytes()).as_slice(),
        "the value is not the framed webhook"
    );

    wait_until(Duration::from_secs(30), "the event", || {
        !capture.capture.events().is_empty()
    })
    .await;
    assert_eq!(
        capture.message_ids(),
        vec![message_id("", webhook.trim().as_bytes())]
    );
    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_gives_503_and_holds_commits() {
    require_broker();
    let (registry, registry_url) = start_registry().await;
    registry.down.store(true, Ordering::Relaxed);
    // Credentials in the URL are sent as Basic auth; the test registry ignores them.
    let registry_url = registry_url.replacen("http://", "http://reader:registry-pass@", 1);
    let topic = unique("registry-down");
    let group_id = unique("group");
    let capture = start_capture().await;
    let receiver = start_receiver_with_registry(&topic, &registry_url).await;

    let response = post(&receiver.url, &fixture("wallet_update.json")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body = response.text().await.unwrap();
    assert!(body.contains("http://***@127.0.0.1"), "{body}");
    assert!(
        !body.contains("registry-pass"),
        "the password leaked: {body}"
    );

    // A framed value whose schema id the forwarder cannot check while the registry is down.
    let webhook = r#"{"type":"wallet_update","userId":"u-framed","timestamp":1764853200}"#;
    produce(&topic, 0, Some("u-framed"), &frame(1, webhook.as_bytes())).await;
    let mut options = forwarder_options(&topic, &unique("dlq"), &group_id, &capture.url);
    options.schema_registry_url = Some(registry_url.clone());
    let forwarder = start_forwarder(options).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(capture.capture.events().is_empty());
    assert!(
        committed_offsets(&group_id, &topic, 6)
            .values()
            .all(Option::is_none),
        "committed while the registry was down"
    );

    registry.down.store(false, Ordering::Relaxed);
    post_ok(&receiver.url, &fixture("wallet_update.json")).await;
    wait_until(Duration::from_secs(30), "both events", || {
        capture.capture.events().len() >= 2
    })
    .await;
    let ids = capture.message_ids();
    assert!(ids.contains(&message_id("", webhook.as_bytes())), "{ids:?}");

    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_schema_id_dead_lettered() {
    require_broker();
    let (_registry, registry_url) = start_registry().await;
    let topic = unique("registry-unknown");
    let dlq_topic = unique("dlq");
    let capture = start_capture().await;

    produce(
        &topic,
        0,
        Some("u1"),
        &frame(77, br#"{"type":"wallet_update","userId":"u1"}"#),
    )
    .await;
    let good = r#"{"type":"wallet_update","userId":"u2","timestamp":1764853200}"#;
    produce(&topic, 0, Some("u2"), good.as_bytes()).await;
    let mut options = forwarder_options(&topic, &dlq_topic, &unique("group"), &capture.url);
    options.schema_registry_url = Some(registry_url);
    let forwarder = start_forwarder(options).await;

    wait_until(Duration::from_secs(30), "the plain event", || {
        !capture.capture.events().is_empty()
    })
    .await;
    assert_eq!(capture.message_ids(), vec![message_id("", good.as_bytes())]);
    let letters = read_topic(&dlq_topic, 1, Duration::from_secs(20));
    assert_eq!(letters.len(), 1);
    assert_eq!(
        header(&letters[0], "gwen-dlq-kind").as_deref(),
        Some("invalid_webhook")
    );
    assert!(header(&letters[0], "gwen-dlq-reason").is_some_and(|r| r.contains("77")));
    forwarder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_without_registry_reads_framed_values() {
    require_broker();
    let topic = unique("registry-off");
    let capture = start_capture().await;
    let webhook = r#"{"type":"mission_update","userId":"u3","timestamp":1764853200}"#;
    produce(&topic, 0, Some("u3"), &frame(5, webhook.as_bytes())).await;
    produce(&topic, 0, Some("u3"), webhook.as_bytes()).await;

    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "both events", || {
        capture.capture.events().len() >= 2
    })
    .await;
    let expected = message_id("", webhook.as_bytes());
    assert_eq!(capture.message_ids(), vec![expected.clone(), expected]);
    forwarder.stop().await;
}
