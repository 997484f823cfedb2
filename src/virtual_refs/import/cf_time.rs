//! CF time coordinates (`units: "hours since 2026-01-01"`, `calendar: "noleap"`): parsing, and
//! re-encoding the values of one file in the encoding an array already has, so an appended
//! day means the same instants as the stored ones.

use super::calendar::{Calendar, Date};

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// A CF time encoding: a unit, a reference instant and a calendar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TimeEncoding {
    /// Microseconds per unit.
    unit_micros: i128,
    /// The reference instant: microseconds from day 0 of the calendar, in UTC.
    epoch_micros: i128,
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
    let unit_micros: i128 = match unit.trim().to_ascii_lowercase().as_str() {
        "days" | "day" | "d" => MICROS_PER_DAY,
        "hours" | "hour" | "hr" | "hrs" | "h" => 3_600 * MICROS_PER_SECOND,
        "minutes" | "minute" | "min" | "mins" => 60 * MICROS_PER_SECOND,
        "seconds" | "second" | "sec" | "secs" | "s" => MICROS_PER_SECOND,
        "milliseconds" | "millisecond" | "msec" | "msecs" | "ms" => 1_000,
        "microseconds" | "microsecond" | "usec" | "usecs" | "us" => 1,
        other => return Err(format!("unknown time unit `{other}`")),
    };
    let calendar = Calendar::parse(calendar)?;
    let (date, micros_of_day, zone_micros) = parse_reference(reference.trim())?;
    calendar.check(date)?;
    let epoch_micros =
        i128::from(calendar.day_number(date)) * MICROS_PER_DAY + micros_of_day - zone_micros;
    Ok(TimeEncoding {
        unit_micros,
        epoch_micros,
        calendar,
    })
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][ ][Z|UTC|(+|-)HH[:MM]]` as (date, microseconds of the
/// day, zone offset in microseconds).
fn parse_reference(text: &str) -> Result<(Date, i128, i128), String> {
    let bad = || format!("`{text}` is not a reference date");
    let (date_part, rest) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
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
    let date = Date {
        year,
        month: month.parse().map_err(|_| bad())?,
        day: day.parse().map_err(|_| bad())?,
    };
    // The time of day, then an optional zone.
    let (time_part, zone_part) = match rest.find(['Z', 'U', '+', '-']) {
        Some(i) => (rest[..i].trim(), rest[i..].trim()),
        None => (rest, ""),
    };
    let micros_of_day = if time_part.is_empty() {
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
        (hours * 3600 + minutes * 60) * MICROS_PER_SECOND + (seconds * 1e6).round() as i128
    };
    let zone_micros = match zone_part {
        "" | "Z" | "UTC" | "utc" => 0,
        zone => {
            let sign: i128 = if zone.starts_with('-') { -1 } else { 1 };
            let digits = zone[1..].replace(':', "");
            let (h, m) = match digits.len() {
                1 | 2 => (digits.as_str(), "0"),
                4 => (&digits[..2], &digits[2..]),
                _ => return Err(bad()),
            };
            let h: i128 = h.parse().map_err(|_| bad())?;
            let m: i128 = m.parse().map_err(|_| bad())?;
            sign * (h * 3600 + m * 60) * MICROS_PER_SECOND
        }
    };
    Ok((date, micros_of_day, zone_micros))
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

    /// `value` (a number of `from` units) in `to` units. Fails when the instant has no date in
    /// the target calendar (29 February into `noleap`, 31 January into `360_day`).
    pub(crate) fn convert(&self, value: f64) -> Result<f64, String> {
        if !value.is_finite() {
            return Ok(value);
        }
        let (from, to) = (&self.from, &self.to);
        let offset = value * from.unit_micros as f64;
        if from.calendar == to.calendar {
            let shift = (from.epoch_micros - to.epoch_micros) as f64;
            return Ok((offset + shift) / to.unit_micros as f64);
        }
        // Other calendars: the same date and time of day, counted in the target calendar.
        let instant = from.epoch_micros + offset.round() as i128;
        let day = instant.div_euclid(MICROS_PER_DAY);
        let time_of_day = instant.rem_euclid(MICROS_PER_DAY);
        let date = from.calendar.date(day as i64);
        to.calendar.check(date)?;
        let target = i128::from(to.calendar.day_number(date)) * MICROS_PER_DAY + time_of_day;
        Ok((target - to.epoch_micros) as f64 / to.unit_micros as f64)
    }

    /// `value` (an integer number of `from` units) in `to` units, which must be a whole number.
    pub(crate) fn convert_integer(&self, value: i64) -> Result<i64, String> {
        let (from, to) = (&self.from, &self.to);
        let instant = if from.calendar == to.calendar {
            from.epoch_micros + i128::from(value) * from.unit_micros
        } else {
            let instant = from.epoch_micros + i128::from(value) * from.unit_micros;
            let day = instant.div_euclid(MICROS_PER_DAY);
            let date = from.calendar.date(day as i64);
            to.calendar.check(date)?;
            i128::from(to.calendar.day_number(date)) * MICROS_PER_DAY
                + instant.rem_euclid(MICROS_PER_DAY)
        };
        let delta = instant - to.epoch_micros;
        if delta % to.unit_micros != 0 {
            return Err(format!(
                "{value} is not a whole number of the stored time unit after conversion"
            ));
        }
        i64::try_from(delta / to.unit_micros)
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
        assert_ne!(a, enc("hours since 2026-01-01", Some("noleap")));
    }

    #[test]
    fn values_move_to_the_stored_reference_date() {
        let stored = enc("hours since 2026-01-01", None);
        let day2 = enc("hours since 2026-01-02", None);
        let c = TimeConversion::between(day2, stored).unwrap();
        assert_eq!(c.convert(0.0).unwrap(), 24.0);
        assert_eq!(c.convert(6.5).unwrap(), 30.5);
        assert_eq!(c.convert_integer(3).unwrap(), 27);
        assert!(c.convert(f64::NAN).unwrap().is_nan());
        assert!(TimeConversion::between(stored, stored).is_none());
        // Coarser stored units must stay whole numbers.
        let days = enc("days since 2026-01-01", None);
        let to_days = TimeConversion::between(day2, days).unwrap();
        assert_eq!(to_days.convert_integer(24).unwrap(), 2);
        assert!(to_days.convert_integer(6).is_err());
        assert_eq!(to_days.convert(6.0).unwrap(), 1.25);
        // Minutes since a midday reference.
        let minutes = enc("minutes since 2026-01-01 12:00", None);
        let m = TimeConversion::between(minutes, stored).unwrap();
        assert!(m.convert_integer(90).unwrap_err().contains("whole"));
        assert_eq!(m.convert(90.0).unwrap(), 13.5);
    }

    #[test]
    fn other_calendars_keep_the_date() {
        // 2026-03-01 in noleap is day 59 of the year; in standard 2024 it would not be.
        let noleap = enc("days since 2024-01-01", Some("noleap"));
        let standard = enc("days since 2024-01-01", Some("standard"));
        let c = TimeConversion::between(noleap, standard).unwrap();
        // noleap day 59 = 1 March 2024, which is day 60 of leap-year 2024.
        assert_eq!(c.convert_integer(59).unwrap(), 60);
        let back = TimeConversion::between(standard, noleap).unwrap();
        assert_eq!(back.convert_integer(60).unwrap(), 59);
        // 29 February 2024 has no noleap date.
        let err = back.convert_integer(59).unwrap_err();
        assert!(err.contains("noleap"), "{err}");
        // 360_day: 30 February exists there but not in the standard calendar.
        let d360 = enc("days since 2000-01-01", Some("360_day"));
        let to_std = TimeConversion::between(d360, enc("days since 2000-01-01", None)).unwrap();
        assert!(to_std.convert_integer(59).is_err());
        assert_eq!(to_std.convert_integer(60).unwrap(), 60); // 1 March 2000
    }
}
