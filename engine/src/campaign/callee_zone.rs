//! Where the callee is in time: the zones whose local clock a call must
//! respect. A record may name its zone (`PERSON_TIME_ZONE`, an IANA name);
//! otherwise the dialled number's country gives it. A country that spans
//! several zones gives all of them, and a call must then fit the window in
//! every one: without knowing where in the country the callee is, that is the
//! only way to be sure it is not too early or too late for them.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use super::country_zones::COUNTRY_ZONES;

/// The record field that names the callee's zone.
pub const TIME_ZONE_FIELD: &str = "PERSON_TIME_ZONE";

/// The zones of the callee reached at `number` (E.164), or `fallback` (the
/// organisation's zone) when neither the record nor the number says.
pub fn callee_zones(fields: &BTreeMap<String, String>, number: &str, fallback: Tz) -> Vec<Tz> {
    if let Some(zone) = fields
        .get(TIME_ZONE_FIELD)
        .and_then(|name| name.parse::<Tz>().ok())
    {
        return vec![zone];
    }
    match number_country(number).map(|country| country_zones(&country)) {
        Some(zones) if !zones.is_empty() => zones,
        _ => vec![fallback],
    }
}

/// The ISO 3166-1 alpha-2 country of an E.164 number, when it has one.
pub fn number_country(number: &str) -> Option<String> {
    let parsed = phonenumber::parse(None, number).ok()?;
    let id = parsed.country().id()?;
    Some(id.as_ref().to_string())
}

/// The zones of a country, distinct by what they do to the clock.
pub fn country_zones(country: &str) -> Vec<Tz> {
    let Ok(at) = COUNTRY_ZONES.binary_search_by(|(code, _)| (*code).cmp(country)) else {
        return Vec::new();
    };
    COUNTRY_ZONES[at]
        .1
        .iter()
        .filter_map(|name| name.parse::<Tz>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dutch_number_is_in_amsterdam() {
        let zones = callee_zones(&BTreeMap::new(), "+31612345678", chrono_tz::UTC);
        assert_eq!(zones, vec![chrono_tz::Europe::Amsterdam]);
    }

    #[test]
    fn a_us_number_spans_the_continent() {
        let zones = callee_zones(&BTreeMap::new(), "+12025550123", chrono_tz::UTC);
        assert!(zones.contains(&chrono_tz::America::New_York), "{zones:?}");
        assert!(
            zones.contains(&chrono_tz::America::Los_Angeles),
            "{zones:?}"
        );
        assert!(zones.contains(&chrono_tz::Pacific::Honolulu), "{zones:?}");
    }

    #[test]
    fn the_record_zone_wins_and_unknown_numbers_fall_back() {
        let mut fields = BTreeMap::new();
        fields.insert(TIME_ZONE_FIELD.to_string(), "America/Chicago".to_string());
        assert_eq!(
            callee_zones(&fields, "+31612345678", chrono_tz::UTC),
            vec![chrono_tz::America::Chicago]
        );
        fields.insert(TIME_ZONE_FIELD.to_string(), "Mars/Olympus".to_string());
        assert_eq!(
            callee_zones(&fields, "+31612345678", chrono_tz::UTC),
            vec![chrono_tz::Europe::Amsterdam]
        );
        assert_eq!(
            callee_zones(&BTreeMap::new(), "not a number", chrono_tz::Asia::Tokyo),
            vec![chrono_tz::Asia::Tokyo]
        );
    }

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(COUNTRY_ZONES.windows(2).all(|w| w[0].0 < w[1].0));
        for (_, zones) in COUNTRY_ZONES {
            for zone in *zones {
                assert!(zone.parse::<Tz>().is_ok(), "{zone} unknown to chrono-tz");
            }
        }
    }
}
