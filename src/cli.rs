//! Command-line options. Every option has an environment variable: `GWEN_` and the flag in upper
//! snake case, except the Kafka and Segment connection settings, which use their common names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gwen_segment::kafka::{KafkaSettings, OptionError, TopicPolicy, parse_option};
use gwen_segment::mapping::UnknownTypes;
use gwen_segment::secret::Secret;
use gwen_segment::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "gwen-segment",
    version,
    about = "Carries GWEN webhooks into Twilio Segment through Kafka"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log line format on stderr.
    #[arg(long, env = "GWEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log level or filter (e.g. `debug`, `info,gwen_segment=debug`); RUST_LOG, when set, wins.
    #[arg(long, env = "GWEN_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Base URL of an OpenTelemetry collector's OTLP/HTTP (protobuf) endpoint, such as
    /// `http://otel-collector:4318`; spans go to its `/v1/traces`. Default: no spans exported.
    /// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` and `OTEL_SDK_DISABLED` apply
    /// as the OpenTelemetry SDK defines them.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        hide_env_values = true,
        global = true
    )]
    pub otlp_endpoint: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// HTTP server for GWEN webhooks, producing them to Kafka.
    Receiver(ReceiverArgs),
    /// Consumer-group member that delivers the webhooks to Segment as track events.
    Forwarder(ForwarderArgs),
    /// Receiver and forwarder in one process, on an embedded in-memory broker unless --brokers is
    /// given. For trying it and local development only.
    Standalone(StandaloneArgs),
    /// Prints the Segment event each GWEN webhook becomes, one JSON object a line.
    Transform(TransformArgs),
    /// A local Segment-compatible server that records what it receives, for tests and demos.
    Capture(CaptureArgs),
    /// Resets a consumer group's committed offsets to deliver webhooks again or skip them; a dry
    /// run unless --execute is given.
    Replay(crate::cli_ops::ReplayArgs),
    /// Lists, shows and re-drives the records of the dead-letter topic.
    Dlq(crate::cli_ops::DlqArgs),
    /// Creates the main and dead-letter topics, or checks their settings.
    Topics(crate::cli_ops::TopicsArgs),
}

/// Parses a duration such as `500ms`, `5s` or `2m`.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{error}; write a number and a unit, for example 500ms, 5s or 2m"))
}

/// Parses a duration that must be above zero, such as a timeout.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let parsed = duration(text)?;
    if parsed.is_zero() {
        return Err("it must be above zero, for example 30s".to_string());
    }
    Ok(parsed)
}

/// Parses a size in bytes, written as a whole number without a unit.
pub fn byte_count(text: &str) -> Result<usize, String> {
    text.trim().parse().map_err(|_| {
        "expected a whole number of bytes without a unit, for example 1048576 for 1 MiB".to_string()
    })
}

/// Parses a size in bytes that must be at least 1.
pub fn positive_byte_count(text: &str) -> Result<usize, String> {
    match byte_count(text)? {
        0 => Err("it must be at least 1 byte, for example 1048576 for 1 MiB".to_string()),
        bytes => Ok(bytes),
    }
}

impl Command {
    /// Rejects option values that each parse but cannot work together, naming the options.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Command::Receiver(args) => args.receiver.validate(&args.kafka.connection),
            Command::Standalone(args) => args.receiver.validate(&args.kafka.connection),
            _ => Ok(()),
        }
    }
}

/// Connection to the Kafka cluster, shared by every command that uses one.
#[derive(Args, Clone)]
pub struct ConnectionArgs {
    /// Kafka bootstrap servers, comma-separated host:port [default: localhost:9092, except
    /// standalone, which runs an embedded in-memory broker].
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,

    /// Raw librdkafka property KEY=VALUE, for tuning; repeatable. The settings delivery depends on
    /// (acks, enable.idempotence, enable.auto.commit, enable.auto.offset.store, isolation.level,
    /// auto.offset.reset) are rejected.
    #[arg(
        long = "kafka-option",
        env = "KAFKA_OPTIONS",
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub kafka_options: Vec<String>,

    /// security.protocol: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL")]
    pub kafka_security_protocol: Option<String>,

    /// sasl.mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, env = "KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,

    /// sasl.username.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    /// sasl.password; prefer the environment variable over the flag.
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<Secret>,

    /// ssl.ca.location: a PEM file of the CA that signed the brokers' certificates.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<String>,
}

/// Brokers used when none are given, by every command but `standalone`.
pub const DEFAULT_BROKERS: &str = "localhost:9092";

impl ConnectionArgs {
    /// Builds the client settings for `brokers`, which overrides `--brokers`.
    pub fn settings_for(&self, brokers: &str) -> Result<KafkaSettings, OptionError> {
        let options = self
            .kafka_options
            .iter()
            .filter(|option| !option.trim().is_empty())
            .map(|option| parse_option(option))
            .collect::<Result<_, _>>()?;
        Ok(KafkaSettings {
            brokers: brokers.to_string(),
            security_protocol: self.kafka_security_protocol.clone(),
            sasl_mechanism: self.kafka_sasl_mechanism.clone(),
            sasl_username: self.kafka_sasl_username.clone(),
            sasl_password: self.kafka_sasl_password.clone(),
            ssl_ca_location: self.kafka_ssl_ca_location.clone(),
            options,
        })
    }

    /// Builds the client settings for `--brokers`, or localhost when none are given.
    pub fn settings(&self) -> Result<KafkaSettings, OptionError> {
        self.settings_for(self.brokers.as_deref().unwrap_or(DEFAULT_BROKERS))
    }
}

/// Kafka settings of `receiver`, `forwarder` and `standalone`: the connection and topic creation.
#[derive(Args)]
pub struct KafkaArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Do not create missing topics at start-up; exit instead.
    #[arg(long, env = "GWEN_NO_CREATE_TOPICS")]
    pub no_create_topics: bool,

    /// Partitions of a topic created at start-up.
    #[arg(long, env = "GWEN_TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..))]
    pub topic_partitions: i32,
}

impl KafkaArgs {
    pub fn settings(&self) -> Result<KafkaSettings, OptionError> {
        self.connection.settings()
    }

    pub fn topic_policy(&self) -> TopicPolicy {
        TopicPolicy {
            create_missing: !self.no_create_topics,
            partitions: self.topic_partitions,
        }
    }
}

#[derive(Args)]
pub struct ReceiverArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub receiver: ReceiverOptions,
}

#[derive(Args)]
pub struct ForwarderArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub forwarder: ForwarderOptions,
}

#[derive(Args)]
pub struct StandaloneArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub receiver: ReceiverOptions,

    #[command(flatten)]
    pub forwarder: ForwarderOptions,
}

/// Options of every long-running command.
#[derive(Args)]
pub struct CommonArgs {
    /// Kafka topic of the webhooks.
    #[arg(long, env = "GWEN_TOPIC", default_value = "gwen.webhooks")]
    pub topic: String,

    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "GWEN_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,

    /// Confluent-compatible Schema Registry: the receiver registers the webhook schema under
    /// `<topic>-value` and frames values with its id; the forwarder checks the ids it reads.
    #[arg(long, env = "GWEN_SCHEMA_REGISTRY_URL", hide_env_values = true)]
    pub schema_registry_url: Option<String>,
}

#[derive(Args)]
pub struct ReceiverOptions {
    /// Address for webhooks.
    #[arg(long, env = "GWEN_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Accepted webhook keys, comma-separated; several may be active at once, for rotation.
    #[arg(
        long,
        env = "GWEN_WEBHOOK_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_keys: Vec<Secret>,

    /// Secrets for HMAC-SHA256 signatures of the body, comma-separated; several may be active at
    /// once, for rotation.
    #[arg(
        long,
        env = "GWEN_WEBHOOK_HMAC_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_hmac_secrets: Vec<Secret>,

    /// Header carrying the HMAC signature: hex or base64, with or without a `sha256=` prefix.
    #[arg(
        long,
        env = "GWEN_WEBHOOK_SIGNATURE_HEADER",
        default_value = "X-Gwen-Signature"
    )]
    pub webhook_signature_header: String,

    /// Accept webhooks without credentials, when no key or HMAC secret is configured.
    #[arg(long, env = "GWEN_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Largest request body, in bytes; larger ones get 413 before they are read whole.
    #[arg(long, env = "GWEN_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = positive_byte_count)]
    pub max_body_bytes: usize,

    /// Largest single webhook, in bytes; keep it below the topic's max.message.bytes.
    #[arg(long, env = "GWEN_MAX_RECORD_BYTES", default_value_t = 900_000, value_parser = positive_byte_count)]
    pub max_record_bytes: usize,

    /// Time Kafka has to acknowledge a request's records before the receiver responds 503 (e.g. 5s).
    #[arg(long, env = "GWEN_PRODUCE_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub produce_timeout: Duration,

    /// Time a client has to send its request headers before it is disconnected (e.g. 10s).
    #[arg(long, env = "GWEN_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send its body once the headers arrived; slower ones get 408 (e.g. 30s).
    #[arg(long, env = "GWEN_BODY_READ_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub body_read_timeout: Duration,

    /// Requests handled at once; more get 503 with Retry-After.
    #[arg(long, env = "GWEN_MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,
}

impl ReceiverOptions {
    fn validate(&self, connection: &ConnectionArgs) -> Result<(), String> {
        if self.max_record_bytes > self.max_body_bytes {
            return Err(format!(
                "--max-record-bytes {} is larger than --max-body-bytes {}, so no request could carry a webhook of that size; lower --max-record-bytes or raise --max-body-bytes",
                self.max_record_bytes, self.max_body_bytes
            ));
        }
        // A malformed --kafka-option is reported when the command builds its Kafka settings.
        if let Ok(settings) = connection.settings() {
            gwen_segment::receiver::check_produce_timeout(&settings, self.produce_timeout)?;
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct ForwarderOptions {
    /// Kafka topic for messages that cannot be delivered.
    #[arg(long, env = "GWEN_DLQ_TOPIC", default_value = "gwen.webhooks.dlq")]
    pub dlq_topic: String,

    /// Consumer group; forwarders of one deployment share it.
    #[arg(long, env = "GWEN_GROUP_ID", default_value = "gwen-segment")]
    pub group_id: String,

    /// For a group with no committed offsets: start at the first record at or after this time,
    /// RFC 3339 (e.g. 2025-12-04T13:00:00Z), instead of the oldest retained one. Ignored once the
    /// group has committed offsets.
    #[arg(long, env = "GWEN_START_AT", value_parser = crate::cli_ops::parse_datetime)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,

    /// Segment API base URL; EU workspaces use https://events.eu1.segmentapis.com.
    #[arg(long, env = "SEGMENT_URL", default_value = "https://api.segment.io")]
    pub segment_url: String,

    /// Write key of the Segment source; prefer the environment variable over the flag.
    /// `standalone` without one prints the batches to stdout instead of sending them.
    #[arg(long, env = "SEGMENT_WRITE_KEY", hide_env_values = true)]
    pub segment_write_key: Option<Secret>,

    /// Time a batch waits for more events before it is sent (e.g. 200ms).
    #[arg(long, env = "GWEN_BATCH_LINGER", default_value = "200ms", value_parser = duration)]
    pub batch_linger: Duration,

    /// PEM file of extra CA certificates to trust for --segment-url, for a proxy with a private CA.
    #[arg(long, env = "GWEN_SEGMENT_CA_FILE")]
    pub segment_ca_file: Option<PathBuf>,

    /// Timeout of one Segment request (e.g. 30s).
    #[arg(long, env = "GWEN_SEGMENT_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub segment_timeout: Duration,

    /// Maximum wait between retries of a failed Segment request (e.g. 60s).
    #[arg(long, env = "GWEN_RETRY_MAX_BACKOFF", default_value = "60s", value_parser = duration)]
    pub retry_max_backoff: Duration,

    /// Bytes of received but unfinished messages (as received plus as events) held in memory
    /// before fetching pauses.
    #[arg(long, env = "GWEN_MAX_IN_FLIGHT_BYTES", default_value_t = 32 * 1024 * 1024, value_parser = byte_count)]
    pub max_in_flight_bytes: usize,

    /// Time allowed on SIGTERM to finish batches in flight before exiting (e.g. 20s).
    #[arg(long, env = "GWEN_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub mapping: MappingArgs,
}

/// Options of the mapping, shared by `forwarder`, `standalone` and `transform`.
#[derive(Args)]
pub struct MappingArgs {
    /// Text mixed into every messageId; give two deployments fed the same webhooks different ones.
    #[arg(long, env = "GWEN_MESSAGE_ID_NAMESPACE", default_value = "")]
    pub message_id_namespace: String,

    /// Handling of webhook types GWEN does not document.
    #[arg(long, env = "GWEN_UNKNOWN_TYPES", value_enum, default_value_t = UnknownTypes::Forward)]
    pub unknown_types: UnknownTypes,
}

#[derive(Args)]
pub struct TransformArgs {
    /// File of GWEN webhooks: a JSON object, an array, or JSON lines; `-` is stdin.
    #[arg(default_value = "-")]
    pub input: PathBuf,

    /// Receive time used when a webhook has no usable timestamp, RFC 3339 [default: now].
    #[arg(long, env = "GWEN_RECEIVED_AT")]
    pub received_at: Option<String>,

    #[command(flatten)]
    pub mapping: MappingArgs,
}

#[derive(Args)]
pub struct CaptureArgs {
    /// Address to listen on.
    #[arg(long, env = "GWEN_LISTEN", default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,

    /// Write key requests must carry; without it any non-empty key is accepted.
    #[arg(long, env = "SEGMENT_WRITE_KEY", hide_env_values = true)]
    pub segment_write_key: Option<Secret>,

    /// File the accepted events are appended to, one JSON object a line; `-` is stdout.
    #[arg(long, env = "GWEN_OUTPUT", default_value = "-")]
    pub output: PathBuf,

    /// HTTP status of the responses to the first --fail-count requests (e.g. 500, 429, 401).
    #[arg(long, env = "GWEN_FAIL_STATUS", requires = "fail_count")]
    pub fail_status: Option<u16>,

    /// How many requests get --fail-status.
    #[arg(long, env = "GWEN_FAIL_COUNT", requires = "fail_status")]
    pub fail_count: Option<u64>,

    /// Retry-After sent with the scripted failures, in seconds.
    #[arg(long, env = "GWEN_RETRY_AFTER")]
    pub retry_after: Option<u64>,

    /// PEM certificate chain to serve HTTPS with; needs --tls-key.
    #[arg(long, env = "GWEN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "GWEN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Delay before every response (e.g. 500ms).
    #[arg(long, env = "GWEN_LATENCY", default_value = "0s", value_parser = duration)]
    pub latency: Duration,
}
