//! The audio catalogue: which recording plays for a clip name in a language.
//!
//! A catalogue is built from an ordered list of root directories. Each root
//! holds one folder per language, and clips below it:
//! `<root>/<lang>/<name>.wav` is clip `name`, and
//! `<root>/<lang>/say/25.wav` is clip `say/25`. A later root overrides an
//! earlier one clip by clip, so an organisation lists the shipped set
//! ([`default_audio_root`]) first and its own recordings after it.
//!
//! This is the only part of the crate that touches the file system, and it
//! only lists directories: it never opens or decodes audio.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::CatalogError;

/// Folders below a language folder that we follow; deeper ones are an error
/// (this also ends symlink loops).
pub const MAX_DEPTH: usize = 8;

/// A clip: a recording name in a language, e.g. `en` + `say/25`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClipRef {
    /// ISO 639-1 language code, the folder name below a root.
    pub language: String,
    /// The path below the language folder, `/`-separated, without `.wav`.
    pub name: String,
}

impl ClipRef {
    /// A clip reference.
    pub fn new(language: impl Into<String>, name: impl Into<String>) -> Self {
        ClipRef {
            language: language.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ClipRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.language, self.name)
    }
}

/// The recordings available, by language and clip name.
#[derive(Clone, Debug, Default)]
pub struct AudioCatalog {
    clips: BTreeMap<ClipRef, PathBuf>,
}

/// The segment and prompt set shipped with this crate (`scripts/audio`).
pub fn default_audio_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audio")
}

impl AudioCatalog {
    /// An empty catalogue (add clips with [`AudioCatalog::insert`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists `<root>/<lang>/**/*.wav` for every root in order; a clip in a
    /// later root replaces the same clip from an earlier one. Files directly
    /// in a root (such as a licence) and names starting with `.` are
    /// ignored. The `.wav` extension is matched without regard to case.
    pub fn from_roots(roots: &[PathBuf]) -> Result<AudioCatalog, CatalogError> {
        let mut catalog = AudioCatalog::new();
        for root in roots {
            if !root.is_dir() {
                return Err(CatalogError::NotADirectory { path: root.clone() });
            }
            for entry in sorted_entries(root)? {
                if !entry.is_dir() {
                    continue;
                }
                let language = utf8_name(&entry)?;
                if language.starts_with('.') {
                    continue;
                }
                catalog.add_folder(&language, &entry, "", 0)?;
            }
        }
        Ok(catalog)
    }

    fn add_folder(
        &mut self,
        language: &str,
        dir: &Path,
        prefix: &str,
        depth: usize,
    ) -> Result<(), CatalogError> {
        if depth > MAX_DEPTH {
            return Err(CatalogError::TooDeep {
                path: dir.to_path_buf(),
                max: MAX_DEPTH,
            });
        }
        for entry in sorted_entries(dir)? {
            let name = utf8_name(&entry)?;
            if name.starts_with('.') {
                continue;
            }
            if entry.is_dir() {
                let prefix = format!("{prefix}{name}/");
                self.add_folder(language, &entry, &prefix, depth + 1)?;
                continue;
            }
            let Some(stem) = strip_wav(&name) else {
                continue;
            };
            if stem.is_empty() {
                continue;
            }
            self.insert(ClipRef::new(language, format!("{prefix}{stem}")), entry);
        }
        Ok(())
    }

    /// Adds (or replaces) one clip.
    pub fn insert(&mut self, clip: ClipRef, path: PathBuf) {
        self.clips.insert(clip, path);
    }

    /// The file that plays for `clip`.
    pub fn path(&self, clip: &ClipRef) -> Option<&Path> {
        self.clips.get(clip).map(PathBuf::as_path)
    }

    /// Whether `clip` has a recording.
    pub fn contains(&self, clip: &ClipRef) -> bool {
        self.clips.contains_key(clip)
    }

    /// Every clip and its file, ordered by language, then name.
    pub fn clips(&self) -> impl Iterator<Item = (&ClipRef, &Path)> {
        self.clips.iter().map(|(c, p)| (c, p.as_path()))
    }

    /// How many clips there are.
    pub fn len(&self) -> usize {
        self.clips.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }
}

fn strip_wav(name: &str) -> Option<&str> {
    let split = name.len().checked_sub(4)?;
    if !name.is_char_boundary(split) {
        return None;
    }
    let (stem, ext) = name.split_at(split);
    ext.eq_ignore_ascii_case(".wav").then_some(stem)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let io = |source| CatalogError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?.path());
    }
    entries.sort();
    Ok(entries)
}

fn utf8_name(path: &Path) -> Result<String, CatalogError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| CatalogError::NonUtf8Name {
            path: path.to_path_buf(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "dialcast-scripts-catalog-{tag}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn touch(&self, rel: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"RIFF").unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn later_roots_override_and_subfolders_name_clips() {
        let base = TempDir::new("base");
        let org = TempDir::new("org");
        base.touch("en/hello.wav");
        base.touch("en/say/25.wav");
        base.touch("nl/say/25.wav");
        base.touch("LICENSE.md");
        base.touch("en/notes.txt");
        base.touch("en/.hidden.wav");
        let own = org.touch("en/say/25.WAV");
        let cat = AudioCatalog::from_roots(&[base.0.clone(), org.0.clone()]).unwrap();
        assert_eq!(cat.len(), 3);
        assert_eq!(cat.path(&ClipRef::new("en", "say/25")), Some(own.as_path()));
        assert!(cat.contains(&ClipRef::new("en", "hello")));
        assert!(cat.contains(&ClipRef::new("nl", "say/25")));
        assert!(!cat.contains(&ClipRef::new("nl", "hello")));
        let names: Vec<String> = cat.clips().map(|(c, _)| c.to_string()).collect();
        assert_eq!(names, ["en/hello", "en/say/25", "nl/say/25"]);
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let err = AudioCatalog::from_roots(&[PathBuf::from("/nonexistent/dialcast")]);
        assert!(matches!(err, Err(CatalogError::NotADirectory { .. })));
    }

    #[test]
    fn wav_suffix_is_required() {
        assert_eq!(strip_wav("a.wav"), Some("a"));
        assert_eq!(strip_wav("a.Wav"), Some("a"));
        assert_eq!(strip_wav("wav"), None);
        assert_eq!(strip_wav("a.mp3"), None);
        assert_eq!(strip_wav("éé"), None);
    }
}
