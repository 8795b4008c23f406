//! In-band DTMF detection never hears a key in the dev clips of the AMD
//! corpus (`/work/shared/amd-corpus/dev`, or `DIALCAST_AMD_CORPUS`): people,
//! greetings, music, beeps, fax tones and noise, none of them a key press.
//! Skips, with a notice, when the folder is missing.

use std::path::{Path, PathBuf};

use dialcast_media::amd::read_wav_8k;
use dialcast_media::codec::FRAME_SAMPLES;
use dialcast_media::inband::InbandDtmf;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("DIALCAST_AMD_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev"),
    }
}

#[test]
fn no_key_is_heard_in_speech_music_beeps_or_fax() {
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no corpus at {}", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no clips in {}", dir.display());
    let mut false_keys = Vec::new();
    for file in &files {
        let samples = read_wav_8k(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut detector = InbandDtmf::new();
        for chunk in samples.chunks_exact(FRAME_SAMPLES) {
            let mut frame = [0i16; FRAME_SAMPLES];
            frame.copy_from_slice(chunk);
            if let Some(key) = detector.process(&frame) {
                false_keys.push((file.display().to_string(), key));
            }
        }
    }
    assert!(false_keys.is_empty(), "keys heard: {false_keys:?}");
}
