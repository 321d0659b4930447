//! Time to write a Segment batch body of 500 events, and to split and check a receiver request
//! body holding an array of 100 webhooks.
//!
//! Run with `cargo bench --bench batch`; the throughput lines give events/s and webhooks/s.

mod common;

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gwen_segment::mapping::{MappingConfig, map_webhook};
use gwen_segment::receiver::split_records;
use gwen_segment::secret::Secret;
use gwen_segment::segment::BatchEncoder;

/// Size of the synthetic webhooks: the body size the receiver throughput target is stated for.
const WEBHOOK_BYTES: usize = 600;
/// About the events a 475 000-byte batch holds when each is mapped from a 600-byte webhook.
const BATCH_EVENTS: usize = 500;
const ARRAY_WEBHOOKS: usize = 100;
/// The receiver's default --max-record-bytes.
const MAX_RECORD_BYTES: usize = 900_000;

fn encode_batch(c: &mut Criterion) {
    let config = MappingConfig::default();
    let events: Vec<Vec<u8>> = (0..BATCH_EVENTS)
        .map(|user| {
            map_webhook(&common::webhook(WEBHOOK_BYTES, user), Utc::now(), &config)
                .expect("synthetic webhook maps")
                .json
        })
        .collect();
    let encoder = BatchEncoder::new(Some(&Secret::new("bench-write-key")));
    let body_bytes = encoder.encode(events.iter().map(Vec::as_slice)).len();

    let mut group = c.benchmark_group("batch_encode");
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function(format!("{BATCH_EVENTS}_events_{body_bytes}B"), |b| {
        b.iter(|| encoder.encode(black_box(&events).iter().map(Vec::as_slice)));
    });
    group.finish();
}

fn split_array(c: &mut Criterion) {
    let webhooks: Vec<Vec<u8>> = (0..ARRAY_WEBHOOKS)
        .map(|user| common::webhook(WEBHOOK_BYTES, user))
        .collect();
    let mut body = b"[".to_vec();
    body.extend(webhooks.join(&b","[..]));
    body.push(b']');
    let records = split_records(&body, MAX_RECORD_BYTES).expect("synthetic array is valid");
    assert_eq!(records.len(), ARRAY_WEBHOOKS);

    let mut group = c.benchmark_group("split_records");
    group.throughput(Throughput::Elements(ARRAY_WEBHOOKS as u64));
    group.bench_function(format!("{ARRAY_WEBHOOKS}_webhooks_{}B", body.len()), |b| {
        b.iter(|| split_records(black_box(&body), MAX_RECORD_BYTES));
    });
    group.finish();
}

criterion_group!(benches, encode_batch, split_array);
criterion_main!(benches);
