//! librdkafka client settings: brokers, security, and the guarded `--kafka-option` passthrough.

use std::fmt;

use rdkafka::ClientConfig;

use crate::secret::Secret;

/// Settings the delivery guarantees rest on; `--kafka-option` may not change them.
const GUARDED_KEYS: [&str; 6] = [
    "acks",
    "enable.idempotence",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "isolation.level",
    "auto.offset.reset",
];

/// Connection settings common to every Kafka client of the process.
#[derive(Clone, Default)]
pub struct KafkaSettings {
    pub brokers: String,
    pub security_protocol: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret>,
    pub ssl_ca_location: Option<String>,
    /// Raw librdkafka properties, for tuning.
    pub options: Vec<(String, Secret)>,
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let option_keys: Vec<&str> = self.options.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("option_keys", &option_keys)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    #[error("invalid --kafka-option {0:?}: expected KEY=VALUE, for example linger.ms=10")]
    Malformed(String),
    #[error(
        "--kafka-option {0} is not allowed: the delivery guarantees depend on it; remove it from --kafka-option or KAFKA_OPTIONS"
    )]
    Guarded(String),
}

/// Parses one `--kafka-option KEY=VALUE`, rejecting the keys the guarantees rest on.
pub fn parse_option(text: &str) -> Result<(String, Secret), OptionError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| OptionError::Malformed(redact_value(text)))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(OptionError::Malformed(redact_value(text)));
    }
    if GUARDED_KEYS.contains(&key) {
        return Err(OptionError::Guarded(key.to_string()));
    }
    Ok((key.to_string(), Secret::new(value.trim())))
}

/// Keeps only the key of a malformed option for error messages, because its value may be a
/// password.
fn redact_value(text: &str) -> String {
    match text.split_once('=') {
        Some((key, _)) => format!("{key}=[redacted]"),
        None if text.to_ascii_lowercase().contains("password")
            || text.to_ascii_lowercase().contains("secret") =>
        {
            "[redacted]".to_string()
        }
        None => text.to_string(),
    }
}

/// Sets `key` unless the configuration (a `--kafka-option`) already has it.
pub fn set_default(config: &mut ClientConfig, key: &str, value: &str) {
    if config.get(key).is_none() {
        config.set(key, value);
    }
}

impl KafkaSettings {
    /// Builds a librdkafka configuration with the brokers, security settings and raw options applied.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        if let Some(protocol) = &self.security_protocol {
            config.set("security.protocol", protocol);
        }
        if let Some(mechanism) = &self.sasl_mechanism {
            config.set("sasl.mechanism", mechanism);
        }
        if let Some(username) = &self.sasl_username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &self.sasl_password {
            config.set("sasl.password", password.expose());
        }
        if let Some(location) = &self.ssl_ca_location {
            config.set("ssl.ca.location", location);
        }
        for (key, value) in &self.options {
            config.set(key, value.expose());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_parses_key_and_value() {
        let (key, value) = parse_option("linger.ms=10").unwrap();
        assert_eq!(key, "linger.ms");
        assert_eq!(value.expose(), "10");
    }

    #[test]
    fn guarded_option_rejected_by_name() {
        let error = parse_option("enable.auto.commit=false").unwrap_err();
        assert!(error.to_string().contains("enable.auto.commit"), "{error}");
    }

    #[test]
    fn malformed_option_hides_value() {
        let error = parse_option("sasl.password").unwrap_err();
        assert!(!error.to_string().contains("sasl.password"), "{error}");
        assert!(matches!(parse_option("=x"), Err(OptionError::Malformed(_))));
    }
}
