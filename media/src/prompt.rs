//! Prompts: audio decoded once at load time (WAV, MP3, OGG/Vorbis, FLAC via
//! `symphonia`), mixed to mono, resampled to 8 kHz (`rubato`), then encoded
//! into 20 ms G.711 frames for both codecs, so playing a prompt on the hot
//! path is a slice index and a copy.

use std::path::Path;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::codec::{Codec, Frame, FRAME_SAMPLES, SAMPLE_RATE};
use crate::MediaError;

/// A pre-encoded prompt, shareable between calls (`Arc<Prompt>`).
#[derive(Debug, Clone)]
pub struct Prompt {
    pcmu: Vec<Frame>,
    pcma: Vec<Frame>,
    samples: usize,
}

impl Prompt {
    /// Decode, resample and encode an audio file. The error names the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Prompt, MediaError> {
        let path = path.as_ref();
        let (mono, rate) = decode_file(path)?;
        let pcm = if rate == SAMPLE_RATE {
            mono
        } else {
            resample(&mono, rate).map_err(|source| MediaError::PromptResample {
                path: path.to_owned(),
                rate,
                source,
            })?
        };
        let samples: Vec<i16> = pcm
            .iter()
            .map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .collect();
        Ok(Prompt::from_pcm(&samples))
    }

    /// Build a prompt from 8 kHz mono 16-bit samples. The last frame is padded
    /// with silence.
    pub fn from_pcm(samples_8k: &[i16]) -> Prompt {
        let mut pcmu = Vec::with_capacity(samples_8k.len().div_ceil(FRAME_SAMPLES));
        let mut pcma = Vec::with_capacity(pcmu.capacity());
        for chunk in samples_8k.chunks(FRAME_SAMPLES) {
            let mut block = [0i16; FRAME_SAMPLES];
            block[..chunk.len()].copy_from_slice(chunk);
            let mut u = [0u8; FRAME_SAMPLES];
            let mut a = [0u8; FRAME_SAMPLES];
            Codec::Pcmu.encode(&block, &mut u);
            Codec::Pcma.encode(&block, &mut a);
            pcmu.push(u);
            pcma.push(a);
        }
        Prompt {
            pcmu,
            pcma,
            samples: samples_8k.len(),
        }
    }

    /// `ms` milliseconds of silence (rounded up to whole 20 ms frames).
    pub fn silence(ms: u32) -> Prompt {
        let frames = ms.div_ceil(20) as usize;
        Prompt {
            pcmu: vec![Codec::Pcmu.silence_frame(); frames],
            pcma: vec![Codec::Pcma.silence_frame(); frames],
            samples: frames * FRAME_SAMPLES,
        }
    }

    /// Duration of the audio (before padding to whole frames).
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.samples as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// Number of 8 kHz samples.
    pub fn sample_count(&self) -> usize {
        self.samples
    }

    /// The 20 ms frames encoded for `codec`.
    pub fn frames(&self, codec: Codec) -> &[Frame] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }
}

/// Decode the default audio track to mono f32 at its native rate.
fn decode_file(path: &Path) -> Result<(Vec<f32>, u32), MediaError> {
    let decode_err = |source| MediaError::PromptDecode {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| MediaError::PromptOpen {
        path: path.to_owned(),
        source,
    })?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(decode_err)?;
    let no_audio = || MediaError::PromptNoAudio {
        path: path.to_owned(),
    };
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(no_audio)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(no_audio)?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(decode_err)?;

    let mut mono = Vec::new();
    let mut rate = 0;
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A truncated file: keep what decoded so far.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(decode_err(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            Err(SymError::DecodeError(_)) => continue, // skip a corrupt frame
            Err(e) => return Err(decode_err(e)),
        };
        rate = buf.spec().rate();
        let channels = buf.spec().channels().count().max(1);
        buf.copy_to_vec_interleaved(&mut interleaved);
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
    }
    if mono.is_empty() || rate == 0 {
        return Err(no_audio());
    }
    Ok((mono, rate))
}

/// Resamples mono audio at `rate` to 8 kHz (also used to read recordings
/// for the answering-machine detector, `crate::amd::read_wav_8k`).
pub(crate) fn resample(
    mono: &[f32],
    rate: u32,
) -> Result<Vec<f32>, Box<dyn std::error::Error + Send + Sync>> {
    let params = SincInterpolationParameters {
        sinc_len: 128,
        f_cutoff: Some(0.92),
        interpolation: SincInterpolationType::Cubic,
        oversampling_factor: 128,
        window: WindowFunction::BlackmanHarris2,
    };
    let ratio = f64::from(SAMPLE_RATE) / f64::from(rate);
    let mut resampler = Async::<f32>::new_sinc(ratio, 1.0, &params, 1024, 1, FixedAsync::Input)?;
    let input = InterleavedSlice::new(mono, 1, mono.len())?;
    let out = resampler.process_all(&input, mono.len(), None)?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tone_wav(path: &Path, rate: u32, channels: u16, seconds: f64) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        let n = (f64::from(rate) * seconds) as usize;
        for i in 0..n {
            let v = ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate)).sin()
                * 10000.0) as i16;
            for _ in 0..channels {
                w.write_sample(v).expect("write");
            }
        }
        w.finalize().expect("finalize");
    }

    fn check_resampled(rate: u32, channels: u16) {
        let dir = std::env::temp_dir().join(format!(
            "dialcast-prompt-{}-{rate}-{channels}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("tone.wav");
        write_tone_wav(&path, rate, channels, 1.5);
        let p = Prompt::load(&path).expect("load");
        let ms = p.duration().as_millis() as i64;
        assert!((ms - 1500).abs() <= 20, "{rate} Hz: duration {ms} ms");
        assert_eq!(p.frames(Codec::Pcmu).len(), 75);
        assert_eq!(p.frames(Codec::Pcma).len(), 75);
        // The 440 Hz tone survives: decoded frames in the middle are loud.
        let mid = &p.frames(Codec::Pcmu)[37];
        let peak = mid
            .iter()
            .map(|b| Codec::Pcmu.decode_sample(*b).unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!((8000..=11000).contains(&peak), "peak {peak}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn loads_16k_wav() {
        check_resampled(16000, 1);
    }

    #[test]
    fn loads_44k1_stereo_wav() {
        check_resampled(44100, 2);
    }

    #[test]
    fn loads_8k_wav_without_resampling() {
        check_resampled(8000, 1);
    }

    #[test]
    fn missing_file_error_names_it() {
        let err = Prompt::load("/nonexistent/hello.wav").expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/hello.wav"), "{err}");
    }

    #[test]
    fn garbage_file_is_an_error_not_a_panic() {
        let path =
            std::env::temp_dir().join(format!("dialcast-garbage-{}.wav", std::process::id()));
        std::fs::write(&path, b"RIFF\x10\0\0\0WAVEjunkjunkjunk").expect("write");
        let err = Prompt::load(&path).expect_err("garbage");
        assert!(err.to_string().contains("dialcast-garbage"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn from_pcm_and_silence() {
        let p = Prompt::from_pcm(&[1000; 170]);
        assert_eq!(p.frames(Codec::Pcma).len(), 2);
        assert_eq!(p.frames(Codec::Pcma)[1][10], Codec::Pcma.silence_byte());
        assert_eq!(p.duration().as_micros(), 21_250);
        let s = Prompt::silence(50);
        assert_eq!(s.frames(Codec::Pcmu).len(), 3);
        assert!(s.frames(Codec::Pcmu)[2].iter().all(|b| *b == 0xff));
    }
}
