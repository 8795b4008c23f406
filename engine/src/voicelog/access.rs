//! Voicelogs for the portal and the CLI: list them (by script or record)
//! and fetch one (its row and the path or bytes of its file). Reads only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::store::{Id, VoicelogFilter, VoicelogInfo, VoicelogStore};

/// Voicelogs matching `filter`, newest first.
pub async fn list<S: VoicelogStore>(
    store: &S,
    filter: &VoicelogFilter,
) -> anyhow::Result<Vec<VoicelogInfo>> {
    Ok(store.list_voicelogs(filter).await?)
}

/// One voicelog and the absolute path of its file; `None` when no such id.
pub async fn get<S: VoicelogStore>(
    store: &S,
    dir: &Path,
    id: Id,
) -> anyhow::Result<Option<(VoicelogInfo, PathBuf)>> {
    Ok(store.voicelog(id).await?.map(|info| {
        let path = dir.join(&info.path);
        (info, path)
    }))
}

/// Copies voicelog `id`'s file to `out` (for a download); returns its row
/// and the bytes copied.
pub async fn copy_to<S: VoicelogStore>(
    store: &S,
    dir: &Path,
    id: Id,
    out: &mut (impl std::io::Write + Send),
) -> anyhow::Result<(VoicelogInfo, u64)> {
    let (info, path) = get(store, dir, id)
        .await?
        .with_context(|| format!("no voicelog {id}"))?;
    anyhow::ensure!(
        info.state != "recording",
        "voicelog {id} is still being recorded"
    );
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let n =
        std::io::copy(&mut file, out).with_context(|| format!("cannot copy {}", path.display()))?;
    Ok((info, n))
}
