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

/// A reference mapping written the plain way: a `RawValue` parse, a scan for lone surrogates, a
/// second parse into `WebhookFields`, then `serde_json::to_vec` of a derived struct.
/// `map_webhook` must give the same bytes and the same rejections.
mod reference {
    use super::super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct TrackEvent<'a> {
        #[serde(rename = "type")]
        call: &'static str,
        event: &'a str,
        #[serde(rename = "userId")]
        user_id: &'a str,
        timestamp: String,
        #[serde(rename = "messageId")]
        message_id: &'a str,
        properties: &'a RawValue,
        context: Context,
    }

    #[derive(Serialize)]
    struct Context {
        integration: NameVersion,
        library: NameVersion,
        gwen: GwenContext,
    }

    #[derive(Serialize)]
    struct NameVersion {
        name: &'static str,
        version: &'static str,
    }

    #[derive(Serialize)]
    struct GwenContext {
        #[serde(rename = "timestampSource")]
        timestamp_source: &'static str,
    }

    fn invalid(reason: String) -> Rejection {
        Rejection::new(DlqKind::InvalidWebhook, reason)
    }

    pub fn map_webhook(
        webhook: &[u8],
        received_at: DateTime<Utc>,
        config: &MappingConfig,
    ) -> Result<MappedEvent, Rejection> {
        let text = std::str::from_utf8(webhook)
            .map_err(|e| invalid(format!("The webhook is not valid UTF-8: {e}.")))?;
        let text = text.trim();
        if !text.starts_with('{') {
            return Err(invalid(
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(_) => "The webhook is JSON but not an object.".into(),
                    Err(e) => format!("The webhook is not JSON: {e}."),
                },
            ));
        }
        let properties: &RawValue = serde_json::from_str(text)
            .map_err(|e| invalid(format!("The webhook is not valid JSON: {e}.")))?;
        if let Some(position) = find_lone_surrogate(text) {
            return Err(invalid(format!(
                "The webhook contains a lone UTF-16 surrogate escape at byte {position}, which is not valid Unicode."
            )));
        }
        let fields: WebhookFields = serde_json::from_str(text)
            .map_err(|e| invalid(format!("The webhook is not a valid GWEN webhook: {e}.")))?;

        let event_name = read_event_name(fields.webhook_type)?;
        if !event_name.known && config.unknown_types == UnknownTypes::Dlq {
            return Err(Rejection::new(
                DlqKind::UnknownType,
                format!(
                    "The webhook type {:?} is not a documented GWEN type, and unknown types go to the dead-letter topic.",
                    event_name.name
                ),
            ));
        }
        let user_id = read_user_id(fields.user_id)?;
        let (timestamp, source) = event_timestamp(fields.timestamp, received_at);
        let message_id = message_id(&config.message_id_namespace, text.as_bytes());
        let compact = match minify(text) {
            Ok(Cow::Owned(compact)) => RawValue::from_string(compact).ok(),
            _ => None,
        };
        let properties = compact.as_deref().unwrap_or(properties);

        let event = TrackEvent {
            call: "track",
            event: &event_name.name,
            user_id: &user_id,
            timestamp: format_timestamp(timestamp),
            message_id: &message_id,
            properties,
            context: Context {
                integration: NameVersion {
                    name: "gwen-webhooks",
                    version: VERSION,
                },
                library: NameVersion {
                    name: "gwen-segment",
                    version: VERSION,
                },
                gwen: GwenContext {
                    timestamp_source: source.as_str(),
                },
            },
        };
        let json = serde_json::to_vec(&event)
            .map_err(|e| invalid(format!("The Segment event could not be serialized: {e}.")))?;
        if json.len() > MAX_EVENT_BYTES {
            return Err(Rejection::new(
                DlqKind::EventTooLarge,
                format!(
                    "The Segment event is {} bytes, over Segment's limit of {MAX_EVENT_BYTES} bytes per event.",
                    json.len()
                ),
            ));
        }
        Ok(MappedEvent {
            json,
            message_id,
            event_name,
        })
    }
}

fn assert_same_as_reference(webhook: &[u8]) {
    for unknown_types in [UnknownTypes::Forward, UnknownTypes::Dlq] {
        let config = MappingConfig {
            message_id_namespace: "ns".into(),
            unknown_types,
        };
        let expected = reference::map_webhook(webhook, received_at(), &config);
        let actual = map_webhook(webhook, received_at(), &config);
        let input = String::from_utf8_lossy(webhook);
        match (actual, expected) {
            (Ok(actual), Ok(expected)) => {
                assert_eq!(
                    String::from_utf8_lossy(&actual.json),
                    String::from_utf8_lossy(&expected.json),
                    "for {input}"
                );
                assert_eq!(actual.message_id, expected.message_id, "for {input}");
                assert_eq!(actual.event_name, expected.event_name, "for {input}");
            }
            (actual, expected) => {
                assert_eq!(actual.err(), expected.err(), "for {input}");
            }
        }
    }
}

#[test]
fn non_object_reason_says_whether_json() {
    let reason = |webhook: &str| {
        map_webhook(webhook.as_bytes(), Utc::now(), &MappingConfig::default())
            .unwrap_err()
            .reason
    };
    assert!(reason("not json").starts_with("The webhook is not JSON: "));
    assert_eq!(reason("[1]"), "The webhook is JSON but not an object.");
}

#[test]
fn fixtures_match_reference_mapping() {
    for file in [
        "achievement_update.json",
        "progression_update.json",
        "mission_update.json",
        "shop_item_update.json",
        "wallet_update.json",
        "webhook_verification.json",
    ] {
        assert_same_as_reference(fixture(file).as_bytes());
    }
}

#[test]
fn hard_cases_match_reference_mapping() {
    let oversized = format!(
        r#"{{"type":"wallet_update","userId":"u1","state":"{}"}}"#,
        "x".repeat(MAX_EVENT_BYTES)
    );
    let cases = [
        r#"{"type":"wallet_update","userId":"u1"}"#,
        " \n{ \"type\" : \"Wallet-Update\" ,\n \"userId\" : 42 }\n",
        r#"{"type":"say \"hi\"\u0001 \u00e9 \ud83d\ude00","userId":"u\u0031\n\"","n":1.50e3}"#,
        r#"{"type":"wallet_update","userId":1.5e3,"timestamp":"2025-12-04T12:00:00+01:00"}"#,
        r#"{"type":"wallet_update","userId":"u1","timestamp":1764853200.5,"x":[{"y":null}]}"#,
        r#"{"type":"season_pass_update","userId":"u1"}"#,
        r#"{"type":"wallet_update","userId":"u1","a":"\ud800"}"#,
        r#"{"\udc00":1,"type":"wallet_update","userId":"u1"}"#,
        r#"{"type":"wallet_update","type":"mission_update","userId":"u1"}"#,
        r#"{"type":"wallet_update","type":"mission_update","userId":"\ud800"}"#,
        r#"{"type":"wallet_update","type":"mission_update","userId":"u1" x"#,
        r#"{"type":"wallet_update","userId":"u1"} {}"#,
        r#"{"type":"wallet_update","userId":"u1","a":"\x"}"#,
        r#"{"type":"wallet_update","userId":"u1","a":tru}"#,
        r#"{"type":"wallet_update","userId":"u1",}"#,
        r#"{"type":"wallet_update","userId":"u1","a":"\ud800\\ud800"}"#,
        r#"{"type":null,"userId":"u1"}"#,
        r#"{"type":"__","userId":"u1"}"#,
        r#"{"type":"wallet_update","userId":null}"#,
        r#"{"type":"wallet_update","userId":[1]}"#,
        "{\"type\":\"wallet_update\",\"userId\":\"u1\",\"a\":\"\t\"}",
        "\u{a0}{\"type\":\"wallet_update\",\"userId\":\"u1\"}",
        "[1]",
        "",
        "not json",
        oversized.as_str(),
    ];
    for webhook in cases {
        assert_same_as_reference(webhook.as_bytes());
    }
    assert_same_as_reference(b"{\"type\":\"a\xff\"}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]

    #[test]
    fn token_soup_matches_reference_mapping(
        tokens in proptest::collection::vec(
            proptest::sample::select(vec![
                "{", "}", "[", "]", ":", ",", " ", "\n", "\"type\"", "\"userId\"",
                "\"timestamp\"", "\"x\"", "\"wallet_update\"", "\"Season-pass\"", "\"u 1\"",
                "\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\ud83d\\ude00\"", "\"a\\\"b\\\\\"",
                "\"\\u0041\"", "0", "-1.50e3", "1764853200", "null", "true",
            ]),
            0..24,
        )
    ) {
        let webhook = format!("{{{}", tokens.concat());
        assert_same_as_reference(webhook.as_bytes());
    }
}
