//! What a message says outright, before it is compared with examples:
//! sign-in error codes (`AADSTS50088`, also typed in full-width digits)
//! pasted from the sign-in screen. The codes the desk knows, and what the
//! bot does for each, are data in the flow file (`[[signin_errors]]`);
//! every code found is kept for the agents' summary.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Run, HANDOFF_REASON_SLOT};

/// Slot holding every sign-in error code the person mentioned.
pub const SIGNIN_ERRORS_SLOT: &str = "signin_errors";

/// Codes kept per conversation (a pasted log cannot fill the state).
const MAX_CODES: usize = 10;

/// The digits of every `AADSTS` code in `cleaned` (NFKC-normalised text, so
/// full-width letters and digits are already ASCII), in order, once each.
pub fn signin_codes(cleaned: &str) -> Vec<String> {
    let upper: Vec<char> = cleaned.to_ascii_uppercase().chars().collect();
    let prefix: Vec<char> = "AADSTS".chars().collect();
    let mut codes: Vec<String> = Vec::new();
    let mut i = 0;
    while i + prefix.len() <= upper.len() {
        if upper[i..i + prefix.len()] != prefix[..] {
            i += 1;
            continue;
        }
        let mut j = i + prefix.len();
        // "AADSTS 50088", "AADSTS:50088", "AADSTS-50088".
        while j < upper.len() && j < i + prefix.len() + 2 && matches!(upper[j], ' ' | ':' | '-') {
            j += 1;
        }
        let digits: String = upper[j..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if (4..=7).contains(&digits.len()) && !codes.contains(&digits) {
            codes.push(digits.clone());
        }
        i = j + digits.len().max(1);
    }
    codes
}

/// `cleaned` without its sign-in error codes, trimmed.
fn without_codes(cleaned: &str, codes: &[String]) -> String {
    let mut rest = cleaned.to_string();
    for code in codes {
        rest = rest.replace(code.as_str(), " ");
    }
    rest.to_ascii_uppercase()
        .replace("AADSTS", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Run<'_> {
    /// Acts on sign-in error codes in typed text. Returns true when the
    /// input is fully answered (the caller stops), false when the text
    /// should still be understood as usual.
    pub(super) fn signin_errors(&mut self, cleaned: &str) -> bool {
        let codes = signin_codes(cleaned);
        if codes.is_empty() {
            return false;
        }
        let mut kept: Vec<Value> = self
            .state
            .slots
            .get(SIGNIN_ERRORS_SLOT)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for code in &codes {
            let code = json!(format!("AADSTS{code}"));
            if !kept.contains(&code) && kept.len() < MAX_CODES {
                kept.push(code);
            }
        }
        self.state
            .slots
            .insert(SIGNIN_ERRORS_SLOT.into(), Value::Array(kept));
        let known = codes.iter().find_map(|code| {
            self.flow
                .flow
                .signin_errors
                .iter()
                .find(|e| &e.code == code)
        });
        let rest = without_codes(cleaned, &codes);
        let little_else = rest.chars().count() < 4;
        let Some(known) = known else {
            // Noted for the staff; the rest of the text is understood as
            // usual when it clearly means something, else the bot says it
            // noted the code and asks its question again.
            if !little_else && self.confident_target(&rest).is_some() {
                return false;
            }
            if let Some(noted) = self.messages().signin_error_noted.clone() {
                let code = format!("AADSTS{}", codes[0]);
                self.say_engine(&noted, BTreeMap::from([("code".to_string(), json!(code))]));
            }
            self.reprompt();
            return true;
        };
        self.state.clarify = None;
        self.say_engine(&known.say, BTreeMap::new());
        if let Some(reason) = &known.reason {
            self.state
                .slots
                .insert(HANDOFF_REASON_SLOT.into(), json!(reason));
        }
        match &known.goto {
            Some(goto) => {
                self.enter(goto.clone());
                true
            }
            // The code needs nothing of its own: what else the message
            // says clearly is acted on; otherwise the question is repeated.
            None => {
                match self.confident_target(&rest).filter(|_| !little_else) {
                    Some(target) => self.apply_target_id(&target),
                    None => self.reprompt(),
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_anywhere_in_any_width() {
        let clean = |s: &str| crate::text::clean(s);
        assert_eq!(signin_codes(&clean("AADSTS50088")), ["50088"]);
        assert_eq!(
            signin_codes(&clean(
                "サインインしたら「ＡＡＤＳＴＳ５００８８」と出ました"
            )),
            ["50088"]
        );
        assert_eq!(
            signin_codes(&clean(
                "エラー aadsts: 500121 と AADSTS50076、またAADSTS500121"
            )),
            ["500121", "50076"]
        );
        assert_eq!(signin_codes(&clean("AADSTS 53003 blocked")), ["53003"]);
        assert!(signin_codes(&clean("50088 only, no prefix")).is_empty());
        assert!(signin_codes(&clean("AADSTS12")).is_empty());
        assert!(signin_codes(&clean("電話が来ません")).is_empty());
    }
}
