//! gwen-segment carries GWEN gamification webhooks into Twilio Segment through Kafka.
//!
//! The receiver writes each webhook's bytes to a Kafka topic; the forwarder maps them to Segment
//! `track` calls and commits offsets only after Segment acknowledged them.

pub mod mapping;
pub mod kafka;
pub mod secret;
pub mod backoff;
pub mod segment;
pub mod capture;
pub mod admin;
pub mod health;
pub mod receiver;
pub mod forwarder;
pub mod service;
