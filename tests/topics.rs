//! `topics ensure` and `topics check` against a real Kafka broker.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use gwen_segment::ops::topics::{self, Mismatch, TopicSpec, TopicsConfig};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;

fn admin() -> AdminClient<DefaultClientContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap()
}

async fn topic_config(topic: &str) -> ConfigResource {
    let mut results = admin()
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    results.pop().unwrap().unwrap()
}

fn partition_count(topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len())
}

fn config_value(resource: &ConfigResource, name: &str) -> String {
    resource
        .get(name)
        .and_then(|entry| entry.value.clone())
        .unwrap_or_default()
}

fn spec(partitions: i32) -> TopicSpec {
    TopicSpec {
        partitions,
        replication_factor: 1,
        retention: Some(Duration::from_secs(7 * 24 * 3600)),
        min_insync_replicas: Some(1),
        max_record_bytes: 900_000,
    }
}

fn topics_config(topic: &str, dlq_topic: &str, spec: TopicSpec) -> TopicsConfig {
    TopicsConfig {
        topic: topic.to_string(),
        dlq_topic: dlq_topic.to_string(),
        spec,
    }
}

/// Creates a topic the way another tool might: compacted, small records, two partitions.
async fn create_compacted_topic(topic: &str) {
    let new_topic = NewTopic::new(topic, 2, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", "500000");
    let results = admin()
        .create_topics([&new_topic], &AdminOptions::new())
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_creates_topics_with_expected_settings() {
    require_broker();
    let config = topics_config(&unique("topics-main"), &unique("topics-dlq"), spec(3));

    let report = topics::ensure(&kafka_settings(), &config).await.unwrap();
    assert!(report.matches(), "{report}");
    assert_eq!(report.topics.len(), 2);
    for status in &report.topics {
        assert!(status.created, "{report}");
        let resource = topic_config(&status.topic).await;
        assert_eq!(config_value(&resource, "cleanup.policy"), "delete");
        assert_eq!(config_value(&resource, "max.message.bytes"), "1048576");
        assert_eq!(config_value(&resource, "retention.ms"), "604800000");
        assert_eq!(config_value(&resource, "min.insync.replicas"), "1");
    }
    assert_eq!(partition_count(&config.topic), 3);

    let again = topics::ensure(&kafka_settings(), &config).await.unwrap();
    assert!(again.matches(), "{again}");
    assert!(again.topics.iter().all(|status| !status.created));
    let checked = topics::check(&kafka_settings(), &config).await.unwrap();
    assert!(checked.matches(), "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_reports_differing_topic_unchanged() {
    require_broker();
    let topic = unique("topics-compacted");
    create_compacted_topic(&topic).await;
    let config = topics_config(&topic, &unique("topics-dlq"), spec(3));

    let report = topics::ensure(&kafka_settings(), &config).await.unwrap();
    assert!(!report.matches());
    let main = &report.topics[0];
    assert!(!main.created);
    let mismatch = |setting: &str| -> Option<&Mismatch> {
        main.mismatches.iter().find(|m| m.setting == setting)
    };
    let partitions = mismatch("partitions").expect("a partitions mismatch");
    assert_eq!(
        (partitions.expected.as_str(), partitions.actual.as_str()),
        ("3", "2")
    );
    let cleanup = mismatch("cleanup.policy").expect("a cleanup.policy mismatch");
    assert_eq!(cleanup.actual, "compact");
    let size = mismatch("max.message.bytes").expect("a max.message.bytes mismatch");
    assert_eq!(size.actual, "500000");
    assert!(mismatch("min.insync.replicas").is_none(), "{report}");
    let dlq = &report.topics[1];
    assert!(dlq.created, "{report}");
    assert!(dlq.mismatches.is_empty(), "{report}");

    // Nothing about the existing topic changed.
    assert_eq!(partition_count(&topic), 2);
    let resource = topic_config(&topic).await;
    assert_eq!(config_value(&resource, "cleanup.policy"), "compact");
    assert_eq!(config_value(&resource, "max.message.bytes"), "500000");
}

fn topics_cli(command: &str, topic: &str, dlq_topic: &str, partitions: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(["topics", command, "--brokers", &brokers()])
        .args(["--topic", topic, "--dlq-topic", dlq_topic])
        .args(["--partitions", partitions, "--replication-factor", "1"])
        .args(["--retention", "7d"])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_cli_exits_nonzero_on_mismatch() {
    require_broker();
    let topic = unique("topics-cli");
    let dlq_topic = unique("topics-cli-dlq");
    let stdout = |output: &Output| String::from_utf8_lossy(&output.stdout).into_owned();

    let missing = topics_cli("check", &topic, &dlq_topic, "2");
    assert!(!missing.status.success());
    assert!(stdout(&missing).contains("missing"), "{}", stdout(&missing));

    let ensured = topics_cli("ensure", &topic, &dlq_topic, "2");
    assert!(
        ensured.status.success(),
        "{}",
        String::from_utf8_lossy(&ensured.stderr)
    );
    assert!(stdout(&ensured).contains("created"), "{}", stdout(&ensured));

    let matching = topics_cli("check", &topic, &dlq_topic, "2");
    assert!(matching.status.success(), "{}", stdout(&matching));

    let differing = topics_cli("check", &topic, &dlq_topic, "4");
    assert!(!differing.status.success());
    assert!(
        stdout(&differing).contains("partitions: expected 4, found 2"),
        "{}",
        stdout(&differing)
    );

    let ensure_differing = topics_cli("ensure", &topic, &dlq_topic, "4");
    assert!(ensure_differing.status.success());
    assert!(
        stdout(&ensure_differing).contains("left unchanged"),
        "{}",
        stdout(&ensure_differing)
    );
    assert_eq!(partition_count(&topic), 2);
}
