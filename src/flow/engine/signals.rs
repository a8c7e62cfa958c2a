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

/// What a message says outright besides error codes: a phone number, a
/// count of attempts, words of a concept. Found before the message is
/// compared with examples.
#[derive(Debug, Default)]
pub(super) struct Said {
    /// The phone number as typed (a run with at least 10 digits).
    pub phone: Option<String>,
    /// A count of attempts could be read ("6回", "何度も").
    pub attempts: bool,
    /// Concept ids found, with their `goto`, in flow order.
    pub concepts: Vec<(String, String)>,
}

/// A run of digits, `+`, spaces, hyphens (any dash look-alike) and
/// parentheses holding at least 10 digits: a phone number as people type it.
pub fn find_phone(cleaned: &str) -> Option<String> {
    let is_part = |c: char| {
        c.is_ascii_digit()
            || matches!(
                c,
                '+' | ' ' | '-' | '(' | ')' | 'ー' | '－' | '‐' | '—' | '–' | '―'
            )
    };
    let chars: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].is_ascii_digit() || chars[i] == '+') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_part(chars[i]) {
            i += 1;
        }
        let run: String = chars[start..i].iter().collect();
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if (10..=15).contains(&digits) {
            return Some(run.trim().to_string());
        }
    }
    None
}

/// Whether any of the prepared (lower case, folded) words occurs.
fn has_any(lower: &str, folded: &str, words: &[(String, String)]) -> bool {
    words
        .iter()
        .any(|(l, f)| has_folded_word(lower, folded, l, f))
}

/// Whether `word` occurs in `text` (`word_lower`/`word_folded`: the word
/// lower-cased and folded); an ASCII word must stand alone (not inside a
/// longer ASCII word: "au" is not in "authenticator").
fn has_folded_word(text: &str, folded: &str, word_lower: &str, word_folded: &str) -> bool {
    if word_lower.is_empty() {
        return false;
    }
    if word_lower.is_ascii() {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(pos) = text[from..].find(word_lower) {
            let start = from + pos;
            let end = start + word_lower.len();
            let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let after_ok = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if before_ok && after_ok {
                return true;
            }
            from = start + 1;
        }
        return false;
    }
    !word_folded.is_empty() && folded.contains(word_folded)
}

impl Run<'_> {
    /// What `cleaned` says outright.
    pub(super) fn said(&self, cleaned: &str) -> Said {
        let mut concepts: Vec<(String, String)> = Vec::new();
        for clause in self.clauses(cleaned) {
            if self.clause_negated(&clause) {
                continue;
            }
            let lower = clause.to_lowercase();
            let folded = crate::text::fold_clean(&clause);
            // (concept, the words of it found here)
            let mut found: Vec<(&crate::flow::model::Concept, Vec<String>)> = Vec::new();
            for concept in &self.flow.flow.concepts {
                let words: Vec<String> = concept
                    .folded
                    .iter()
                    .filter(|(l, f)| has_folded_word(&lower, &folded, l, f))
                    .map(|(_, f)| f.clone())
                    .collect();
                if !words.is_empty() {
                    found.push((concept, words));
                }
            }
            // The longer phrase wins: "海外からの電話" (blocking) over "海外"
            // (abroad) when the one contains the other.
            let kept: Vec<&crate::flow::model::Concept> = found
                .iter()
                .filter(|(concept, words)| {
                    !words.iter().all(|w| {
                        found.iter().any(|(other, others)| {
                            other.id != concept.id
                                && others
                                    .iter()
                                    .any(|o| o.len() > w.len() && o.contains(w.as_str()))
                        })
                    })
                })
                .map(|(concept, _)| *concept)
                .collect();
            for concept in kept {
                if !concepts.iter().any(|(id, _)| id == &concept.id) {
                    concepts.push((concept.id.clone(), concept.goto.clone()));
                }
            }
        }
        // A count needs its unit ("6回", "何度も", "3 times"): a bare number
        // is a menu choice or part of something else.
        let lower_all = cleaned.to_lowercase();
        let has_unit = cleaned.contains('回')
            || cleaned.contains('度')
            || lower_all.contains("time")
            || lower_all.contains("tries");
        let attempts = has_unit
            && matches!(
                crate::diagnose::lockout::parse_attempt_count(cleaned),
                Some(crate::diagnose::lockout::AttemptCount::Exactly(2..))
                    | Some(crate::diagnose::lockout::AttemptCount::AtLeast(_))
                    | Some(crate::diagnose::lockout::AttemptCount::Many)
            );
        Said {
            phone: find_phone(cleaned),
            attempts,
            concepts,
        }
    }

    /// The clauses of a message (split at the flow's clause breaks).
    fn clauses(&self, cleaned: &str) -> Vec<String> {
        let lower = cleaned.to_lowercase();
        let breaks = &self.flow.flow.matcher.prepared.breaks;
        let mut clauses = Vec::new();
        let mut start = 0;
        let mut at = 0;
        // One pass: at each character, does a clause break start here?
        while at < lower.len() {
            let rest = &lower[at..];
            match breaks.iter().find(|b| rest.starts_with(b.as_str())) {
                Some(brk) => {
                    clauses.push(lower[start..at].to_string());
                    at += brk.len();
                    start = at;
                }
                None => at += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        clauses.push(lower[start..].to_string());
        clauses.retain(|c| !c.trim().is_empty());
        clauses
    }

    /// Whether a clause denies something: it holds a negation marker once
    /// the symptom phrases ("届かない") are taken out.
    fn clause_negated(&self, clause: &str) -> bool {
        let prepared = &self.flow.flow.matcher.prepared;
        let mut folded = crate::text::fold_clean(clause);
        let mut lower = clause.to_lowercase();
        for (symptom_lower, symptom_folded) in &prepared.symptoms {
            if !symptom_folded.is_empty() {
                folded = folded.replace(symptom_folded.as_str(), " ");
            }
            lower = lower.replace(symptom_lower.as_str(), " ");
        }
        has_any(&lower, &folded, &prepared.negations)
    }

    /// Where what the text says outright leads, if one place stands out:
    /// a phone number first (it is analysed at once), then the node most
    /// concepts point at, then a count of attempts. `None` when nothing is
    /// said outright or two places tie.
    pub(super) fn signal_goto(&self, cleaned: &str) -> Option<String> {
        let header = &self.flow.flow.flow;
        let said = self.said(cleaned);
        if said.phone.is_some() {
            if let Some(node) = &header.phone_node {
                return Some(node.clone());
            }
        }
        let mut votes: Vec<(String, usize)> = Vec::new();
        for (_, goto) in &said.concepts {
            match votes.iter_mut().find(|(g, _)| g == goto) {
                Some((_, n)) => *n += 1,
                None => votes.push((goto.clone(), 1)),
            }
        }
        if said.attempts {
            if let Some(node) = &header.attempts_node {
                match votes.iter_mut().find(|(g, _)| g == node) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((node.clone(), 1)),
                }
            }
        }
        votes.sort_by_key(|v| std::cmp::Reverse(v.1));
        match votes.as_slice() {
            [] => None,
            [(goto, _)] => Some(goto.clone()),
            [(goto, best), (_, second), ..] if best > second => Some(goto.clone()),
            _ => None,
        }
    }

    /// Command intents the text must not fire, unless it also asks for
    /// something: all of them when it is negated, those without `past_ok`
    /// when it describes the past.
    pub(super) fn blocked_commands(&self, cleaned: &str) -> Vec<String> {
        let prepared = &self.flow.flow.matcher.prepared;
        let folded = crate::text::fold_clean(cleaned);
        let lower = cleaned.to_lowercase();
        let negated = has_any(&lower, &folded, &prepared.negations);
        let past = has_any(&lower, &folded, &prepared.past);
        let requested = has_any(&lower, &folded, &prepared.requests);
        self.flow
            .flow
            .intents
            .iter()
            .filter(|i| {
                let gated = i.command && !requested && (negated || (past && !i.past_ok));
                gated || has_any(&lower, &folded, &i.blockers_prepared)
            })
            .map(|i| i.id.clone())
            .collect()
    }
}
