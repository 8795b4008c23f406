//! Audio for scripts, decoded once: every clip of the audio catalogue loaded
//! as a [`Prompt`] (8 kHz, pre-encoded per codec) and shared by all calls.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use dialcast_media::Prompt;
use dialcast_scripts::{AudioCatalog, ClipRef};

/// Every clip of a catalogue, ready to play.
#[derive(Default)]
pub struct ClipLibrary {
    clips: HashMap<ClipRef, Arc<Prompt>>,
}

impl ClipLibrary {
    /// Decodes every clip of the catalogue; a clip that cannot be decoded is
    /// an error naming its file.
    pub fn load(catalog: &AudioCatalog) -> anyhow::Result<ClipLibrary> {
        let mut clips = HashMap::new();
        for (clip, path) in catalog.clips() {
            let prompt = Prompt::load(path)
                .with_context(|| format!("cannot load audio {}", path.display()))?;
            clips.insert(clip.clone(), Arc::new(prompt));
        }
        Ok(ClipLibrary { clips })
    }

    pub fn get(&self, clip: &ClipRef) -> Option<Arc<Prompt>> {
        self.clips.get(clip).cloned()
    }

    pub fn len(&self) -> usize {
        self.clips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }
}
