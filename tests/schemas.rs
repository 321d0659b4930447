//! Checks the JSON Schemas in schemas/ against the GWEN fixtures, the receiver's body checks and
//! the forwarder's mapping, so that the schemas and the code cannot drift apart unnoticed.

use chrono::{DateTime, Utc};
use gwen_segment::mapping::{DlqKind, MappingConfig, map_webhook};
use gwen_segment::receiver::split_records;
use jsonschema::Validator;
use serde_json::{Value, json};

const MAX_RECORD_BYTES: usize = 900_000;

/// Loads a schema from schemas/, checks it against the draft 2020-12 meta-schema and compiles it
/// with `format` asserted, so that `date-time` is checked and not only annotated.
fn load_schema(name: &str) -> Validator {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let schema: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{path} is not a valid draft 2020-12 schema: {error}");
    }
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{path} does not compile: {e}"))
}

fn webhook_schema() -> Validator {
    load_schema("gwen-webhook.schema.json")
}

fn event_schema() -> Validator {
    load_schema("segment-track-event.schema.json")
}

/// Lists each violation as `<instance path>: <message>`.
fn violations(schema: &Validator, instance: &Value) -> Vec<String> {
    schema
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

fn assert_valid(schema: &Validator, instance: &Value, description: &str) {
    let violations = violations(schema, instance);
    assert!(
        violations.is_empty(),
        "{description} violates the schema: {violations:#?}\ninstance: {instance}"
    );
}

fn assert_invalid(schema: &Validator, instance: &Value, description: &str) {
    assert!(
        !schema.is_valid(instance),
        "the schema accepts {description}: {instance}"
    );
}

fn received_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Reads every fixture in tests/fixtures/gwen and splits it as the receiver splits a request
/// body, so an array fixture gives one webhook per element. Each item is (name, webhook bytes).
fn fixture_webhooks() -> Vec<(String, Vec<u8>)> {
    let folder = format!("{}/tests/fixtures/gwen", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("cannot list {folder}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();

    let mut webhooks = Vec::new();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let records = split_records(&body, MAX_RECORD_BYTES)
            .unwrap_or_else(|e| panic!("the receiver rejects fixture {name}: {e}"));
        let count = records.len();
        for (index, record) in records.into_iter().enumerate() {
            let label = if count == 1 {
                name.clone()
            } else {
                format!("{name} item {index}")
            };
            webhooks.push((label, record.bytes.to_vec()));
        }
    }
    webhooks
}

/// Webhooks at the edges of what the mapping handles. The receiver accepts each of them.
const EDGE_WEBHOOKS: [(&str, &str); 10] = [
    (
        "numeric userId",
        r#"{"type":"wallet_update","userId":12345678901234567890123,"timestamp":1764853200}"#,
    ),
    (
        "negative userId",
        r#"{"type":"wallet_update","userId":-7,"timestamp":1764853200}"#,
    ),
    ("no timestamp", r#"{"type":"mission_update","userId":"u1"}"#),
    (
        "unusable timestamp",
        r#"{"type":"mission_update","userId":"u1","timestamp":"yesterday"}"#,
    ),
    (
        "unknown type",
        r#"{"type":"season_pass_update","userId":"u1","timestamp":1764853200}"#,
    ),
    (
        "type in another case",
        r#"{"type":"Wallet-Update","userId":"u1","timestamp":"1764853200123"}"#,
    ),
    (
        "RFC 3339 timestamp with offset",
        r#"{"type":"achievement_update","userId":"u1","timestamp":"2025-12-04T14:30:00.5+01:00"}"#,
    ),
    (
        "huge numbers",
        r#"{"type":"wallet_update","userId":"u1","timestamp":1764853200123,"state":{"balance":123456789012345678901234567890123456789,"ratio":0.10000000000000000555111512312578270211815834,"tiny":1e-300,"large":-1.5E+300,"zero":-0.0}}"#,
    ),
    (
        "escapes and non-ASCII text",
        r#"{"type":"shop_item_update","userId":"caf\u00e9 \ud83d\ude00","state":{"name":"\"quoted\"\n\t\\ \u0000 ✓ 😀"},"segmentId":null}"#,
    ),
    (
        "empty state and updates",
        r#"{"type":"webhook_verification","userId":"0","timestamp":1,"state":{},"updates":[],"extra":[null,true,{"a":[]}]}"#,
    ),
];

#[test]
fn schemas_are_valid_draft_2020_12() {
    // load_schema panics with the reason when a schema is not valid.
    webhook_schema();
    event_schema();
}

#[test]
fn fixtures_match_webhook_schema() {
    let schema = webhook_schema();
    let webhooks = fixture_webhooks();
    // 6 single fixtures and the 3 webhooks of batch.json.
    assert!(
        webhooks.len() >= 9,
        "expected at least 9 fixture webhooks, found {}",
        webhooks.len()
    );
    for (name, bytes) in &webhooks {
        let webhook: Value = serde_json::from_slice(bytes).unwrap();
        assert_valid(&schema, &webhook, name);
    }
}

#[test]
fn edge_webhooks_match_webhook_schema() {
    let schema = webhook_schema();
    for (name, text) in EDGE_WEBHOOKS {
        let records = split_records(text.as_bytes(), MAX_RECORD_BYTES)
            .unwrap_or_else(|e| panic!("the receiver rejects the {name} webhook: {e}"));
        assert_eq!(records.len(), 1, "{name}");
        let webhook: Value = serde_json::from_str(text).unwrap();
        assert_valid(&schema, &webhook, name);
    }
}

/// Maps `webhook` and checks the event against the schema and against the crate version.
fn check_mapped_event(schema: &Validator, name: &str, webhook: &[u8], config: &MappingConfig) {
    let mapped = map_webhook(webhook, received_at(), config)
        .unwrap_or_else(|r| panic!("the {name} webhook was rejected: {} ({})", r.reason, r.kind));
    let event: Value = serde_json::from_slice(&mapped.json)
        .unwrap_or_else(|e| panic!("the event of {name} is not JSON: {e}"));
    assert_valid(schema, &event, &format!("the event of {name}"));
    assert_eq!(
        event["context"]["library"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{name}"
    );
    assert_eq!(event["messageId"], mapped.message_id.as_str(), "{name}");
}

#[test]
fn fixture_events_match_event_schema() {
    let schema = event_schema();
    for (name, bytes) in fixture_webhooks() {
        check_mapped_event(&schema, &name, &bytes, &MappingConfig::default());
    }
}

#[test]
fn edge_events_match_event_schema() {
    let schema = event_schema();
    let namespaced = MappingConfig {
        message_id_namespace: "prod".to_string(),
        ..MappingConfig::default()
    };
    for (name, text) in EDGE_WEBHOOKS {
        check_mapped_event(&schema, name, text.as_bytes(), &MappingConfig::default());
        check_mapped_event(&schema, name, text.as_bytes(), &namespaced);
    }
}

#[test]
fn edge_events_carry_expected_fields() {
    let map = |text: &str| -> Value {
        let mapped = map_webhook(text.as_bytes(), received_at(), &MappingConfig::default())
            .unwrap_or_else(|r| panic!("{text} was rejected: {}", r.reason));
        serde_json::from_slice(&mapped.json).unwrap()
    };

    let numeric = map(EDGE_WEBHOOKS[0].1);
    assert_eq!(numeric["userId"], "12345678901234567890123");
    assert_eq!(numeric["context"]["gwen"]["timestampSource"], "webhook");

    let untimed = map(EDGE_WEBHOOKS[2].1);
    assert_eq!(untimed["timestamp"], "2025-12-04T13:00:00.000Z");
    assert_eq!(untimed["context"]["gwen"]["timestampSource"], "received");

    let unknown = map(EDGE_WEBHOOKS[4].1);
    assert_eq!(unknown["event"], "Season Pass Update");
}

#[test]
fn webhook_schema_rejects_invalid_webhooks() {
    let schema = webhook_schema();
    let cases = [
        ("an array", json!([{"type": "wallet_update"}])),
        ("a string", json!("wallet_update")),
        ("a webhook without type", json!({"userId": "u1"})),
        ("an empty type", json!({"type": "", "userId": "u1"})),
        ("a numeric type", json!({"type": 5, "userId": "u1"})),
        ("a null type", json!({"type": null, "userId": "u1"})),
        ("a boolean userId", json!({"type": "a", "userId": true})),
        (
            "an object userId",
            json!({"type": "a", "userId": {"id": 1}}),
        ),
        (
            "a boolean timestamp",
            json!({"type": "a", "timestamp": false}),
        ),
        ("a numeric segmentId", json!({"type": "a", "segmentId": 5})),
    ];
    for (description, webhook) in cases {
        assert_invalid(&schema, &webhook, description);
    }
}

/// The schema and the receiver must agree on the one field the receiver checks.
#[test]
fn webhook_schema_agrees_with_receiver_on_type() {
    let schema = webhook_schema();
    let bodies = [
        r#"{"type":"wallet_update"}"#,
        r#"{"type":" "}"#,
        r#"{"type":"_"}"#,
        r#"{"type":""}"#,
        r#"{"type":5}"#,
        r#"{"type":null}"#,
        r#"{"type":["a"]}"#,
        r#"{"userId":"u1"}"#,
        r#"{}"#,
    ];
    for body in bodies {
        let accepted_by_receiver = split_records(body.as_bytes(), MAX_RECORD_BYTES).is_ok();
        let webhook: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            schema.is_valid(&webhook),
            accepted_by_receiver,
            "schema and receiver disagree on {body}"
        );
    }
}

/// The schema's description promises that a webhook without `userId` passes the receiver and is
/// dead-lettered by the forwarder.
#[test]
fn missing_user_id_accepted_then_dead_lettered() {
    let schema = webhook_schema();
    let body = r#"{"type":"wallet_update","timestamp":1764853200}"#;

    assert_valid(&schema, &serde_json::from_str(body).unwrap(), "no userId");
    assert!(split_records(body.as_bytes(), MAX_RECORD_BYTES).is_ok());
    let rejection = map_webhook(body.as_bytes(), received_at(), &MappingConfig::default())
        .expect_err("a webhook without userId was mapped");
    assert_eq!(rejection.kind, DlqKind::MissingUserId);
}

/// The schema's description promises that the receiver does not check the type of `userId`, and
/// that the forwarder dead-letters a `userId` that is neither a string nor a number.
#[test]
fn other_user_id_type_accepted_by_receiver_only() {
    let schema = webhook_schema();
    let body = r#"{"type":"wallet_update","userId":true}"#;

    assert_invalid(
        &schema,
        &serde_json::from_str(body).unwrap(),
        "a boolean userId",
    );
    assert!(split_records(body.as_bytes(), MAX_RECORD_BYTES).is_ok());
    let rejection = map_webhook(body.as_bytes(), received_at(), &MappingConfig::default())
        .expect_err("a boolean userId was mapped");
    assert_eq!(rejection.kind, DlqKind::InvalidWebhook);
}

/// Change to a valid event that must make it invalid.
type Mutation = fn(&mut Value);

#[test]
fn event_schema_rejects_invalid_events() {
    let schema = event_schema();
    let fixture = &fixture_webhooks()[0];
    let mapped = map_webhook(&fixture.1, received_at(), &MappingConfig::default()).unwrap();
    let valid: Value = serde_json::from_slice(&mapped.json).unwrap();
    assert_valid(&schema, &valid, "the unchanged event");

    let mutations: [(&str, Mutation); 16] = [
        ("type identify", |e| e["type"] = json!("identify")),
        ("an empty event name", |e| e["event"] = json!("")),
        ("a numeric userId", |e| e["userId"] = json!(42)),
        ("an empty userId", |e| e["userId"] = json!("")),
        ("a timestamp without milliseconds", |e| {
            e["timestamp"] = json!("2025-12-04T13:00:00Z")
        }),
        ("a timestamp with an offset", |e| {
            e["timestamp"] = json!("2025-12-04T13:00:00.000+00:00")
        }),
        ("an impossible date", |e| {
            e["timestamp"] = json!("2025-13-45T25:61:00.000Z")
        }),
        ("an upper-case messageId", |e| {
            e["messageId"] = json!("gwen-0874468EB843E4A5E1C195F5F8042A4F")
        }),
        ("a short messageId", |e| {
            e["messageId"] = json!("gwen-0874468eb843e4a5")
        }),
        ("array properties", |e| e["properties"] = json!([])),
        ("an extra top-level field", |e| {
            e["anonymousId"] = json!("a1")
        }),
        ("no messageId", |e| {
            e.as_object_mut().unwrap().remove("messageId");
        }),
        ("an unknown timestampSource", |e| {
            e["context"]["gwen"]["timestampSource"] = json!("server")
        }),
        ("another library name", |e| {
            e["context"]["library"]["name"] = json!("analytics-node")
        }),
        ("a library without version", |e| {
            e["context"]["library"]
                .as_object_mut()
                .unwrap()
                .remove("version");
        }),
        ("no context.integration", |e| {
            e["context"].as_object_mut().unwrap().remove("integration");
        }),
    ];
    for (change, mutate) in mutations {
        let mut event = valid.clone();
        mutate(&mut event);
        assert_invalid(&schema, &event, &format!("an event with {change}"));
    }
}
