//! What one callee does, decided before the call starts: a [`Plan`] built
//! from its behaviour, the farm's [`Timings`] and a per-call random roll.
//!
//! Pure: the call task in `callee` carries the plan out; everything here is
//! testable without sockets or clocks.

use std::time::Duration;

use super::behaviour::Behaviour;
use super::mix::SplitMix64;
use super::tones::valid_dtmf;

/// A range of durations a callee picks from, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
}

impl Span {
    pub const fn fixed(d: Duration) -> Span {
        Span { min: d, max: d }
    }

    /// A duration in the span picked by `roll` (to the millisecond).
    pub fn pick(&self, roll: u64) -> Duration {
        let (lo, hi) = if self.min <= self.max {
            (self.min, self.max)
        } else {
            (self.max, self.min)
        };
        let width = u64::try_from((hi - lo).as_millis()).unwrap_or(u64::MAX);
        lo + Duration::from_millis(roll % width.saturating_add(1))
    }
}

/// How long callees ring, wait and talk. `Default` gives the values of the
/// issue; tests shorten them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Ringing before a human (and hangup_halfway, presses_keys, voicemail)
    /// answers: 0.5–1.5 s.
    pub ring: Span,
    /// Ringing before a slow_answer callee answers: 6 s.
    pub slow_ring: Duration,
    /// Ringing before a rejected callee declines (603): 1.5 s.
    pub decline_after: Duration,
    /// Safety cap on a call that waits for the caller to hang up (human,
    /// slow_answer, presses_keys): 120 s after the answer, then BYE.
    pub talk_cap: Duration,
    /// How long voicemail "records" after its beep before it sends BYE: 30 s.
    pub voicemail_cap: Duration,
    /// When hangup_halfway sends BYE, after its answer: 1.5 s.
    pub hangup_after: Duration,
    /// When presses_keys presses its keys, after its answer: 6 s. Like a
    /// person, it first says hello and listens; a dialer that detects
    /// answering machines decides within about 4 s and starts talking, so
    /// the keys come while the message plays.
    pub keys_after: Duration,
    /// The keys presses_keys presses: "1".
    pub keys: String,
    /// How long no_answer rings if the caller never cancels: 180 s, then
    /// 408 Request Timeout.
    pub no_answer_cap: Duration,
    /// The Retry-After of unavailable's 480 (whole seconds; sub-second
    /// parts round up): 60 s. `None` sends a plain 480.
    pub unavailable_retry_after: Option<Duration>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            ring: Span {
                min: Duration::from_millis(500),
                max: Duration::from_millis(1500),
            },
            slow_ring: Duration::from_secs(6),
            decline_after: Duration::from_millis(1500),
            talk_cap: Duration::from_secs(120),
            voicemail_cap: Duration::from_secs(30),
            hangup_after: Duration::from_millis(1500),
            keys_after: Duration::from_secs(6),
            keys: "1".to_string(),
            no_answer_cap: Duration::from_secs(180),
            unavailable_retry_after: Some(Duration::from_secs(60)),
        }
    }
}

/// A setting of [`Timings`] the farm cannot play.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimingsError {
    #[error("keys {keys:?}: expected one or more of 0-9, *, #, A-D")]
    BadKeys { keys: String },
    #[error("{field} must be above zero")]
    Zero { field: &'static str },
}

impl Timings {
    /// Checks what a plan relies on: keys that are DTMF keys, caps above 0.
    pub fn validate(&self) -> Result<(), TimingsError> {
        if !valid_dtmf(&self.keys) {
            return Err(TimingsError::BadKeys {
                keys: self.keys.clone(),
            });
        }
        for (field, d) in [
            ("talk_cap", self.talk_cap),
            ("voicemail_cap", self.voicemail_cap),
            ("no_answer_cap", self.no_answer_cap),
        ] {
            if d.is_zero() {
                return Err(TimingsError::Zero { field });
            }
        }
        Ok(())
    }
}

/// Which recording a callee plays when it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Greeting {
    /// One of the short human answers, by index (modulo how many are loaded).
    Human(usize),
    /// One of the voicemail greetings ending in a beep, by index.
    Voicemail(usize),
}

/// What an answered callee does after its greeting starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterAnswer {
    /// Stay until the caller hangs up; BYE at `cap` after the answer.
    Wait { cap: Duration },
    /// Send BYE this long after the answer.
    HangUp { after: Duration },
    /// When the greeting (and its beep) has played, "record" until the
    /// caller hangs up; BYE `cap` after the beep.
    Record { cap: Duration },
    /// Press `keys` `after` the answer (RFC 4733 events when negotiated,
    /// else in-band tones), then wait as [`AfterAnswer::Wait`].
    PressKeys {
        after: Duration,
        keys: String,
        cap: Duration,
    },
}

/// The whole life of one callee.
///
/// ```text
///  Refuse:    INVITE ─► [180, wait ring] ─► final code [Retry-After]
///  RingOnly:  INVITE ─► 180 ─► CANCEL ─► 487      (or 408 at cap)
///  Announce:  INVITE ─► 183 + SDP, announcement as early media ─► 404
///  Answer:    INVITE ─► 180, wait ring ─► 200 + greeting ─► AfterAnswer ─► BYE
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Answer with a final error code, after ringing `ring` if set, with a
    /// Retry-After header when `retry_after` is set.
    Refuse {
        ring: Option<Duration>,
        code: u16,
        retry_after: Option<Duration>,
    },
    /// Ring until the caller cancels; `code` at `cap`.
    RingOnly { cap: Duration, code: u16 },
    /// Play the intercept announcement as early media, then `code`.
    Announce { code: u16 },
    /// Ring, answer, greet, then `after`.
    Answer {
        ring: Duration,
        greeting: Greeting,
        after: AfterAnswer,
    },
}

impl Plan {
    /// The plan of a callee with `behaviour`; `roll` (any number, different
    /// per call) picks the ring time and the recording.
    pub fn new(behaviour: Behaviour, timings: &Timings, roll: u64) -> Plan {
        let mut rng = SplitMix64::new(roll);
        let ring = timings.ring.pick(rng.next_u64());
        let pick = rng.next_u64() as usize;
        let wait = AfterAnswer::Wait {
            cap: timings.talk_cap,
        };
        let answer = |ring, greeting, after| Plan::Answer {
            ring,
            greeting,
            after,
        };
        match behaviour {
            Behaviour::Human => answer(ring, Greeting::Human(pick), wait),
            Behaviour::SlowAnswer => answer(timings.slow_ring, Greeting::Human(pick), wait),
            Behaviour::HangupHalfway => answer(
                ring,
                Greeting::Human(pick),
                AfterAnswer::HangUp {
                    after: timings.hangup_after,
                },
            ),
            Behaviour::PressesKeys => answer(
                ring,
                Greeting::Human(pick),
                AfterAnswer::PressKeys {
                    after: timings.keys_after,
                    keys: timings.keys.clone(),
                    cap: timings.talk_cap,
                },
            ),
            Behaviour::Voicemail => answer(
                ring,
                Greeting::Voicemail(pick),
                AfterAnswer::Record {
                    cap: timings.voicemail_cap,
                },
            ),
            Behaviour::Busy => Plan::Refuse {
                ring: None,
                code: 486,
                retry_after: None,
            },
            Behaviour::Invalid => Plan::Refuse {
                ring: None,
                code: 404,
                retry_after: None,
            },
            Behaviour::Unavailable => Plan::Refuse {
                ring: None,
                code: 480,
                retry_after: timings.unavailable_retry_after,
            },
            Behaviour::Rejected => Plan::Refuse {
                ring: Some(timings.decline_after),
                code: 603,
                retry_after: None,
            },
            Behaviour::NoAnswer => Plan::RingOnly {
                cap: timings.no_answer_cap,
                code: 408,
            },
            Behaviour::EarlyMedia404 => Plan::Announce { code: 404 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_picks_inside_its_bounds() {
        let span = Span {
            min: Duration::from_millis(500),
            max: Duration::from_millis(1500),
        };
        let mut rng = SplitMix64::new(1);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let d = span.pick(rng.next_u64());
            assert!((span.min..=span.max).contains(&d), "{d:?}");
            seen_low |= d < Duration::from_millis(700);
            seen_high |= d > Duration::from_millis(1300);
        }
        assert!(seen_low && seen_high);
        let fixed = Span::fixed(Duration::from_secs(2));
        assert_eq!(fixed.pick(12345), Duration::from_secs(2));
        let reversed = Span {
            min: Duration::from_secs(2),
            max: Duration::from_secs(1),
        };
        assert!(reversed.pick(77) <= Duration::from_secs(2));
    }

    #[test]
    fn final_codes_follow_the_behaviour() {
        let t = Timings::default();
        let code = |b| match Plan::new(b, &t, 9) {
            Plan::Refuse { code, .. } | Plan::RingOnly { code, .. } | Plan::Announce { code } => {
                Some(code)
            }
            Plan::Answer { .. } => None,
        };
        assert_eq!(code(Behaviour::Busy), Some(486));
        assert_eq!(code(Behaviour::Invalid), Some(404));
        assert_eq!(code(Behaviour::Unavailable), Some(480));
        assert_eq!(code(Behaviour::Rejected), Some(603));
        assert_eq!(code(Behaviour::NoAnswer), Some(408));
        assert_eq!(code(Behaviour::EarlyMedia404), Some(404));
        let retry_after = |b| match Plan::new(b, &t, 9) {
            Plan::Refuse { retry_after, .. } => retry_after,
            _ => None,
        };
        assert_eq!(
            retry_after(Behaviour::Unavailable),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after(Behaviour::Busy), None);
        for b in Behaviour::ALL {
            assert_eq!(code(b).is_none(), b.answers(), "{b}");
        }
    }

    #[test]
    fn answered_plans_use_the_timings() {
        let t = Timings::default();
        match Plan::new(Behaviour::SlowAnswer, &t, 1) {
            Plan::Answer { ring, after, .. } => {
                assert_eq!(ring, Duration::from_secs(6));
                assert_eq!(after, AfterAnswer::Wait { cap: t.talk_cap });
            }
            other => panic!("{other:?}"),
        }
        match Plan::new(Behaviour::HangupHalfway, &t, 2) {
            Plan::Answer { ring, after, .. } => {
                assert!(t.ring.min <= ring && ring <= t.ring.max);
                assert_eq!(
                    after,
                    AfterAnswer::HangUp {
                        after: Duration::from_millis(1500)
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match Plan::new(Behaviour::Voicemail, &t, 3) {
            Plan::Answer {
                greeting, after, ..
            } => {
                assert!(matches!(greeting, Greeting::Voicemail(_)));
                assert_eq!(
                    after,
                    AfterAnswer::Record {
                        cap: t.voicemail_cap
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match Plan::new(Behaviour::PressesKeys, &t, 4) {
            Plan::Answer { after, .. } => assert_eq!(
                after,
                AfterAnswer::PressKeys {
                    after: t.keys_after,
                    keys: "1".into(),
                    cap: t.talk_cap
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_roll_varies_rings_and_greetings() {
        let t = Timings::default();
        let plans: Vec<_> = (0..50)
            .map(|r| Plan::new(Behaviour::Human, &t, r))
            .collect();
        let rings: std::collections::HashSet<_> = plans
            .iter()
            .filter_map(|p| match p {
                Plan::Answer { ring, .. } => Some(*ring),
                _ => None,
            })
            .collect();
        assert!(rings.len() > 10);
        assert_eq!(Plan::new(Behaviour::Human, &t, 5), plans[5]);
    }

    #[test]
    fn validate_names_the_bad_setting() {
        assert_eq!(Timings::default().validate(), Ok(()));
        let bad_keys = Timings {
            keys: "1x".into(),
            ..Timings::default()
        };
        assert!(matches!(
            bad_keys.validate(),
            Err(TimingsError::BadKeys { .. })
        ));
        let zero = Timings {
            voicemail_cap: Duration::ZERO,
            ..Timings::default()
        };
        assert_eq!(
            zero.validate(),
            Err(TimingsError::Zero {
                field: "voicemail_cap"
            })
        );
    }
}
