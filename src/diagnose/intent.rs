//! Free-text understanding: which choice or intent a typed message means.
//!
//! Japanese needs no tokenizer here: texts are folded ([`crate::text::fold`]:
//! NFKC, lower case, katakana to hiragana, no punctuation or spaces) and cut
//! into character 1-, 2- and 3-grams (1-grams only for kanji, katakana, Latin
//! letters and digits; single hiragana carry no meaning). Each gram is weighted
//! by its rarity across all examples of the flow (IDF), so `非通知`, `mnp` or
//! `固定` weigh more than `電話`, which every cause mentions. An input scores
//! the best cosine similarity against any example of a target.
//!
//! Negation matters for answers (`しています` vs `していません`): an input and
//! an example that disagree on containing a negation marker (listed in the
//! flow, e.g. `ない`, `ません`, `いいえ`) count as much less similar.
//!
//! The result is deterministic (ties go to the target listed first) and comes
//! with the runner-up, so the engine can ask instead of guessing when the
//! best score is low or too close to the next one.

use std::collections::HashMap;

use crate::text::fold;

/// Factor applied to the similarity of an input and an example that
/// disagree on negation ("届きました" vs "届きません").
const NEGATION_MISMATCH: f32 = 0.35;

/// Weighted sparse vector: (gram hash, weight), sorted by hash, L2-normalised.
type SparseVector = Vec<(u64, f32)>;

/// Gram statistics over every example of a flow; shared by all candidate
/// sets so that scores are comparable between nodes.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    idf: HashMap<u64, f32>,
    unknown_idf: f32,
    negations: Vec<String>,
    /// Folded filler phrases, longest first.
    fillers: Vec<String>,
}

/// One example utterance, vectorised.
#[derive(Debug, Clone)]
struct Example {
    target: usize,
    negated: bool,
}

/// The targets that may be meant at one point of the flow, with their
/// examples.
#[derive(Debug, Clone, Default)]
pub struct CandidateSet {
    targets: Vec<String>,
    examples: Vec<Example>,
    /// Inverted index: gram -> (example index, weight). Scoring an input
    /// touches only the examples that share a gram with it.
    postings: HashMap<u64, Vec<(u32, f32)>>,
}

/// The best target for an input, and the runner-up (a different target).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Targets with their best score, highest first.
    pub scored: Vec<(String, f32)>,
}

impl Ranking {
    pub fn best(&self) -> Option<(&str, f32)> {
        self.scored.first().map(|(t, s)| (t.as_str(), *s))
    }

    pub fn runner_up_score(&self) -> f32 {
        self.scored.get(1).map(|(_, s)| *s).unwrap_or(0.0)
    }
}

impl Vocabulary {
    /// Builds the IDF table from every example text of the flow.
    pub fn new<'a>(
        all_examples: impl IntoIterator<Item = &'a str>,
        negations: &[String],
        fillers: &[String],
    ) -> Self {
        let mut fillers: Vec<String> = fillers
            .iter()
            .map(|f| fold(f))
            .filter(|f| !f.is_empty())
            .collect();
        fillers.sort_by_key(|f| std::cmp::Reverse(f.chars().count()));
        let mut document_frequency: HashMap<u64, u32> = HashMap::new();
        let mut documents = 0u32;
        for example in all_examples {
            documents += 1;
            let stripped = strip_fillers(&fold(example), &fillers);
            for (gram, _) in gram_counts(&stripped) {
                *document_frequency.entry(gram).or_default() += 1;
            }
        }
        let n = documents.max(1) as f32;
        let idf = document_frequency
            .into_iter()
            .map(|(gram, df)| (gram, ((n + 1.0) / (df as f32 + 1.0)).ln() + 1.0))
            .collect();
        Vocabulary {
            idf,
            // Grams never seen in any example cannot match anything; they only
            // dilute the input a little, so that a long unrelated message does
            // not score as high as a short matching one.
            unknown_idf: 0.5 * ((n + 1.0).ln() + 1.0),
            negations: negations
                .iter()
                .map(|n| fold(n))
                .filter(|n| !n.is_empty())
                .collect(),
            fillers,
        }
    }

    fn vectorise(&self, folded: &str) -> SparseVector {
        let stripped = strip_fillers(folded, &self.fillers);
        // A text that is nothing but filler ("お願いします") keeps its words.
        let text = if stripped.is_empty() {
            folded
        } else {
            stripped.as_str()
        };
        // Already sorted by gram hash.
        let mut vector: SparseVector = gram_counts(text)
            .into_iter()
            .map(|(gram, count)| {
                let idf = self.idf.get(&gram).copied().unwrap_or(self.unknown_idf);
                (gram, (1.0 + (count as f32).ln()) * idf)
            })
            .collect();
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut vector {
                *w /= norm;
            }
        }
        vector
    }

    fn is_negated(&self, folded: &str) -> bool {
        self.negations
            .iter()
            .any(|marker| folded.contains(marker.as_str()))
    }

    /// Builds a candidate set from (target id, example texts).
    pub fn candidates<'a>(
        &self,
        targets: impl IntoIterator<Item = (String, Vec<&'a str>)>,
    ) -> CandidateSet {
        let mut set = CandidateSet::default();
        for (target, examples) in targets {
            let index = set.targets.len();
            set.targets.push(target);
            for example in examples {
                let folded = fold(example);
                if folded.is_empty() {
                    continue;
                }
                let example_index = set.examples.len() as u32;
                for (gram, weight) in self.vectorise(&folded) {
                    set.postings
                        .entry(gram)
                        .or_default()
                        .push((example_index, weight));
                }
                set.examples.push(Example {
                    target: index,
                    negated: self.is_negated(&folded),
                });
            }
        }
        set
    }

    /// Scores `input` against every target of `set`.
    pub fn rank(&self, set: &CandidateSet, input: &str) -> Ranking {
        let folded = fold(input);
        let mut best = vec![0.0f32; set.targets.len()];
        if !folded.is_empty() {
            let vector = self.vectorise(&folded);
            let negated = self.is_negated(&folded);
            // Cosine of normalised vectors = sum over shared grams.
            let mut dots = vec![0.0f32; set.examples.len()];
            for (gram, weight) in &vector {
                if let Some(postings) = set.postings.get(gram) {
                    for (example, example_weight) in postings {
                        dots[*example as usize] += weight * example_weight;
                    }
                }
            }
            for (example, dot) in set.examples.iter().zip(dots) {
                let mut score = dot;
                if negated != example.negated {
                    score *= NEGATION_MISMATCH;
                }
                if score > best[example.target] {
                    best[example.target] = score;
                }
            }
        }
        let mut scored: Vec<(String, f32)> = set.targets.iter().cloned().zip(best).collect();
        // Stable sort keeps flow order among equal scores: deterministic.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ranking { scored }
    }
}

/// Removes filler phrases from a folded text.
fn strip_fillers(folded: &str, fillers: &[String]) -> String {
    let mut text = folded.to_string();
    for filler in fillers {
        if text.contains(filler.as_str()) {
            text = text.replace(filler.as_str(), "");
        }
    }
    text
}

/// Counts the character grams of a folded text: (gram hash, count), sorted
/// by hash. A sorted vector instead of a hash map: fewer allocations on the
/// per-message path.
fn gram_counts(folded: &str) -> Vec<(u64, u32)> {
    let chars: Vec<char> = folded.chars().collect();
    let mut grams: Vec<u64> = Vec::with_capacity(chars.len() * 3);
    for (i, &c) in chars.iter().enumerate() {
        if !is_hiragana(c) {
            grams.push(hash_gram(&chars[i..i + 1]));
        }
        for n in 2..=3 {
            if i + n <= chars.len() {
                grams.push(hash_gram(&chars[i..i + n]));
            }
        }
    }
    grams.sort_unstable();
    let mut counts: Vec<(u64, u32)> = Vec::with_capacity(grams.len());
    for gram in grams {
        match counts.last_mut() {
            Some((last, count)) if *last == gram => *count += 1,
            _ => counts.push((gram, 1)),
        }
    }
    counts
}

fn is_hiragana(c: char) -> bool {
    matches!(c as u32, 0x3041..=0x309F) || c == 'ー'
}

/// FNV-1a over the characters: stable across runs and platforms (the std
/// hasher is randomly seeded, which would make scores differ per process).
fn hash_gram(chars: &[char]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for &c in chars {
        for byte in (c as u32).to_le_bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
    hash ^ chars.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary(sets: &[(&str, &[&str])]) -> (Vocabulary, CandidateSet) {
        let all: Vec<&str> = sets.iter().flat_map(|(_, e)| e.iter().copied()).collect();
        let negations = vec![
            "ない".to_string(),
            "ません".to_string(),
            "いいえ".to_string(),
        ];
        let vocabulary = Vocabulary::new(all, &negations, &["お願いします".to_string()]);
        let set = vocabulary.candidates(sets.iter().map(|(t, e)| (t.to_string(), e.to_vec())));
        (vocabulary, set)
    }

    #[test]
    fn distinctive_grams_decide_between_causes() {
        let (v, set) = vocabulary(&[
            (
                "mnp",
                &[
                    "MNPで携帯会社を乗り換えました",
                    "番号そのままで他社に移った",
                ],
            ),
            (
                "anonymous",
                &["非通知の電話を拒否しています", "海外からの着信を拒否"],
            ),
            (
                "landline",
                &["固定電話で設定したい", "研究室の電話で認証したい"],
            ),
        ]);
        let ranking = v.rank(&set, "先月ＭＮＰで乗り換えたばかりです");
        assert_eq!(ranking.best().map(|b| b.0), Some("mnp"));
        let ranking = v.rank(&set, "ヒツウチ拒否にしてる");
        assert_eq!(ranking.best().map(|b| b.0), Some("anonymous"));
        let ranking = v.rank(&set, "オフィスの固定電話を使いたいです");
        assert_eq!(ranking.best().map(|b| b.0), Some("landline"));
    }

    #[test]
    fn negation_separates_yes_from_no() {
        let (v, set) = vocabulary(&[
            ("yes", &["はい", "設定しています"]),
            ("no", &["いいえ", "設定していません"]),
        ]);
        assert_eq!(
            v.rank(&set, "設定してません").best().map(|b| b.0),
            Some("no")
        );
        assert_eq!(
            v.rank(&set, "設定してます").best().map(|b| b.0),
            Some("yes")
        );
    }

    #[test]
    fn unrelated_text_scores_low_and_empty_scores_zero() {
        let (v, set) = vocabulary(&[("mnp", &["MNPで携帯会社を乗り換えました"])]);
        let score = v
            .rank(&set, "今日の学食のメニューは何ですか")
            .best()
            .map(|b| b.1);
        assert!(score.unwrap_or(1.0) < 0.2, "{score:?}");
        assert_eq!(v.rank(&set, "").best().map(|b| b.1), Some(0.0));
    }

    #[test]
    fn fillers_do_not_make_texts_alike() {
        let (v, set) = vocabulary(&[
            ("restart", &["最初からお願いします"]),
            ("human", &["担当者と話したい"]),
        ]);
        let score = v
            .rank(&set, "よろしくお願いします")
            .best()
            .map(|b| b.1)
            .unwrap_or(1.0);
        assert!(score < 0.2, "{score}");
        assert_eq!(
            v.rank(&set, "最初から").best().map(|b| b.0),
            Some("restart")
        );
    }

    #[test]
    fn ranking_is_deterministic() {
        let (v, set) = vocabulary(&[("a", &["電話"]), ("b", &["電話"])]);
        let first = v.rank(&set, "電話");
        assert_eq!(first, v.rank(&set, "電話"));
        assert_eq!(first.best().map(|b| b.0), Some("a"));
    }
}
