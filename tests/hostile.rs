//! The receiver against hostile and odd input: signatures, compression bombs, slow clients,
//! floods, strict JSON. Each rejected request produces nothing.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use gwen_segment::receiver::ReceiverConfig;
use gwen_segment::secret::Secret;
use gwen_segment::service::{self, Credentials, ReceiverOptions};
use gwen_segment::{health::Health, kafka::TopicPolicy};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WEBHOOK: &str = r#"{"type":"wallet_update","userId":"u1","timestamp":1764853200}"#;
const HMAC_SECRET: &str = "test-hmac-secret";

/// A receiver with an HMAC secret besides the key, and `config`'s limits.
async fn start(config: ReceiverConfig) -> (String, String) {
    let options = ReceiverOptions {
        kafka: kafka_settings(),
        topics: TopicPolicy {
            create_missing: true,
            partitions: 6,
        },
        credentials: Credentials {
            hmac_secrets: vec![Secret::new("old-secret"), Secret::new(HMAC_SECRET)],
            ..Credentials::keys(vec![Secret::new(WEBHOOK_KEY)])
        },
        config,
        allow_unauthenticated: false,
        schema_registry_url: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let health = Health::new("receiver");
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(service::run_receiver(
        options,
        listener,
        health.clone(),
        shutdown,
    ));
    wait_until(Duration::from_secs(30), "the receiver to be ready", || {
        health.readiness().is_ok()
    })
    .await;
    (format!("http://{address}/webhooks/gwen"), address)
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap()
        .chain_update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn records_in(topic: &str) -> i64 {
    end_offsets(topic, 6).values().sum()
}

/// Sends raw bytes and returns what the server sent back before closing or `wait` passing.
async fn exchange(address: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_signature_authenticates_body() {
    require_broker();
    let topic = unique("hostile-hmac");
    let (url, _) = start(receiver_config(&topic)).await;
    let client = reqwest::Client::new();
    let send = |signature: String, body: &'static str| {
        client
            .post(&url)
            .header("x-gwen-signature", signature)
            .body(body)
            .send()
    };

    let good = send(signature(HMAC_SECRET, WEBHOOK.as_bytes()), WEBHOOK)
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let rotated = send(signature("old-secret", WEBHOOK.as_bytes()), WEBHOOK)
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);

    let wrong_secret = send(signature("guess", WEBHOOK.as_bytes()), WEBHOOK)
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    let other_body = send(signature(HMAC_SECRET, b"{}"), WEBHOOK).await.unwrap();
    assert_eq!(other_body.status(), 401);
    assert_eq!(records_in(&topic), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_accepted_and_signed_decoded() {
    require_broker();
    let topic = unique("hostile-gzip");
    let (url, _) = start(receiver_config(&topic)).await;

    let response = reqwest::Client::new()
        .post(&url)
        .header("content-encoding", "gzip")
        .header(
            "x-gwen-signature",
            signature(HMAC_SECRET, WEBHOOK.as_bytes()),
        )
        .body(gzip(WEBHOOK.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let records = read_topic(&topic, 1, Duration::from_secs(20));
    use rdkafka::Message;
    assert_eq!(records[0].payload(), Some(WEBHOOK.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_rejected_without_expanding() {
    require_broker();
    let topic = unique("hostile-bomb");
    let (url, _) = start(receiver_config(&topic)).await;

    // 64 MiB of spaces inside a string compress to about 64 KB; the 1 MiB limit stops the
    // decompression long before the end.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(br#"{"type":"wallet_update","userId":"u1","pad":""#)
        .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.write_all(br#""}"#).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(
        bomb.len() < 200_000,
        "the bomb itself is {} bytes",
        bomb.len()
    );

    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(WEBHOOK_KEY)
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let unsupported = reqwest::Client::new()
        .post(&url)
        .bearer_auth(WEBHOOK_KEY)
        .header("content-encoding", "br")
        .body(WEBHOOK)
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), 415);
    assert_eq!(records_in(&topic), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_disconnected() {
    require_broker();
    let mut config = receiver_config(&unique("hostile-slow-headers"));
    config.header_read_timeout = Duration::from_millis(500);
    let (_, address) = start(config).await;

    let started = Instant::now();
    let partial =
        format!("POST /webhooks/gwen HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer");
    let response = exchange(&address, partial.as_bytes(), Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection stayed open {:?}",
        started.elapsed()
    );
    assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_gets_408() {
    require_broker();
    let topic = unique("hostile-slow-body");
    let mut config = receiver_config(&topic);
    config.body_read_timeout = Duration::from_millis(500);
    let (_, address) = start(config).await;

    let request = format!(
        "POST /webhooks/gwen HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {WEBHOOK_KEY}\r\nContent-Length: 100\r\n\r\n{{\"type\""
    );
    let response = exchange(&address, request.as_bytes(), Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(records_in(&topic), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_concurrency_limit_get_503() {
    require_broker();
    let mut config = receiver_config(&unique("hostile-flood"));
    config.max_concurrent_requests = 1;
    let (url, address) = start(config).await;

    // The first request holds the only permit while its body trickles in.
    let mut holder = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhooks/gwen HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {WEBHOOK_KEY}\r\nContent-Length: {}\r\n\r\n{{",
        WEBHOOK.len()
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let response = post(&url, WEBHOOK).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    holder.write_all(&WEBHOOK.as_bytes()[1..]).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), holder.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    assert_eq!(post(&url, WEBHOOK).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_json_rejections_produce_nothing() {
    require_broker();
    let topic = unique("hostile-json");
    let (url, _) = start(receiver_config(&topic)).await;

    let deep = format!(
        r#"{{"type":"wallet_update","userId":"u1","state":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    for body in [
        r#"{"type":"wallet_update","userId":"u1","userId":"u2"}"#.to_string(),
        r#"[{"type":"wallet_update","userId":"u1"},{"type":"a","state":{"k":1,"k":2}}]"#
            .to_string(),
        r#"{"type":"wallet_update","userId":"u1","name":"\udc00"}"#.to_string(),
        deep,
    ] {
        let response = post(&url, &body).await;
        assert_eq!(response.status(), 400, "body {body:.80}");
    }
    assert_eq!(records_in(&topic), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_reach_segment_digit_for_digit() {
    require_broker();
    let topic = unique("hostile-numbers");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;

    let webhook = r#"{"type":"wallet_update","userId":98765432109876543210,"timestamp":1764853200,"balance":123456789012345678901234567890.000000000000000000001,"tiny":1e-400,"huge":-1.5e+400}"#;
    post_ok(&receiver.url, webhook).await;
    wait_until(Duration::from_secs(30), "the event", || {
        !capture.capture.raw_events().is_empty()
    })
    .await;

    let raw = &capture.capture.raw_events()[0];
    assert!(raw.contains(&format!(r#""properties":{webhook}"#)), "{raw}");
    assert!(raw.contains(r#""userId":"98765432109876543210""#), "{raw}");
    forwarder.stop().await;
    receiver.shutdown.cancel();
}
