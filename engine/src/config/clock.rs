//! Config values about the clock, parsed when the config is read: the
//! organisation's time zone (an IANA name such as `Europe/Amsterdam`) and a
//! local time of day (`HH:MM`, e.g. when nightly result files are written).

use std::fmt;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;

/// An IANA time zone; UTC when the config names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeZone(pub Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(Tz::UTC)
    }
}

impl TryFrom<String> for TimeZone {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.trim().parse::<Tz>().map(TimeZone).map_err(|_| {
            format!("{name:?} is not an IANA time zone name such as \"Europe/Amsterdam\"")
        })
    }
}

/// A local time of day, written `HH:MM` (or `HH:MM:SS`), either as a string
/// or as a TOML local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTime")]
pub struct LocalTime(pub NaiveTime);

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTime {
    Text(String),
    Toml(toml::value::Datetime),
}

impl TryFrom<RawTime> for LocalTime {
    type Error = String;

    fn try_from(raw: RawTime) -> Result<Self, Self::Error> {
        let text = match raw {
            RawTime::Text(text) => text,
            RawTime::Toml(value) => value.to_string(),
        };
        ["%H:%M", "%H:%M:%S"]
            .iter()
            .find_map(|format| NaiveTime::parse_from_str(text.trim(), format).ok())
            .map(LocalTime)
            .ok_or_else(|| format!("{text:?} is not a time of day HH:MM such as \"02:00\""))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        zone: Option<TimeZone>,
        at: Option<LocalTime>,
    }

    fn parse(text: &str) -> Result<Probe, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn zones_and_times_parse_or_say_what_is_wrong() {
        let probe = parse("zone = \"Europe/Amsterdam\"\nat = \"02:00\"").expect("parses");
        assert_eq!(probe.zone, Some(TimeZone(chrono_tz::Europe::Amsterdam)));
        assert_eq!(probe.at.map(|t| t.to_string()).as_deref(), Some("02:00"));
        let toml_time = parse("at = 02:30:00").expect("a TOML local time");
        assert_eq!(
            toml_time.at,
            Some(LocalTime(NaiveTime::from_hms_opt(2, 30, 0).expect("time")))
        );
        let err = parse("zone = \"Mars/Olympus\"")
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        let err = parse("at = \"25:00\"").err().expect("rejected").to_string();
        assert!(err.contains("25:00"), "{err}");
        assert_eq!(TimeZone::default(), TimeZone(Tz::UTC));
    }

    #[test]
    fn the_environment_can_set_zone_and_nightly_time() {
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dialcast.example.toml"
        ))
        .unwrap_or_default();
        let env = [
            ("DIALCAST__ORGANISATION__TIME_ZONE", "America/New_York"),
            ("DIALCAST__RESULTS__NIGHTLY_AT", "03:15"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = crate::config::Config::parse(&example, "x.toml", env).expect("parses");
        assert_eq!(
            config.organisation.time_zone.0,
            chrono_tz::America::New_York
        );
        assert_eq!(config.results.nightly_at.to_string(), "03:15");
        let bad = [(
            "DIALCAST__RESULTS__NIGHTLY_AT".to_string(),
            "late".to_string(),
        )];
        let err = crate::config::Config::parse(&example, "x.toml", bad)
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("late"), "{err}");
    }
}
