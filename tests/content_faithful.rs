//! What the bot says stays faithful to the help desk's FAQ
//! (`../shared/seed/mfa-phone-faq.ja.md`): every Japanese message is listed
//! and checked against claims that were removed because the FAQ does not
//! make them, and the FAQ's own points that must be said are present.

mod support;

use std::collections::BTreeMap;

/// Every message of a locale folder, id -> source text (value lines joined).
fn messages(locale: &str) -> BTreeMap<String, String> {
    let dir = support::repo().join("locales").join(locale);
    let mut messages = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("locale folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ftl"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read ftl");
        let mut current: Option<String> = None;
        for line in text.lines() {
            let starts_entry = line.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            if starts_entry {
                if let Some((id, value)) = line.split_once('=') {
                    let id = id.trim().to_string();
                    messages.insert(id.clone(), value.trim().to_string());
                    current = Some(id);
                    continue;
                }
            }
            if line.starts_with(' ') {
                if let Some(id) = &current {
                    let entry = messages.entry(id.clone()).or_default();
                    entry.push('\n');
                    entry.push_str(line.trim());
                }
            } else {
                current = None;
            }
        }
    }
    messages
}

#[test]
fn no_japanese_message_makes_a_claim_the_faq_does_not() {
    let messages = messages("ja");
    assert!(
        messages.len() > 100,
        "only {} messages read",
        messages.len()
    );
    // Removed: not in the FAQ, or stronger than its hedges.
    let removed = [
        "解除が延びる",
        "よく知られています",
        "フリーダイヤルは認証には使えません",
        "多くは設定の確認で解決できます",
        "+81 9012345678」として登録し直して",
    ];
    let mut found = Vec::new();
    for (id, text) in &messages {
        for claim in removed {
            if text.contains(claim) {
                found.push(format!("{id}: {claim:?}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "claims the FAQ does not make:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_faq_points_that_must_be_said_are_said() {
    let messages = messages("ja");
    let says = |id: &str, what: &str| {
        let text = messages
            .get(id)
            .unwrap_or_else(|| panic!("message {id} missing"));
        assert!(text.contains(what), "{id} does not say {what:?}:\n{text}");
    };
    // A: a call or SMS that arrived but was not answered counts too.
    says("case-a-intro", "応答しなかった");
    // A: the lock can last more than 5 hours; the estimate stays an estimate.
    says("case-a-wait", "5 時間以上");
    says("case-a-wait", "おおよそ");
    says("reminder-lockout-over", "5 時間以上");
    // B: the caller cannot be chosen, so allowing one number is no fix.
    says("case-b-explain", "指定したりすることはできません");
    says("case-b-explain", "特定の番号だけを許可しても解決しません");
    // D: the page flow is the country/region selector, then the number
    // without its leading 0; it shows as +81 9012345678 afterwards.
    says("case-d-fix-form", "国または地域");
    says("case-d-fix-form", "「+81」は入力しません");
    // 050 / IP phones: only as hedged desk advice, tied to the FAQ's 「一部の光電話」.
    says("case-d-landline-detected", "一部の光電話");
    says("case-d-landline-detected", "おすすめします");
    // Only the desk resets registered methods; nothing else is promised.
    says("method-reset-explain", "ヘルプデスクだけが行えます");
}
