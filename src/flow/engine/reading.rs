//! What a message says outright, read once per input before it is compared
//! with examples: a phone number, a count of attempts, the concepts it
//! names (carriers, landline, abroad, blocking, lockout…), the causes it
//! denies, and the commands it asks for by name ("担当者と話したい").
//!
//! The message is cut into clauses at the flow's clause breaks; each
//! clause is scanned once with the flow's [`Lexicon`]. A clause is negated
//! when it holds a negation that is neither part of a symptom (`来ない`)
//! nor after a limiter (`しか…ない`); a concept in a negated clause is
//! *denied*, not found. A message written only in ASCII letters is also
//! read as romaji (`kotei denwa` → `こていでんわ`), so the flow's kana
//! words find it.
//!
//! The word lists are content (`[matcher]`, `[[concepts]]`, intents'
//! `words`/`blockers` in the flow file); this module holds only the rules.

use std::cell::RefCell;
use std::rc::Rc;

use wana_kana::ConvertJapanese;

use super::Run;
use crate::flow::compiled::CompiledFlow;
use crate::flow::lexicon::{Hit, Mark, Space};

/// What a message says outright.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Reading {
    /// The phone number as typed (a run with at least 10 digits).
    pub phone: Option<String>,
    /// A count of attempts could be read ("6回", "何度も").
    pub attempts: bool,
    /// Concepts (flow index) found in clauses that do not deny them, in
    /// order, once each.
    pub concepts: Vec<usize>,
    /// Concepts found only in clauses that deny them.
    pub denied: Vec<usize>,
    /// Command intents (flow index) the text asks for by their words.
    pub commands: Vec<usize>,
    /// Intent ids that example matching must not pick: commands the text
    /// does not ask for (negated or past without a request), intents with
    /// a blocker word in the text.
    pub blocked: Vec<String>,
}

/// Where what a message says outright leads.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Signal {
    /// One place stands out.
    Go(String),
    /// Two or more places are named equally: ask which.
    Tie(Vec<String>),
    Nothing,
}

/// The last reading of a step, keyed by its text (one input is looked at by
/// several rules; it is read once).
pub(super) type Memo = RefCell<Option<(String, Rc<Reading>)>>;

/// Command words this many characters longer than the clause they are in
/// still count as asked for without a request marker: a bare "担当者" or
/// "リスタート" is a request.
const BARE_COMMAND_SLACK: usize = 2;

impl Reading {
    pub fn of(flow: &CompiledFlow, cleaned: &str) -> Reading {
        let lexicon = &flow.lexicon;
        let lower = cleaned.to_lowercase();
        let romaji = looks_like_romaji(&lower);
        let mut found: Vec<usize> = Vec::new();
        let mut denied: Vec<usize> = Vec::new();
        // (intent, asked for in its own clause)
        let mut command_words: Vec<(usize, bool)> = Vec::new();
        let mut blocker_hit: Vec<usize> = Vec::new();
        let (mut negated_any, mut past_any, mut requested_any) = (false, false, false);
        let mut still_wrong = false;
        // A count read per clause too: "1回目に出られず、8回試した".
        let mut attempts = attempts_counted(cleaned, &lower);
        for clause in lexicon.clauses(&lower) {
            let folded = crate::text::fold_clean(clause);
            let mut hits = lexicon.scan(clause, &folded);
            let kana = if romaji {
                crate::text::fold_clean(&clause.to_hiragana())
            } else {
                String::new()
            };
            hits.extend(lexicon.scan_kana(&kana));
            let negated = clause_negated(&hits);
            attempts = attempts || attempts_counted(clause, clause);
            negated_any |= hits.iter().any(|h| h.mark == Mark::Negation);
            past_any |= hits.iter().any(|h| h.mark == Mark::Past);
            let requested = hits.iter().any(|h| h.mark == Mark::Request);
            requested_any |= requested;
            // A symptom that overlaps a command word is part of it
            // ("問題なくなりました").
            still_wrong |= negated
                || hits.iter().any(|h| {
                    h.mark == Mark::Symptom
                        && !hits
                            .iter()
                            .any(|c| matches!(c.mark, Mark::Command(_)) && c.overlaps(h))
                });
            for concept in concepts_in(&hits) {
                let list = if negated { &mut denied } else { &mut found };
                if !list.contains(&concept) {
                    list.push(concept);
                }
            }
            for hit in &hits {
                match hit.mark {
                    Mark::Command(i) if !negated => {
                        let (text, covered) = covered_text(hit, clause, &folded, &kana);
                        let bare = text.chars().filter(|c| !c.is_whitespace()).count()
                            <= covered + BARE_COMMAND_SLACK;
                        // "リスタートした" reports; "リスタート" alone asks.
                        let past = hits.iter().any(|h| h.mark == Mark::Past);
                        if !command_words.iter().any(|(c, _)| *c == i) {
                            command_words.push((i, requested || (bare && !past)));
                        }
                    }
                    Mark::Blocker(i) if !blocker_hit.contains(&i) => blocker_hit.push(i),
                    _ => {}
                }
            }
        }
        denied.retain(|c| !found.contains(c));
        let intents = &flow.flow.intents;
        // A command named in a clause fires when that clause asks for it;
        // one reported in the past ("ログインできた") when nothing in the
        // message is denied or still wrong.
        let commands = command_words
            .into_iter()
            .filter(|(i, _)| !blocker_hit.contains(i))
            .filter(|(i, asked)| {
                *asked
                    || (intents[*i].past_ok
                        && !still_wrong
                        && found.is_empty()
                        && denied.is_empty())
            })
            .map(|(i, _)| i)
            .collect();
        let blocked = intents
            .iter()
            .enumerate()
            .filter(|(i, intent)| {
                let gated = intent.command
                    && !requested_any
                    && (negated_any || (past_any && !intent.past_ok));
                gated || blocker_hit.contains(i)
            })
            .map(|(_, intent)| intent.id.clone())
            .collect();
        Reading {
            phone: find_phone(cleaned),
            attempts,
            concepts: found,
            denied,
            commands,
            blocked,
        }
    }

    /// Where the reading leads: a phone number first (it is analysed at
    /// once), then the node most concepts point at (a count of attempts
    /// counts as one more for the attempts node unless a concept already
    /// points there), then a fallback concept when nothing else was found
    /// and no cause was denied.
    pub fn signal(&self, flow: &CompiledFlow) -> Signal {
        let header = &flow.flow.flow;
        if self.phone.is_some() {
            if let Some(node) = &header.phone_node {
                return Signal::Go(node.clone());
            }
        }
        let concepts = &flow.flow.concepts;
        let mut votes: Vec<(String, usize)> = Vec::new();
        let mut vote = |goto: &str| match votes.iter_mut().find(|(g, _)| g == goto) {
            Some((_, n)) => *n += 1,
            None => votes.push((goto.to_string(), 1)),
        };
        for &c in &self.concepts {
            if !concepts[c].fallback {
                vote(&concepts[c].goto);
            }
        }
        if self.attempts {
            if let Some(node) = &header.attempts_node {
                if !votes.iter().any(|(g, _)| g == node) {
                    votes.push((node.clone(), 1));
                }
            }
        }
        // The bare symptom counts only when nothing else is said, and not
        // when the person ruled a cause out: then the bot asks.
        if votes.is_empty() && self.denied.is_empty() {
            if let Some(&c) = self.concepts.iter().find(|&&c| concepts[c].fallback) {
                votes.push((concepts[c].goto.clone(), 1));
            }
        }
        votes.sort_by_key(|v| std::cmp::Reverse(v.1));
        match votes.as_slice() {
            [] => Signal::Nothing,
            [(goto, _)] => Signal::Go(goto.clone()),
            [(goto, best), (_, second), ..] if best > second => Signal::Go(goto.clone()),
            [(_, best), ..] => Signal::Tie(
                votes
                    .iter()
                    .filter(|(_, n)| n == best)
                    .map(|(g, _)| g.clone())
                    .collect(),
            ),
        }
    }

    /// Nodes of the causes the person denied ("非通知拒否はしていない").
    pub fn denied_gotos<'f>(&self, flow: &'f CompiledFlow) -> Vec<&'f str> {
        self.denied
            .iter()
            .map(|&c| flow.flow.concepts[c].goto.as_str())
            .collect()
    }
}

impl Run<'_> {
    /// The reading of `cleaned`, made once per text.
    pub(super) fn read(&self, cleaned: &str) -> Rc<Reading> {
        if let Some((text, reading)) = self.reading.borrow().as_ref() {
            if text == cleaned {
                return reading.clone();
            }
        }
        let reading = Rc::new(Reading::of(self.flow, cleaned));
        *self.reading.borrow_mut() = Some((cleaned.to_string(), reading.clone()));
        reading
    }
}

/// Whether a clause denies something: a negation that is not part of
/// another word of the lists — a symptom ("届かない"), a concept
/// ("知らない番号"), a command ("問題なく"), a request ("つないで") — and
/// does not follow a limiter ("しか…ない").
fn clause_negated(hits: &[Hit]) -> bool {
    hits.iter().filter(|h| h.mark == Mark::Negation).any(|n| {
        let in_symptom = hits
            .iter()
            .any(|s| s.mark != Mark::Negation && s.mark != Mark::Limiter && s.covers(n));
        let limited = hits
            .iter()
            .any(|l| l.mark == Mark::Limiter && l.space == n.space && l.end <= n.start);
        !in_symptom && !limited
    })
}

/// Concepts named in one clause. The longer phrase wins: a concept whose
/// every word lies inside a longer word of another concept does not count
/// ("海外からの電話" is blocking, not abroad).
fn concepts_in(hits: &[Hit]) -> Vec<usize> {
    let mut concepts: Vec<usize> = Vec::new();
    for hit in hits {
        let Mark::Concept(c) = hit.mark else {
            continue;
        };
        let inside_longer = hits.iter().any(|other| match other.mark {
            Mark::Concept(d) => {
                d != c && other.covers(hit) && other.end - other.start > hit.end - hit.start
            }
            _ => false,
        });
        if !inside_longer && !concepts.contains(&c) {
            concepts.push(c);
        }
    }
    concepts
}

/// The form of the clause a hit was found in, and how many characters
/// (not counting spaces) the hit covers there.
fn covered_text<'t>(hit: &Hit, lower: &'t str, folded: &'t str, kana: &'t str) -> (&'t str, usize) {
    let text = match hit.space {
        Space::Literal => lower,
        Space::Folded => folded,
        Space::Kana => kana,
    };
    let covered = text
        .get(hit.start..hit.end)
        .map_or(0, |s| s.chars().filter(|c| !c.is_whitespace()).count());
    (text, covered)
}

/// A message in ASCII letters that may be romanised Japanese: no
/// Japanese characters, some letters. English reads as nonsense kana,
/// which matches nothing.
fn looks_like_romaji(lower: &str) -> bool {
    lower.is_ascii() && lower.bytes().filter(u8::is_ascii_alphabetic).count() >= 4
}

/// A count of attempts with its unit ("6回", "何度も", "3 times"): a bare
/// number is a menu choice or part of something else.
fn attempts_counted(cleaned: &str, lower: &str) -> bool {
    use crate::diagnose::lockout::{parse_attempt_count, AttemptCount};
    let has_unit = cleaned.contains('回')
        || cleaned.contains('度')
        || lower.contains("time")
        || lower.contains("tries");
    has_unit
        && matches!(
            parse_attempt_count(cleaned),
            Some(AttemptCount::Exactly(2..))
                | Some(AttemptCount::AtLeast(_))
                | Some(AttemptCount::Many)
        )
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

#[cfg(test)]
mod tests {
    //! The reading rules on the repository's own flow; each names the rule
    //! it pins down.
    use super::*;

    fn flow() -> &'static CompiledFlow {
        &crate::content::testing::content().flow
    }

    fn read(text: &str) -> Reading {
        Reading::of(flow(), &crate::text::clean(text))
    }

    fn concept_ids(ids: &[usize]) -> Vec<&'static str> {
        ids.iter()
            .map(|&i| flow().flow.concepts[i].id.as_str())
            .collect()
    }

    fn command_ids(reading: &Reading) -> Vec<&'static str> {
        reading
            .commands
            .iter()
            .map(|&i| flow().flow.intents[i].id.as_str())
            .collect()
    }

    #[test]
    fn a_negation_inside_a_symptom_or_a_word_does_not_deny() {
        assert_eq!(
            concept_ids(&read("ドコモから乗り換えてから電話が来ない").concepts)[0],
            "carrier-change"
        );
        // "知らない番号" names blocking; "つないで" holds "ない".
        assert_eq!(
            concept_ids(&read("知らない番号はブロックしてる").concepts),
            ["blocking"]
        );
        assert_eq!(command_ids(&read("担当者につないで")), ["human"]);
        assert!(read("海外にはいません").concepts.is_empty());
        assert_eq!(
            concept_ids(&read("海外にはいません").denied),
            ["forwarding-abroad"]
        );
    }

    #[test]
    fn a_limiter_makes_the_negation_say_what_the_person_has() {
        assert_eq!(
            concept_ids(&read("固定電話しか持っていません").concepts),
            ["landline"]
        );
    }

    #[test]
    fn a_clause_break_keeps_its_negation_with_the_clause_it_ends() {
        // "スマホないから" is negated, "家電で登録したい" is not.
        assert_eq!(
            concept_ids(&read("スマホないから家電で登録したい").concepts),
            ["landline"]
        );
        assert_eq!(
            concept_ids(&read("固定電話じゃないから").denied),
            ["landline"]
        );
    }

    #[test]
    fn romaji_is_read_as_kana_too() {
        assert_eq!(
            concept_ids(&read("kotei denwa shika motte nai").concepts),
            ["landline"]
        );
        assert_eq!(command_ids(&read("tantousha ni tsunaide")), ["human"]);
        assert!(read("I need help").concepts.is_empty());
    }

    #[test]
    fn english_words_match_with_their_endings() {
        assert_eq!(
            concept_ids(&read("I switched carriers last week").concepts),
            ["carrier-change"]
        );
    }

    #[test]
    fn commands_fire_when_asked_for_not_when_described() {
        assert_eq!(command_ids(&read("メニューに戻りたい")), ["restart"]);
        assert_eq!(command_ids(&read("リスタート")), ["restart"]);
        assert!(command_ids(&read("リスタートしたけど固定電話だと鳴らない")).is_empty());
        assert!(command_ids(&read("スタッフに言われて固定電話を登録しました")).is_empty());
        assert!(command_ids(&read("何回やり直しても来ない")).is_empty());
    }

    #[test]
    fn solved_is_reported_only_when_nothing_is_still_wrong() {
        assert_eq!(
            command_ids(&read("さっきの方法でログインできたよ")),
            ["solved"]
        );
        assert_eq!(command_ids(&read("もう問題なくなりました")), ["solved"]);
        assert!(command_ids(&read("電話は来ましたが、#を押しても認証されない")).is_empty());
        assert!(command_ids(&read("昨日一度は解決したけど、また国番号で迷っています")).is_empty());
        assert!(command_ids(&read("解決しませんでした")).is_empty());
        assert!(command_ids(&read("ログインできたら嬉しい")).is_empty());
    }

    #[test]
    fn one_concept_per_cause_and_ties_are_asked() {
        // A count and the lockout words are one cause, not two votes.
        assert_eq!(
            read("何回も試したけど、そもそも非通知拒否にしてたかも").signal(flow()),
            Signal::Tie(vec!["case-a-count".into(), "case-b-check".into()])
        );
        assert_eq!(
            read("povoに変えたし、迷惑電話ブロックも入れてる").signal(flow()),
            Signal::Tie(vec!["case-c-fix".into(), "case-b-check".into()])
        );
    }

    #[test]
    fn the_longer_word_wins() {
        // "ブロックされた" (the account) is lockout, not call blocking.
        assert_eq!(
            concept_ids(&read("試しすぎてブロックされた").concepts),
            ["lockout"]
        );
        assert_eq!(
            concept_ids(&read("海外からの電話を拒否").concepts),
            ["blocking"]
        );
    }

    #[test]
    fn the_bare_symptom_leads_to_b_unless_a_cause_was_ruled_out() {
        assert_eq!(
            read("SMSが全然来ない").signal(flow()),
            Signal::Go("case-b-check".into())
        );
        assert_eq!(
            read("非通知拒否はしてないのに電話が来ない").signal(flow()),
            Signal::Nothing
        );
        assert_eq!(
            read("何度も試したのに来ない").signal(flow()),
            Signal::Go("case-a-count".into())
        );
    }

    #[test]
    fn counts_are_read_per_clause_and_ordinals_are_not_counts() {
        assert!(read("1回目は出られず、そのあと5回くらい試した").attempts);
        assert!(!read("1回目で出られなかった").attempts);
    }

    #[test]
    fn a_phone_number_goes_first() {
        let reading = read("固定電話じゃなくて 090ー1234ー5678 です");
        assert_eq!(reading.phone.as_deref(), Some("090ー1234ー5678"));
        assert_eq!(reading.signal(flow()), Signal::Go("case-d-number".into()));
    }
}
