//! Which calendar each outbound channel of a record follows, and so when a
//! message of it may go out. Pure, like [`Calendar`].
//!
//! * **Voice and SMS** reach a person on the phone: only inside the script's
//!   windows on the organisation's workdays, never on its holidays (the same
//!   [`Calendar`] as calls; the callee's own local hours are the dial rules'
//!   further check for voice).
//! * **E-mail** waits in an inbox: it goes out on the day the record was
//!   imported, at once, whatever the hour, workday or holiday. If it could
//!   not be sent that day (the mail server was down), it goes as soon as it
//!   can rather than never.
//!
//! The channels of a record come from its `SERVICES_*` columns (see the
//! formats README); the messaging adapters ask [`when_to_send`] before
//! handing a message on.

use chrono::{DateTime, Utc};

use super::calendar::Calendar;

/// An outbound channel with its own calendar rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Voice,
    Sms,
    Email,
}

impl Channel {
    /// The channel of a `SERVICES_*` column name, if it has a rule here.
    pub fn of_service(column: &str) -> Option<Channel> {
        match column {
            "SERVICES_VOICE" => Some(Channel::Voice),
            "SERVICES_SMS" => Some(Channel::Sms),
            "SERVICES_EMAIL" => Some(Channel::Email),
            _ => None,
        }
    }

    /// Whether the channel keeps to workdays, holidays and windows.
    pub fn follows_calendar(self) -> bool {
        matches!(self, Channel::Voice | Channel::Sms)
    }
}

/// When a message may go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendAt {
    Now,
    /// Not before this instant (the next open window).
    Later(DateTime<Utc>),
    /// The calendar has no open window within about a year.
    Never,
}

/// When a message on `channel` may go out at `now`.
pub fn when_to_send(channel: Channel, calendar: &Calendar, now: DateTime<Utc>) -> SendAt {
    if !channel.follows_calendar() {
        return SendAt::Now;
    }
    if calendar.is_open(now) {
        return SendAt::Now;
    }
    match calendar.next_open(now) {
        Some(at) => SendAt::Later(at),
        None => SendAt::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::calendar::{every_day, Holidays, Window, WEEKDAYS};
    use chrono::{NaiveDate, TimeZone};

    fn amsterdam() -> Calendar {
        let mut holidays = Holidays::default();
        // Christmas, yearly; and Easter Monday 2027 on its date.
        holidays.yearly.insert((12, 25));
        holidays
            .dates
            .insert(NaiveDate::from_ymd_opt(2027, 3, 29).expect("date"));
        Calendar {
            time_zone: chrono_tz::Europe::Amsterdam,
            workdays: WEEKDAYS,
            holidays,
            windows: every_day(&[Window::parse("09:00-17:00").expect("window")]),
        }
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Amsterdam
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("unambiguous local time")
            .with_timezone(&Utc)
    }

    #[test]
    fn voice_and_sms_wait_for_a_window_on_a_workday() {
        let cal = amsterdam();
        // Wednesday 2026-12-09, 10:00: open.
        for channel in [Channel::Voice, Channel::Sms] {
            assert_eq!(
                when_to_send(channel, &cal, local(2026, 12, 9, 10, 0)),
                SendAt::Now
            );
            // 20:00: the next morning at 09:00.
            assert_eq!(
                when_to_send(channel, &cal, local(2026, 12, 9, 20, 0)),
                SendAt::Later(local(2026, 12, 10, 9, 0))
            );
            // Saturday: Monday 09:00.
            assert_eq!(
                when_to_send(channel, &cal, local(2026, 12, 12, 11, 0)),
                SendAt::Later(local(2026, 12, 14, 9, 0))
            );
        }
    }

    #[test]
    fn voice_and_sms_skip_holidays_email_does_not() {
        let cal = amsterdam();
        // Friday 2026-12-25 (yearly Christmas) at 11:00 and Easter Monday
        // 2027 at 11:00: no SMS or call; e-mail goes.
        let christmas = local(2026, 12, 25, 11, 0);
        assert_eq!(
            when_to_send(Channel::Sms, &cal, christmas),
            SendAt::Later(local(2026, 12, 28, 9, 0))
        );
        assert_eq!(when_to_send(Channel::Email, &cal, christmas), SendAt::Now);
        let easter_monday = local(2027, 3, 29, 11, 0);
        assert_eq!(
            when_to_send(Channel::Voice, &cal, easter_monday),
            SendAt::Later(local(2027, 3, 30, 9, 0))
        );
        assert_eq!(
            when_to_send(Channel::Email, &cal, easter_monday),
            SendAt::Now
        );
    }

    #[test]
    fn email_goes_at_once_at_any_hour() {
        let cal = amsterdam();
        for at in [
            local(2026, 12, 9, 3, 0),   // night
            local(2026, 12, 12, 22, 0), // Saturday evening
        ] {
            assert_eq!(when_to_send(Channel::Email, &cal, at), SendAt::Now);
        }
    }

    #[test]
    fn a_calendar_without_windows_never_sends_voice_or_sms() {
        let mut cal = amsterdam();
        cal.workdays = [false; 7];
        assert_eq!(
            when_to_send(Channel::Sms, &cal, local(2026, 12, 9, 10, 0)),
            SendAt::Never
        );
        assert_eq!(
            when_to_send(Channel::Email, &cal, local(2026, 12, 9, 10, 0)),
            SendAt::Now
        );
    }

    #[test]
    fn services_columns_name_their_channels() {
        assert_eq!(Channel::of_service("SERVICES_SMS"), Some(Channel::Sms));
        assert_eq!(Channel::of_service("SERVICES_EMAIL"), Some(Channel::Email));
        assert_eq!(Channel::of_service("SERVICES_VOICE"), Some(Channel::Voice));
        assert_eq!(Channel::of_service("SERVICES_PAYLINK"), None);
    }
}
