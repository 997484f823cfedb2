//! The CF calendars (CF conventions §4.4.1): day numbers of dates and dates of day numbers, so
//! times encoded against one reference date and calendar can be re-encoded against another.
//!
//! Day numbers are Julian Day Numbers for the real-world calendars (`standard`,
//! `proleptic_gregorian`, `julian`), so the mixed `standard` calendar runs on from 4 October
//! 1582 (Julian) to 15 October 1582 (Gregorian) without a gap; the model calendars (`noleap`,
//! `all_leap`, `360_day`) count days from year 0 of their own.

/// A CF calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Calendar {
    /// `standard` / `gregorian` (the CF default): Julian before 1582-10-15, Gregorian after.
    Standard,
    /// `proleptic_gregorian`: Gregorian rules for every year.
    ProlepticGregorian,
    /// `julian`: a leap year every four years.
    Julian,
    /// `noleap` / `365_day`.
    NoLeap,
    /// `all_leap` / `366_day`.
    AllLeap,
    /// `360_day`: twelve months of 30 days.
    Day360,
}

/// A calendar date (year, month 1..=12, day 1..=31).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
}

const CUMULATIVE: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
const CUMULATIVE_LEAP: [i64; 13] = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366];
/// The first Gregorian day of the `standard` calendar.
const GREGORIAN_START: Date = Date {
    year: 1582,
    month: 10,
    day: 15,
};

impl Calendar {
    /// The calendar a CF `calendar` attribute names (case-insensitive; absent means
    /// `standard`). Fails for unknown names and `none`.
    pub(crate) fn parse(name: Option<&str>) -> Result<Self, String> {
        let Some(name) = name else {
            return Ok(Calendar::Standard);
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => Ok(Calendar::Standard),
            "proleptic_gregorian" => Ok(Calendar::ProlepticGregorian),
            "julian" => Ok(Calendar::Julian),
            "noleap" | "365_day" => Ok(Calendar::NoLeap),
            "all_leap" | "366_day" => Ok(Calendar::AllLeap),
            "360_day" => Ok(Calendar::Day360),
            other => Err(format!("unknown CF calendar `{other}`")),
        }
    }

    fn is_leap(self, year: i64) -> bool {
        match self {
            Calendar::ProlepticGregorian => gregorian_leap(year),
            Calendar::Julian => year.rem_euclid(4) == 0,
            Calendar::Standard => {
                if year > 1582 {
                    gregorian_leap(year)
                } else {
                    year.rem_euclid(4) == 0
                }
            }
            Calendar::NoLeap | Calendar::Day360 => false,
            Calendar::AllLeap => true,
        }
    }

    fn days_in_month(self, year: i64, month: u32) -> u32 {
        if self == Calendar::Day360 {
            return 30;
        }
        let table = if self.is_leap(year) {
            &CUMULATIVE_LEAP
        } else {
            &CUMULATIVE
        };
        let m = month as usize;
        (table[m] - table[m - 1]) as u32
    }

    /// Checks that `date` exists in this calendar.
    pub(crate) fn check(self, date: Date) -> Result<(), String> {
        let valid = (1..=12).contains(&date.month)
            && date.day >= 1
            && date.day <= self.days_in_month(date.year, date.month);
        let in_gap = self == Calendar::Standard
            && date.year == 1582
            && date.month == 10
            && (5..15).contains(&date.day);
        if valid && !in_gap {
            Ok(())
        } else {
            Err(format!(
                "{:04}-{:02}-{:02} does not exist in the {} calendar",
                date.year,
                date.month,
                date.day,
                self.name()
            ))
        }
    }

    /// The CF name of this calendar.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::Julian => "julian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
        }
    }

    /// The day number of `date` (which must exist in this calendar, see [`Calendar::check`]).
    pub(crate) fn day_number(self, date: Date) -> i64 {
        let (y, m, d) = (date.year, date.month as usize, i64::from(date.day));
        match self {
            Calendar::ProlepticGregorian => gregorian_jdn(date),
            Calendar::Julian => julian_jdn(date),
            Calendar::Standard if date >= GREGORIAN_START => gregorian_jdn(date),
            Calendar::Standard => julian_jdn(date),
            Calendar::NoLeap => 365 * y + CUMULATIVE[m - 1] + d - 1,
            Calendar::AllLeap => 366 * y + CUMULATIVE_LEAP[m - 1] + d - 1,
            Calendar::Day360 => 360 * y + 30 * (m as i64 - 1) + d - 1,
        }
    }

    /// The date of day number `n`. The year estimate is within a year or two of the answer
    /// for the day numbers of years up to ±1,000,000, so the adjustment loops are short.
    pub(crate) fn date(self, n: i64) -> Date {
        if self == Calendar::Standard {
            let reform = gregorian_jdn(GREGORIAN_START);
            return if n >= reform {
                Calendar::ProlepticGregorian.date(n)
            } else {
                Calendar::Julian.date(n)
            };
        }
        let (year_length, first) = match self {
            Calendar::NoLeap => (365, 0),
            Calendar::AllLeap => (366, 0),
            Calendar::Day360 => (360, 0),
            // Julian Day 0 is 4713 BC (year -4712) January 1 of the Julian calendar.
            _ => (365, -4712),
        };
        let start = |year: i64| {
            self.day_number(Date {
                year,
                month: 1,
                day: 1,
            })
        };
        let mut year = first + n.div_euclid(year_length);
        match self {
            Calendar::ProlepticGregorian => year = first + (n as f64 / 365.2425).floor() as i64,
            Calendar::Julian => year = first + (n as f64 / 365.25).floor() as i64,
            _ => {}
        }
        while start(year) > n {
            year -= 1;
        }
        while start(year + 1) <= n {
            year += 1;
        }
        let mut month = 1;
        while month < 12 && self.month_start(year, month + 1) <= n {
            month += 1;
        }
        let day = (n - self.month_start(year, month) + 1) as u32;
        Date { year, month, day }
    }

    /// The day number of the first day of `month` of `year`.
    fn month_start(self, year: i64, month: u32) -> i64 {
        self.day_number(Date {
            year,
            month,
            day: 1,
        })
    }
}

fn gregorian_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

/// Years counted from March, so the leap day ends the year.
fn march_based(date: Date) -> (i64, i64) {
    let (y, m) = (date.year, i64::from(date.month));
    let y = if m <= 2 { y - 1 } else { y };
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + i64::from(date.day) - 1;
    (y, day_of_year)
}

fn gregorian_jdn(date: Date) -> i64 {
    let (y, doy) = march_based(date);
    365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400) + doy + 1_721_120
}

fn julian_jdn(date: Date) -> i64 {
    let (y, doy) = march_based(date);
    365 * y + y.div_euclid(4) + doy + 1_721_118
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i64, month: u32, day: u32) -> Date {
        Date { year, month, day }
    }

    #[test]
    fn julian_day_numbers_match_known_dates() {
        let g = Calendar::ProlepticGregorian;
        assert_eq!(g.day_number(date(2000, 1, 1)), 2_451_545);
        assert_eq!(g.day_number(date(1970, 1, 1)), 2_440_588);
        assert_eq!(g.day_number(date(1582, 10, 15)), 2_299_161);
        assert_eq!(Calendar::Julian.day_number(date(1582, 10, 4)), 2_299_160);
        assert_eq!(Calendar::Julian.day_number(date(-4712, 1, 1)), 0);
        // The standard calendar runs on across the reform without a gap.
        let s = Calendar::Standard;
        assert_eq!(
            s.day_number(date(1582, 10, 15)) - s.day_number(date(1582, 10, 4)),
            1
        );
        assert!(s.check(date(1582, 10, 10)).is_err());
        assert_eq!(s.date(2_299_161), date(1582, 10, 15));
        assert_eq!(s.date(2_299_160), date(1582, 10, 4));
    }

    #[test]
    fn dates_round_trip_in_every_calendar() {
        for calendar in [
            Calendar::Standard,
            Calendar::ProlepticGregorian,
            Calendar::Julian,
            Calendar::NoLeap,
            Calendar::AllLeap,
            Calendar::Day360,
        ] {
            let first = calendar.day_number(date(1500, 1, 1));
            let mut previous: Option<Date> = None;
            for n in (first..first + 200_000)
                .step_by(7)
                .chain(first - 40..first + 40)
            {
                let d = calendar.date(n);
                calendar.check(d).unwrap();
                assert_eq!(calendar.day_number(d), n, "{calendar:?} {d:?}");
                if let Some(p) = previous {
                    assert!(p < d || n < first, "{calendar:?}: {p:?} then {d:?}");
                }
                previous = Some(d);
            }
        }
    }

    #[test]
    fn month_lengths_follow_each_calendar() {
        assert!(Calendar::NoLeap.check(date(2024, 2, 29)).is_err());
        assert!(Calendar::Standard.check(date(2024, 2, 29)).is_ok());
        assert!(Calendar::Standard.check(date(1900, 2, 29)).is_err());
        assert!(Calendar::Standard.check(date(1500, 2, 29)).is_ok());
        assert!(Calendar::Julian.check(date(1900, 2, 29)).is_ok());
        assert!(Calendar::ProlepticGregorian
            .check(date(1900, 2, 29))
            .is_err());
        assert!(Calendar::AllLeap.check(date(2023, 2, 29)).is_ok());
        assert!(Calendar::Day360.check(date(2023, 2, 30)).is_ok());
        assert!(Calendar::Day360.check(date(2023, 1, 31)).is_err());
        assert_eq!(
            Calendar::NoLeap.day_number(date(2001, 1, 1))
                - Calendar::NoLeap.day_number(date(2000, 1, 1)),
            365
        );
        assert_eq!(Calendar::parse(Some("365_day")).unwrap(), Calendar::NoLeap);
        assert_eq!(
            Calendar::parse(Some("Gregorian")).unwrap(),
            Calendar::Standard
        );
        assert_eq!(Calendar::parse(None).unwrap(), Calendar::Standard);
        assert!(Calendar::parse(Some("none")).is_err());
    }
}
