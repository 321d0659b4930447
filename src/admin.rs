//! The admin endpoint: `/healthz` (the process runs), `/readyz` (it should get traffic) and
//! `/metrics` (Prometheus text).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::info;

use crate::health::Health;

pub fn router(components: Vec<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { crate::metrics::render() }))
        .with_state(components)
}

async fn readyz(State(components): State<Vec<Health>>) -> impl IntoResponse {
    let reasons: Vec<String> = components
        .iter()
        .filter_map(|health| health.readiness().err())
        .collect();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reasons.join("; ")),
        )
    }
}

/// Serves the admin endpoint until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    components: Vec<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    info!(address = %listener.local_addr()?, "admin endpoint listening");
    axum::serve(listener, router(components))
        .with_graceful_shutdown(shutdown)
        .await
}
