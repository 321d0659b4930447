//! The Segment client over HTTPS: `capture` serving TLS with a test certificate, trusted through
//! `--segment-ca-file`, and refused without it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gwen_segment::capture::{self, Capture, CaptureConfig, Script};
use gwen_segment::secret::Secret;
use gwen_segment::segment::{SegmentClient, Verdict};
use tokio::net::TcpListener;

/// Writes a self-signed certificate for localhost and 127.0.0.1 and its key; returns their paths.
fn certificate() -> (PathBuf, PathBuf) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("tls"));
    std::fs::create_dir_all(&folder).unwrap();
    let (certificate, key) = (folder.join("cert.pem"), folder.join("key.pem"));
    std::fs::write(&certificate, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (certificate, key)
}

async fn start_tls_capture(certificate: &Path, key: &Path) -> (Arc<Capture>, String) {
    let capture = Capture::new(CaptureConfig {
        write_key: Some(Secret::new(WRITE_KEY)),
        output: Box::new(std::io::sink()),
        keep_in_memory: true,
        script: Script::default(),
    });
    let tls = gwen_segment::http_server::tls_acceptor(certificate, key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(capture::run(
        listener,
        capture.clone(),
        Some(tls),
        std::future::pending(),
    ));
    (capture, url)
}

fn batch(client: &SegmentClient) -> bytes::Bytes {
    client
        .encoder()
        .encode([br#"{"type":"track","event":"E","userId":"u1","messageId":"m1"}"#.as_slice()])
}

#[tokio::test]
async fn segment_client_trusts_ca_file() {
    let (certificate, key) = certificate();
    let (capture, url) = start_tls_capture(&certificate, &key).await;

    let client = SegmentClient::new(
        &url,
        Secret::new(WRITE_KEY),
        Duration::from_secs(5),
        Some(&certificate),
    )
    .unwrap();
    assert_eq!(client.send_batch(batch(&client)).await, Verdict::Delivered);
    assert_eq!(capture.events().len(), 1);
}

#[tokio::test]
async fn segment_client_refuses_unknown_certificate() {
    let (certificate, key) = certificate();
    let (capture, url) = start_tls_capture(&certificate, &key).await;

    let client =
        SegmentClient::new(&url, Secret::new(WRITE_KEY), Duration::from_secs(5), None).unwrap();
    let verdict = client.send_batch(batch(&client)).await;
    let Verdict::Retry {
        status: None,
        after: None,
        error: Some(error),
    } = verdict
    else {
        panic!("expected a retry without a response, got {verdict:?}");
    };
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(capture.request_count(), 0);
}

#[test]
fn invalid_ca_file_named_in_error() {
    let missing = PathBuf::from("/nonexistent/ca.pem");
    let error = SegmentClient::new(
        "https://api.segment.io",
        Secret::new(WRITE_KEY),
        Duration::from_secs(5),
        Some(&missing),
    )
    .err()
    .expect("a missing CA file must fail");
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_delivers_over_https() {
    require_broker();
    let (certificate, key) = certificate();
    let (capture, url) = start_tls_capture(&certificate, &key).await;
    let topic = unique("tls");
    let receiver = start_receiver(&topic).await;
    let mut options = forwarder_options(&topic, &unique("dlq"), &unique("group"), &url);
    options.segment = SegmentClient::new(
        &url,
        Secret::new(WRITE_KEY),
        Duration::from_secs(5),
        Some(&certificate),
    )
    .unwrap();
    let forwarder = start_forwarder(options).await;

    post_ok(&receiver.url, &fixture("wallet_update.json")).await;
    wait_until(Duration::from_secs(30), "the event over HTTPS", || {
        !capture.events().is_empty()
    })
    .await;
    assert_eq!(capture.events()[0]["event"], "Wallet Update");

    forwarder.stop().await;
    receiver.shutdown.cancel();
}
