//! Ages and times on the command line: `30d`, `12h`, `90m`, `45s`, `2w`, or an RFC 3339 time.

use std::time::Duration;

use chrono::DateTime;
use floe::ExpireBefore;

const UNITS: [(char, u64); 5] = [
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 7 * 86_400),
];

/// Parses `<number><unit>` (units s, m, h, d, w).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let unit = text.chars().last().ok_or("empty duration")?;
    let Some((_, seconds)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "`{text}` is not a duration: write a number and a unit, s, m, h, d or w (e.g. 30d)"
        ));
    };
    let number: u64 = text[..text.len() - 1]
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: the number must be a whole number"))?;
    number
        .checked_mul(*seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Parses an age (`30d`) or an RFC 3339 time.
pub fn parse_before(text: &str) -> Result<ExpireBefore, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(ExpireBefore::Time(time.to_utc()));
    }
    parse_duration(text)
        .map(ExpireBefore::Age)
        .map_err(|e| format!("{e}, or an RFC 3339 time"))
}

/// Parses `BRANCH=AGE_OR_TIME`.
pub fn parse_branch_before(text: &str) -> Result<(String, ExpireBefore), String> {
    let (branch, before) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not BRANCH=AGE (e.g. dev=7d)"))?;
    Ok((branch.to_string(), parse_before(before)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ages_and_times() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(matches!(
            parse_before("2026-01-02T00:00:00Z").unwrap(),
            ExpireBefore::Time(_)
        ));
        assert_eq!(
            parse_branch_before("dev=2w").unwrap(),
            (
                "dev".to_string(),
                ExpireBefore::Age(Duration::from_secs(14 * 86_400))
            )
        );
        assert!(parse_branch_before("dev").is_err());
    }
}
