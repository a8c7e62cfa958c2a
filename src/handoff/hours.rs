//! Business hours of the help desk: when a queued person is told the desk is
//! closed, and when it opens (JST, weekdays, a holiday list from config).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Opening hours in the desk's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    pub time_zone: Tz,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub days: Vec<Weekday>,
    pub holidays: Vec<NaiveDate>,
}

impl BusinessHours {
    /// Whether the desk is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone);
        self.is_working_day(local.date_naive())
            && local.time() >= self.opens
            && local.time() < self.closes
    }

    fn is_working_day(&self, date: NaiveDate) -> bool {
        self.days.contains(&date.weekday()) && !self.holidays.contains(&date)
    }

    /// When the desk next opens, or `None` if it is open at `now`. Looks at
    /// most a year ahead (a holiday list cannot close it for longer).
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return None;
        }
        let local = now.with_timezone(&self.time_zone);
        let mut date = local.date_naive();
        for _ in 0..366 {
            if self.is_working_day(date) {
                let opening = self
                    .time_zone
                    .from_local_datetime(&date.and_time(self.opens))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc));
                if let Some(opening) = opening.filter(|o| *o > now) {
                    return Some(opening);
                }
            }
            date += Duration::days(1);
        }
        None
    }
}

/// Parses weekday names (`mon`…`sun`, any case, English).
pub fn parse_weekday(name: &str) -> Option<Weekday> {
    name.trim().parse::<Weekday>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> BusinessHours {
        BusinessHours {
            time_zone: chrono_tz::Asia::Tokyo,
            opens: NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
            closes: NaiveTime::from_hms_opt(17, 0, 0).expect("time"),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .iter()
                .filter_map(|d| parse_weekday(d))
                .collect(),
            holidays: vec![NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")],
        }
    }

    fn jst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn open_during_weekday_hours_only() {
        let h = hours();
        // 2026-11-25 is a Wednesday.
        assert!(h.is_open(jst(2026, 11, 25, 9, 0)));
        assert!(h.is_open(jst(2026, 11, 25, 16, 59)));
        assert!(!h.is_open(jst(2026, 11, 25, 17, 0)));
        assert!(!h.is_open(jst(2026, 11, 25, 8, 59)));
        assert!(!h.is_open(jst(2026, 11, 28, 12, 0)), "Saturday");
        assert!(!h.is_open(jst(2026, 11, 23, 12, 0)), "holiday");
    }

    #[test]
    fn next_opening_skips_nights_weekends_and_holidays() {
        let h = hours();
        assert_eq!(h.next_opening(jst(2026, 11, 25, 12, 0)), None);
        assert_eq!(
            h.next_opening(jst(2026, 11, 25, 20, 0)),
            Some(jst(2026, 11, 26, 9, 0))
        );
        assert_eq!(
            h.next_opening(jst(2026, 11, 25, 7, 0)),
            Some(jst(2026, 11, 25, 9, 0))
        );
        // Friday evening → Monday, unless Monday is a holiday → Tuesday.
        assert_eq!(
            h.next_opening(jst(2026, 11, 20, 18, 0)),
            Some(jst(2026, 11, 24, 9, 0))
        );
        assert_eq!(
            h.next_opening(jst(2026, 11, 27, 18, 0)),
            Some(jst(2026, 11, 30, 9, 0))
        );
    }
}
