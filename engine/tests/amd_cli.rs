//! `dialcast amd classify` as the real binary: the JSON contract (exactly
//! file, label, decision_ms, beep_ms, cause; beep_ms null when no beep),
//! resampled and stereo input, bad files named on stderr while the others
//! are still classified, and a script's tuning from --config.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const RATE: f64 = 8000.0;

fn hiss(ms: u32, seed: &mut u64) -> Vec<f64> {
    (0..ms * 8)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 60.0
        })
        .collect()
}

/// Harmonics of a wavering pitch under a syllable-rate envelope.
fn voice(ms: u32, pitch: f64) -> Vec<f64> {
    let mut phase = 0.0;
    (0..ms * 8)
        .map(|i| {
            let t = f64::from(i) / RATE;
            let f0 = pitch * (1.0 + 0.1 * (2.0 * PI * 1.5 * t).sin());
            phase += 2.0 * PI * f0 / RATE;
            let v: f64 = (1..20)
                .filter(|k| f64::from(*k) * f0 < 3400.0)
                .map(|k| (f64::from(k) * phase).sin() / f64::from(k))
                .sum();
            v * 3000.0 * (0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin())
        })
        .collect()
}

fn tone(hz: f64, ms: u32) -> Vec<f64> {
    (0..ms * 8)
        .map(|i| (2.0 * PI * hz * f64::from(i) / RATE).sin() * 6000.0)
        .collect()
}

fn human() -> Vec<f64> {
    let mut seed = 1;
    [
        hiss(600, &mut seed),
        voice(500, 170.0),
        hiss(2500, &mut seed),
    ]
    .concat()
}

/// A greeting of 2.5 s, 0.4 s of silence, a 1 kHz beep of 0.4 s at 3.2 s.
fn machine() -> Vec<f64> {
    let mut seed = 2;
    [
        hiss(300, &mut seed),
        voice(1200, 130.0),
        hiss(200, &mut seed),
        voice(1100, 130.0),
        hiss(400, &mut seed),
        tone(1000.0, 400),
        hiss(1000, &mut seed),
    ]
    .concat()
}

fn write_wav(path: &Path, rate: u32, channels: u16, samples_8k: &[f64]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create");
    let repeat = rate / 8000;
    for s in samples_8k {
        for _ in 0..repeat {
            for _ in 0..channels {
                w.write_sample(*s as i16).expect("write");
            }
        }
    }
    w.finalize().expect("finalize");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcast-amd-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn dialcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(args)
        .env("DIALCAST_LOG", "off")
        .output()
        .expect("run dialcast")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn json_lines_carry_exactly_the_five_fields() {
    let dir = temp_dir("json");
    let (h, m, s) = (
        dir.join("human.wav"),
        dir.join("machine.wav"),
        dir.join("silence.wav"),
    );
    write_wav(&h, 8000, 1, &human());
    write_wav(&m, 8000, 1, &machine());
    write_wav(&s, 8000, 1, &vec![0.0; 8000 * 5]);
    let files: Vec<&str> = [&h, &m, &s]
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    let out = dialcast(&[&["amd", "classify", "--json"], files.as_slice()].concat());
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, file) in lines.iter().zip(&files) {
        let obj = line.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["beep_ms", "cause", "decision_ms", "file", "label"]);
        assert_eq!(obj["file"], *file);
        assert!(obj["decision_ms"].is_u64(), "{line}");
        assert!(
            obj["cause"].as_str().is_some_and(|c| !c.is_empty()),
            "{line}"
        );
    }
    assert_eq!(lines[0]["label"], "human", "{}", lines[0]);
    assert_eq!(lines[0]["beep_ms"], Value::Null);
    assert_eq!(lines[1]["label"], "machine", "{}", lines[1]);
    assert_eq!(lines[1]["cause"], "beep");
    let beep = lines[1]["beep_ms"].as_u64().expect("beep_ms");
    assert!(beep.abs_diff(3200) <= 20, "{}", lines[1]);
    let decided = lines[1]["decision_ms"].as_u64().expect("decision_ms");
    assert!(
        decided >= beep + 400,
        "decided when the beep ended: {}",
        lines[1]
    );
    assert_eq!(lines[2]["label"], "silence", "{}", lines[2]);
    assert_eq!(lines[2]["beep_ms"], Value::Null);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn other_rates_and_stereo_are_resampled_and_mixed() {
    let dir = temp_dir("rates");
    let plain = dir.join("plain.wav");
    let wide = dir.join("wide-16k-stereo.wav");
    write_wav(&plain, 8000, 1, &machine());
    write_wav(&wide, 16_000, 2, &machine());
    let out = dialcast(&[
        "amd",
        "classify",
        "--json",
        plain.to_str().expect("utf-8"),
        wide.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["label"], lines[1]["label"]);
    let (a, b) = (
        lines[0]["beep_ms"].as_u64().expect("beep"),
        lines[1]["beep_ms"].as_u64().expect("beep"),
    );
    assert!(a.abs_diff(b) <= 10, "{a} vs {b}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_files_are_named_and_the_others_still_classified() {
    let dir = temp_dir("bad");
    let good = dir.join("good.wav");
    let text = dir.join("notes.wav");
    write_wav(&good, 8000, 1, &human());
    std::fs::write(&text, "this is not audio").expect("write");
    let missing = dir.join("missing.wav");
    let out = dialcast(&[
        "amd",
        "classify",
        "--json",
        missing.to_str().expect("utf-8"),
        text.to_str().expect("utf-8"),
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["label"], "human");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.wav"), "{err}");
    assert!(err.contains("notes.wav"), "{err}");
    assert!(err.contains("2 of 3 files"), "{err}");
    // Without --json: one readable line per file.
    let out = dialcast(&["amd", "classify", good.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("good.wav: human at "), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_scripts_tuning_comes_from_the_config() {
    let dir = temp_dir("config");
    let wav = dir.join("machine.wav");
    write_wav(&wav, 8000, 1, &machine());
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dialcast.example.toml"
    ))
    .expect("example config");
    let config = dir.join("dialcast.toml");
    std::fs::write(
        &config,
        format!("{example}\n[script_settings.impatient.amd]\nmax_greeting_ms = 2000\n"),
    )
    .expect("write config");
    let run = |script: &[&str]| {
        let out = dialcast(
            &[
                &[
                    "amd",
                    "classify",
                    "--json",
                    "--config",
                    config.to_str().expect("utf-8"),
                ],
                script,
                &[wav.to_str().expect("utf-8")],
            ]
            .concat(),
        );
        assert!(out.status.success(), "{out:?}");
        json_lines(&out).remove(0)
    };
    // [amd] alone: the greeting is waited out and the beep decides.
    assert_eq!(run(&[])["cause"], "beep");
    let impatient = run(&["--script", "impatient"]);
    assert_eq!(impatient["label"], "machine");
    assert_eq!(impatient["cause"], "greeting too long for a person");
    assert_eq!(
        impatient["beep_ms"]
            .as_u64()
            .map(|b| b.abs_diff(3200) <= 20),
        Some(true)
    );
    std::fs::remove_dir_all(&dir).ok();
}
