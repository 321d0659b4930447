//! gwen-segment carries GWEN gamification webhooks into Twilio Segment through Kafka.
//!
//! The receiver writes each webhook's bytes to a Kafka topic; the forwarder maps them to Segment
//! `track` calls and commits offsets only after Segment acknowledged them.

pub mod mapping;
