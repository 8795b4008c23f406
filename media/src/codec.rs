//! G.711 codecs (PCMU = µ-law, PCMA = A-law) and their static RTP payload
//! types. The sample conversion itself comes from `audio-codec-algorithms`;
//! this module owns the frame-level helpers and the 20 ms framing constants.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// G.711 runs at 8 kHz.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples (and bytes, one byte per sample in G.711) in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// One encoded 20 ms frame.
pub type Frame = [u8; FRAME_SAMPLES];

/// A G.711 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Codec {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static payload type of RFC 3551.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is 0 or 8.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The code of a zero-amplitude sample.
    pub fn silence_byte(self) -> u8 {
        self.encode_sample(0)
    }

    /// A 20 ms frame of silence.
    pub fn silence_frame(self) -> Frame {
        [self.silence_byte(); FRAME_SAMPLES]
    }

    #[inline]
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => encode_ulaw(s),
            Codec::Pcma => encode_alaw(s),
        }
    }

    #[inline]
    pub fn decode_sample(self, b: u8) -> i16 {
        match self {
            Codec::Pcmu => decode_ulaw(b),
            Codec::Pcma => decode_alaw(b),
        }
    }

    /// Encode `pcm` into `out`, sample by sample, up to the shorter length.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) {
        for (o, s) in out.iter_mut().zip(pcm) {
            *o = self.encode_sample(*s);
        }
    }

    /// Decode `data` into `out`, up to the shorter length.
    pub fn decode(self, data: &[u8], out: &mut [i16]) {
        for (o, b) in out.iter_mut().zip(data) {
            *o = self.decode_sample(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(96), None);
    }

    #[test]
    fn round_trip_both_codecs() {
        let pcm: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| ((i as f64 * 0.2).sin() * 12000.0) as i16)
            .collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut enc = [0u8; FRAME_SAMPLES];
            codec.encode(&pcm, &mut enc);
            let mut dec = [0i16; FRAME_SAMPLES];
            codec.decode(&enc, &mut dec);
            for (a, b) in pcm.iter().zip(dec.iter()) {
                // G.711 is logarithmic: the error grows with amplitude, ~3 % max.
                let err = (i32::from(*a) - i32::from(*b)).abs();
                assert!(
                    err <= i32::from(a.unsigned_abs() / 16) + 16,
                    "{codec:?} {a} -> {b}"
                );
            }
            // encode(decode(x)) is the identity on codes.
            let mut again = [0u8; FRAME_SAMPLES];
            codec.encode(&dec, &mut again);
            assert_eq!(enc, again, "{codec:?}");
        }
    }

    #[test]
    fn silence_codes() {
        assert_eq!(Codec::Pcmu.silence_byte(), 0xff);
        assert_eq!(Codec::Pcma.silence_byte(), 0xd5);
    }
}
