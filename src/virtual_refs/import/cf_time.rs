//! CF time coordinates (`units: "hours since 2026-01-01"`, `calendar: "noleap"`): parsing, and
//! re-encoding the values of one file in the encoding an array already has, so an appended
//! day means the same instants as the stored ones.
//!
//! Instants are counted in nanoseconds (`i128`). Reference years are limited to ±1,000,000
//! and instants to ±1,000,000 years around them: a value beyond that (netCDF's default fill
//! 9.97e36 in a time variable without `_FillValue`) is no date and is left as it is.

use super::calendar::{Calendar, Date};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;
/// The largest reference year (and its negative the smallest).
const MAX_YEAR: i64 = 1_000_000;
/// The largest offset from a reference instant that is converted: a million years.
const MAX_SPAN_NANOS: i128 = 366 * MAX_YEAR as i128 * NANOS_PER_DAY;

/// A CF time encoding: a unit, a reference instant and a calendar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TimeEncoding {
    /// Nanoseconds per unit.
    unit_nanos: i128,
    /// The reference instant: nanoseconds from day 0 of the calendar, in UTC.
    epoch_nanos: i128,
    calendar: Calendar,
}

impl TimeEncoding {
    /// The encoding of CF `units` (`<unit> since <date>[ <time>][ <zone>]`) and `calendar`;
    /// `None` when `units` is not a time unit (no `since`), an error when it is one that
    /// cannot be read (unknown unit, bad date, date missing from the calendar).
    pub(crate) fn parse(units: &str, calendar: Option<&str>) -> Option<Result<Self, String>> {
        let lower = units.to_ascii_lowercase();
        let at = lower.find(" since ")?;
        Some(
            parse_encoding(&units[..at], &units[at + 7..], calendar)
                .map_err(|reason| format!("CF time units `{units}` cannot be read: {reason}")),
        )
    }
}

fn parse_encoding(
    unit: &str,
    reference: &str,
    calendar: Option<&str>,
) -> Result<TimeEncoding, String> {
    let unit_nanos: i128 = match unit.trim().to_ascii_lowercase().as_str() {
        "days" | "day" | "d" => NANOS_PER_DAY,
        "hours" | "hour" | "hr" | "hrs" | "h" => 3_600 * NANOS_PER_SECOND,
        "minutes" | "minute" | "min" | "mins" => 60 * NANOS_PER_SECOND,
        "seconds" | "second" | "sec" | "secs" | "s" => NANOS_PER_SECOND,
        "milliseconds" | "millisecond" | "msec" | "msecs" | "ms" => 1_000_000,
        "microseconds" | "microsecond" | "usec" | "usecs" | "us" => 1_000,
        "nanoseconds" | "nanosecond" | "nsec" | "nsecs" | "ns" => 1,
        other => return Err(format!("unknown time unit `{other}`")),
    };
    let calendar = Calendar::parse(calendar)?;
    let (date, nanos_of_day, zone_nanos) = parse_reference(reference.trim())?;
    calendar.check(date)?;
    let epoch_nanos =
        i128::from(calendar.day_number(date)) * NANOS_PER_DAY + nanos_of_day - zone_nanos;
    Ok(TimeEncoding {
        unit_nanos,
        epoch_nanos,
        calendar,
    })
}

/// `[-]Y-M-D[(T| )H:M[:S[.f]]][ ][Z|UTC|GMT|(+|-)H[H][[:]MM]]` as (date, nanoseconds of the
/// day, zone offset in nanoseconds). Years beyond ±1,000,000 are refused.
fn parse_reference(text: &str) -> Result<(Date, i128, i128), String> {
    let bad = || format!("`{text}` is not a reference date");
    let (date_part, rest) = match text.get(1..).and_then(|t| t.find(['T', ' '])) {
        Some(i) => (&text[..i + 1], text[i + 2..].trim()),
        None => (text, ""),
    };
    let (negative, date_digits) = match date_part.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, date_part),
    };
    let fields: Vec<&str> = date_digits.split('-').collect();
    let [year, month, day] = fields.as_slice() else {
        return Err(bad());
    };
    let mut year: i64 = year.parse().map_err(|_| bad())?;
    if negative {
        year = -year;
    }
    if year.abs() > MAX_YEAR {
        return Err(format!(
            "{bad}: years beyond ±{MAX_YEAR} are not supported",
            bad = bad()
        ));
    }
    let date = Date {
        year,
        month: month.parse().map_err(|_| bad())?,
        day: day.parse().map_err(|_| bad())?,
    };
    // The time of day, then an optional zone.
    let (time_part, zone_part) = match rest.find(['Z', 'U', 'G', '+', '-']) {
        Some(i) => (rest[..i].trim(), rest[i..].trim()),
        None => (rest, ""),
    };
    let nanos_of_day = if time_part.is_empty() {
        0
    } else {
        let parts: Vec<&str> = time_part.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let hours: i128 = parts[0].parse().map_err(|_| bad())?;
        let minutes: i128 = parts
            .get(1)
            .map_or(Ok(0), |m| m.parse())
            .map_err(|_| bad())?;
        let seconds: f64 = parts
            .get(2)
            .map_or(Ok(0.0), |s| s.parse())
            .map_err(|_| bad())?;
        if !(0..24).contains(&hours)
            || !(0..60).contains(&minutes)
            || !(0.0..61.0).contains(&seconds)
        {
            return Err(bad());
        }
        (hours * 3600 + minutes * 60) * NANOS_PER_SECOND + (seconds * 1e9).round() as i128
    };
    let zone_nanos = match zone_part {
        "" | "Z" | "UTC" | "utc" | "GMT" | "gmt" => 0,
        zone => {
            let sign: i128 = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let (h, m) = match zone[1..].split_once(':') {
                Some((h, m)) => (h, m),
                None if zone.len() == 5 => (&zone[1..3], &zone[3..]),
                None => (&zone[1..], "0"),
            };
            let h: i128 = h.parse().map_err(|_| bad())?;
            let m: i128 = m.parse().map_err(|_| bad())?;
            if !(0..=14).contains(&h) || !(0..60).contains(&m) {
                return Err(bad());
            }
            sign * (h * 3600 + m * 60) * NANOS_PER_SECOND
        }
    };
    Ok((date, nanos_of_day, zone_nanos))
}

/// Re-encodes times from one encoding to another.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeConversion {
    from: TimeEncoding,
    to: TimeEncoding,
}

impl TimeConversion {
    /// The conversion of values encoded in `from` to `to`; `None` when they are the same.
    pub(crate) fn between(from: TimeEncoding, to: TimeEncoding) -> Option<Self> {
        (from != to).then_some(TimeConversion { from, to })
    }

    /// The instant of `offset` nanoseconds after `from`'s reference, counted in `to`'s
    /// calendar: the same instant in the same calendar, else the same date and time of day.
    /// Fails when that date does not exist in the target calendar.
    fn instant_in_target(&self, offset: i128) -> Result<i128, String> {
        let (from, to) = (&self.from, &self.to);
        let instant = from.epoch_nanos + offset;
        if from.calendar == to.calendar {
            return Ok(instant);
        }
        let day = instant.div_euclid(NANOS_PER_DAY);
        let date = from.calendar.date(day as i64);
        to.calendar.check(date)?;
        Ok(i128::from(to.calendar.day_number(date)) * NANOS_PER_DAY
            + instant.rem_euclid(NANOS_PER_DAY))
    }

    /// `value` (a number of `from` units) in `to` units; `None` when it is no date (not finite,
    /// or more than a million years from the reference): it is left as it is. Fails when the
    /// instant has no date in the target calendar (29 February into `noleap`).
    pub(crate) fn convert(&self, value: f64) -> Result<Option<f64>, String> {
        let offset = value * self.from.unit_nanos as f64;
        if !offset.is_finite() || offset.abs() > MAX_SPAN_NANOS as f64 {
            return Ok(None);
        }
        let (from, to) = (&self.from, &self.to);
        if from.calendar == to.calendar {
            // In floating point, so fractions of a unit survive.
            let shift = (from.epoch_nanos - to.epoch_nanos) as f64;
            return Ok(Some((offset + shift) / to.unit_nanos as f64));
        }
        let target = self.instant_in_target(offset.round() as i128)?;
        Ok(Some(
            (target - to.epoch_nanos) as f64 / to.unit_nanos as f64,
        ))
    }

    /// `value` (an integer number of `from` units) in `to` units, which must be a whole
    /// number; `None` when it is no date (more than a million years from the reference).
    pub(crate) fn convert_integer(&self, value: i64) -> Result<Option<i64>, String> {
        let offset = i128::from(value) * self.from.unit_nanos;
        if offset.abs() > MAX_SPAN_NANOS {
            return Ok(None);
        }
        let delta = self.instant_in_target(offset)? - self.to.epoch_nanos;
        if delta % self.to.unit_nanos != 0 {
            return Err(format!(
                "{value} is not a whole number of the stored time unit after conversion"
            ));
        }
        i64::try_from(delta / self.to.unit_nanos)
            .map(Some)
            .map_err(|_| format!("{value} does not fit the stored integer type after conversion"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(units: &str, calendar: Option<&str>) -> TimeEncoding {
        TimeEncoding::parse(units, calendar).unwrap().unwrap()
    }

    #[test]
    fn units_parse_in_their_common_spellings() {
        assert!(TimeEncoding::parse("K", None).is_none());
        assert!(TimeEncoding::parse("fortnights since 2000-01-01", None)
            .unwrap()
            .is_err());
        assert!(
            TimeEncoding::parse("days since 2001-02-29", Some("standard"))
                .unwrap()
                .is_err()
        );
        let a = enc("hours since 2026-01-01", None);
        assert_eq!(a, enc("hours since 2026-01-01 00:00:00", None));
        assert_eq!(a, enc("hour since 2026-01-01T00:00:00Z", Some("gregorian")));
        assert_eq!(a, enc("Hours Since 2026-1-1 0:0:0.0", Some("standard")));
        assert_eq!(a, enc("hours since 2026-01-01 01:00:00 +01:00", None));
        assert_eq!(a, enc("hours since 2025-12-31 19:00 -0500", None));
        assert_eq!(a, enc("hours since 2026-01-01 05:30 +5:30", None));
        assert_eq!(a, enc("hours since 2026-01-01 00:00:00 GMT", None));
        assert_eq!(
            enc("nanoseconds since 2026-01-01", None),
            enc("nanoseconds since 2026-01-01T00:00:00.000000000Z", None)
        );
        for bad in [
            "hours since 2026-01-01 00:00 +99:99",
            "hours since 99999999999999999-01-01",
            "hours since 2026-13-01",
            "hours since 2026-01-01 25:00",
        ] {
            assert!(TimeEncoding::parse(bad, None).unwrap().is_err(), "{bad}");
        }
        assert_ne!(a, enc("hours since 2026-01-01", Some("noleap")));
    }

    #[test]
    fn values_move_to_the_stored_reference_date() {
        let stored = enc("hours since 2026-01-01", None);
        let day2 = enc("hours since 2026-01-02", None);
        let c = TimeConversion::between(day2, stored).unwrap();
        assert_eq!(c.convert(0.0).unwrap(), Some(24.0));
        assert_eq!(c.convert(6.5).unwrap(), Some(30.5));
        assert_eq!(c.convert_integer(3).unwrap(), Some(27));
        assert_eq!(c.convert(f64::NAN).unwrap(), None);
        assert!(TimeConversion::between(stored, stored).is_none());
        // Coarser stored units must stay whole numbers.
        let days = enc("days since 2026-01-01", None);
        let to_days = TimeConversion::between(day2, days).unwrap();
        assert_eq!(to_days.convert_integer(24).unwrap(), Some(2));
        assert!(to_days.convert_integer(6).is_err());
        assert_eq!(to_days.convert(6.0).unwrap(), Some(1.25));
        // Minutes since a midday reference.
        let minutes = enc("minutes since 2026-01-01 12:00", None);
        let m = TimeConversion::between(minutes, stored).unwrap();
        assert!(m.convert_integer(90).unwrap_err().contains("whole"));
        assert_eq!(m.convert(90.0).unwrap(), Some(13.5));
    }

    #[test]
    fn values_that_are_no_dates_are_left_alone() {
        let gregorian = enc("days since 2000-01-01", Some("proleptic_gregorian"));
        let standard = enc("hours since 2000-01-01", Some("standard"));
        let c = TimeConversion::between(gregorian, standard).unwrap();
        // netCDF's default fill in a time variable without `_FillValue`.
        assert_eq!(c.convert(9.969209968386869e36).unwrap(), None);
        assert_eq!(c.convert(f64::INFINITY).unwrap(), None);
        let noleap = enc("days since 2000-01-01", Some("noleap"));
        let c = TimeConversion::between(noleap, standard).unwrap();
        assert_eq!(c.convert_integer(i64::MAX).unwrap(), None);
        assert_eq!(c.convert_integer(i64::MIN).unwrap(), None);
        assert_eq!(c.convert_integer(1).unwrap(), Some(24));
        // Far but in range: a quick answer, not a long walk.
        assert!(c.convert_integer(300_000_000).is_ok());
    }

    #[test]
    fn other_calendars_keep_the_date() {
        // 2026-03-01 in noleap is day 59 of the year; in standard 2024 it would not be.
        let noleap = enc("days since 2024-01-01", Some("noleap"));
        let standard = enc("days since 2024-01-01", Some("standard"));
        let c = TimeConversion::between(noleap, standard).unwrap();
        // noleap day 59 = 1 March 2024, which is day 60 of leap-year 2024.
        assert_eq!(c.convert_integer(59).unwrap(), Some(60));
        let back = TimeConversion::between(standard, noleap).unwrap();
        assert_eq!(back.convert_integer(60).unwrap(), Some(59));
        // 29 February 2024 has no noleap date.
        let err = back.convert_integer(59).unwrap_err();
        assert!(err.contains("noleap"), "{err}");
        // 360_day: 30 February exists there but not in the standard calendar.
        let d360 = enc("days since 2000-01-01", Some("360_day"));
        let to_std = TimeConversion::between(d360, enc("days since 2000-01-01", None)).unwrap();
        assert!(to_std.convert_integer(59).is_err());
        assert_eq!(to_std.convert_integer(60).unwrap(), Some(60)); // 1 March 2000
    }
}
