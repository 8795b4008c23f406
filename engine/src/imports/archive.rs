//! The archive of import originals: a copy of every uploaded file, kept
//! until its retention ends, and a lock file beside it that a process holds
//! while it reads the file for a pass (so start-up recovery can tell an
//! import that is running in another process from one whose process died).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::store::EpochMs;

/// An archived copy.
pub(super) struct Archived {
    pub path: PathBuf,
    pub size: u64,
}

/// Copies `file` into `dir` as `<uploaded ms>-<pid>-<file name>`.
pub(super) fn store_original(file: &Path, dir: &Path, now: EpochMs) -> anyhow::Result<Archived> {
    let metadata =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    anyhow::ensure!(metadata.is_file(), "{} is not a file", file.display());
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the import archive {}", dir.display()))?;
    let name: String = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".to_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{now}-{}-{name}", std::process::id()));
    let size = std::fs::copy(file, &path)
        .with_context(|| format!("cannot copy {} to {}", file.display(), path.display()))?;
    Ok(Archived { path, size })
}

/// Deletes an archived file and its lock file; a file already gone is fine.
pub(super) fn remove(path: &Path) -> anyhow::Result<()> {
    for target in [path.to_path_buf(), lock_path(path)] {
        match std::fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot delete {}", target.display())),
        }
    }
    Ok(())
}

fn lock_path(archived: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", archived.display()))
}

/// Held (an exclusive file lock) while a process runs a pass over an
/// import; released when dropped or when the process dies.
pub struct ImportLock {
    _file: std::fs::File,
}

impl ImportLock {
    /// The lock of the archived file at `archived`; `None` when another
    /// process holds it.
    pub fn try_acquire(archived: &Path) -> anyhow::Result<Option<ImportLock>> {
        let path = lock_path(archived);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ImportLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}
