//! Scores the answering-machine and beep detectors on the labelled dev clips
//! in `/work/shared/amd-corpus/dev` (or the folder named by
//! `DIALCAST_AMD_CORPUS`): confusion matrix, accuracy per label, decision
//! times, beep recall and timing. Skips, with a notice, when the folder is
//! missing. Run with `--nocapture` to see the report; figures are in
//! `media/AMD.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dialcast_media::{AmdConfig, AmdDetector, BeepEvent};

const LABELS: [&str; 4] = ["human", "machine", "silence", "fax"];
const VERDICTS: [&str; 5] = ["human", "machine", "silence", "fax", "unknown"];

/// Floors: what the detector achieves on the dev set (in brackets), less a
/// margin. The dev set was used for tuning, so these are optimistic.
const MIN_ACCURACY: f64 = 0.82; // (0.858)
const MIN_HUMAN_MACHINE_ACCURACY: f64 = 0.80; // (0.838)
const MIN_HUMAN_ACCURACY: f64 = 0.62; // (0.680)
const MIN_MACHINE_ACCURACY: f64 = 0.92; // (0.982)
const MIN_BEEP_RECALL: f64 = 0.90; // (0.957)
const MIN_BEEP_START_WITHIN_150MS: f64 = 0.95; // (1.000)
const MIN_BEEP_END_WITHIN_150MS: f64 = 0.95; // (1.000)
const MAX_FALSE_BEEPS: usize = 4; // (2)

struct Clip {
    file: String,
    label: String,
    beep_start_ms: Option<u32>,
    beep_end_ms: Option<u32>,
    notes: String,
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("DIALCAST_AMD_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev"),
    }
}

/// Splits one CSV line (double-quoted fields, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// The beep's length from the notes: "NNN ms", "2 x A ms, G ms apart", or
/// the recorded Asterisk beep (425 ms).
fn beep_len_ms(notes: &str) -> Option<u32> {
    let beep = notes.split("beep:").nth(1)?.split(';').next()?;
    let num_before = |s: &str, pat: &str| -> Option<u32> {
        let i = s.find(pat)?;
        let head = s[..i].trim_end();
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        head[start..].parse().ok()
    };
    if let Some(i) = beep.find("2 x ") {
        let rest = &beep[i + 4..];
        let on = num_before(rest, " ms")?;
        let gap_part = rest.split(',').nth(1)?;
        let gap = num_before(gap_part, " ms apart")?;
        return Some(2 * on + gap);
    }
    if beep.contains("425 ms") {
        return Some(425);
    }
    num_before(beep, " ms,")
}

fn load_clips(dir: &Path) -> Vec<Clip> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv readable");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = csv_fields(line);
            let beep_start_ms = f[2].parse().ok();
            let notes = f.get(5).cloned().unwrap_or_default();
            let beep_end_ms = beep_start_ms.and_then(|s: u32| beep_len_ms(&notes).map(|l| s + l));
            Clip {
                file: f[0].clone(),
                label: f[1].clone(),
                beep_start_ms,
                beep_end_ms,
                notes,
            }
        })
        .collect()
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("wav opens");
    let spec = r.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

struct Outcome {
    verdict: &'static str,
    at_ms: u32,
    reason: &'static str,
    measures: dialcast_media::amd::AmdMeasures,
    /// Completed beeps (start, end), in order.
    beeps: Vec<(u32, u32)>,
}

fn run(config: AmdConfig, samples: &[i16]) -> Outcome {
    let mut det = AmdDetector::new(config);
    let mut decision = None;
    let mut beeps = Vec::new();
    for frame in samples.chunks(160) {
        let out = det.process(frame);
        decision = decision.or(out.decision);
        if let Some(BeepEvent::Ended { start_ms, end_ms }) = out.beep {
            beeps.push((start_ms, end_ms));
        }
    }
    match decision {
        Some(d) => Outcome {
            verdict: d.verdict.as_str(),
            at_ms: d.at_ms,
            reason: d.reason,
            measures: d.measures,
            beeps,
        },
        None => Outcome {
            verdict: "unknown",
            at_ms: det.elapsed_ms(),
            reason: "clip ended",
            measures: Default::default(),
            beeps,
        },
    }
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Accuracy overall and on human + machine clips, for a parameter sweep.
fn accuracy(clips: &[(Clip, Vec<i16>)], config: AmdConfig) -> (f64, f64, f64) {
    let (mut ok, mut hm_ok, mut hm, mut human_ok, mut humans) = (0, 0, 0, 0, 0);
    for (clip, samples) in clips {
        let o = run(config, samples);
        let right = o.verdict == clip.label;
        ok += usize::from(right);
        if clip.label == "human" || clip.label == "machine" {
            hm += 1;
            hm_ok += usize::from(right);
        }
        if clip.label == "human" {
            humans += 1;
            human_ok += usize::from(right);
        }
    }
    (pct(ok, clips.len()), pct(hm_ok, hm), pct(human_ok, humans))
}

/// `cargo test -p dialcast-media --test amd_corpus -- --ignored --nocapture`
#[test]
#[ignore = "a tuning tool, not a check: prints accuracy as each parameter is moved"]
fn sweep() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips: Vec<_> = load_clips(&dir)
        .into_iter()
        .map(|c| {
            let s = read_wav(&dir.join(&c.file));
            (c, s)
        })
        .collect();
    let base = AmdConfig::default();
    let mut configs = vec![("default".to_string(), base)];
    for margin in [8.0, 12.0] {
        let c = AmdConfig {
            speech_margin_db: margin,
            ..base
        };
        configs.push((format!("speech_margin_db {margin}"), c));
    }
    for ms in [1500, 1800, 2200, 2500] {
        let c = AmdConfig {
            max_greeting_ms: ms,
            ..base
        };
        configs.push((format!("max_greeting_ms {ms}"), c));
    }
    for ms in [600, 700, 900, 1000] {
        let c = AmdConfig {
            after_greeting_silence_ms: ms,
            ..base
        };
        configs.push((format!("after_greeting_silence_ms {ms}"), c));
    }
    for ms in [60, 140] {
        let c = AmdConfig {
            min_word_ms: ms,
            ..base
        };
        configs.push((format!("min_word_ms {ms}"), c));
    }
    for (name, config) in configs {
        let (all, hm, human) = accuracy(&clips, config);
        println!("{name:<32} all {all:.3}  human+machine {hm:.3}  human {human:.3}");
    }
}

fn mean(v: &[u32]) -> f64 {
    v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len().max(1) as f64
}

/// The value at quantile `q` (0..=1) of `v`.
fn quantile(v: &[u32], q: f64) -> u32 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let i = ((v.len().max(1) - 1) as f64 * q).round() as usize;
    v.get(i).copied().unwrap_or(0)
}

#[test]
fn dev_corpus_scores() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips = load_clips(&dir);
    let config = AmdConfig::default();
    let mut confusion: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    // Decision times of right answers, per label.
    let mut times: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let (mut easy, mut easy_ok) = (0, 0);
    let (mut beeps, mut first_found, mut any_found) = (0usize, 0usize, 0usize);
    let (mut start_ok, mut end_ok) = (0usize, 0usize);
    let mut start_errs = Vec::new();
    let mut end_errs = Vec::new();
    let mut beep_notes = Vec::new();
    let mut false_beeps = 0;
    let mut fax_tones = 0;
    for clip in &clips {
        let samples = read_wav(&dir.join(&clip.file));
        let o = run(config, &samples);
        let label = LABELS
            .iter()
            .copied()
            .find(|l| *l == clip.label)
            .expect("known label");
        *confusion.entry((label, o.verdict)).or_default() += 1;
        let hard = clip.notes.contains("hard case");
        if !hard {
            easy += 1;
            easy_ok += usize::from(o.verdict == label);
        }
        if o.verdict == label {
            times.entry(label).or_default().push(o.at_ms);
        } else {
            wrong.push(format!(
                "{} {label:>7} -> {:<7} at {:>4} ms ({}; initial silence {}, greeting {}, words {}, silence after {}){}",
                clip.file,
                o.verdict,
                o.at_ms,
                o.reason,
                o.measures.initial_silence_ms,
                o.measures.greeting_ms,
                o.measures.words,
                o.measures.silence_after_ms,
                if hard { " [hard case]" } else { "" }
            ));
        }
        // A reported beep matches the labelled one if it starts within 150 ms
        // of it; the first reported beep is what a caller acting on the first
        // `Beep` event would use.
        let matches = |b: &(u32, u32), want: u32| b.0.abs_diff(want) <= 150;
        match clip.beep_start_ms {
            Some(want) => {
                beeps += 1;
                if o.beeps.iter().any(|b| matches(b, want)) {
                    any_found += 1;
                }
                match o.beeps.first() {
                    Some(b) if matches(b, want) => {
                        first_found += 1;
                        start_errs.push(i64::from(b.0) - i64::from(want));
                        start_ok += 1;
                        if let Some(want_end) = clip.beep_end_ms {
                            let e = i64::from(b.1) - i64::from(want_end);
                            end_errs.push(e);
                            end_ok += usize::from(e.abs() <= 150);
                        }
                    }
                    Some(b) => {
                        false_beeps += usize::from(b.0 + 150 < want);
                        beep_notes.push(format!(
                            "{}: first beep reported at {}-{} ms, labelled {want}",
                            clip.file, b.0, b.1
                        ));
                    }
                    None => beep_notes.push(format!("{}: beep at {want} ms missed", clip.file)),
                }
            }
            None if label == "fax" => fax_tones += usize::from(!o.beeps.is_empty()),
            None => {
                false_beeps += o.beeps.len();
                for b in &o.beeps {
                    beep_notes.push(format!(
                        "{}: beep {}-{} ms, none labelled",
                        clip.file, b.0, b.1
                    ));
                }
            }
        }
    }

    println!("\nAMD on {} clips in {}", clips.len(), dir.display());
    print!("{:>9}", "label\\got");
    for v in VERDICTS {
        print!("{v:>9}");
    }
    println!(
        "{:>10}   decision ms when right: mean / median / 90 %",
        "accuracy"
    );
    let mut correct = 0;
    let mut per_label = BTreeMap::new();
    for l in LABELS {
        print!("{l:>9}");
        let mut row = 0;
        for v in VERDICTS {
            let n = confusion.get(&(l, v)).copied().unwrap_or(0);
            row += n;
            print!("{n:>9}");
        }
        let ok = confusion.get(&(l, l)).copied().unwrap_or(0);
        correct += ok;
        per_label.insert(l, (ok, row));
        let t = times.get(l).cloned().unwrap_or_default();
        println!(
            "{:>10.3}   {:>5.0} / {:>5} / {:>5}",
            pct(ok, row),
            mean(&t),
            quantile(&t, 0.5),
            quantile(&t, 0.9)
        );
    }
    let accuracy = pct(correct, clips.len());
    let (h, m) = (per_label["human"], per_label["machine"]);
    let hm_accuracy = pct(h.0 + m.0, h.1 + m.1);
    println!(
        "overall accuracy {accuracy:.3}; human+machine {hm_accuracy:.3}; clips not marked hard {:.3} ({easy_ok}/{easy})",
        pct(easy_ok, easy)
    );
    for w in &wrong {
        println!("  wrong: {w}");
    }

    let recall = pct(first_found, beeps);
    let mean_abs =
        |v: &[i64]| v.iter().map(|e| e.abs() as f64).sum::<f64>() / v.len().max(1) as f64;
    let max_abs = |v: &[i64]| v.iter().map(|e| e.abs()).max().unwrap_or(0);
    println!(
        "beeps: first reported beep is the labelled one in {first_found}/{beeps} clips (recall {recall:.3}); \
         the labelled beep is among those reported in {any_found}/{beeps}"
    );
    println!(
        "  start error: within ±150 ms {start_ok}/{first_found}, mean |err| {:.1} ms, max {} ms",
        mean_abs(&start_errs),
        max_abs(&start_errs)
    );
    println!(
        "  end error (end from the notes' beep length): within ±150 ms {end_ok}/{}, mean |err| {:.1} ms, max {} ms",
        end_errs.len(),
        mean_abs(&end_errs),
        max_abs(&end_errs)
    );
    println!("  start errors (ms): {start_errs:?}");
    println!("  end errors (ms): {end_errs:?}");
    println!(
        "  beeps reported where there is none or before the real one: {false_beeps}; \
         fax clips whose tones were also reported as a beep: {fax_tones}"
    );
    for n in &beep_notes {
        println!("  beep: {n}");
    }

    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3}");
    assert!(
        hm_accuracy >= MIN_HUMAN_MACHINE_ACCURACY,
        "human/machine {hm_accuracy:.3}"
    );
    assert!(pct(h.0, h.1) >= MIN_HUMAN_ACCURACY, "human {h:?}");
    assert!(pct(m.0, m.1) >= MIN_MACHINE_ACCURACY, "machine {m:?}");
    assert!(recall >= MIN_BEEP_RECALL, "beep recall {recall:.3}");
    assert!(
        pct(start_ok, first_found) >= MIN_BEEP_START_WITHIN_150MS,
        "beep start timing {start_ok}/{first_found}"
    );
    assert!(
        pct(end_ok, end_errs.len()) >= MIN_BEEP_END_WITHIN_150MS,
        "beep end timing {end_ok}/{}",
        end_errs.len()
    );
    assert!(false_beeps <= MAX_FALSE_BEEPS, "false beeps {false_beeps}");
}
