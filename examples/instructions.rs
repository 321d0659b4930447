//! Maps one webhook, or splits one request body, a given number of times, for instruction counts
//! under callgrind. These are steadier than criterion's times on a shared machine.
//!
//! ```text
//! cargo build --release --example instructions
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*instructions::run*' \
//!     target/release/examples/instructions map600 2000
//! ```
//!
//! Callgrind's total `Ir` divided by the count is the instruction count of one iteration. Under
//! valgrind, sha2 0.11 runs its software SHA-256, so `message_id` takes a larger share than on a
//! CPU whose SHA extensions sha2 uses.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use chrono::{DateTime, Utc};
use gwen_segment::mapping::{MappingConfig, map_webhook};
use gwen_segment::receiver::split_records;

/// The receiver's default --max-record-bytes.
const MAX_RECORD_BYTES: usize = 900_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let input = args.next().unwrap_or_default();
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let received_at = DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .expect("valid RFC 3339")
        .with_timezone(&Utc);

    match input.as_str() {
        "map600" => run_mapping(&common::webhook(600, 1), received_at, count),
        "map16000" => run_mapping(&common::webhook(16_000, 1), received_at, count),
        "split100" => {
            let webhooks: Vec<Vec<u8>> = (0..100).map(|user| common::webhook(600, user)).collect();
            let mut body = b"[".to_vec();
            body.extend(webhooks.join(&b","[..]));
            body.push(b']');
            run_split(&body, count);
        }
        _ => {
            eprintln!("usage: instructions map600|map16000|split100 COUNT");
            std::process::exit(2);
        }
    }
}

#[inline(never)]
fn run_mapping(webhook: &[u8], received_at: DateTime<Utc>, count: usize) {
    let config = MappingConfig::default();
    for _ in 0..count {
        let event = map_webhook(black_box(webhook), received_at, &config);
        assert!(event.is_ok(), "the webhook is rejected");
    }
}

#[inline(never)]
fn run_split(body: &[u8], count: usize) {
    for _ in 0..count {
        let records = split_records(black_box(body), MAX_RECORD_BYTES);
        assert!(records.is_ok(), "the body is rejected");
    }
}
