//! Time to map one webhook's bytes to a serialized Segment track event, by webhook size.
//!
//! Run with `cargo bench --bench mapping`; the throughput line gives events/s, and the time per
//! iteration is the time per event.

mod common;

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gwen_segment::mapping::{MappingConfig, map_webhook};

fn received_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .expect("valid RFC 3339")
        .with_timezone(&Utc)
}

fn map_webhooks(c: &mut Criterion) {
    let config = MappingConfig::default();
    let received_at = received_at();
    let mut inputs = common::fixtures();
    for size in [600, 4_000, 16_000] {
        inputs.push((format!("synthetic_{size}"), common::webhook(size, 1)));
    }

    let mut group = c.benchmark_group("map_webhook");
    group.throughput(Throughput::Elements(1));
    for (name, webhook) in &inputs {
        // The mapping must succeed, or the benchmark would time the rejection path.
        map_webhook(webhook, received_at, &config)
            .unwrap_or_else(|rejection| panic!("{name} is rejected: {}", rejection.reason));
        let id = BenchmarkId::new(name.as_str(), format!("{}B", webhook.len()));
        group.bench_with_input(id, webhook, |b, webhook| {
            b.iter(|| map_webhook(black_box(webhook), received_at, &config));
        });
    }
    group.finish();
}

criterion_group!(benches, map_webhooks);
criterion_main!(benches);
