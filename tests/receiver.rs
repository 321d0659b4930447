//! The receiver's responses over HTTP, against a real broker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gwen_segment::health::Health;
use gwen_segment::receiver::{self, Authenticator, Receiver};
use gwen_segment::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WEBHOOK: &str = r#"{"type":"wallet_update","userId":"u1","timestamp":1764853200}"#;

async fn error_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

fn total(ends: &std::collections::HashMap<i32, i64>) -> i64 {
    ends.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_rejects_missing_and_wrong_credentials() {
    require_broker();
    let receiver = start_receiver(&unique("receiver-auth")).await;
    let client = reqwest::Client::new();

    let cases = [
        client.post(&receiver.url).body(WEBHOOK),
        client
            .post(&receiver.url)
            .basic_auth("wrong", Some(""))
            .body(WEBHOOK),
        client
            .post(&receiver.url)
            .bearer_auth("wrong")
            .body(WEBHOOK),
    ];
    for request in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let (_, body) = error_of(response).await;
        assert_eq!(body["error"], "unauthorized");
    }

    let bearer = client
        .post(&receiver.url)
        .bearer_auth(WEBHOOK_KEY)
        .body(WEBHOOK)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_checks_content_type() {
    require_broker();
    let receiver = start_receiver(&unique("receiver-type")).await;
    let client = reqwest::Client::new();
    let send = |content_type: Option<&'static str>| {
        let mut request = client
            .post(&receiver.url)
            .basic_auth(WEBHOOK_KEY, Some(""))
            .body(WEBHOOK);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };

    assert_eq!(send(None).await.unwrap().status(), 200);
    assert_eq!(
        send(Some("application/json; charset=utf-8"))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, body) = error_of(send(Some("text/plain")).await.unwrap()).await;
    assert_eq!(status, 415);
    assert_eq!(body["error"], "unsupported_media_type");
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_rejects_invalid_bodies_and_produces_nothing() {
    require_broker();
    let topic = unique("receiver-invalid");
    let receiver = start_receiver(&topic).await;

    for body in [
        "",
        "not json",
        "[]",
        "42",
        r#"[{"type":"wallet_update","userId":"u1"}, 7]"#,
        r#"[{"type":"wallet_update","userId":"u1"}, {"userId":"u2"}]"#,
        r#"{"type":"","userId":"u1"}"#,
        r#"{"type":"wallet_update","userId":"u1","name":"\ud800"}"#,
        "{\"type\":\"wallet_update\",\"userId\":\"u1\"",
    ] {
        let (status, json) = error_of(post(&receiver.url, body).await).await;
        assert_eq!(status, 400, "body {body:?}");
        assert_eq!(json["error"], "invalid_body", "body {body:?}");
        assert!(
            json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "body {body:?}"
        );
    }

    let invalid_utf8 = reqwest::Client::new()
        .post(&receiver.url)
        .basic_auth(WEBHOOK_KEY, Some(""))
        .body(b"{\"type\":\"wallet_update\",\"userId\":\"\xff\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_utf8.status(), 400);

    assert_eq!(
        total(&end_offsets(&topic, 6)),
        0,
        "a rejected request produced records"
    );
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_accepts_array_after_every_ack() {
    require_broker();
    let topic = unique("receiver-array");
    let receiver = start_receiver(&topic).await;

    let response = post(&receiver.url, &fixture("batch.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"accepted": 3})
    );
    // The response came after the acknowledgements, so the records are already in the log.
    assert_eq!(total(&end_offsets(&topic, 6)), 3);
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_rejects_oversized_bodies_and_records() {
    require_broker();
    let topic = unique("receiver-size");
    let mut config = receiver_config(&topic);
    config.max_body_bytes = 2_000;
    config.max_record_bytes = 500;
    let receiver = start_receiver_with(config).await;

    let big_body = format!(
        r#"{{"type":"wallet_update","userId":"u1","pad":"{}"}}"#,
        "x".repeat(3_000)
    );
    let (status, body) = error_of(post(&receiver.url, &big_body).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "payload_too_large");

    let big_record = format!(
        r#"[{WEBHOOK},{{"type":"wallet_update","userId":"u1","pad":"{}"}}]"#,
        "x".repeat(600)
    );
    let (status, body) = error_of(post(&receiver.url, &big_record).await).await;
    assert_eq!(status, 413);
    assert!(
        body["detail"].as_str().unwrap().contains("webhook 1"),
        "{body}"
    );

    // Chunked, so no Content-Length announces the size: the limit applies while reading.
    let address = receiver
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhooks/gwen HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {WEBHOOK_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(1_000);
    for _ in 0..3 {
        let _ = stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    assert_eq!(total(&end_offsets(&topic, 6)), 0);
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_answers_503_when_kafka_does_not_acknowledge() {
    // A producer pointed at a closed port never gets an acknowledgement.
    let settings = gwen_segment::kafka::KafkaSettings {
        brokers: "127.0.0.1:1".into(),
        ..Default::default()
    };
    let mut config = receiver_config("unreachable");
    config.produce_timeout = Duration::from_millis(500);
    let producer = receiver::producer_config(&settings, config.produce_timeout)
        .create_with_context(gwen_segment::kafka::ClientLog::default())
        .unwrap();
    let health = Health::new("receiver");
    health.set_started(true);
    let state = Arc::new(Receiver::new(
        config,
        Authenticator::with_keys(vec![Secret::new(WEBHOOK_KEY)]),
        producer,
        health.clone(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/gwen", listener.local_addr().unwrap());
    tokio::spawn(receiver::run(listener, state, std::future::pending()));

    let response = post(&url, WEBHOOK).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (_, body) = error_of(response).await;
    assert_eq!(body["error"], "unavailable");

    health.set_stopping();
    let response = post(&url, WEBHOOK).await;
    assert_eq!(response.status(), 503);
}
