//! `--state-file`: a sandbox's resources kept in a JSON file across restarts.
//!
//! The file holds whatever serde type the cloud keeps its state in (`Cloud::State`); this module
//! only loads it, writes it atomically (temporary file, fsync, rename) and debounces the writes:
//! after a mutation at most every [`DEBOUNCE`], and on shutdown.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};

/// The shortest time between two writes of the state file.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// A state file and the bookkeeping of its writes.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    changed: Notify,
    /// Serialises snapshot writes so they land in order.
    writing: tokio::sync::Mutex<()>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            changed: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds: `None` when it does not exist or is empty (e.g. a fresh temporary
    /// file), an error when it cannot be read or is not a `S`.
    pub fn load<S: DeserializeOwned>(&self) -> anyhow::Result<Option<S>> {
        let path = &self.path;
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading sandbox state {}", path.display()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parsing sandbox state {}", path.display()))
    }

    /// Schedules a (debounced) write; [`StateFile::autosave`] does it.
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    /// Writes what `snapshot` returns, after any write already under way.
    pub async fn save(
        &self,
        snapshot: impl FnOnce() -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let _in_order = self.writing.lock().await;
        let bytes = snapshot()?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes)).await??;
        Ok(())
    }

    /// Calls `save` after each [`StateFile::changed`], at most every [`DEBOUNCE`], until `stop`
    /// turns true. A failed write is logged: the next change tries again.
    pub async fn autosave<F, Fut>(&self, mut stop: watch::Receiver<bool>, save: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = save().await {
                tracing::warn!(error = %format!("{e:#}"), "sandbox could not save its state");
            }
            tokio::select! {
                _ = tokio::time::sleep(DEBOUNCE) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sim-state".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok::<_, std::io::Error>(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing sandbox state {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Snapshot = BTreeMap<String, u32>;

    #[tokio::test]
    async fn a_saved_snapshot_loads_back_and_a_missing_or_empty_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("a/b/state.json"));
        assert_eq!(file.load::<Snapshot>().unwrap(), None, "missing");
        let saved = Snapshot::from([("computes".to_string(), 3)]);
        file.save(|| Ok(serde_json::to_vec(&saved)?)).await.unwrap();
        assert_eq!(file.load::<Snapshot>().unwrap(), Some(saved));
        std::fs::write(file.path(), " \n").unwrap();
        assert_eq!(file.load::<Snapshot>().unwrap(), None, "empty");
    }

    #[test]
    fn a_file_that_is_not_the_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "[1, 2]").unwrap();
        let e = StateFile::new(path).load::<Snapshot>().unwrap_err();
        assert!(format!("{e:#}").contains("state.json"), "{e:#}");
    }

    #[tokio::test]
    async fn a_failed_snapshot_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("state.json"));
        file.save(|| Ok(b"{}".to_vec())).await.unwrap();
        assert!(file.save(|| anyhow::bail!("nope")).await.is_err());
        assert_eq!(std::fs::read(file.path()).unwrap(), b"{}");
    }
}
