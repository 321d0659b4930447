//! Turns parsed options into each component's configuration and runs the chosen command.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use axum::http::StatusCode;
use gwen_segment::capture::{self, Capture, CaptureConfig, Failure, Script};
use gwen_segment::forwarder::{BatchLimits, ForwarderConfig};
use gwen_segment::health::Health;
use gwen_segment::mapping::MappingConfig;
use gwen_segment::receiver::ReceiverConfig;
use gwen_segment::segment::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use gwen_segment::service::{self, ForwarderOptions, ReceiverOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{CaptureArgs, Command, ForwarderArgs, ReceiverArgs};

/// Segment batch requests that may be unanswered at once, each for distinct partitions.
const MAX_CONCURRENT_BATCHES: usize = 8;

pub async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    service::cancel_on_signal(shutdown.clone());
    match command {
        Command::Receiver(args) => receiver(args, shutdown).await,
        Command::Forwarder(args) => forwarder(args, shutdown).await,
        Command::Capture(args) => capture(args, shutdown).await,
    }
}

async fn bind(address: std::net::SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({flag}); pick a free address"))
}

async fn receiver(args: ReceiverArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let options = ReceiverOptions {
        kafka: args.kafka.settings()?,
        topics: args.kafka.topic_policy(),
        config: ReceiverConfig {
            topic: args.topic,
            max_body_bytes: args.max_body_bytes,
            max_record_bytes: args.max_record_bytes,
            produce_timeout: args.produce_timeout,
        },
        webhook_keys: args.webhook_keys,
        allow_unauthenticated: args.allow_unauthenticated,
    };
    let listener = bind(args.listen, "--listen").await?;
    let admin = bind(args.admin_listen, "--admin-listen").await?;

    let health = Health::new("receiver");
    service::spawn_admin(admin, vec![health.clone()], shutdown.clone());
    let result = service::run_receiver(options, listener, health, shutdown.clone()).await;
    shutdown.cancel();
    result
}

async fn forwarder(args: ForwarderArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let options = ForwarderOptions {
        kafka: args.kafka.settings()?,
        topics: args.kafka.topic_policy(),
        group_id: args.group_id,
        dlq_topic: args.dlq_topic,
        segment_url: args.segment_url,
        segment_write_key: args.segment_write_key,
        segment_timeout: args.segment_timeout,
        retry_max_backoff: args.retry_max_backoff,
        config: ForwarderConfig {
            topic: args.topic,
            mapping: MappingConfig {
                message_id_namespace: args.message_id_namespace,
                unknown_types: args.unknown_types,
            },
            batch: BatchLimits {
                max_bytes: MAX_BATCH_BYTES,
                max_events: MAX_BATCH_EVENTS,
                linger: args.batch_linger,
            },
            max_concurrent_batches: MAX_CONCURRENT_BATCHES,
            max_in_flight_bytes: args.max_in_flight_bytes,
            shutdown_timeout: args.shutdown_timeout,
        },
    };
    let admin = bind(args.admin_listen, "--admin-listen").await?;

    let health = Health::new("forwarder");
    service::spawn_admin(admin, vec![health.clone()], shutdown.clone());
    let result = service::run_forwarder(options, health, shutdown.clone()).await;
    shutdown.cancel();
    result
}

async fn capture(args: CaptureArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let output: Box<dyn Write + Send> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.output)
            .with_context(|| format!("cannot open --output {}", args.output.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };

    let script = Script::default();
    script.set_latency(args.latency);
    if let (Some(status), Some(count)) = (args.fail_status, args.fail_count) {
        let status = StatusCode::from_u16(status).with_context(|| {
            format!("invalid --fail-status {status}: use an HTTP status such as 500")
        })?;
        let retry_after = args.retry_after.map(std::time::Duration::from_secs);
        script.fail_next(
            Failure {
                status,
                retry_after,
            },
            count,
        );
    }

    let capture = Capture::new(CaptureConfig {
        write_key: args.segment_write_key,
        output,
        keep_in_memory: false,
        script,
    });
    let listener = bind(args.listen, "--listen").await?;
    capture::run(listener, Arc::clone(&capture), shutdown.cancelled_owned()).await?;
    Ok(())
}
