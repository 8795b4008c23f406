//! What the searched lists (calls, SMS, e-mails) share in their query
//! strings: the keyset cursor, the page size and the date filters, each
//! refused with a problem naming its parameter, and the next page's cursor.

use chrono::{DateTime, NaiveDate, Utc};

use crate::problem::ApiError;

/// `text` as Unix milliseconds: an RFC 3339 time, or a date (`YYYY-MM-DD`,
/// UTC midnight). `name` is the parameter, for the problem.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be an RFC 3339 time or a YYYY-MM-DD date"
    )))
}

/// An optional time parameter (see [`parse_time`]).
pub(crate) fn time(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|t| parse_time(name, t)).transpose()
}

/// The `cursor` parameter: the id below which the page starts (empty or
/// absent: the first page).
pub(crate) fn cursor(text: Option<&str>) -> Result<Option<i64>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave".into())),
    }
}

/// The `limit` parameter, `default` when absent, refused outside `1..=max`.
pub(crate) fn limit(given: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = given.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!("limit must be 1 to {max}")))
    }
}

/// A text filter; empty is no filter.
pub(crate) fn text(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

/// The cursor of the next page: the last id of a full page, none after a
/// short one.
pub(crate) fn next_cursor(len: usize, limit: u32, last: Option<i64>) -> Option<String> {
    if len == limit as usize {
        last.map(|id| id.to_string())
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn detail(e: ApiError) -> String {
        e.problem().detail
    }

    #[test]
    fn times_are_rfc3339_or_dates_and_errors_name_the_parameter() {
        assert_eq!(parse_time("from", "1970-01-02").ok(), Some(86_400_000));
        assert_eq!(
            parse_time("from", "1970-01-01T01:00:00+01:00").ok(),
            Some(0)
        );
        let e = parse_time("to", "yesterday").map(|_| ()).unwrap_err();
        assert!(detail(e).starts_with("to must be"));
        assert_eq!(time("from", None).ok(), Some(None));
    }

    #[test]
    fn cursors_and_limits() {
        assert_eq!(cursor(None).ok(), Some(None));
        assert_eq!(cursor(Some("")).ok(), Some(None));
        assert_eq!(cursor(Some("42")).ok(), Some(Some(42)));
        for bad in ["0", "-1", "abc"] {
            let e = cursor(Some(bad)).map(|_| ()).unwrap_err();
            assert!(detail(e).contains("cursor"), "{bad}");
        }
        assert_eq!(limit(None, 100, 500).ok(), Some(100));
        assert_eq!(limit(Some(500), 100, 500).ok(), Some(500));
        for bad in [0, 501] {
            let e = limit(Some(bad), 100, 500).map(|_| ()).unwrap_err();
            assert_eq!(detail(e), "limit must be 1 to 500");
        }
        assert_eq!(next_cursor(2, 2, Some(7)).as_deref(), Some("7"));
        assert_eq!(next_cursor(1, 2, Some(7)), None);
    }
}
