//! `topics ensure` and `topics check`: creates the main and dead-letter topics with the settings
//! delivery relies on, and compares existing topics with them without changing them.

use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use super::consumer::{OpsConsumer, REQUEST_TIMEOUT};
use super::{OpsError, blocking};
use crate::kafka::KafkaSettings;

/// Room for the record batch header, the key and the headers around a webhook of
/// `--max-record-bytes`.
pub const RECORD_OVERHEAD_BYTES: usize = 64 * 1024;
/// `max.message.bytes` of a created topic when the record limit needs less.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_576;
/// How long a created topic may take to appear in the metadata.
const METADATA_WAIT: Duration = Duration::from_secs(10);

/// The settings both topics should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: i32,
    pub replication_factor: i32,
    /// `retention.ms`, or `None` to keep the broker's default and skip the comparison.
    pub retention: Option<Duration>,
    /// `min.insync.replicas`, or `None` to keep the broker's default and skip the comparison.
    pub min_insync_replicas: Option<i32>,
    /// The receiver's `--max-record-bytes`, which the topics must accept.
    pub max_record_bytes: usize,
}

impl TopicSpec {
    /// Returns the smallest `max.message.bytes` that fits a record of `max_record_bytes`.
    pub fn required_max_message_bytes(&self) -> usize {
        self.max_record_bytes.saturating_add(RECORD_OVERHEAD_BYTES)
    }

    /// Returns the `max.message.bytes` a created topic gets.
    pub fn max_message_bytes(&self) -> usize {
        self.required_max_message_bytes()
            .max(DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Rejects contradictory settings, naming the options.
    pub fn validate(&self) -> Result<(), OpsError> {
        if self.partitions < 1 {
            return Err(OpsError::InvalidOption {
                option: "--partitions",
                reason: format!("{} is below 1", self.partitions),
            });
        }
        if self.replication_factor < 1 {
            return Err(OpsError::InvalidOption {
                option: "--replication-factor",
                reason: format!("{} is below 1", self.replication_factor),
            });
        }
        if let Some(min_insync) = self.min_insync_replicas
            && (min_insync < 1 || min_insync > self.replication_factor)
        {
            return Err(OpsError::InvalidOption {
                option: "--min-insync-replicas",
                reason: format!(
                    "{min_insync} must be between 1 and --replication-factor {}, or no write with acks=all could succeed",
                    self.replication_factor
                ),
            });
        }
        Ok(())
    }

    /// Returns the topic-level settings a created topic gets, as `(name, value)`.
    fn configs(&self) -> Vec<(&'static str, String)> {
        let mut configs = vec![
            ("cleanup.policy", "delete".to_string()),
            ("max.message.bytes", self.max_message_bytes().to_string()),
        ];
        if let Some(retention) = self.retention {
            configs.push(("retention.ms", retention.as_millis().to_string()));
        }
        if let Some(min_insync) = self.min_insync_replicas {
            configs.push(("min.insync.replicas", min_insync.to_string()));
        }
        configs
    }
}

#[derive(Debug, Clone)]
pub struct TopicsConfig {
    pub topic: String,
    pub dlq_topic: String,
    pub spec: TopicSpec,
}

/// A setting of an existing topic that differs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub setting: &'static str,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    pub topic: String,
    /// Whether this run created the topic.
    pub created: bool,
    /// Whether the topic is missing (only `check` leaves it so).
    pub missing: bool,
    pub mismatches: Vec<Mismatch>,
}

#[derive(Debug, Clone)]
pub struct TopicsReport {
    pub topics: Vec<TopicStatus>,
}

impl TopicsReport {
    /// Returns whether every topic exists with the spec's settings.
    pub fn matches(&self) -> bool {
        self.topics
            .iter()
            .all(|t| !t.missing && t.mismatches.is_empty())
    }
}

impl TopicsConfig {
    fn validate(&self) -> Result<(), OpsError> {
        self.spec.validate()?;
        super::check_distinct_topics(&self.topic, &self.dlq_topic)
    }
}

/// Creates the missing topics, then compares every topic with the spec.
pub async fn ensure(
    settings: &KafkaSettings,
    config: &TopicsConfig,
) -> Result<TopicsReport, OpsError> {
    config.validate()?;
    let admin = admin_client(settings)?;
    let mut topics = Vec::new();
    for topic in [&config.topic, &config.dlq_topic] {
        let existing = describe(settings, &admin, topic, &config.spec).await?;
        let status = match existing {
            Some(status) => status,
            None => {
                create(&admin, topic, &config.spec).await?;
                let status = wait_for_topic(settings, &admin, topic, &config.spec).await?;
                TopicStatus {
                    created: true,
                    ..status
                }
            }
        };
        topics.push(status);
    }
    Ok(TopicsReport { topics })
}

/// Compares every topic with the spec; changes nothing.
pub async fn check(
    settings: &KafkaSettings,
    config: &TopicsConfig,
) -> Result<TopicsReport, OpsError> {
    config.validate()?;
    let admin = admin_client(settings)?;
    let mut topics = Vec::new();
    for topic in [&config.topic, &config.dlq_topic] {
        let status = describe(settings, &admin, topic, &config.spec)
            .await?
            .unwrap_or_else(|| TopicStatus {
                topic: topic.clone(),
                created: false,
                missing: true,
                mismatches: Vec::new(),
            });
        topics.push(status);
    }
    Ok(TopicsReport { topics })
}

type Admin = AdminClient<DefaultClientContext>;

fn admin_client(settings: &KafkaSettings) -> Result<Admin, OpsError> {
    settings
        .client_config()
        .create()
        .map_err(OpsError::kafka("create a Kafka admin client"))
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

async fn create(admin: &Admin, topic: &str, spec: &TopicSpec) -> Result<(), OpsError> {
    let configs = spec.configs();
    let mut new_topic = NewTopic::new(
        topic,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    for (name, value) in &configs {
        new_topic = new_topic.set(name, value);
    }
    let results = admin
        .create_topics([&new_topic], &admin_options())
        .await
        .map_err(OpsError::kafka(format!("create topic {topic}")))?;

    for result in results {
        match result {
            Ok(_) => {
                info!(%topic, partitions = spec.partitions, replication_factor = spec.replication_factor, ?configs, "created topic")
            }
            // Created by someone else meanwhile; it is compared like any existing topic.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(OpsError::Failed(format!(
                    "cannot create topic {topic}: {code}; check --replication-factor against the number of brokers and the client's ACLs"
                )));
            }
        }
    }
    Ok(())
}

/// Looks up a topic just created until the metadata shows it.
async fn wait_for_topic(
    settings: &KafkaSettings,
    admin: &Admin,
    topic: &str,
    spec: &TopicSpec,
) -> Result<TopicStatus, OpsError> {
    let start = Instant::now();
    loop {
        if let Some(status) = describe(settings, admin, topic, spec).await? {
            return Ok(status);
        }
        if start.elapsed() > METADATA_WAIT {
            return Err(OpsError::Failed(format!(
                "topic {topic} was created but is not in the metadata after {}s; run `gwen-segment topics check` in a moment",
                METADATA_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Compares an existing topic with the spec; `None` when the topic does not exist.
async fn describe(
    settings: &KafkaSettings,
    admin: &Admin,
    topic: &str,
    spec: &TopicSpec,
) -> Result<Option<TopicStatus>, OpsError> {
    let Some(layout) = layout(settings, topic).await? else {
        return Ok(None);
    };
    let configs = topic_configs(admin, topic).await?;
    Ok(Some(TopicStatus {
        topic: topic.to_string(),
        created: false,
        missing: false,
        mismatches: compare(spec, layout, &configs),
    }))
}

/// Partition count and smallest replication factor of a topic.
#[derive(Debug, Clone, Copy)]
struct Layout {
    partitions: i32,
    replication_factor: i32,
}

async fn layout(settings: &KafkaSettings, topic: &str) -> Result<Option<Layout>, OpsError> {
    let settings = settings.clone();
    let topic = topic.to_string();
    blocking(move || {
        let consumer = OpsConsumer::new(&settings, None)?;
        let metadata = consumer
            .inner()
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(format!(
                "fetch the metadata of topic {topic}"
            )))?;
        let Some(found) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        else {
            return Ok(None);
        };
        let replication_factor = found
            .partitions()
            .iter()
            .map(|p| p.replicas().len() as i32)
            .min()
            .unwrap_or(0);
        Ok(Some(Layout {
            partitions: found.partitions().len() as i32,
            replication_factor,
        }))
    })
    .await
}

async fn topic_configs(admin: &Admin, topic: &str) -> Result<ConfigResource, OpsError> {
    let action = || format!("describe the configuration of topic {topic}");
    let mut results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options())
        .await
        .map_err(OpsError::kafka(action()))?;
    match results.pop() {
        Some(Ok(resource)) => Ok(resource),
        Some(Err(code)) => Err(OpsError::Failed(format!("cannot {}: {code}", action()))),
        None => Err(OpsError::Failed(format!(
            "cannot {}: the brokers returned nothing",
            action()
        ))),
    }
}

fn compare(spec: &TopicSpec, layout: Layout, configs: &ConfigResource) -> Vec<Mismatch> {
    let value = |name: &str| {
        configs
            .get(name)
            .and_then(|entry| entry.value.clone())
            .unwrap_or_else(|| "unknown".to_string())
    };
    let mut mismatches = Vec::new();
    let mut differs = |setting: &'static str, expected: String, actual: String| {
        mismatches.push(Mismatch {
            setting,
            expected,
            actual,
        });
    };

    if layout.partitions != spec.partitions {
        differs(
            "partitions",
            spec.partitions.to_string(),
            layout.partitions.to_string(),
        );
    }
    if layout.replication_factor != spec.replication_factor {
        differs(
            "replication factor",
            spec.replication_factor.to_string(),
            layout.replication_factor.to_string(),
        );
    }
    let cleanup = value("cleanup.policy");
    if cleanup != "delete" {
        differs("cleanup.policy", "delete".to_string(), cleanup);
    }
    if let Some(retention) = spec.retention {
        let actual = value("retention.ms");
        if actual.parse::<u128>().ok() != Some(retention.as_millis()) {
            differs("retention.ms", retention.as_millis().to_string(), actual);
        }
    }
    if let Some(min_insync) = spec.min_insync_replicas {
        let actual = value("min.insync.replicas");
        if actual.parse::<i32>().ok() != Some(min_insync) {
            differs("min.insync.replicas", min_insync.to_string(), actual);
        }
    }
    let actual = value("max.message.bytes");
    let required = spec.required_max_message_bytes();
    match actual.parse::<usize>() {
        Ok(bytes) if bytes >= required => {}
        _ => differs("max.message.bytes", format!("at least {required}"), actual),
    }
    mismatches
}

impl fmt::Display for TopicsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for status in &self.topics {
            if status.missing {
                writeln!(
                    f,
                    "topic {}: missing; create it with `gwen-segment topics ensure`",
                    status.topic
                )?;
                continue;
            }
            let state = if status.created { "created" } else { "exists" };
            if status.mismatches.is_empty() {
                writeln!(f, "topic {}: {state}, settings as expected", status.topic)?;
                continue;
            }
            writeln!(
                f,
                "topic {}: {state} with other settings (left unchanged; change them with your cluster's tools):",
                status.topic
            )?;
            for mismatch in &status.mismatches {
                writeln!(
                    f,
                    "  {}: expected {}, found {}",
                    mismatch.setting, mismatch.expected, mismatch.actual
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TopicSpec {
        TopicSpec {
            partitions: 6,
            replication_factor: 3,
            retention: None,
            min_insync_replicas: Some(2),
            max_record_bytes: 900_000,
        }
    }

    #[test]
    fn max_message_bytes_fits_record_limit() {
        assert_eq!(spec().max_message_bytes(), 1_048_576);
        let large = TopicSpec {
            max_record_bytes: 2_000_000,
            ..spec()
        };
        assert_eq!(large.max_message_bytes(), 2_000_000 + 65_536);
    }

    #[test]
    fn spec_rejects_min_insync_above_replication() {
        let spec = TopicSpec {
            min_insync_replicas: Some(4),
            ..spec()
        };
        let error = spec.validate().unwrap_err().to_string();
        assert!(error.contains("--replication-factor 3"), "{error}");
    }
}
