//! Arithmetic for FAQ case A: too many MFA attempts lock the account.
//!
//! Microsoft allows 5 attempts in 5 minutes ([`ATTEMPT_LIMIT`],
//! [`ATTEMPT_WINDOW_MINUTES`]); more locks the account for roughly 30 minutes
//! to 5 hours or more. The help desk asks how many times the person tried and
//! when they last tried, then tells them from when to try again. This module
//! reads those two answers from free text ([`parse_attempt_count`],
//! [`parse_last_attempt`]), computes when to retry ([`lockout_advice`]) and
//! renders a time compactly ([`format_local_time`]). It returns values only;
//! the conversation layer words the replies.
//!
//! Decisions, documented on each function:
//!
//! * A range such as "2、3回" counts as its upper bound (`Exactly(3)`): for a
//!   lock the worst case matters. Approximations ("6回くらい") count as exact.
//! * `AtLeast(n)` below the limit cannot tell whether the limit was reached,
//!   so [`AttemptCount::reaches_limit`] answers `None` for it.
//! * "今" / "たった今" mean now; "さっき" / "先ほど" mean 5 minutes ago;
//!   "昨日" alone means yesterday 12:00 local; "朝" / "今朝" mean 08:00;
//!   "昨日の夜" / "昨晩" mean yesterday 21:00.
//! * A clock time without a day that lies later than now today means
//!   yesterday. A clock time from 1 to 11 o'clock without a day and without
//!   午前/午後/am/pm may be meant either way ("2時" said at 14:00 is usually
//!   14:00): the most recent of the two readings that is not in the future is
//!   taken. With a named day ("昨日の9時") the hour is taken as said (24-hour),
//!   and 夜/晩/夕方 or 朝 in the text act as 午後 or 午前.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::text;

/// Attempts allowed within [`ATTEMPT_WINDOW_MINUTES`] before the account locks.
pub const ATTEMPT_LIMIT: u32 = 5;

/// Length of the window in which [`ATTEMPT_LIMIT`] attempts are allowed.
pub const ATTEMPT_WINDOW_MINUTES: i64 = 5;

/// How many times a person says they tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "count", rename_all = "snake_case")]
pub enum AttemptCount {
    /// A number of attempts ("5回", "三回", "6回くらい", the upper bound of
    /// "2、3回").
    Exactly(u32),
    /// At least this many ("5回以上", "10+").
    AtLeast(u32),
    /// At most this many ("4回以下", "5回未満" = at most 4, "less than 5").
    AtMost(u32),
    /// Many, not counted ("何度も", "たくさん", "数えきれない", "many").
    Many,
    /// The person does not know ("わからない", "覚えていない").
    Unknown,
}

impl AttemptCount {
    /// Whether the count reaches [`ATTEMPT_LIMIT`]: `Some(true)` for 5 or
    /// more and for [`AttemptCount::Many`], `Some(false)` for an exact count
    /// below 5, `None` when it cannot be told ([`AttemptCount::Unknown`], or
    /// `AtLeast(n)` with `n` below 5).
    pub fn reaches_limit(&self) -> Option<bool> {
        match *self {
            AttemptCount::Exactly(n) => Some(n >= ATTEMPT_LIMIT),
            AttemptCount::AtLeast(n) if n >= ATTEMPT_LIMIT => Some(true),
            AttemptCount::AtMost(n) if n < ATTEMPT_LIMIT => Some(false),
            AttemptCount::AtLeast(_) | AttemptCount::AtMost(_) | AttemptCount::Unknown => None,
            AttemptCount::Many => Some(true),
        }
    }
}

/// What to tell a person who may be locked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockoutAdvice {
    /// The last attempt, never later than the `now` it was computed at.
    pub last_attempt_at: DateTime<Utc>,
    /// When to try again: `last_attempt_at` plus the wait.
    pub retry_at: DateTime<Utc>,
    /// True when `now` is at or after `retry_at`.
    pub wait_over: bool,
}

/// Computes when to retry after the last attempt.
///
/// `retry_at = last_attempt_at + wait`. A `last_attempt_at` in the future
/// (clock skew, a typo) is treated as `now`.
pub fn lockout_advice(
    last_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
    wait: Duration,
) -> LockoutAdvice {
    let last_attempt_at = last_attempt_at.min(now);
    let retry_at = last_attempt_at
        .checked_add_signed(wait)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    LockoutAdvice {
        last_attempt_at,
        retry_at,
        wait_over: now >= retry_at,
    }
}

/// Renders `t` in `tz`: `"HH:MM"` when it falls on the same local day as
/// `now`, otherwise `"MM/DD HH:MM"` (no year: the bot only talks about the
/// next few hours).
pub fn format_local_time(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%m/%d %H:%M").to_string()
    }
}

/// Reads how many times a person tried from free text.
///
/// Accepts digits (full-width too), kanji numerals up to 百 ("三回", "十一回",
/// "二十回"), "N times", "N回以上" / "N+" / "at least N" (`AtLeast(N)`),
/// "more than N" / "over N" (`AtLeast(N + 1)`), ranges "2、3回" / "2~3回" /
/// "2 or 3 times" (upper bound, `Exactly(3)`), "1回も" (`Exactly(0)`), and
/// words for many or for not knowing. A number without a unit (回, 度, times)
/// counts only when the text is nothing but that number and approximations
/// ("5", "6くらい", "10+"), so "5分前" is not a count. Returns `None` when the
/// text carries no count.
pub fn parse_attempt_count(text: &str) -> Option<AttemptCount> {
    let s = normalise(text);
    let chars: Vec<char> = s.chars().collect();
    let numbers = find_numbers(&chars);

    // Prefer a number followed by a count unit; of several ("最初の3回は
    // 出られず、そのあと8回試した"), the largest. "1回目" is an ordinal,
    // not a count.
    let mut counted: Option<(u32, AttemptCount)> = None;
    for (index, number) in numbers.iter().enumerate() {
        let mut value = number.value;
        let mut end = number.end;
        // A range "2、3回": the next number follows a range separator.
        if let Some(next) = numbers.get(index + 1) {
            let between: String = chars[end..next.start].iter().collect();
            if is_range_separator(between.trim()) && count_unit_len(&chars, next.end).is_some() {
                value = value.max(next.value);
                end = next.end;
            }
        }
        let after_plus = skip_spaces(&chars, end);
        let plus = chars.get(after_plus) == Some(&'+');
        let unit_at = if plus { after_plus + 1 } else { end };
        let Some(unit_len) = count_unit_len(&chars, unit_at) else {
            continue;
        };
        let rest: String = chars[skip_spaces(&chars, unit_at) + unit_len..]
            .iter()
            .collect();
        let before: String = chars[..number.start].iter().collect();
        if value == 1 && rest.starts_with('も') {
            return Some(AttemptCount::Exactly(0));
        }
        if rest.starts_with('目') {
            continue;
        }
        if counted.as_ref().is_none_or(|(best, _)| value > *best) {
            counted = Some((value, modified(value, plus, &before, &rest)));
        }
    }
    if let Some((_, count)) = counted {
        // "最初の3回は出られず、そのあと何度も": more than the number said.
        let many_too = [
            "何度も",
            "何回も",
            "なんども",
            "なんかいも",
            "数えきれない",
            "数え切れない",
        ]
        .iter()
        .any(|w| s.contains(w));
        return Some(if many_too { AttemptCount::Many } else { count });
    }

    // A bare number, alone with approximations.
    if let [number] = numbers.as_slice() {
        let before: String = chars[..number.start].iter().collect();
        let after: String = chars[number.end..].iter().collect();
        let plus = after.trim_start().starts_with('+');
        if is_only_approximation(&before) && is_only_approximation(&after) {
            return Some(modified(number.value, plus, &before, &after));
        }
    }

    const UNKNOWN: &[&str] = &[
        "わからない",
        "分からない",
        "わかりません",
        "分かりません",
        "わかんない",
        "覚えていない",
        "覚えてない",
        "覚えていません",
        "おぼえていない",
        "おぼえてない",
        "不明",
        "don't know",
        "dont know",
        "not sure",
        "no idea",
        "unknown",
        "don't remember",
        "dont remember",
        "idk",
    ];
    const MANY: &[&str] = &[
        "何度も",
        "何回も",
        "なんども",
        "なんかいも",
        "何十回",
        "何十回も",
        "たくさん",
        "沢山",
        "いっぱい",
        "数えきれない",
        "数え切れない",
        "数えられない",
        "無数",
        "many",
        "lots",
        "a lot",
        "countless",
        "numerous",
    ];
    const SEVERAL: &[&str] = &["数回", "数度", "何回か", "何度か", "several", "a few times"];
    if UNKNOWN.iter().any(|w| s.contains(w)) {
        return Some(AttemptCount::Unknown);
    }
    if MANY.iter().any(|w| s.contains(w)) {
        return Some(AttemptCount::Many);
    }
    if SEVERAL.iter().any(|w| s.contains(w)) {
        return Some(AttemptCount::AtLeast(2));
    }
    None
}

/// Applies "以上" / "+" / "at least" / "more than" around a count.
fn modified(value: u32, plus: bool, before: &str, after: &str) -> AttemptCount {
    let after = after.trim_start();
    let before = before.trim_end();
    if before.ends_with("more than") || before.ends_with("over") || after.starts_with('超') {
        AttemptCount::AtLeast(value.saturating_add(1))
    } else if after.starts_with("未満")
        || before.ends_with("less than")
        || before.ends_with("fewer than")
    {
        AttemptCount::AtMost(value.saturating_sub(1))
    } else if after.starts_with("以下")
        || after.starts_with("or less")
        || after.starts_with("or fewer")
        || before.ends_with("at most")
    {
        AttemptCount::AtMost(value)
    } else if plus
        || after.starts_with("以上")
        || after.starts_with("or more")
        || before.ends_with("at least")
        || before.ends_with("最低")
    {
        AttemptCount::AtLeast(value)
    } else {
        AttemptCount::Exactly(value)
    }
}

/// True when `s` holds nothing but approximation words and punctuation.
fn is_only_approximation(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "以上",
        "くらい",
        "ぐらい",
        "位",
        "程度",
        "ほど",
        "前後",
        "約",
        "だいたい",
        "大体",
        "たぶん",
        "多分",
        "です",
        "かな",
        "about",
        "around",
        "maybe",
        "probably",
        "at least",
        "more than",
        "over",
        "or more",
        "最低",
    ];
    let mut rest = s.to_string();
    for w in WORDS {
        rest = rest.replace(w, "");
    }
    rest.chars()
        .all(|c| c.is_whitespace() || c.is_ascii_punctuation() || "、。!?…".contains(c))
}

fn is_range_separator(s: &str) -> bool {
    matches!(
        s,
        "、" | "," | "~" | "〜" | "-" | "か" | "or" | "to" | "から"
    ) || s.chars().count() == 1 && s.chars().all(|c| text::HYPHEN_LOOKALIKES.contains(&c))
}

/// Length in chars of a count unit (回, 度, times, …) at `at`, spaces
/// skipped first and included.
fn count_unit_len(chars: &[char], at: usize) -> Option<usize> {
    const UNITS: &[&str] = &[
        "回", "度", "times", "time", "tries", "try", "attempts", "attempt", "x",
    ];
    let start = skip_spaces(chars, at);
    let rest: String = chars[start..].iter().collect();
    UNITS
        .iter()
        .find(|u| rest.starts_with(*u) && !followed_by_letter(&rest, u.len()))
        .map(|u| u.chars().count())
}

/// True when an ASCII word in `rest` continues past `len` bytes ("x" in
/// "xyz" is not a unit).
fn followed_by_letter(rest: &str, len: usize) -> bool {
    rest.is_char_boundary(len)
        && rest[..len].chars().all(|c| c.is_ascii_alphabetic())
        && rest[len..].starts_with(|c: char| c.is_ascii_alphabetic())
}

fn skip_spaces(chars: &[char], mut at: usize) -> usize {
    while chars.get(at).is_some_and(|c| c.is_whitespace()) {
        at += 1;
    }
    at
}

/// [`text::clean`], lower case, hyphen look-alikes other than `ー` (which
/// appears in words) folded to `-`.
fn normalise(input: &str) -> String {
    text::clean(input)
        .to_lowercase()
        .chars()
        .map(|c| {
            if c != 'ー' && text::HYPHEN_LOOKALIKES.contains(&c) {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// A number found in text: its value and where it starts and ends (char
/// indices, end exclusive).
#[derive(Debug, Clone, Copy)]
struct Number {
    value: u32,
    start: usize,
    end: usize,
}

fn kanji_digit(c: char) -> Option<u32> {
    "〇一二三四五六七八九"
        .chars()
        .position(|k| k == c)
        .and_then(|p| u32::try_from(p).ok())
}

fn is_kanji_numeral(c: char) -> bool {
    kanji_digit(c).is_some() || c == '十' || c == '百'
}

/// Value of a run of kanji numerals: "三" 3, "十" 10, "十一" 11, "二十" 20,
/// "二十五" 25, "百" 100.
fn kanji_value(run: &[char]) -> Option<u32> {
    let mut total = 0u32;
    let mut current = 0u32;
    for &c in run {
        match c {
            '十' | '百' => {
                let unit = if c == '十' { 10 } else { 100 };
                total = total.checked_add(current.max(1).checked_mul(unit)?)?;
                current = 0;
            }
            _ => current = current.checked_mul(10)?.checked_add(kanji_digit(c)?)?,
        }
    }
    total.checked_add(current)
}

/// All numbers in `chars`, ASCII digits or kanji numerals.
fn find_numbers(chars: &[char]) -> Vec<Number> {
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        if chars[i].is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let value = digits.parse::<u32>().unwrap_or(u32::MAX);
            numbers.push(Number {
                value,
                start,
                end: i,
            });
        } else if is_kanji_numeral(chars[i]) {
            while i < chars.len() && is_kanji_numeral(chars[i]) {
                i += 1;
            }
            if let Some(value) = kanji_value(&chars[start..i]) {
                numbers.push(Number {
                    value,
                    start,
                    end: i,
                });
            }
        } else {
            i += 1;
        }
    }
    numbers
}

/// Reads when the person last tried, resolving against `now` in `tz`.
///
/// Accepted forms (full-width digits too):
///
/// * immediate: "たった今", "今", "今さっき", "just now", "now" → `now`;
///   "さっき", "先ほど", "少し前", "a moment ago" → 5 minutes before `now`;
/// * relative: "5分前", "10分くらい前", "1時間前", "一時間前", "1時間半前",
///   "2時間ほど前", "2日前", "30 minutes ago", "2 hours ago", "an hour ago",
///   "half an hour ago";
/// * clock times: "14:30", "14時30分", "14時", "2時半", "午後2時",
///   "午前9時半", "2pm", "2:30 pm", optionally with a day ("昨日の22時",
///   "今日14時", "おととい", "yesterday 9:00"); see the module
///   documentation for times later than now and 1–11 o'clock without
///   午前/午後;
/// * parts of a day: "昨日" / "yesterday" → yesterday 12:00; "今朝", "朝",
///   "this morning" → 08:00; "昨日の夜", "昨晩", "昨夜", "last night" →
///   yesterday 21:00; "昼" → 12:00; "夕方" → 17:00; "夜" → 21:00.
///
/// Returns `None` for text without a time.
pub fn parse_last_attempt(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let s = normalise(text);
    let chars: Vec<char> = s.chars().collect();
    let numbers = find_numbers(&chars);

    if let Some(ago) = relative(&s, &chars, &numbers) {
        return now.checked_sub_signed(ago);
    }
    if let Some(t) = clock_time(&s, &chars, &numbers, now, tz) {
        return Some(t);
    }
    if let Some(ago) = immediate(&s) {
        return now.checked_sub_signed(ago);
    }
    part_of_day(&s, now, tz)
}

/// "N分前", "N時間半前", "N hours ago" and the like.
fn relative(s: &str, chars: &[char], numbers: &[Number]) -> Option<Duration> {
    for phrase in [
        ("half an hour ago", 30),
        ("an hour ago", 60),
        ("a minute ago", 1),
    ] {
        if s.contains(phrase.0) {
            return Some(Duration::minutes(phrase.1));
        }
    }
    if s.contains("数分前") || s.contains("a few minutes ago") {
        return Some(Duration::minutes(5));
    }
    const UNITS: &[(&str, i64)] = &[
        ("時間", 60),
        ("分", 1),
        ("秒", 0),
        ("日", 24 * 60),
        ("hours", 60),
        ("hour", 60),
        ("hrs", 60),
        ("hr", 60),
        ("minutes", 1),
        ("minute", 1),
        ("mins", 1),
        ("min", 1),
        ("seconds", 0),
        ("days", 24 * 60),
        ("day", 24 * 60),
    ];
    const APPROX: &[&str] = &[
        "くらい",
        "ぐらい",
        "位",
        "程度",
        "ほど",
        "程",
        "ちょっと",
        "ばかり",
        "弱",
        "強",
        "前後",
    ];
    for number in numbers {
        if number.start > 0 && matches!(chars[number.start - 1], '時' | ':') {
            continue;
        }
        let at = skip_spaces(chars, number.end);
        let rest: String = chars[at..].iter().collect();
        let Some((unit, minutes)) = UNITS.iter().find(|(u, _)| rest.starts_with(u)) else {
            continue;
        };
        let mut rest = rest[unit.len()..].trim_start();
        let mut total = i64::from(number.value).checked_mul(*minutes)?;
        if let Some(r) = rest.strip_prefix('半') {
            total = total.checked_add(minutes / 2)?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("and a half") {
            total = total.checked_add(minutes / 2)?;
            rest = r.trim_start();
        }
        while let Some(word) = APPROX.iter().find(|w| rest.starts_with(*w)) {
            rest = &rest[word.len()..];
        }
        if rest.starts_with('前') || rest.trim_start().starts_with("ago") {
            return Duration::try_minutes(total);
        }
    }
    None
}

/// "たった今" (now), "さっき" (5 minutes ago) and the like.
fn immediate(s: &str) -> Option<Duration> {
    const NOW_PREFIX: &[&str] = &[
        "たった今",
        "今さっき",
        "ついさっき",
        "just now",
        "right now",
    ];
    const NOW_EXACT: &[&str] = &["今", "いま", "now", "今です", "いまです"];
    const RECENT: &[&str] = &[
        "さっき",
        "先ほど",
        "先程",
        "さきほど",
        "少し前",
        "ちょっと前",
        "a moment ago",
        "a little while ago",
        "earlier",
    ];
    let trimmed = s.trim_end_matches(|c: char| "。、!?.".contains(c)).trim();
    if NOW_PREFIX.iter().any(|w| s.contains(w)) || NOW_EXACT.contains(&trimmed) {
        return Some(Duration::zero());
    }
    RECENT
        .iter()
        .any(|w| s.contains(w))
        .then(|| Duration::minutes(5))
}

/// Days back named in the text: 0 today, 1 yesterday, 2 the day before;
/// `None` when no day is named.
fn day_offset(s: &str) -> Option<u64> {
    if ["一昨日", "おととい", "day before yesterday"]
        .iter()
        .any(|w| s.contains(w))
    {
        Some(2)
    } else if [
        "昨日",
        "きのう",
        "昨夜",
        "昨晩",
        "ゆうべ",
        "yesterday",
        "last night",
    ]
    .iter()
    .any(|w| s.contains(w))
    {
        Some(1)
    } else if ["今日", "きょう", "今朝", "today", "this morning"]
        .iter()
        .any(|w| s.contains(w))
    {
        Some(0)
    } else {
        None
    }
}

/// The instant of `hour:minute` local time `days` days before `now`'s local
/// date.
fn local_instant(
    now: DateTime<Utc>,
    tz: Tz,
    days: u64,
    hour: u32,
    minute: u32,
) -> Option<DateTime<Utc>> {
    let date: NaiveDate = now
        .with_timezone(&tz)
        .date_naive()
        .checked_sub_days(chrono::Days::new(days))?;
    let naive = date.and_hms_opt(hour, minute, 0)?;
    tz.from_local_datetime(&naive)
        .earliest()
        // In a daylight-saving gap, take the first instant after it.
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// Meridiem named in the text: `Some(true)` afternoon, `Some(false)`
/// morning.
fn meridiem(s: &str) -> Option<bool> {
    const PM: &[&str] = &["午後", "pm", "p.m", "夜", "夕方", "晩"];
    const AM: &[&str] = &["午前", "am", "a.m", "朝", "明け方"];
    if PM.iter().any(|w| s.contains(w)) {
        Some(true)
    } else if AM.iter().any(|w| s.contains(w)) {
        Some(false)
    } else {
        None
    }
}

/// "14:30", "14時30分", "午後2時半", "2pm" and the like.
fn clock_time(
    s: &str,
    chars: &[char],
    numbers: &[Number],
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let (hour, minute) = numbers.iter().enumerate().find_map(|(i, number)| {
        let next = numbers.get(i + 1);
        let after = chars.get(number.end).copied();
        match after {
            Some(':') => next
                .filter(|n| n.start == number.end + 1)
                .map(|n| (number.value, n.value)),
            Some('時') if chars.get(number.end + 1) != Some(&'間') => {
                let minute = match chars.get(number.end + 1) {
                    Some('半') => 30,
                    _ => next
                        .filter(|n| n.start == number.end + 1 && chars.get(n.end) == Some(&'分'))
                        .map_or(0, |n| n.value),
                };
                Some((number.value, minute))
            }
            _ => {
                let rest: String = chars[skip_spaces(chars, number.end)..].iter().collect();
                (rest.starts_with("am") || rest.starts_with("pm") || rest.starts_with("o'clock"))
                    .then_some((number.value, 0))
            }
        }
    })?;
    if hour > 24 || minute > 59 {
        return None;
    }
    let hour = if hour == 24 { 0 } else { hour };

    let days = day_offset(s);
    let candidates: Vec<u32> = match meridiem(s) {
        Some(true) if hour < 12 => vec![hour + 12],
        Some(false) if hour == 12 => vec![0],
        Some(_) => vec![hour],
        None if days.is_none() && (1..12).contains(&hour) => vec![hour, hour + 12],
        None => vec![hour],
    };
    match days {
        // A named day is taken as said, even when that is later than now.
        Some(days) => local_instant(now, tz, days, *candidates.first()?, minute),
        None => candidates
            .iter()
            .flat_map(|&h| [0, 1].map(|days| local_instant(now, tz, days, h, minute)))
            .flatten()
            .filter(|t| *t <= now)
            .max(),
    }
}

/// "昨日", "今朝", "昨晩" and other parts of a day without a clock time.
fn part_of_day(s: &str, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    const PARTS: &[(&[&str], u32)] = &[
        (&["夜", "晩", "昨夜", "ゆうべ", "night", "evening"], 21),
        (&["夕方"], 17),
        (&["昼", "noon", "afternoon"], 12),
        (&["朝", "morning"], 8),
    ];
    let hour = PARTS
        .iter()
        .find(|(words, _)| words.iter().any(|w| s.contains(w)))
        .map(|&(_, hour)| hour);
    match (day_offset(s), hour) {
        (Some(days), Some(hour)) => local_instant(now, tz, days, hour, 0),
        (Some(days), None) if days > 0 => local_instant(now, tz, days, 12, 0),
        (Some(_), None) => None,
        (None, Some(hour)) => {
            let today = local_instant(now, tz, 0, hour, 0)?;
            if today <= now {
                Some(today)
            } else {
                local_instant(now, tz, 1, hour, 0)
            }
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Tokyo;

    /// 2026-11-25 14:00 in Tokyo.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// A Tokyo local time as UTC.
    fn jst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Tokyo
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn parse_attempt_count_table() {
        use AttemptCount::*;
        let cases: &[(&str, Option<AttemptCount>)] = &[
            ("5", Some(Exactly(5))),
            ("５回", Some(Exactly(5))),
            ("5回以上", Some(AtLeast(5))),
            ("4回以下", Some(AtMost(4))),
            ("４回以下", Some(AtMost(4))),
            ("5回未満", Some(AtMost(4))),
            ("3回以下くらい", Some(AtMost(3))),
            ("less than 5 times", Some(AtMost(4))),
            ("4 times or fewer", Some(AtMost(4))),
            ("6回くらい", Some(Exactly(6))),
            ("6くらい", Some(Exactly(6))),
            ("十回", Some(Exactly(10))),
            ("三回", Some(Exactly(3))),
            ("十一回", Some(Exactly(11))),
            ("二十回", Some(Exactly(20))),
            ("二十五回ぐらい", Some(Exactly(25))),
            ("一度だけ", Some(Exactly(1))),
            ("3 times", Some(Exactly(3))),
            ("about 7 times", Some(Exactly(7))),
            ("at least 4 times", Some(AtLeast(4))),
            ("more than 5 times", Some(AtLeast(6))),
            ("10+", Some(AtLeast(10))),
            ("10+ times", Some(AtLeast(10))),
            ("何度も", Some(Many)),
            ("何回もやりました", Some(Many)),
            ("たくさん", Some(Many)),
            ("数えきれない", Some(Many)),
            ("many", Some(Many)),
            ("わからない", Some(Unknown)),
            ("覚えていない", Some(Unknown)),
            ("何回やったか分からない", Some(Unknown)),
            ("1回だけ", Some(Exactly(1))),
            ("2、3回", Some(Exactly(3))),
            ("2~3回", Some(Exactly(3))),
            ("4〜5回", Some(Exactly(5))),
            ("二、三回", Some(Exactly(3))),
            ("2 or 3 times", Some(Exactly(3))),
            ("1回もしていません", Some(Exactly(0))),
            ("10分前に3回", Some(Exactly(3))),
            ("数回", Some(AtLeast(2))),
            ("こんにちは", None),
            ("5分前", None),
            ("090-1234-5678", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_attempt_count(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn reaches_limit_table() {
        use AttemptCount::*;
        let cases = [
            (Exactly(0), Some(false)),
            (Exactly(4), Some(false)),
            (Exactly(5), Some(true)),
            (Exactly(12), Some(true)),
            (AtLeast(5), Some(true)),
            (AtLeast(3), None),
            (AtMost(4), Some(false)),
            (AtMost(6), None),
            (Many, Some(true)),
            (Unknown, None),
        ];
        for (count, expected) in cases {
            assert_eq!(count.reaches_limit(), expected, "{count:?}");
        }
    }

    #[test]
    fn attempt_count_serde_shape() {
        let cases = [
            (AttemptCount::Exactly(3), r#"{"kind":"exactly","count":3}"#),
            (AttemptCount::AtLeast(5), r#"{"kind":"at_least","count":5}"#),
            (AttemptCount::AtMost(4), r#"{"kind":"at_most","count":4}"#),
            (AttemptCount::Many, r#"{"kind":"many"}"#),
            (AttemptCount::Unknown, r#"{"kind":"unknown"}"#),
        ];
        for (count, json) in cases {
            assert_eq!(serde_json::to_string(&count).ok().as_deref(), Some(json));
            let back: Option<AttemptCount> = serde_json::from_str(json).ok();
            assert_eq!(back, Some(count), "{json}");
        }
    }

    #[test]
    fn parse_last_attempt_table() {
        let now = now();
        let ago = |minutes: i64| Some(now - Duration::minutes(minutes));
        let today = |h, m| Some(jst(2026, 11, 25, h, m));
        let yesterday = |h, m| Some(jst(2026, 11, 24, h, m));
        let cases: &[(&str, Option<DateTime<Utc>>)] = &[
            ("たった今", ago(0)),
            ("今", ago(0)),
            ("今です。", ago(0)),
            ("just now", ago(0)),
            ("さっき", ago(5)),
            ("先ほど試しました", ago(5)),
            ("5分前", ago(5)),
            ("５分前", ago(5)),
            ("10分くらい前", ago(10)),
            ("1時間前", ago(60)),
            ("一時間前", ago(60)),
            ("1時間半前", ago(90)),
            ("2時間ほど前", ago(120)),
            ("30 minutes ago", ago(30)),
            ("2 hours ago", ago(120)),
            ("an hour ago", ago(60)),
            ("half an hour ago", ago(30)),
            ("2日前", ago(2 * 24 * 60)),
            ("14:30", yesterday(14, 30)),
            ("１４：３０", yesterday(14, 30)),
            ("13:05", today(13, 5)),
            ("14時30分", yesterday(14, 30)),
            ("13時30分", today(13, 30)),
            ("14時", today(14, 0)),
            ("2時", today(14, 0)),
            ("9時", today(9, 0)),
            ("午後2時", today(14, 0)),
            ("午後3時", yesterday(15, 0)),
            ("午前9時半", today(9, 30)),
            ("午前2時", today(2, 0)),
            ("2pm", today(14, 0)),
            ("1:30 pm", today(13, 30)),
            ("昨日の22時", yesterday(22, 0)),
            ("昨日の夜10時", yesterday(22, 0)),
            ("yesterday 9:00", yesterday(9, 0)),
            ("23:00", yesterday(23, 0)),
            ("昨日", yesterday(12, 0)),
            ("yesterday", yesterday(12, 0)),
            ("昨日の夜", yesterday(21, 0)),
            ("昨晩", yesterday(21, 0)),
            ("昨夜", yesterday(21, 0)),
            ("今朝", today(8, 0)),
            ("朝", today(8, 0)),
            ("夜", yesterday(21, 0)),
            ("this morning", today(8, 0)),
            ("おととい", Some(jst(2026, 11, 23, 12, 0))),
            ("こんにちは", None),
            ("", None),
            ("25:00", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_last_attempt(input, now, Tokyo),
                *expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let inputs = [
            "99999999999999999999回",
            "百百百回",
            "十十十",
            "x",
            "5x",
            "+",
            "時",
            ":",
            "99:99",
            "999999999999時間前",
            "0時",
            "24時",
            "12時",
            "午前12時",
            "分前",
            "半前",
            "ago",
        ];
        for input in inputs {
            let count = parse_attempt_count(input);
            let at = parse_last_attempt(input, now(), Tokyo);
            assert!(
                at.is_none_or(|t| t <= now() + Duration::days(1)),
                "{input:?}: {count:?} {at:?}"
            );
        }
        let cases = [
            ("0時", Some(jst(2026, 11, 25, 0, 0))),
            ("12時", Some(jst(2026, 11, 25, 12, 0))),
            ("午前12時", Some(jst(2026, 11, 25, 0, 0))),
            ("99:99", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_last_attempt(input, now(), Tokyo),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn lockout_advice_table() {
        let now = now();
        let wait = Duration::minutes(180);
        // (minutes before now of the last attempt, expected retry, wait over)
        let cases = [
            (10, now + Duration::minutes(170), false),
            (180, now, true),
            (179, now + Duration::minutes(1), false),
            (300, now - Duration::minutes(120), true),
            // In the future: treated as now.
            (-30, now + Duration::minutes(180), false),
        ];
        for (minutes_ago, retry_at, wait_over) in cases {
            let last = now - Duration::minutes(minutes_ago);
            let advice = lockout_advice(last, now, wait);
            assert_eq!(advice.retry_at, retry_at, "{minutes_ago} minutes ago");
            assert_eq!(advice.wait_over, wait_over, "{minutes_ago} minutes ago");
            assert_eq!(
                advice.last_attempt_at,
                last.min(now),
                "{minutes_ago} minutes ago"
            );
        }
    }

    #[test]
    fn format_local_time_table() {
        let now = now();
        let cases = [
            (now, "14:00"),
            (jst(2026, 11, 25, 17, 5), "17:05"),
            (jst(2026, 11, 25, 0, 0), "00:00"),
            (jst(2026, 11, 26, 0, 30), "11/26 00:30"),
            (jst(2026, 11, 24, 23, 59), "11/24 23:59"),
            (jst(2027, 1, 2, 9, 0), "01/02 09:00"),
        ];
        for (t, expected) in cases {
            assert_eq!(format_local_time(t, now, Tokyo), expected, "{t}");
        }
    }
}
