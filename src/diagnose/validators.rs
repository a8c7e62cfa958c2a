//! Named validators for `collect` nodes: turn what a person typed into a slot
//! value, or say politely (by message id) why it could not be used.
//!
//! | name            | slot value                                        |
//! |-----------------|---------------------------------------------------|
//! | `phone_number`  | the [`PhoneAnalysis`] as JSON                     |
//! | `attempt_count` | `{kind, count, reaches_limit}`                    |
//! | `last_attempt`  | `{at: RFC 3339, local: "HH:MM"}`                  |

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::lockout::{format_local_time, parse_attempt_count, parse_last_attempt};
use super::phone::{analyse_phone, PhoneAnalysis, PhoneProblem};

/// What a validator needs besides the text.
#[derive(Debug, Clone, Copy)]
pub struct ValidatorContext {
    pub now: DateTime<Utc>,
    pub time_zone: Tz,
    pub default_country: phonenumber::country::Id,
}

/// A value that could not be used: the message explaining why, and its
/// arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message_id: &'static str,
    pub reason: &'static str,
}

/// Every validator: name, message id said when the input is invalid, and the
/// variables that message receives. `madoguchi check` uses this list.
pub const VALIDATORS: &[(&str, &str, &[&str])] = &[
    ("phone_number", "invalid-phone-number", &["reason"]),
    ("attempt_count", "invalid-attempt-count", &["reason"]),
    ("last_attempt", "invalid-last-attempt", &["reason"]),
];

/// Runs validator `name` on `text`.
pub fn validate(name: &str, text: &str, context: &ValidatorContext) -> Result<Value, Invalid> {
    match name {
        "phone_number" => validate_phone(text, context),
        "attempt_count" => match parse_attempt_count(text) {
            Some(count) => {
                let mut value = serde_json::to_value(count).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    // What the person said, for the agents' summary.
                    map.insert(
                        "input".into(),
                        Value::String(
                            crate::text::truncate_chars(&crate::text::clean(text), 40).to_string(),
                        ),
                    );
                    map.insert(
                        "reaches_limit".into(),
                        count
                            .reaches_limit()
                            .map(Value::Bool)
                            .unwrap_or(Value::Null),
                    );
                }
                Ok(value)
            }
            None => Err(Invalid {
                message_id: "invalid-attempt-count",
                reason: "not_a_count",
            }),
        },
        "last_attempt" => match parse_last_attempt(text, context.now, context.time_zone) {
            Some(at) => Ok(json!({
                "at": at.to_rfc3339(),
                "local": format_local_time(at, context.now, context.time_zone),
                "assumed": false,
            })),
            // "I don't remember": the wait is counted from now, and the
            // person is told so.
            None if says_unknown(text) => Ok(json!({
                "at": context.now.to_rfc3339(),
                "local": format_local_time(context.now, context.now, context.time_zone),
                "assumed": true,
            })),
            None => Err(Invalid {
                message_id: "invalid-last-attempt",
                reason: "not_a_time",
            }),
        },
        _ => Err(Invalid {
            message_id: "invalid-phone-number",
            reason: "unknown_validator",
        }),
    }
}

fn validate_phone(text: &str, context: &ValidatorContext) -> Result<Value, Invalid> {
    let analysis: PhoneAnalysis = analyse_phone(text, context.default_country);
    if analysis.is_usable() {
        return Ok(serde_json::to_value(&analysis).unwrap_or(Value::Null));
    }
    let reason = if analysis.problems.contains(&PhoneProblem::Empty) {
        "empty"
    } else if analysis.problems.contains(&PhoneProblem::TooShort) {
        "too_short"
    } else if analysis.problems.contains(&PhoneProblem::TooLong) {
        "too_long"
    } else if analysis.problems.contains(&PhoneProblem::InvalidCharacters) {
        "invalid_characters"
    } else {
        "invalid"
    };
    Err(Invalid {
        message_id: "invalid-phone-number",
        reason,
    })
}

/// "わからない", "覚えていない", "not sure"…: the person cannot say.
fn says_unknown(text: &str) -> bool {
    let cleaned = crate::text::clean(text).to_lowercase();
    [
        "わから",
        "分から",
        "わかりません",
        "分かりません",
        "覚えて",
        "おぼえて",
        "不明",
        "忘れ",
        "don't know",
        "dont know",
        "not sure",
        "don't remember",
        "no idea",
        "unknown",
    ]
    .iter()
    .any(|w| cleaned.contains(w))
}

/// Whether `name` is a known validator.
pub fn is_known(name: &str) -> bool {
    VALIDATORS.iter().any(|(known, _, _)| *known == name)
}
