//! GWEN webhook `type` to Segment `event` name.

use std::borrow::Cow;

/// The types GWEN documents, by their normalized form, with the event names Segment's own GWEN
/// source uses for them.
const KNOWN_TYPES: [(&str, &str); 6] = [
    ("achievement_update", "Achievement Update"),
    ("progression_update", "Progression Update"),
    ("mission_update", "Mission Update"),
    ("shop_item_update", "Shop Item Update"),
    ("wallet_update", "Wallet Update"),
    ("webhook_verification", "Webhook verification"),
];

/// The Segment event name for one webhook type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName {
    pub name: Cow<'static, str>,
    /// False when the type is not one GWEN documents and the name was made by title case.
    pub known: bool,
}

/// Returns the Segment event name for a webhook `type`, or `None` when the type has no words.
///
/// Matching ignores case and treats `_`, `-` and space as the same separator, so
/// `Wallet-Update` is `wallet_update`. Unknown types become their words in title case.
pub fn event_name(webhook_type: &str) -> Option<EventName> {
    // Most webhooks spell their type as documented, which needs no splitting.
    if let Some((_, name)) = KNOWN_TYPES.iter().find(|(key, _)| *key == webhook_type) {
        return Some(EventName {
            name: Cow::Borrowed(name),
            known: true,
        });
    }

    let words: Vec<String> = webhook_type
        .split(['_', '-', ' '])
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return None;
    }

    let normalized = words.join("_");
    if let Some((_, name)) = KNOWN_TYPES.iter().find(|(key, _)| *key == normalized) {
        return Some(EventName {
            name: Cow::Borrowed(name),
            known: true,
        });
    }

    let title_case: Vec<String> = words.iter().map(|word| capitalize(word)).collect();
    Some(EventName {
        name: Cow::Owned(title_case.join(" ")),
        known: false,
    })
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(webhook_type: &str) -> (String, bool) {
        let event = event_name(webhook_type).expect("a type with words");
        (event.name.into_owned(), event.known)
    }

    #[test]
    fn documented_types_map_to_their_names() {
        assert_eq!(
            name("achievement_update"),
            ("Achievement Update".into(), true)
        );
        assert_eq!(
            name("progression_update"),
            ("Progression Update".into(), true)
        );
        assert_eq!(name("mission_update"), ("Mission Update".into(), true));
        assert_eq!(name("shop_item_update"), ("Shop Item Update".into(), true));
        assert_eq!(name("wallet_update"), ("Wallet Update".into(), true));
        assert_eq!(
            name("webhook_verification"),
            ("Webhook verification".into(), true)
        );
    }

    #[test]
    fn type_matching_ignores_case_and_separators() {
        assert_eq!(name("Wallet-Update"), ("Wallet Update".into(), true));
        assert_eq!(name("SHOP ITEM_update"), ("Shop Item Update".into(), true));
        assert_eq!(name("__mission__update_"), ("Mission Update".into(), true));
    }

    #[test]
    fn unknown_type_becomes_title_case() {
        assert_eq!(
            name("season_pass_update"),
            ("Season Pass Update".into(), false)
        );
        assert_eq!(
            name("LEADERBOARD-reset"),
            ("Leaderboard Reset".into(), false)
        );
    }

    #[test]
    fn type_without_words_has_no_name() {
        assert_eq!(event_name(""), None);
        assert_eq!(event_name(" _-"), None);
    }
}
