//! Framed record values: strips the Confluent header and, with a Schema Registry configured,
//! keeps messages waiting until their schema id is confirmed, retrying while the registry is down.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::kafka::framing::{Value, unframe};
use crate::mapping::{DlqKind, Rejection};
use crate::registry::SchemaRegistry;

#[derive(Debug, Clone)]
enum Status {
    Checking,
    Valid,
    Invalid(String),
}

/// The decision about one record value.
pub enum Gate<'a> {
    /// Map these JSON bytes.
    Map(&'a [u8]),
    Reject(Rejection),
    /// Hold the message until the schema id is checked; start `lookup` if given.
    Wait {
        lookup: Option<SchemaLookup>,
    },
}

/// A schema id check that retries until the registry responds; resolves to the id and the verdict.
pub type SchemaLookup = std::pin::Pin<Box<dyn Future<Output = (u32, Result<(), String>)> + Send>>;

pub struct SchemaGate {
    registry: Option<Arc<SchemaRegistry>>,
    backoff: Backoff,
    statuses: HashMap<u32, Status>,
    /// Framed values were seen without a registry to check them; logged once.
    unchecked_logged: bool,
}

impl SchemaGate {
    pub fn new(registry: Option<Arc<SchemaRegistry>>, backoff: Backoff) -> Self {
        SchemaGate {
            registry,
            backoff,
            statuses: HashMap::new(),
            unchecked_logged: false,
        }
    }

    /// Decides about one record value. Plain JSON passes straight through.
    pub fn check<'a>(&mut self, value: &'a [u8]) -> Gate<'a> {
        let (schema_id, json) = match unframe(value) {
            Value::Plain(json) => return Gate::Map(json),
            Value::Truncated => {
                return Gate::Reject(Rejection {
                    kind: DlqKind::InvalidWebhook,
                    reason: "The value starts with the Schema Registry magic byte but is shorter than its 5-byte header.".into(),
                });
            }
            Value::Framed { schema_id, json } => (schema_id, json),
        };
        let Some(registry) = &self.registry else {
            if !self.unchecked_logged {
                self.unchecked_logged = true;
                info!(
                    schema_id,
                    "reading Schema Registry framed values without checking their schema ids (no --schema-registry-url)"
                );
            }
            return Gate::Map(json);
        };

        match self.statuses.get(&schema_id) {
            Some(Status::Valid) => Gate::Map(json),
            Some(Status::Invalid(reason)) => Gate::Reject(Rejection {
                kind: DlqKind::InvalidWebhook,
                reason: reason.clone(),
            }),
            Some(Status::Checking) => Gate::Wait { lookup: None },
            None => {
                self.statuses.insert(schema_id, Status::Checking);
                let lookup = lookup(registry.clone(), schema_id, self.backoff);
                Gate::Wait {
                    lookup: Some(Box::pin(lookup)),
                }
            }
        }
    }

    /// Records the verdict of a lookup.
    pub fn resolve(&mut self, schema_id: u32, verdict: Result<(), String>) {
        let status = match verdict {
            Ok(()) => Status::Valid,
            Err(reason) => Status::Invalid(reason),
        };
        self.statuses.insert(schema_id, status);
    }
}

async fn lookup(
    registry: Arc<SchemaRegistry>,
    schema_id: u32,
    backoff: Backoff,
) -> (u32, Result<(), String>) {
    let mut attempt = 0u32;
    loop {
        match registry.check_schema_id(schema_id).await {
            Ok(()) => return (schema_id, Ok(())),
            Err(error) if !error.retriable => {
                return (
                    schema_id,
                    Err(format!(
                        "The value's schema id {schema_id} is not a usable JSON schema: {error}."
                    )),
                );
            }
            Err(error) => {
                let wait = backoff.delay(attempt);
                warn!(schema_id, error = %error, attempt = attempt + 1, wait_ms = wait.as_millis() as u64,
                    "cannot check a schema id; its messages wait uncommitted, retrying");
                tokio::time::sleep(wait).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}
