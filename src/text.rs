//! Text normalisation shared by every part that reads what a person typed.
//!
//! People reach the help desk from phones with a Japanese IME: full-width
//! digits and letters, `ー` typed for a hyphen, katakana and hiragana used
//! interchangeably, stray control characters pasted from elsewhere. Everything
//! that interprets free text (intent matching, phone numbers, lockout times)
//! goes through these functions first so that all of them agree on what the
//! person meant.

use unicode_normalization::UnicodeNormalization;

/// Characters people type where they mean an ASCII hyphen-minus.
///
/// NFKC folds the full-width hyphen-minus (`－`) but not the long vowel mark
/// (`ー`), dashes, or the minus sign, so they are listed explicitly.
pub const HYPHEN_LOOKALIKES: &[char] = &[
    'ー', 'ｰ', '－', '‐', '‑', '‒', '–', '—', '―', '−', '⁃', '﹣', '～', '〜',
];

/// NFKC-normalises `input`, drops control characters (keeping line breaks and
/// tabs as spaces) and trims surrounding white space.
pub fn clean(input: &str) -> String {
    let normalized: String = input.nfkc().collect();
    let mut out = String::with_capacity(normalized.len());
    for c in normalized.chars() {
        if c == '\n' || c == '\t' || c == '\r' {
            out.push(' ');
        } else if c.is_control() || is_invisible_format(c) {
            continue;
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// True for zero-width and bidi formatting characters that carry no meaning
/// in a chat message but break matching (U+200B..U+200F, U+2028..U+202E,
/// U+2060..U+206F, U+FEFF).
fn is_invisible_format(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF)
}

/// Folds text for fuzzy comparison: [`clean`], lower case, katakana to
/// hiragana, hyphen look-alikes and punctuation removed, white space removed.
///
/// The long vowel mark `ー` is kept here (it is part of words such as
/// `オペレーター`); only phone-number parsing treats it as a hyphen.
pub fn fold(input: &str) -> String {
    let cleaned = clean(input);
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() || is_punctuation(c) {
            continue;
        }
        out.push(katakana_to_hiragana(c));
    }
    out
}

/// Maps one katakana letter to its hiragana counterpart; other characters are
/// returned unchanged.
pub fn katakana_to_hiragana(c: char) -> char {
    match c as u32 {
        // ァ (U+30A1) .. ヶ (U+30F6) map 1:1 onto ぁ (U+3041) .. ゖ (U+3096).
        0x30A1..=0x30F6 => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ => c,
    }
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '、' | '。'
                | '・'
                | '「'
                | '」'
                | '『'
                | '』'
                | '（'
                | '）'
                | '【'
                | '】'
                | '！'
                | '？'
                | '…'
                | '‥'
                | '〜'
                | '～'
                | '♪'
                | '☆'
                | '★'
                | '〇'
                | '※'
                | '“'
                | '”'
                | '‘'
                | '’'
        )
}

/// Shortens `text` to at most `max_chars` characters, on a character boundary.
pub fn truncate_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((byte_index, _)) => &text[..byte_index],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_applies_nfkc_and_drops_controls() {
        assert_eq!(clean("  ０９０\u{0007}１２\u{200B}３ "), "090123");
        assert_eq!(clean("ＭＮＰ\nです"), "MNP です");
    }

    #[test]
    fn fold_unifies_kana_case_and_punctuation() {
        assert_eq!(
            fold("オペレーター、お願いします！"),
            "おぺれーたーお願いします"
        );
        assert_eq!(fold("ＭＮＰ で"), "mnpで");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("電話番号", 2), "電話");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}
