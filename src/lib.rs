//! gwen-segment carries GWEN gamification webhooks into Twilio Segment through Kafka.
//!
//! The receiver writes each webhook's bytes to a Kafka topic. The forwarder maps them to Segment
//! `track` calls and commits offsets only after Segment acknowledged them.

pub mod admin;
pub mod backoff;
pub mod capture;
pub mod forwarder;
pub mod health;
pub mod http_server;
pub mod kafka;
pub mod mapping;
pub mod metrics;
pub mod ops;
pub mod receiver;
pub mod registry;
pub mod secret;
pub mod segment;
pub mod service;
pub mod telemetry;
pub mod transform;
