use super::*;
use serde_json::Value;

fn received_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn map(webhook: &str) -> Result<Value, Rejection> {
    let event = map_webhook(webhook.as_bytes(), received_at(), &MappingConfig::default())?;
    Ok(serde_json::from_slice(&event.json).unwrap())
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/gwen/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn achievement_fixture_maps_to_track_event() {
    let webhook = fixture("achievement_update.json");
    let event = map(&webhook).unwrap();
    let version = env!("CARGO_PKG_VERSION");

    let expected = serde_json::json!({
        "type": "track",
        "event": "Achievement Update",
        "userId": "3f6c1b2e-8a4d-4f7e-9b21-5c0d7e9a1f42",
        "timestamp": "2025-12-04T13:00:00.000Z",
        "messageId": message_id("", webhook.as_bytes()),
        "properties": serde_json::from_str::<Value>(&webhook).unwrap(),
        "context": {
            "integration": {"name": "gwen-webhooks", "version": version},
            "library": {"name": "gwen-segment", "version": version},
            "gwen": {"timestampSource": "webhook"},
        },
    });
    assert_eq!(event, expected);
}

#[test]
fn every_fixture_gets_its_event_name() {
    let cases = [
        ("achievement_update.json", "Achievement Update"),
        ("progression_update.json", "Progression Update"),
        ("mission_update.json", "Mission Update"),
        ("shop_item_update.json", "Shop Item Update"),
        ("wallet_update.json", "Wallet Update"),
        ("webhook_verification.json", "Webhook verification"),
    ];
    for (file, name) in cases {
        let event = map(&fixture(file)).unwrap();
        assert_eq!(event["event"], name, "for {file}");
    }
}

#[test]
fn unknown_type_forwarded_in_title_case() {
    let event = map(r#"{"type":"season_pass_update","userId":"u1"}"#).unwrap();
    assert_eq!(event["event"], "Season Pass Update");
}

#[test]
fn unknown_type_rejected_when_configured() {
    let config = MappingConfig {
        unknown_types: UnknownTypes::Dlq,
        ..MappingConfig::default()
    };
    let rejection = map_webhook(
        br#"{"type":"season_pass_update","userId":"u1"}"#,
        received_at(),
        &config,
    )
    .unwrap_err();
    assert_eq!(rejection.kind, DlqKind::UnknownType);
}

#[test]
fn numeric_user_id_becomes_string() {
    let event = map(r#"{"type":"wallet_update","userId":12345678901234567890}"#).unwrap();
    assert_eq!(event["userId"], "12345678901234567890");
    let exponent = map(r#"{"type":"wallet_update","userId":1.5e3}"#).unwrap();
    assert_eq!(exponent["userId"], "1500");
}

#[test]
fn properties_keep_every_digit() {
    let webhook = r#"{"type":"wallet_update","userId":"u1","big":123456789012345678901234567890,"pi":3.14159265358979323846264338327950288,"tiny":1e-400}"#;
    let event = map_webhook(webhook.as_bytes(), received_at(), &MappingConfig::default()).unwrap();
    let json = String::from_utf8(event.json).unwrap();
    assert!(
        json.contains(&format!(r#""properties":{webhook}"#)),
        "{json}"
    );
}

#[test]
fn pretty_printed_webhook_becomes_one_line() {
    let webhook = "{\n  \"type\": \"wallet_update\",\n  \"userId\": \"u 1\",\n  \"n\": 1.50\n}";
    let event = map_webhook(webhook.as_bytes(), received_at(), &MappingConfig::default()).unwrap();
    let json = String::from_utf8(event.json).unwrap();
    assert!(!json.contains('\n'), "{json}");
    assert!(
        json.contains(r#""properties":{"type":"wallet_update","userId":"u 1","n":1.50}"#),
        "{json}"
    );
    assert_eq!(event.message_id, message_id("", webhook.as_bytes()));
}

#[test]
fn missing_timestamp_uses_receive_time() {
    let event = map(r#"{"type":"wallet_update","userId":"u1"}"#).unwrap();
    assert_eq!(event["timestamp"], "2025-12-04T13:00:00.000Z");
    assert_eq!(event["context"]["gwen"]["timestampSource"], "received");
}

#[test]
fn message_id_ignores_surrounding_whitespace() {
    let bare = map(r#"{"type":"wallet_update","userId":"u1"}"#).unwrap();
    let padded = map(" \n{\"type\":\"wallet_update\",\"userId\":\"u1\"}\n").unwrap();
    assert_eq!(bare["messageId"], "gwen-2698c74c5c62248f2485ee35f420b758");
    assert_eq!(padded["messageId"], bare["messageId"]);
}

#[test]
fn namespace_changes_message_id() {
    let config = MappingConfig {
        message_id_namespace: "prod".into(),
        ..MappingConfig::default()
    };
    let event = map_webhook(
        br#"{"type":"wallet_update","userId":"u1"}"#,
        received_at(),
        &config,
    )
    .unwrap();
    assert_eq!(event.message_id, "gwen-42dc842644e120ae2fd287700f5a9541");
}

#[test]
fn missing_user_id_rejected() {
    for webhook in [
        r#"{"type":"wallet_update"}"#,
        r#"{"type":"wallet_update","userId":null}"#,
        r#"{"type":"wallet_update","userId":""}"#,
    ] {
        assert_eq!(
            map(webhook).unwrap_err().kind,
            DlqKind::MissingUserId,
            "for {webhook}"
        );
    }
}

#[test]
fn invalid_webhooks_rejected() {
    for webhook in [
        "not json",
        "[1,2]",
        r#"{"type":"wallet_update","userId":"u1""#,
        r#"{"userId":"u1"}"#,
        r#"{"type":"","userId":"u1"}"#,
        r#"{"type":7,"userId":"u1"}"#,
        r#"{"type":"wallet_update","userId":true}"#,
        r#"{"type":"wallet_update","userId":{"id":1}}"#,
        r#"{"type":"wallet_update","type":"mission_update","userId":"u1"}"#,
    ] {
        assert_eq!(
            map(webhook).unwrap_err().kind,
            DlqKind::InvalidWebhook,
            "for {webhook}"
        );
    }
}

#[test]
fn invalid_utf8_rejected() {
    let rejection = map_webhook(
        b"{\"type\":\"a\xff\"}",
        received_at(),
        &MappingConfig::default(),
    )
    .unwrap_err();
    assert_eq!(rejection.kind, DlqKind::InvalidWebhook);
}

#[test]
fn oversized_event_rejected() {
    let padding = "x".repeat(MAX_EVENT_BYTES);
    let webhook = format!(r#"{{"type":"wallet_update","userId":"u1","state":"{padding}"}}"#);
    assert_eq!(map(&webhook).unwrap_err().kind, DlqKind::EventTooLarge);
}
