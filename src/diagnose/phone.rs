//! Analysis of the phone number a person says they registered for MFA (FAQ
//! cases D and F).
//!
//! People type numbers the way they would dial them in Japan: full-width
//! digits from the IME, `ー` for a hyphen, the trunk `0` kept after `+81`,
//! `0081` or `81` instead of `+81`, or no country code at all. The Microsoft
//! security-info page wants `+CountryCode NationalNumber` without the trunk
//! `0` (case D), and a fixed line cannot be the SMS-capable "authentication
//! phone" (case F). [`analyse_phone`] turns whatever was typed into a
//! [`PhoneAnalysis`]: the canonical E.164 form when one can be derived, the
//! form to enter on the security-info page, a masked form safe for agents and
//! logs, the line type, and the list of [`PhoneProblem`]s found. It produces
//! no sentences; the conversation layer chooses what to say.
//!
//! Rules worth knowing:
//!
//! * The input goes through [`crate::text::clean`] (NFKC) first; hyphen
//!   look-alikes ([`crate::text::HYPHEN_LOOKALIKES`] and `~`), white space,
//!   parentheses and dots are separators.
//! * People type sentences ("090 1234 5678 です", "番号は 090-…"). The number
//!   is the stretch of text from the first digit (or a `+` just before it) to
//!   the last digit; words before and after it are ignored and are *not*
//!   reported as [`PhoneProblem::InvalidCharacters`]. Letters, emoji or other
//!   symbols *between* digits are reported as `InvalidCharacters`, and the
//!   digits around them are still analysed.
//! * The trunk-zero mistake ([`PhoneProblem::LeadingZero`]) is detected on the
//!   digits as typed, because `phonenumber` 0.3 silently drops it.
//! * Line types come from `phonenumber`'s metadata. Its `FixedLineOrMobile`
//!   (e.g. +1 numbers, where the number alone cannot tell) maps to
//!   [`LineType::Unknown`]: telling someone with a landline that they have a
//!   mobile would send them down the wrong path of case F.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Metadata, PhoneNumber, Type};

use crate::text;

/// The result of analysing one typed phone number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhoneAnalysis {
    /// Exactly what the person typed, untouched.
    pub input: String,
    /// Canonical E.164 form (`+819012345678`) when a valid number could be
    /// derived.
    pub e164: Option<String>,
    /// The form the Microsoft security-info page expects: `+81 9012345678`
    /// (country code, one space, national significant number without the
    /// trunk `0`).
    pub display: Option<String>,
    /// A form safe for agents and logs: `+81 90-****-5678`; see
    /// [`mask_e164`].
    pub masked: Option<String>,
    /// What kind of line the number belongs to.
    pub line_type: LineType,
    /// Problems found, in the declaration order of [`PhoneProblem`], without
    /// duplicates.
    pub problems: Vec<PhoneProblem>,
}

/// The kind of line a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    /// A mobile phone (Japan: 070, 080, 090).
    Mobile,
    /// A fixed line (Japan: 0[1-9]… other than the prefixes below).
    FixedLine,
    /// An IP phone (Japan: 050).
    IpPhone,
    /// A toll-free number (Japan: 0120, 0800).
    TollFree,
    /// A valid number of another type (premium rate, shared cost, pager, …).
    Other,
    /// The type cannot be told: the number is invalid, or the numbering plan
    /// does not distinguish fixed lines from mobiles (+1).
    Unknown,
}

/// One thing wrong with, or worth knowing about, a typed number.
///
/// The declaration order is the order used in [`PhoneAnalysis::problems`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneProblem {
    /// Nothing but spaces or punctuation was typed.
    Empty,
    /// The input had full-width digits (informational: they were normalised).
    FullwidthDigits,
    /// The number used a hyphen look-alike such as `ー` or `－`
    /// (informational: it was treated as a separator).
    HyphenLookalike,
    /// The trunk `0` was kept after the country code (`+81 090…`).
    LeadingZero,
    /// Domestic form (`090-…`): the security-info page needs `+81` and no `0`.
    MissingCountryCode,
    /// The country code was given without `+` (`81 90…`, `0081 90…`,
    /// `010 81 90…`).
    MissingPlus,
    /// Letters or symbols other than digits, spaces, `()-.+` and hyphen
    /// look-alikes appear inside the number.
    InvalidCharacters,
    /// The number has fewer digits than any valid number it could be.
    TooShort,
    /// The number has more digits than any valid number it could be.
    TooLong,
    /// No valid number could be derived; set whenever `e164` is `None`.
    Invalid,
}

impl PhoneAnalysis {
    /// True when a valid number was derived (`e164` is set).
    pub fn is_usable(&self) -> bool {
        self.e164.is_some()
    }

    /// True when the person should register the number in another form
    /// ([`PhoneProblem::LeadingZero`], [`PhoneProblem::MissingCountryCode`] or
    /// [`PhoneProblem::MissingPlus`]). These are reported even for an
    /// unusable number when its form was recognisable, so check
    /// [`is_usable`](Self::is_usable) first.
    pub fn needs_correction(&self) -> bool {
        self.problems.iter().any(|p| {
            matches!(
                p,
                PhoneProblem::LeadingZero
                    | PhoneProblem::MissingCountryCode
                    | PhoneProblem::MissingPlus
            )
        })
    }
}

/// Longest number E.164 allows, country code included.
const E164_MAX_DIGITS: usize = 15;

/// Analyses what a person typed as their phone number.
///
/// `default_country` is the country assumed for numbers typed without a
/// country code (`Id::JP` in practice). See the module documentation for the
/// rules.
pub fn analyse_phone(raw: &str, default_country: Id) -> PhoneAnalysis {
    let mut problems = Vec::new();
    let number = find_number(raw, &mut problems).and_then(|digits| {
        let (cc, nsn) = interpret(&digits, default_country, &mut problems)?;
        match validate(cc, &nsn) {
            Ok(number) => Some(number),
            Err(length) => {
                problems.extend(length);
                None
            }
        }
    });

    let mut analysis = PhoneAnalysis {
        input: raw.to_string(),
        e164: None,
        display: None,
        masked: None,
        line_type: LineType::Unknown,
        problems: Vec::new(),
    };
    match number {
        Some(number) => {
            let cc = number.code().value();
            let nsn = national_string(&number);
            let e164 = format!("+{cc}{nsn}");
            analysis.display = Some(format!("+{cc} {nsn}"));
            analysis.masked = Some(mask_parts(Some(cc), &nsn));
            analysis.line_type = line_type(&number, cc, &nsn);
            analysis.e164 = Some(e164);
        }
        None => problems.push(PhoneProblem::Invalid),
    }
    problems.sort_by_key(|p| *p as u8);
    problems.dedup();
    analysis.problems = problems;
    analysis
}

/// Masks an E.164 number for agents and logs: `+819012345678` becomes
/// `+81 90-****-5678`.
///
/// The country code is split off with `phonenumber`; the national significant
/// number is masked with a fixed `****` so its length is not revealed either:
///
/// * 9 digits or more: first 2, `-****-`, last 4;
/// * 7 or 8 digits: `****-` and the last 4;
/// * 5 or 6 digits: `****-` and the last 2;
/// * shorter: `****` only.
///
/// When no country code can be recognised, the whole digit string is masked
/// the same way without a `+CC ` prefix.
pub fn mask_e164(e164: &str) -> String {
    if let Ok(number) = phonenumber::parse(None, e164) {
        return mask_parts(Some(number.code().value()), &national_string(&number));
    }
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    if e164.trim_start().starts_with('+') {
        if let Some(cc_len) = country_code_len(&digits) {
            let cc = digits[..cc_len].parse::<u16>().ok();
            return mask_parts(cc, &digits[cc_len..]);
        }
    }
    mask_parts(None, &digits)
}

fn mask_parts(cc: Option<u16>, national: &str) -> String {
    let n = national.len();
    let masked = if n >= 9 {
        format!("{}-****-{}", &national[..2], &national[n - 4..])
    } else if n >= 7 {
        format!("****-{}", &national[n - 4..])
    } else if n >= 5 {
        format!("****-{}", &national[n - 2..])
    } else {
        "****".to_string()
    };
    match cc {
        Some(cc) => format!("+{cc} {masked}"),
        None => masked,
    }
}

/// True for characters that separate digit groups.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '(' | ')' | '.' | '-' | '~')
        || text::HYPHEN_LOOKALIKES.contains(&c)
}

/// The digits typed, with a leading `+` kept when present; records the
/// character-level problems. `None` when no digit was typed.
fn find_number(raw: &str, problems: &mut Vec<PhoneProblem>) -> Option<String> {
    if raw.chars().any(|c| ('０'..='９').contains(&c)) {
        problems.push(PhoneProblem::FullwidthDigits);
    }
    let chars: Vec<char> = text::clean(raw).chars().collect();
    let (Some(first), Some(last)) = (
        chars.iter().position(char::is_ascii_digit),
        chars.iter().rposition(char::is_ascii_digit),
    ) else {
        if chars.iter().all(|&c| is_separator(c) || c == '+') {
            problems.push(PhoneProblem::Empty);
        } else {
            problems.push(PhoneProblem::InvalidCharacters);
        }
        return None;
    };

    // A `+` counts when only separators stand between it and the first digit.
    let mut start = first;
    for i in (0..first).rev() {
        if chars[i] == '+' {
            start = i;
            break;
        }
        if !is_separator(chars[i]) {
            break;
        }
    }

    let span = &chars[start..=last];
    // NFKC turns the full-width hyphen-minus into `-`, so look at the raw
    // input for it.
    let fullwidth_hyphen = raw.contains('－') && span.contains(&'-');
    if fullwidth_hyphen
        || span
            .iter()
            .any(|&c| c == '~' || (c != '-' && text::HYPHEN_LOOKALIKES.contains(&c)))
    {
        problems.push(PhoneProblem::HyphenLookalike);
    }

    let mut out = String::with_capacity(span.len());
    for (i, &c) in span.iter().enumerate() {
        if c.is_ascii_digit() || (c == '+' && i == 0) {
            out.push(c);
        } else if !is_separator(c) {
            problems.push(PhoneProblem::InvalidCharacters);
        }
    }
    Some(out)
}

/// Length of the country calling code at the start of `digits`, if any.
fn country_code_len(digits: &str) -> Option<usize> {
    (1..=3).find(|&len| {
        digits
            .get(..len)
            .and_then(|cc| cc.parse::<u16>().ok())
            .is_some_and(|cc| DATABASE.region(&cc).is_some())
    })
}

/// All metadata entries for a country calling code (+1 has many).
fn metadata_for(cc: u16) -> Vec<&'static Metadata> {
    DATABASE.by_code(&cc).unwrap_or_default()
}

fn national_prefix(cc: u16) -> Option<&'static str> {
    metadata_for(cc)
        .into_iter()
        .find_map(Metadata::national_prefix)
        .filter(|p| !p.is_empty())
}

/// Splits digits written in international form (after `+` or an IDD) into
/// country code and national significant number, flagging a kept trunk `0`.
fn split_international(rest: &str, problems: &mut Vec<PhoneProblem>) -> Option<(u16, String)> {
    let cc_len = country_code_len(rest)?;
    let cc = rest[..cc_len].parse::<u16>().ok()?;
    let mut national = &rest[cc_len..];
    if let Some(prefix) = national_prefix(cc) {
        if let Some(stripped) = national.strip_prefix(prefix) {
            problems.push(PhoneProblem::LeadingZero);
            national = stripped;
        }
    }
    Some((cc, national.to_string()))
}

/// Works out which country code and national number the person meant and
/// records how the form deviates from `+CC NSN`. `None` when no country code
/// can be recognised.
fn interpret(
    digits: &str,
    default_country: Id,
    problems: &mut Vec<PhoneProblem>,
) -> Option<(u16, String)> {
    if let Some(rest) = digits.strip_prefix('+') {
        return split_international(rest, problems);
    }

    let default_meta = DATABASE.by_id(default_country.as_ref());
    let default_cc = default_meta.map(Metadata::country_code);
    // The default country's international (IDD) prefix, e.g. `010` from
    // Japan, or the widespread `00`.
    let idd_len = default_meta
        .and_then(Metadata::international_prefix)
        .and_then(|re| re.find(digits))
        .filter(|m| m.start() == 0 && m.end() > 0)
        .map(|m| m.end())
        .or_else(|| digits.starts_with("00").then_some(2));
    if let Some(idd_len) = idd_len {
        problems.push(PhoneProblem::MissingPlus);
        return split_international(&digits[idd_len..], problems);
    }

    let default_cc = default_cc?;
    if let Some(national) = national_prefix(default_cc).and_then(|p| digits.strip_prefix(p)) {
        problems.push(PhoneProblem::MissingCountryCode);
        return Some((default_cc, national.to_string()));
    }

    // Neither `+`, an IDD nor a trunk prefix: either a country code without
    // `+`, or a national number without its trunk prefix.
    let mut as_international = Vec::new();
    let international = split_international(digits, &mut as_international);
    let international_valid = international
        .as_ref()
        .is_some_and(|(cc, nsn)| validate(*cc, nsn).is_ok());
    let starts_with_default = digits.starts_with(&default_cc.to_string());
    if international_valid && starts_with_default {
        problems.push(PhoneProblem::MissingPlus);
        problems.extend(as_international);
        return international;
    }
    if validate(default_cc, digits).is_ok() {
        problems.push(PhoneProblem::MissingCountryCode);
        return Some((default_cc, digits.to_string()));
    }
    if international_valid || starts_with_default {
        problems.push(PhoneProblem::MissingPlus);
        problems.extend(as_international);
        return international;
    }
    Some((default_cc, digits.to_string()))
}

/// Checks that `cc` + `nsn` is a valid number; otherwise says whether it is
/// too short or too long (possibly neither).
fn validate(cc: u16, nsn: &str) -> Result<PhoneNumber, Option<PhoneProblem>> {
    if nsn.is_empty() {
        return Err(Some(PhoneProblem::TooShort));
    }
    if cc.to_string().len() + nsn.len() > E164_MAX_DIGITS {
        return Err(Some(PhoneProblem::TooLong));
    }
    if let Ok(number) = phonenumber::parse(None, format!("+{cc}{nsn}")) {
        if number.is_valid_with(&DATABASE) {
            return Ok(number);
        }
    }
    Err(length_problem(cc, nsn))
}

/// True when `nsn` is a valid national significant number for `cc`.
fn nsn_matches(cc: u16, nsn: &str) -> bool {
    metadata_for(cc).into_iter().any(|meta| {
        let descriptors = meta.descriptors();
        descriptors.general().is_match(nsn)
            && NUMBER_TYPES
                .iter()
                .any(|&t| descriptors.get(t).is_some_and(|d| d.is_match(nsn)))
    })
}

/// Number types a person could register (everything but short codes and
/// emergency numbers).
const NUMBER_TYPES: [Type; 10] = [
    Type::FixedLine,
    Type::Mobile,
    Type::TollFree,
    Type::PremiumRate,
    Type::SharedCost,
    Type::PersonalNumber,
    Type::Voip,
    Type::Pager,
    Type::Uan,
    Type::Voicemail,
];

/// Too short when appending digits can make the number valid, too long when
/// dropping trailing digits can.
fn length_problem(cc: u16, nsn: &str) -> Option<PhoneProblem> {
    // The general descriptor often has no lengths of its own; take the union
    // of the lengths of every number type.
    let lengths: Vec<usize> = metadata_for(cc)
        .into_iter()
        .flat_map(|meta| {
            let descriptors = meta.descriptors();
            let mut all = descriptors.general().possible_length().to_vec();
            for t in NUMBER_TYPES {
                if let Some(d) = descriptors.get(t) {
                    all.extend_from_slice(d.possible_length());
                }
            }
            all
        })
        .map(usize::from)
        .collect();
    let room = E164_MAX_DIGITS.saturating_sub(cc.to_string().len());
    let min = lengths.iter().copied().min().unwrap_or(1);
    let max = lengths.iter().copied().max().unwrap_or(room).min(room);
    let n = nsn.len();
    if n < min {
        return Some(PhoneProblem::TooShort);
    }
    if n > max {
        return Some(PhoneProblem::TooLong);
    }
    let padded = (n + 1..=max).any(|len| {
        ('0'..='9').any(|d| {
            let mut candidate = nsn.to_string();
            candidate.extend(std::iter::repeat_n(d, len - n));
            nsn_matches(cc, &candidate)
        })
    });
    if padded {
        return Some(PhoneProblem::TooShort);
    }
    if (min..n).any(|len| nsn_matches(cc, &nsn[..len])) {
        return Some(PhoneProblem::TooLong);
    }
    None
}

/// The national significant number as digits, keeping Italian-style leading
/// zeros.
fn national_string(number: &PhoneNumber) -> String {
    let national = number.national();
    let zeros = "0".repeat(usize::from(national.zeros()));
    format!("{zeros}{}", national.value())
}

fn line_type(number: &PhoneNumber, cc: u16, nsn: &str) -> LineType {
    match number.number_type(&DATABASE) {
        Type::Mobile => LineType::Mobile,
        Type::FixedLine => LineType::FixedLine,
        Type::Voip => LineType::IpPhone,
        Type::TollFree => LineType::TollFree,
        Type::FixedLineOrMobile => LineType::Unknown,
        Type::Unknown if cc == 81 => japanese_line_type(nsn),
        Type::Unknown => LineType::Unknown,
        _ => LineType::Other,
    }
}

/// Fallback by prefix for Japanese numbers the metadata could not type.
fn japanese_line_type(nsn: &str) -> LineType {
    if nsn.starts_with("120") || nsn.starts_with("800") {
        LineType::TollFree
    } else if ["70", "80", "90"].iter().any(|p| nsn.starts_with(p)) {
        LineType::Mobile
    } else if nsn.starts_with("50") {
        LineType::IpPhone
    } else if nsn.starts_with(|c: char| ('1'..='9').contains(&c)) {
        LineType::FixedLine
    } else {
        LineType::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineType as L;
    use PhoneProblem as P;

    struct Case {
        input: &'static str,
        e164: Option<&'static str>,
        display: Option<&'static str>,
        masked: Option<&'static str>,
        line: LineType,
        problems: &'static [PhoneProblem],
    }

    const fn ok(
        input: &'static str,
        e164: &'static str,
        display: &'static str,
        masked: &'static str,
        line: LineType,
        problems: &'static [PhoneProblem],
    ) -> Case {
        Case {
            input,
            e164: Some(e164),
            display: Some(display),
            masked: Some(masked),
            line,
            problems,
        }
    }

    const fn bad(input: &'static str, problems: &'static [PhoneProblem]) -> Case {
        Case {
            input,
            e164: None,
            display: None,
            masked: None,
            line: L::Unknown,
            problems,
        }
    }

    const MOBILE: (&str, &str, &str) = ("+819012345678", "+81 9012345678", "+81 90-****-5678");

    #[test]
    fn analyse_phone_table() {
        let (e, d, m) = MOBILE;
        let cases = [
            ok("+81 9012345678", e, d, m, L::Mobile, &[]),
            ok("+819012345678", e, d, m, L::Mobile, &[]),
            ok(
                "090-1234-5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "０９０ー１２３４ー５６７８",
                e,
                d,
                m,
                L::Mobile,
                &[
                    P::FullwidthDigits,
                    P::HyphenLookalike,
                    P::MissingCountryCode,
                ],
            ),
            ok("+81 090 1234 5678", e, d, m, L::Mobile, &[P::LeadingZero]),
            ok("+81 090-1234-5678", e, d, m, L::Mobile, &[P::LeadingZero]),
            ok("+81-0-90-1234-5678", e, d, m, L::Mobile, &[P::LeadingZero]),
            ok("+8109012345678", e, d, m, L::Mobile, &[P::LeadingZero]),
            ok("+81 (0)90 1234 5678", e, d, m, L::Mobile, &[P::LeadingZero]),
            ok(
                "(090) 1234 5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "090.1234.5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "＋８１　９０－１２３４－５６７８",
                e,
                d,
                m,
                L::Mobile,
                &[P::FullwidthDigits, P::HyphenLookalike],
            ),
            ok("81 90 1234 5678", e, d, m, L::Mobile, &[P::MissingPlus]),
            ok(
                "81 090 1234 5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::LeadingZero, P::MissingPlus],
            ),
            ok("0081 90 1234 5678", e, d, m, L::Mobile, &[P::MissingPlus]),
            ok(
                "0081 090 1234 5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::LeadingZero, P::MissingPlus],
            ),
            ok("010 81 90 1234 5678", e, d, m, L::Mobile, &[P::MissingPlus]),
            ok("9012345678", e, d, m, L::Mobile, &[P::MissingCountryCode]),
            ok(
                "050-1234-5678",
                "+815012345678",
                "+81 5012345678",
                "+81 50-****-5678",
                L::IpPhone,
                &[P::MissingCountryCode],
            ),
            ok(
                "03-1234-5678",
                "+81312345678",
                "+81 312345678",
                "+81 31-****-5678",
                L::FixedLine,
                &[P::MissingCountryCode],
            ),
            ok(
                "075-123-4567",
                "+81751234567",
                "+81 751234567",
                "+81 75-****-4567",
                L::FixedLine,
                &[P::MissingCountryCode],
            ),
            ok(
                "0120-123-456",
                "+81120123456",
                "+81 120123456",
                "+81 12-****-3456",
                L::TollFree,
                &[P::MissingCountryCode],
            ),
            ok(
                "0800-123-4567",
                "+818001234567",
                "+81 8001234567",
                "+81 80-****-4567",
                L::TollFree,
                &[P::MissingCountryCode],
            ),
            ok(
                "070-1234-5678",
                "+817012345678",
                "+81 7012345678",
                "+81 70-****-5678",
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "080-1234-5678",
                "+818012345678",
                "+81 8012345678",
                "+81 80-****-5678",
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "+1 415 555 2671",
                "+14155552671",
                "+1 4155552671",
                "+1 41-****-2671",
                L::Unknown,
                &[],
            ),
            ok(
                "+44 7400 123456",
                "+447400123456",
                "+44 7400123456",
                "+44 74-****-3456",
                L::Mobile,
                &[],
            ),
            ok(
                "090 1234 5678 です",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "番号は090-1234-5678番です。",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            ok(
                "090📱1234-5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode, P::InvalidCharacters],
            ),
            ok("📱 +81 90 1234 5678 🙏", e, d, m, L::Mobile, &[]),
            ok(
                "090\u{200B}1234\u{3000}5678",
                e,
                d,
                m,
                L::Mobile,
                &[P::MissingCountryCode],
            ),
            bad("", &[P::Empty, P::Invalid]),
            bad("   ", &[P::Empty, P::Invalid]),
            bad(" - ( ) + ", &[P::Empty, P::Invalid]),
            bad("abc", &[P::InvalidCharacters, P::Invalid]),
            bad(
                "090-1234-567",
                &[P::MissingCountryCode, P::TooShort, P::Invalid],
            ),
            bad(
                "090123456789012",
                &[P::MissingCountryCode, P::TooLong, P::Invalid],
            ),
            bad("+81 90", &[P::TooShort, P::Invalid]),
            bad("12", &[P::TooShort, P::Invalid]),
            bad(
                "090-1234-5678 / 080-1111-2222",
                &[
                    P::MissingCountryCode,
                    P::InvalidCharacters,
                    P::TooLong,
                    P::Invalid,
                ],
            ),
        ];
        for case in cases {
            let got = analyse_phone(case.input, Id::JP);
            assert_eq!(got.input, case.input, "input kept raw for {:?}", case.input);
            assert_eq!(got.e164.as_deref(), case.e164, "e164 of {:?}", case.input);
            assert_eq!(
                got.display.as_deref(),
                case.display,
                "display of {:?}",
                case.input
            );
            assert_eq!(
                got.masked.as_deref(),
                case.masked,
                "masked of {:?}",
                case.input
            );
            assert_eq!(got.line_type, case.line, "line type of {:?}", case.input);
            assert_eq!(got.problems, case.problems, "problems of {:?}", case.input);
            assert_eq!(
                got.is_usable(),
                case.e164.is_some(),
                "usable {:?}",
                case.input
            );
        }
    }

    #[test]
    fn odd_inputs_keep_invariants() {
        let inputs = [
            "+",
            "++81 90 1234 5678",
            "+0",
            "0",
            "00",
            "010",
            "81",
            "１",
            "+999 123",
            "99999999999999999999999999",
            "+81 0",
            "0000000000",
            "８１ー",
            "🙂",
            "\u{0}",
            "+81 90 1234 5678 +81",
            "電話: +44 20 7946 0958 です",
        ];
        for input in inputs {
            let got = analyse_phone(input, Id::JP);
            let invalid = got.problems.contains(&P::Invalid);
            assert_eq!(invalid, got.e164.is_none(), "{input:?}: {got:?}");
            assert_eq!(got.display.is_some(), got.e164.is_some(), "{input:?}");
            let mut sorted = got.problems.clone();
            sorted.sort_by_key(|p| *p as u8);
            sorted.dedup();
            assert_eq!(sorted, got.problems, "{input:?}");
            if let Some(masked) = &got.masked {
                assert!(masked.contains("****"), "{input:?}: {masked}");
            }
        }
    }

    #[test]
    fn needs_correction_table() {
        let cases = [
            ("+81 9012345678", false),
            ("+81 090 1234 5678", true),
            ("090-1234-5678", true),
            ("81 90 1234 5678", true),
            ("＋８１　９０－１２３４－５６７８", false),
            ("+1 415 555 2671", false),
        ];
        for (input, expected) in cases {
            let got = analyse_phone(input, Id::JP);
            assert_eq!(got.needs_correction(), expected, "{input:?}");
        }
    }

    #[test]
    fn mask_e164_table() {
        let cases = [
            ("+819012345678", "+81 90-****-5678"),
            ("+81312345678", "+81 31-****-5678"),
            ("+14155552671", "+1 41-****-2671"),
            ("+390612345678", "+39 06-****-5678"),
            // Not valid numbers: country code recognised, national part short.
            ("+8112345678", "+81 ****-5678"),
            ("+81123456", "+81 ****-56"),
            ("+811234", "+81 ****"),
            // No recognisable country code.
            ("12345678", "****-5678"),
            ("", "****"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_e164(input), expected, "{input:?}");
        }
    }

    #[test]
    fn mask_never_reveals_more_than_six_digits() {
        for input in [
            "+819012345678",
            "+8112345678",
            "+81123456",
            "+441234567890123",
        ] {
            let masked = mask_e164(input);
            let national = masked.split_once(' ').map_or(masked.as_str(), |(_, n)| n);
            let shown = national.chars().filter(char::is_ascii_digit).count();
            assert!(shown <= 6, "{input:?} -> {masked:?}");
            assert!(masked.contains("****"), "{input:?} -> {masked:?}");
        }
    }

    #[test]
    fn serialises_in_snake_case() {
        let cases = [
            (serde_json::to_value(LineType::IpPhone), "ip_phone"),
            (serde_json::to_value(LineType::FixedLine), "fixed_line"),
            (
                serde_json::to_value(PhoneProblem::MissingCountryCode),
                "missing_country_code",
            ),
            (
                serde_json::to_value(PhoneProblem::LeadingZero),
                "leading_zero",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(value.ok(), Some(serde_json::Value::from(expected)));
        }
        let analysis = analyse_phone("090-1234-5678", Id::JP);
        let json = serde_json::to_string(&analysis).unwrap_or_default();
        let back: Option<PhoneAnalysis> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(analysis));
    }
}
