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
    fold_clean(&clean(input))
}

/// [`fold`] of text that went through [`clean`] already (no second NFKC
/// pass: the engine folds the same cleaned message several times).
pub fn fold_clean(cleaned: &str) -> String {
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

/// Masks anything that looks like a phone number (a run of at least 8
/// digits, possibly split by spaces, hyphens or their look-alikes, brackets
/// or a leading `+`): every digit but the first 3 and the last 4 becomes `*`.
/// Used wherever a person's words are shown to more people than the person
/// and the claiming agent (staff threads before a claim, transcripts).
pub fn mask_phone_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let is_separator = |c: char| {
        matches!(c, ' ' | '\u{3000}' | '-' | '(' | ')' | '（' | '）' | '.')
            || HYPHEN_LOOKALIKES.contains(&c)
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // Extend over digits and separators that are followed by more digits.
        let mut end = i;
        let mut j = i;
        while j < chars.len() && (is_digit(chars[j]) || is_separator(chars[j])) {
            if is_digit(chars[j]) {
                end = j + 1;
            }
            j += 1;
        }
        let run = &chars[i..end];
        let digits = run.iter().filter(|c| is_digit(**c)).count();
        if digits >= 8 {
            let mut seen = 0;
            for &c in run {
                if is_digit(c) {
                    seen += 1;
                    out.push(if seen <= 3 || seen > digits - 4 {
                        c
                    } else {
                        '*'
                    });
                } else {
                    out.push(c);
                }
            }
        } else {
            out.extend(run.iter());
        }
        i = end;
    }
    out
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
    fn phone_numbers_are_masked_in_free_text() {
        assert_eq!(
            mask_phone_numbers("番号は 090-1234-5678 です"),
            "番号は 090-****-5678 です"
        );
        assert_eq!(mask_phone_numbers("+81 90 1234 5678"), "+81 9* **** 5678");
        assert_eq!(
            mask_phone_numbers("０９０ー１２３４ー５６７８"),
            "０９０ー****ー５６７８"
        );
        assert_eq!(mask_phone_numbers("5回試して14:30に"), "5回試して14:30に");
        // A date has 8 digits too: partly masked, still readable enough.
        assert_eq!(mask_phone_numbers("2026-11-25"), "202*-11-25");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("電話番号", 2), "電話");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}
