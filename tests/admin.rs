//! `/healthz` and `/readyz` of the admin endpoint.

use gwen_segment::health::Health;
use tokio::net::TcpListener;

async fn start(components: Vec<Health>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gwen_segment::admin::run(
        listener,
        components,
        std::future::pending(),
    ));
    url
}

async fn status(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn readiness_follows_component_state() {
    let receiver = Health::new("receiver");
    let forwarder = Health::new("forwarder");
    let url = start(vec![receiver.clone(), forwarder.clone()]).await;

    assert_eq!(status(&format!("{url}/healthz")).await.0, 200);
    let (code, text) = status(&format!("{url}/readyz")).await;
    assert_eq!(code, 503);
    assert!(
        text.contains("receiver: starting") && text.contains("forwarder: starting"),
        "{text}"
    );

    receiver.set_started(true);
    forwarder.set_started(true);
    assert_eq!(status(&format!("{url}/readyz")).await.0, 200);

    forwarder.set_halted(true);
    let (code, text) = status(&format!("{url}/readyz")).await;
    assert_eq!(code, 503);
    assert!(text.contains("halted"), "{text}");

    forwarder.set_halted(false);
    receiver.set_stopping();
    let (code, text) = status(&format!("{url}/readyz")).await;
    assert_eq!(code, 503);
    assert!(text.contains("shutting down"), "{text}");
}
