//! Dumps per-frame features of the dev clips (tab-separated: file, frame,
//! energy dBFS, floor dBFS, active, purity, f1, e1/total, f2, e2/total) for
//! offline calibration:
//! `AMD_DUMP=/tmp/f.tsv cargo test -p dialcast-media --lib amd::calibrate -- --ignored`.

use std::io::Write;

use super::features::FrameAnalyzer;
use super::AmdConfig;

#[test]
#[ignore = "a calibration tool, not a check: writes per-frame features of the dev clips to $AMD_DUMP"]
fn dump_features() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("no corpus at {}; skipping", dir.display());
        return;
    };
    let out_path = std::env::var("AMD_DUMP").unwrap_or_else(|_| "/tmp/amd_features.tsv".into());
    let mut out = std::io::BufWriter::new(std::fs::File::create(out_path).expect("create"));
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    for p in files {
        let mut r = hound::WavReader::open(&p).expect("open");
        let s: Vec<i16> = r.samples::<i16>().map(|x| x.expect("sample")).collect();
        let mut a = FrameAnalyzer::new(AmdConfig::default().speech_margin_db);
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        for c in s.chunks(160) {
            let f = a.push(c);
            let (pur, f1, e1, f2, e2) = f.peaks.map_or((0.0, 0.0, 0.0, 0.0, 0.0), |p| {
                (p.purity(), p.f1, p.e1 / p.total, p.f2, p.e2 / p.total)
            });
            writeln!(
                out,
                "{name}\t{}\t{:.1}\t{:.1}\t{}\t{pur:.3}\t{f1:.1}\t{e1:.3}\t{f2:.1}\t{e2:.3}",
                f.index,
                f.energy_db,
                f.floor_db,
                u8::from(f.active)
            )
            .expect("write");
        }
    }
}

/// `AMD_TRACE=dev-063.wav cargo test -p dialcast-media --lib amd::calibrate::trace -- --ignored --nocapture`
#[test]
#[ignore = "a calibration tool: prints the classifier's state frame by frame for $AMD_TRACE"]
fn trace() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev");
    let Ok(name) = std::env::var("AMD_TRACE") else {
        return;
    };
    let mut r = hound::WavReader::open(dir.join(&name)).expect("open");
    let s: Vec<i16> = r.samples::<i16>().map(|x| x.expect("sample")).collect();
    let mut a = FrameAnalyzer::new(AmdConfig::default().speech_margin_db);
    let mut det = super::AmdDetector::new(AmdConfig::default());
    for c in s.chunks(160) {
        let f = a.push(c);
        let out = det.process(c);
        println!(
            "{:>5} e {:>6.1} floor {:>6.1} {} {:?} {:?}",
            f.index * 20,
            f.energy_db,
            f.floor_db,
            det.trace(),
            out.decision.map(|d| (d.verdict, d.reason)),
            out.beep
        );
    }
}
