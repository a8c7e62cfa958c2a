//! The flow's word lists (negations, past and request markers, symptoms,
//! concept words, command words, blockers, clause breaks) compiled once into
//! Aho–Corasick automata, so reading a message is one scan per clause
//! instead of one substring search per word.
//!
//! A word is looked for in one of two forms of the text:
//! - *folded* ([`crate::text::fold_clean`]: lower case, katakana as
//!   hiragana, no spaces or punctuation) for Japanese words, so `ロックされ`
//!   also finds `ろっくされ` and `ロック　され`;
//! - *literal* (lower case, spaces kept) for ASCII words and words holding
//!   symbols folding would drop (`#キー`, `+81`). A literal word that
//!   starts or ends with a letter or digit matches whole words only (`au` is
//!   not in `authenticator`); an English plural or past ending (`s`, `es`,
//!   `ed`, `d`) may follow (`carriers`, `blocked`).
//!
//! Hits keep their position, so callers can tell that a negation lies
//! inside a symptom (`来ない`), or that one concept's word lies inside a
//! longer word of another (`海外から` inside `海外からの電話`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What a word in the lists stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Negation,
    Past,
    Request,
    Symptom,
    /// `しか`: the negation after it limits ("固定電話しか持っていません").
    Limiter,
    /// Index into the flow's concepts.
    Concept(usize),
    /// Index into the flow's intents (its `words`).
    Command(usize),
    /// Index into the flow's intents (its `blockers`).
    Blocker(usize),
}

/// Which form of the text a hit was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Literal,
    Folded,
    /// A romaji message read as kana and folded.
    Kana,
}

/// One word found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub mark: Mark,
    pub space: Space,
    pub start: usize,
    pub end: usize,
}

impl Hit {
    /// Whether the two hits share text (same form of the text).
    pub fn overlaps(&self, other: &Hit) -> bool {
        self.space == other.space && self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies inside this hit (same form of the text).
    pub fn covers(&self, other: &Hit) -> bool {
        self.space == other.space && self.start <= other.start && other.end <= self.end
    }
}

/// One automaton and the marks of each of its patterns.
#[derive(Debug, Default)]
struct Automaton {
    matcher: Option<AhoCorasick>,
    /// Per pattern: every mark it stands for (one word may be in two lists).
    marks: Vec<Vec<Mark>>,
    /// Per pattern: whether its first / last character is ASCII
    /// alphanumeric (then the match must not continue a word there).
    edges: Vec<(bool, bool)>,
}

impl Automaton {
    fn new(words: Vec<(String, Mark)>) -> Automaton {
        let mut patterns: Vec<String> = Vec::new();
        let mut marks: Vec<Vec<Mark>> = Vec::new();
        for (word, mark) in words {
            match patterns.iter().position(|p| p == &word) {
                Some(i) => {
                    if !marks[i].contains(&mark) {
                        marks[i].push(mark);
                    }
                }
                None => {
                    patterns.push(word);
                    marks.push(vec![mark]);
                }
            }
        }
        let edges = patterns
            .iter()
            .map(|p| {
                let first = p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                let last = p
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
                (first, last)
            })
            .collect();
        let matcher = if patterns.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        Automaton {
            matcher,
            marks,
            edges,
        }
    }

    fn scan(&self, text: &str, space: Space, whole_words: bool, hits: &mut Vec<Hit>) {
        let Some(matcher) = &self.matcher else {
            return;
        };
        let bytes = text.as_bytes();
        for found in matcher.find_overlapping_iter(text) {
            let pattern = found.pattern().as_usize();
            let (start, mut end) = (found.start(), found.end());
            if whole_words {
                let (first, last) = self.edges[pattern];
                if first && start > 0 && bytes[start - 1].is_ascii_alphanumeric() {
                    continue;
                }
                if last {
                    match english_ending(&bytes[end..]) {
                        Some(extra) => end += extra,
                        None => continue,
                    }
                }
            }
            for mark in &self.marks[pattern] {
                hits.push(Hit {
                    mark: *mark,
                    space,
                    start,
                    end,
                });
            }
        }
    }
}

/// After a whole word: nothing more of the word, or an English ending
/// (`s`, `es`, `ed`, `d`) and then nothing more. Returns the ending's
/// length; `None` when the word goes on (`au` in `authenticator`).
fn english_ending(rest: &[u8]) -> Option<usize> {
    let ends_at = |n: usize| rest.get(n).is_none_or(|b| !b.is_ascii_alphanumeric());
    if ends_at(0) {
        return Some(0);
    }
    for ending in [&b"s"[..], b"es", b"ed", b"d"] {
        if rest.starts_with(ending) && ends_at(ending.len()) {
            return Some(ending.len());
        }
    }
    None
}

/// The flow's words, compiled.
#[derive(Debug, Default)]
pub struct Lexicon {
    folded: Automaton,
    literal: Automaton,
    /// Clause breaks (lower case), leftmost-longest.
    breaks: Option<AhoCorasick>,
}

/// Whether `word` must be matched in the literal text: ASCII, or holding a
/// symbol folding would remove (`#`, `+`).
fn is_literal(word: &str) -> bool {
    word.is_ascii() || word.chars().any(|c| c.is_ascii_punctuation())
}

impl Lexicon {
    /// Compiles `words` (any case, any width: they are cleaned, then
    /// lower-cased or folded) and the clause `breaks`.
    pub fn new<'a>(words: impl IntoIterator<Item = (&'a str, Mark)>, breaks: &[String]) -> Lexicon {
        let mut folded = Vec::new();
        let mut literal = Vec::new();
        for (word, mark) in words {
            let cleaned = crate::text::clean(word);
            if cleaned.trim().is_empty() {
                continue;
            }
            if is_literal(&cleaned) {
                literal.push((cleaned.to_lowercase(), mark));
            } else {
                let f = crate::text::fold_clean(&cleaned);
                if !f.is_empty() {
                    folded.push((f, mark));
                }
            }
        }
        let breaks: Vec<String> = breaks
            .iter()
            .map(|b| b.to_lowercase())
            .filter(|b| !b.is_empty())
            .collect();
        let breaks = if breaks.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&breaks)
                .ok()
        };
        Lexicon {
            folded: Automaton::new(folded),
            literal: Automaton::new(literal),
            breaks,
        }
    }

    /// Every word found in a text given in both forms.
    pub fn scan(&self, lower: &str, folded: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.literal.scan(lower, Space::Literal, true, &mut hits);
        self.folded.scan(folded, Space::Folded, false, &mut hits);
        hits
    }

    /// Only the Japanese words, in a folded text (a romaji message read as
    /// kana: its ASCII words were already looked for in the original).
    pub fn scan_kana(&self, kana: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.folded.scan(kana, Space::Kana, false, &mut hits);
        hits
    }

    /// `lower` cut after each clause break; clauses with nothing but a
    /// break dropped.
    pub fn clauses<'t>(&self, lower: &'t str) -> Vec<&'t str> {
        let mut clauses = Vec::new();
        let mut start = 0;
        if let Some(breaks) = &self.breaks {
            // A break ends the clause before it and stays with it: "ないから"
            // keeps its negation in the clause it negates.
            for found in breaks.find_iter(lower) {
                clauses.push(&lower[start..found.end()]);
                start = found.end();
            }
        }
        clauses.push(&lower[start..]);
        let breaks = &self.breaks;
        clauses.retain(|c| {
            let only_break = breaks.as_ref().is_some_and(|b| {
                b.find(c.trim())
                    .is_some_and(|m| m.start() == 0 && m.end() == c.trim().len())
            });
            !c.trim().is_empty() && !only_break
        });
        clauses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon(words: &[(&str, Mark)]) -> Lexicon {
        Lexicon::new(
            words.iter().copied(),
            &["、".to_string(), " but ".to_string()],
        )
    }

    fn marks(lexicon: &Lexicon, text: &str) -> Vec<Mark> {
        let cleaned = crate::text::clean(text);
        let lower = cleaned.to_lowercase();
        let folded = crate::text::fold_clean(&cleaned);
        lexicon
            .scan(&lower, &folded)
            .iter()
            .map(|h| h.mark)
            .collect()
    }

    #[test]
    fn japanese_words_match_in_any_script_and_width() {
        let l = lexicon(&[("ロックされ", Mark::Concept(0)), ("来ない", Mark::Symptom)]);
        assert_eq!(marks(&l, "ろっくされた"), [Mark::Concept(0)]);
        assert_eq!(marks(&l, "ﾛｯｸされました"), [Mark::Concept(0)]);
        assert_eq!(marks(&l, "電話が来ない"), [Mark::Symptom]);
        assert!(marks(&l, "電話が来た").is_empty());
    }

    #[test]
    fn ascii_words_are_whole_words_with_english_endings() {
        let l = lexicon(&[
            ("au", Mark::Concept(0)),
            ("switched carrier", Mark::Concept(1)),
        ]);
        assert_eq!(marks(&l, "auに乗り換え"), [Mark::Concept(0)]);
        assert!(marks(&l, "authenticator app").is_empty());
        assert_eq!(marks(&l, "I switched carriers"), [Mark::Concept(1)]);
        assert!(marks(&l, "I switched carrierwave").is_empty());
    }

    #[test]
    fn symbols_are_kept_for_words_that_hold_them() {
        let l = lexicon(&[("#キー", Mark::Concept(0)), ("+81", Mark::Concept(1))]);
        assert_eq!(marks(&l, "＃キーが効かない"), [Mark::Concept(0)]);
        assert!(marks(&l, "キーボード").is_empty());
        assert_eq!(marks(&l, "+81って0いる？"), [Mark::Concept(1)]);
    }

    #[test]
    fn one_word_in_two_lists_gives_both_marks() {
        let l = lexicon(&[("ない", Mark::Negation), ("ない", Mark::Past)]);
        assert_eq!(marks(&l, "ない"), [Mark::Negation, Mark::Past]);
    }

    #[test]
    fn clauses_split_at_breaks() {
        let l = lexicon(&[]);
        assert_eq!(
            l.clauses("ロックかも、転送かも but who knows"),
            ["ロックかも、", "転送かも but ", "who knows"]
        );
        assert_eq!(l.clauses("、、"), Vec::<&str>::new());
    }
}
