//! The capture server checks write keys and Segment's limits, records what it accepts, and can be
//! scripted to fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use gwen_segment::capture::{self, Capture, CaptureConfig, Failure, Script};
use gwen_segment::secret::Secret;
use tokio::net::TcpListener;

/// An output the test can read back.
#[derive(Clone, Default)]
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start() -> (Arc<Capture>, String, SharedOutput) {
    let output = SharedOutput::default();
    let capture = Capture::new(CaptureConfig {
        write_key: Some(Secret::new("right-key")),
        output: Box::new(output.clone()),
        keep_in_memory: true,
        script: Script::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(capture::run(
        listener,
        capture.clone(),
        None,
        std::future::pending(),
    ));
    (capture, url, output)
}

async fn post(url: &str, user: Option<&str>, body: String) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(user) = user {
        request = request.basic_auth(user, Some(""));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn capture_records_batch_events_as_lines() {
    let (capture, url, output) = start().await;
    let body = r#"{"batch":[{"type":"track","messageId":"a"},{"type":"track","messageId":"b"}]}"#;
    let response = post(&format!("{url}/v1/batch"), Some("right-key"), body.into()).await;
    assert_eq!(response.status(), 200);

    let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        "{\"type\":\"track\",\"messageId\":\"a\"}\n{\"type\":\"track\",\"messageId\":\"b\"}\n"
    );
    assert_eq!(capture.events().len(), 2);
}

#[tokio::test]
async fn capture_takes_write_key_from_body() {
    let (capture, url, _) = start().await;
    let body = r#"{"batch":[{"type":"track"}],"writeKey":"right-key"}"#;
    assert_eq!(
        post(&format!("{url}/v1/batch"), None, body.into())
            .await
            .status(),
        200
    );
    let track = r#"{"type":"track","event":"E","userId":"u","writeKey":"right-key"}"#;
    assert_eq!(
        post(&format!("{url}/v1/track"), None, track.into())
            .await
            .status(),
        200
    );
    assert_eq!(capture.events().len(), 2);
}

#[tokio::test]
async fn capture_rejects_wrong_or_missing_write_key() {
    let (capture, url, _) = start().await;
    let body = r#"{"batch":[{"type":"track"}]}"#;
    assert_eq!(
        post(&format!("{url}/v1/batch"), Some("wrong-key"), body.into())
            .await
            .status(),
        401
    );
    assert_eq!(
        post(&format!("{url}/v1/batch"), None, body.into())
            .await
            .status(),
        401
    );
    assert!(capture.events().is_empty());
}

#[tokio::test]
async fn capture_applies_segment_limits() {
    let (capture, url, _) = start().await;
    let batch_url = format!("{url}/v1/batch");

    let invalid = post(&batch_url, Some("right-key"), "{not json".into()).await;
    assert_eq!(invalid.status(), 400);

    let big_event = format!(
        r#"{{"batch":[{{"type":"track","pad":"{}"}}]}}"#,
        "x".repeat(32_000)
    );
    assert_eq!(
        post(&batch_url, Some("right-key"), big_event)
            .await
            .status(),
        400
    );

    let events: Vec<String> = (0..30)
        .map(|_| format!(r#"{{"pad":"{}"}}"#, "x".repeat(20_000)))
        .collect();
    let big_body = format!(r#"{{"batch":[{}]}}"#, events.join(","));
    assert!(big_body.len() > 500_000);
    assert_eq!(
        post(&batch_url, Some("right-key"), big_body).await.status(),
        400
    );

    assert!(capture.events().is_empty());
}

#[tokio::test]
async fn capture_scripted_failures_then_success() {
    let (capture, url, _) = start().await;
    let failure = Failure {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: Some(Duration::from_secs(3)),
    };
    capture.script.fail_next(failure, 2);
    let body = r#"{"batch":[{"type":"track"}]}"#;
    let batch_url = format!("{url}/v1/batch");

    for _ in 0..2 {
        let response = post(&batch_url, Some("right-key"), body.into()).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
    }
    assert_eq!(
        post(&batch_url, Some("right-key"), body.into())
            .await
            .status(),
        200
    );
    assert_eq!(capture.request_count(), 3);
    assert_eq!(capture.events().len(), 1);
}

#[tokio::test]
async fn capture_delays_responses_by_latency() {
    let (capture, url, _) = start().await;
    capture.script.set_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let response = post(
        &format!("{url}/v1/batch"),
        Some("right-key"),
        r#"{"batch":[]}"#.into(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
