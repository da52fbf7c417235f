//! Mesos (stout) duration text such as `5secs`, `100ms`, `2mins` or `1.5hrs`, as the agent
//! writes it into `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` and friends.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("'{0}' is not a duration: expected a number followed by ns, us, ms, secs, mins, hrs, days or weeks (e.g. 5secs)")]
    Syntax(String),
    #[error("'{0}' is not a duration: the value is out of range")]
    Range(String),
}

/// Parses stout's `Duration::parse` syntax: a non-negative decimal number (fraction allowed)
/// immediately followed by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(text.to_string());
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(syntax)?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| syntax())?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3_600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        _ => return Err(syntax()),
    };
    Duration::try_from_secs_f64(value * unit_secs)
        .map_err(|_| DurationError::Range(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<Duration>) {
        assert_eq!(parse_duration(text).ok(), expected, "{text:?}");
    }

    #[test]
    fn parses_stout_units() {
        check("5secs", Some(Duration::from_secs(5)));
        check("100ms", Some(Duration::from_millis(100)));
        check("2mins", Some(Duration::from_secs(120)));
        check("15mins", Some(Duration::from_secs(900)));
        check("1hrs", Some(Duration::from_secs(3_600)));
        check("1days", Some(Duration::from_secs(86_400)));
        check("2weeks", Some(Duration::from_secs(1_209_600)));
        check("250us", Some(Duration::from_micros(250)));
        check("7ns", Some(Duration::from_nanos(7)));
        check("1.5secs", Some(Duration::from_millis(1_500)));
        check("0.5mins", Some(Duration::from_secs(30)));
        check("0secs", Some(Duration::ZERO));
    }

    #[test]
    fn rejects_what_stout_rejects() {
        for bad in [
            "", "5", "secs", "5 secs", "5s", "5sec", "-1secs", "1..2secs", "5SECS", " 5secs",
        ] {
            check(bad, None);
        }
        assert_eq!(parse_duration("1e400secs").ok(), None);
        assert!(matches!(
            parse_duration("5").unwrap_err(),
            DurationError::Syntax(_)
        ));
    }
}
