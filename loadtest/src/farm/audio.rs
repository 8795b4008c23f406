//! The farm's audio, loaded once at start and shared by every call as
//! `Arc<Prompt>`: short human answers and voicemail greetings that end with
//! their beep (clips of the AMD dev corpus, see `loadtest/audio/NOTICE.md`),
//! plus tones generated here (the key presses and the intercept tone).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use dialcast_media::Prompt;

use super::plan::Greeting;
use super::tones;

/// Short answers ("Hello?", "Yes, hello?", ...), in `audio/`.
pub const HUMAN_CLIPS: [&str; 4] = [
    "human-hello.wav",
    "human-yes-hello.wav",
    "human-hi-there.wav",
    "human-this-is-maria.wav",
];

/// Voicemail greetings, each cut just after its beep, in `audio/`.
pub const VOICEMAIL_CLIPS: [&str; 3] = [
    "voicemail-mobile-subscriber.wav",
    "voicemail-maria.wav",
    "voicemail-nobody-available.wav",
];

/// The clips shipped with this crate.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("audio")
}

/// Every prompt a callee may play.
#[derive(Debug, Clone)]
pub struct Clips {
    pub humans: Vec<Arc<Prompt>>,
    pub voicemails: Vec<Arc<Prompt>>,
    /// The intercept announcement of early_media_404.
    pub announcement: Arc<Prompt>,
    /// The key presses of presses_keys.
    pub keys: Arc<Prompt>,
}

impl Clips {
    /// Loads the clips from `dir` and builds the tones for `keys`. The error
    /// names the file that failed.
    pub fn load(dir: &Path, keys: &str) -> anyhow::Result<Clips> {
        let load = |name: &str| -> anyhow::Result<Arc<Prompt>> {
            let path = dir.join(name);
            Prompt::load(&path)
                .map(Arc::new)
                .with_context(|| format!("cannot load the farm's clip {}", path.display()))
        };
        Ok(Clips {
            humans: HUMAN_CLIPS
                .iter()
                .map(|n| load(n))
                .collect::<Result<_, _>>()?,
            voicemails: VOICEMAIL_CLIPS
                .iter()
                .map(|n| load(n))
                .collect::<Result<_, _>>()?,
            announcement: Arc::new(Prompt::from_pcm(&tones::sit_announcement_pcm())),
            keys: Arc::new(Prompt::from_pcm(&tones::dtmf_pcm(keys))),
        })
    }

    /// The prompt of `greeting` (its index taken modulo the clips loaded).
    pub fn greeting(&self, greeting: Greeting) -> Arc<Prompt> {
        let (list, i) = match greeting {
            Greeting::Human(i) => (&self.humans, i),
            Greeting::Voicemail(i) => (&self.voicemails, i),
        };
        // `load` fills both lists from non-empty constant tables.
        match list.get(i % list.len().max(1)) {
            Some(p) => Arc::clone(p),
            None => Arc::new(Prompt::silence(500)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn shipped_clips_load_and_are_short() {
        let clips = Clips::load(&default_dir(), "12").expect("clips load");
        for p in &clips.humans {
            assert!(p.duration() < Duration::from_millis(2500), "{p:?}");
        }
        for p in &clips.voicemails {
            assert!(p.duration() > Duration::from_secs(3));
            assert!(p.duration() < Duration::from_secs(8));
        }
        assert_eq!(clips.keys.duration(), Duration::from_millis(400));
        let a = clips.greeting(Greeting::Human(5));
        assert!(Arc::ptr_eq(&a, &clips.humans[1]));
    }

    #[test]
    fn a_missing_dir_names_the_file() {
        let err = Clips::load(Path::new("/nonexistent-farm-audio"), "1").expect_err("no dir");
        assert!(format!("{err:#}").contains("human-hello.wav"), "{err:#}");
    }
}
