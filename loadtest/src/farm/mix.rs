//! Mixes of callee behaviours (`human=50,voicemail=15,busy=5`) and the
//! deterministic generator of numbers for a mix.
//!
//! Pure: no I/O, no clock, no global random state. The same mix, count and
//! seed give the same numbers on every machine and every run, so a demo's
//! record file and the farm agree without talking to each other.

use std::fmt;
use std::str::FromStr;

use super::behaviour::{Behaviour, UnknownBehaviour, SERIALS};

/// Weights of behaviours: a callee drawn from the mix has behaviour `b` with
/// probability `weight(b) / total`. Behaviours not named have weight 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Indexed like [`Behaviour::ALL`].
    weights: [u32; Behaviour::ALL.len()],
}

/// Why a mix did not parse. Each variant names the item at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("the mix is empty: expected items like human=50,busy=5")]
    Empty,
    #[error("mix item {item:?} has no weight: expected NAME=WEIGHT")]
    MissingWeight { item: String },
    #[error("mix item {item:?}: {source}")]
    UnknownBehaviour {
        item: String,
        #[source]
        source: UnknownBehaviour,
    },
    #[error("mix item {item:?}: weight {weight:?} is not a whole number from 0 to 1000000")]
    BadWeight { item: String, weight: String },
    #[error("mix item {item:?}: {behaviour} is named twice")]
    Duplicate { item: String, behaviour: Behaviour },
    #[error("every weight of the mix is 0")]
    AllZero,
}

/// Largest weight accepted (keeps every sum far from overflow).
pub const MAX_WEIGHT: u32 = 1_000_000;

impl Mix {
    /// A mix of one behaviour only.
    pub fn only(behaviour: Behaviour) -> Mix {
        let mut weights = [0; Behaviour::ALL.len()];
        weights[behaviour as usize] = 1;
        Mix { weights }
    }

    /// Builds a mix from `(behaviour, weight)` pairs; later pairs replace
    /// earlier ones. Fails when every weight is 0 or one is above
    /// [`MAX_WEIGHT`].
    pub fn from_weights(
        pairs: impl IntoIterator<Item = (Behaviour, u32)>,
    ) -> Result<Mix, MixError> {
        let mut weights = [0; Behaviour::ALL.len()];
        for (b, w) in pairs {
            if w > MAX_WEIGHT {
                return Err(MixError::BadWeight {
                    item: format!("{b}={w}"),
                    weight: w.to_string(),
                });
            }
            weights[b as usize] = w;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err(MixError::AllZero);
        }
        Ok(Mix { weights })
    }

    /// The weight of `behaviour` (0 when not in the mix).
    pub fn weight(&self, behaviour: Behaviour) -> u32 {
        self.weights[behaviour as usize]
    }

    /// Sum of the weights (above 0).
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|w| u64::from(*w)).sum()
    }

    /// The behaviours with a weight above 0, with their weights, in the
    /// order of [`Behaviour::ALL`].
    pub fn entries(&self) -> impl Iterator<Item = (Behaviour, u32)> + '_ {
        Behaviour::ALL
            .into_iter()
            .zip(self.weights)
            .filter(|(_, w)| *w > 0)
    }

    /// How many of `count` callees get each behaviour: proportional to the
    /// weights, rounded by largest remainder (ties to the earlier behaviour),
    /// so the counts add up to `count` exactly.
    pub fn apportion(&self, count: usize) -> [usize; Behaviour::ALL.len()] {
        let total = u128::from(self.total());
        let count_wide = count as u128;
        let mut shares = [0usize; Behaviour::ALL.len()];
        let mut remainders = [0u128; Behaviour::ALL.len()];
        let mut given = 0usize;
        for (i, w) in self.weights.iter().enumerate() {
            let exact = count_wide * u128::from(*w);
            // total > 0 by construction; share <= count fits in usize.
            shares[i] = usize::try_from(exact / total).unwrap_or(count);
            remainders[i] = exact % total;
            given += shares[i];
        }
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(a.cmp(b)));
        for i in order.into_iter().take(count.saturating_sub(given)) {
            shares[i] += 1;
        }
        shares
    }
}

impl Default for Mix {
    /// `human=50,voicemail=15,busy=5,no_answer=5,invalid=5,early_media_404=3,
    /// hangup_halfway=7,slow_answer=5,presses_keys=5`.
    fn default() -> Self {
        DEFAULT_MIX
            .parse()
            .unwrap_or_else(|_| Mix::only(Behaviour::Human))
    }
}

/// The mix of the issue: a realistic day of outbound calls.
pub const DEFAULT_MIX: &str = "human=50,voicemail=15,busy=5,no_answer=5,invalid=5,\
early_media_404=3,hangup_halfway=7,slow_answer=5,presses_keys=5";

impl FromStr for Mix {
    type Err = MixError;

    /// Parses `NAME=WEIGHT` items separated by commas; spaces around items,
    /// names and weights are ignored, as is a trailing comma.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0; Behaviour::ALL.len()];
        let mut seen = [false; Behaviour::ALL.len()];
        let mut any = false;
        for raw in s.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            any = true;
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| MixError::MissingWeight {
                    item: item.to_string(),
                })?;
            let behaviour: Behaviour =
                name.parse().map_err(|source| MixError::UnknownBehaviour {
                    item: item.to_string(),
                    source,
                })?;
            let weight_text = weight.trim();
            let weight = weight_text
                .parse::<u32>()
                .ok()
                .filter(|w| *w <= MAX_WEIGHT)
                .ok_or_else(|| MixError::BadWeight {
                    item: item.to_string(),
                    weight: weight_text.to_string(),
                })?;
            let slot = behaviour as usize;
            if seen[slot] {
                return Err(MixError::Duplicate {
                    item: item.to_string(),
                    behaviour,
                });
            }
            seen[slot] = true;
            weights[slot] = weight;
        }
        if !any {
            return Err(MixError::Empty);
        }
        if weights.iter().all(|w| *w == 0) {
            return Err(MixError::AllZero);
        }
        Ok(Mix { weights })
    }
}

impl fmt::Display for Mix {
    /// The canonical form: `NAME=WEIGHT` for each weight above 0, in the
    /// order of [`Behaviour::ALL`]; parses back to the same mix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (b, w)) in self.entries().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}={w}")?;
        }
        Ok(())
    }
}

/// `count` distinct numbers for `mix`, each with the behaviour the farm will
/// play when it is dialled, in a shuffled order. Deterministic: the same
/// arguments always give the same list.
///
/// Each behaviour gets its share of `count` by [`Mix::apportion`]. Within a
/// behaviour, serial numbers start at a point chosen by `seed` and step by a
/// stride coprime with 1,000,000, so they do not repeat until a behaviour has
/// more than [`SERIALS`] numbers.
pub fn numbers(mix: &Mix, count: usize, seed: u64) -> Vec<(String, Behaviour)> {
    let mut rng = SplitMix64::new(seed);
    let shares = mix.apportion(count);
    let mut out = Vec::with_capacity(count);
    for (b, share) in Behaviour::ALL.into_iter().zip(shares) {
        let start = rng.below(u64::from(SERIALS));
        let stride = coprime_stride(&mut rng);
        for k in 0..share as u64 {
            let serial = (start + k.wrapping_mul(stride)) % u64::from(SERIALS);
            // serial < SERIALS, which fits in u32.
            out.push((b.number(serial as u32), b));
        }
    }
    // Fisher-Yates, so behaviours are interleaved the same way every run.
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}

/// A stride in `1..SERIALS` coprime with 10^6 (odd and not a multiple of 5):
/// `start + k·stride mod 10^6` then visits every serial once.
fn coprime_stride(rng: &mut SplitMix64) -> u64 {
    loop {
        let s = rng.below(u64::from(SERIALS));
        // Coprime with 10^6 exactly when the last digit is 1, 3, 7 or 9.
        if matches!(s % 10, 1 | 3 | 7 | 9) {
            return s;
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and the same on every
/// platform, which is all a reproducible list of numbers needs.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        let n = n.max(1);
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::farm::behaviour::behaviour_for;

    #[test]
    fn parses_the_issue_mix() {
        let mix: Mix = DEFAULT_MIX.parse().expect("the default mix parses");
        assert_eq!(mix.weight(Behaviour::Human), 50);
        assert_eq!(mix.weight(Behaviour::EarlyMedia404), 3);
        assert_eq!(mix.weight(Behaviour::Unavailable), 0);
        assert_eq!(mix.total(), 100);
        assert_eq!(Mix::default(), mix);
        assert_eq!(mix.to_string().parse::<Mix>(), Ok(mix));
    }

    #[test]
    fn tolerates_spaces_case_and_trailing_comma() {
        let mix: Mix = " Human = 3 , busy=1, ".parse().expect("parses");
        assert_eq!(mix.to_string(), "human=3,busy=1");
    }

    #[test]
    fn errors_name_the_bad_item() {
        let cases: [(&str, MixError); 6] = [
            ("", MixError::Empty),
            (" , ", MixError::Empty),
            (
                "human=5,busy",
                MixError::MissingWeight {
                    item: "busy".into(),
                },
            ),
            (
                "human=5,busy=x",
                MixError::BadWeight {
                    item: "busy=x".into(),
                    weight: "x".into(),
                },
            ),
            (
                "human=5,busy=3,human=1",
                MixError::Duplicate {
                    item: "human=1".into(),
                    behaviour: Behaviour::Human,
                },
            ),
            ("human=0,busy=0", MixError::AllZero),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Mix>(), Err(expected), "{text:?}");
        }
        let err = "human=5,robot=2".parse::<Mix>().expect_err("unknown name");
        let message = err.to_string();
        assert!(message.contains("\"robot=2\""), "{message}");
        assert!(message.contains("unknown behaviour \"robot\""), "{message}");
        let err = "busy=-1".parse::<Mix>().expect_err("negative");
        assert!(err.to_string().contains("\"busy=-1\""), "{err}");
        let err = "busy=1000001".parse::<Mix>().expect_err("too big");
        assert!(err.to_string().contains("1000001"), "{err}");
    }

    #[test]
    fn apportion_adds_up_and_follows_weights() {
        let mix: Mix = "human=50,voicemail=15,busy=35".parse().expect("parses");
        let shares = mix.apportion(100);
        assert_eq!(shares[Behaviour::Human as usize], 50);
        assert_eq!(shares[Behaviour::Voicemail as usize], 15);
        assert_eq!(shares[Behaviour::Busy as usize], 35);
        for count in [0, 1, 2, 3, 7, 99, 1001] {
            let shares = mix.apportion(count);
            assert_eq!(shares.iter().sum::<usize>(), count, "count {count}");
        }
        // One of three equal weights: ties go to the earlier behaviour.
        let thirds: Mix = "busy=1,human=1,invalid=1".parse().expect("parses");
        let shares = thirds.apportion(1);
        assert_eq!(shares[Behaviour::Human as usize], 1);
    }

    #[test]
    fn numbers_are_deterministic_distinct_and_map_back() {
        let mix = Mix::default();
        let a = numbers(&mix, 2000, 7);
        let b = numbers(&mix, 2000, 7);
        assert_eq!(a, b);
        assert_ne!(a, numbers(&mix, 2000, 8));
        assert_eq!(a.len(), 2000);
        let distinct: HashSet<_> = a.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(distinct.len(), a.len());
        for (number, behaviour) in &a {
            assert_eq!(behaviour_for(number), Some(*behaviour), "{number}");
        }
        let humans = a.iter().filter(|(_, b)| *b == Behaviour::Human).count();
        assert_eq!(humans, 1000);
        // Shuffled: the first 20 are not all of one behaviour.
        let first: HashSet<_> = a.iter().take(20).map(|(_, b)| *b).collect();
        assert!(first.len() > 1);
    }

    #[test]
    fn a_single_behaviour_mix_gives_only_that_behaviour() {
        let list = numbers(&Mix::only(Behaviour::Busy), 5, 1);
        assert_eq!(list.len(), 5);
        assert!(list.iter().all(|(_, b)| *b == Behaviour::Busy));
        assert!(numbers(&Mix::default(), 0, 1).is_empty());
    }

    #[test]
    fn serials_do_not_repeat_within_a_behaviour() {
        let mut rng = SplitMix64::new(3);
        let stride = coprime_stride(&mut rng);
        let mut seen = HashSet::new();
        for k in 0..10_000u64 {
            assert!(seen.insert((17 + k * stride) % u64::from(SERIALS)));
        }
    }

    #[test]
    fn from_weights_checks_its_input() {
        assert_eq!(
            Mix::from_weights([(Behaviour::Busy, 0)]),
            Err(MixError::AllZero)
        );
        let mix = Mix::from_weights([(Behaviour::Busy, 2), (Behaviour::Human, 1)])
            .expect("valid weights");
        assert_eq!(mix.to_string(), "human=1,busy=2");
    }

    /// The engine checks numbers with the `phonenumber` crate before it
    /// dials; every number of every behaviour must pass as a Dutch mobile.
    #[test]
    fn every_generated_number_is_a_valid_dutch_mobile() {
        let equal = Mix::from_weights(Behaviour::ALL.map(|b| (b, 1))).expect("valid weights");
        let mut list = numbers(&equal, 3300, 11);
        for b in Behaviour::ALL {
            list.push((b.number(0), b));
            list.push((b.number(SERIALS - 1), b));
        }
        for (number, behaviour) in &list {
            let parsed = phonenumber::parse(Some(phonenumber::country::Id::NL), number)
                .unwrap_or_else(|e| panic!("{number} ({behaviour}) does not parse: {e}"));
            assert!(
                phonenumber::is_valid(&parsed),
                "{number} ({behaviour}) is not a valid number"
            );
            assert_eq!(
                parsed.number_type(&phonenumber::metadata::DATABASE),
                phonenumber::Type::Mobile,
                "{number} ({behaviour})"
            );
            assert_eq!(parsed.country().id(), Some(phonenumber::country::Id::NL));
        }
    }
}
