//! The Schema Registry side of the data contract: the receiver registers the webhook JSON Schema
//! under `<topic>-value` (topic-name strategy), and the forwarder checks the schema ids it reads.

use std::collections::HashSet;
use std::sync::Mutex;

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use tokio::sync::OnceCell;
use tracing::info;

use crate::secret::url_without_userinfo;

/// The JSON Schema of a GWEN webhook as the receiver accepts it.
pub const WEBHOOK_SCHEMA: &str = include_str!("../schemas/gwen-webhook.schema.json");

/// A failed registry call; `retriable` when a later call may succeed (registry down, 5xx).
#[derive(Debug, thiserror::Error)]
#[error("Schema Registry at {url}: {message}")]
pub struct RegistryError {
    pub url: String,
    pub message: String,
    pub retriable: bool,
}

/// A Confluent-compatible Schema Registry.
pub struct SchemaRegistry {
    /// The URL as errors and logs show it, without credentials.
    url: String,
    /// The URL as given, credentials included, to remove from the library's error messages.
    request_url: String,
    settings: SrSettings,
    /// The webhook schema's id, once registered.
    webhook_schema_id: OnceCell<u32>,
    /// Schema ids the registry confirmed as JSON schemas.
    known_ids: Mutex<HashSet<u32>>,
}

impl SchemaRegistry {
    /// Checks `url`, an http or https URL, and returns its registry. Credentials in the URL are
    /// sent as HTTP Basic auth and never shown: errors and logs print `***` in their place.
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let url = url.trim_end_matches('/');
        let display_url = url_without_userinfo(url);
        let invalid = |reason: String| RegistryError {
            url: display_url.clone(),
            message: format!(
                "invalid --schema-registry-url: {reason}; give an http or https URL such as http://schema-registry:8081"
            ),
            retriable: false,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if parsed.host_str().is_none() {
            return Err(invalid("it has no host".into()));
        }
        Ok(SchemaRegistry {
            settings: SrSettings::new(url.to_string()),
            url: display_url,
            request_url: url.to_string(),
            webhook_schema_id: OnceCell::new(),
            known_ids: Mutex::new(HashSet::new()),
        })
    }

    /// Returns the id of the webhook schema under `<topic>-value`, registering it on first use.
    /// Registering again returns the same id, so every receiver gets the same one.
    pub async fn webhook_schema_id(&self, topic: &str) -> Result<u32, RegistryError> {
        let id = self
            .webhook_schema_id
            .get_or_try_init(|| async {
                let subject = format!("{topic}-value");
                let schema = SuppliedSchema::new(None, SchemaType::Json, WEBHOOK_SCHEMA.to_string());
                let registered = post_schema(&self.settings, subject.clone(), schema).await.map_err(|e| self.error(e))?;
                info!(subject, schema_id = registered.id, registry = %self.url, "webhook schema registered");
                Ok::<u32, RegistryError>(registered.id)
            })
            .await?;
        Ok(*id)
    }

    /// Checks that `schema_id` names a JSON schema in the registry; remembers the ids that do.
    pub async fn check_schema_id(&self, schema_id: u32) -> Result<(), RegistryError> {
        if self
            .known_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&schema_id)
        {
            return Ok(());
        }
        let registered = get_schema_by_id(schema_id, &self.settings)
            .await
            .map_err(|e| self.error(e))?;
        if registered.schema_type != SchemaType::Json {
            return Err(RegistryError {
                url: self.url.clone(),
                message: format!(
                    "schema id {schema_id} is a {:?} schema, not a JSON schema",
                    registered.schema_type
                ),
                retriable: false,
            });
        }
        self.known_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(schema_id);
        Ok(())
    }

    fn error(&self, error: SRCError) -> RegistryError {
        // The library's messages may quote the URL it called, credentials included.
        let message = error.to_string().replace(&self.request_url, &self.url);
        RegistryError {
            url: self.url.clone(),
            message,
            retriable: error.retriable,
        }
    }
}
