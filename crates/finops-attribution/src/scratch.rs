//! Scratch files of an ingest (its columnar lines before upload, the lines' spill file):
//! hundreds of megabytes for a large month. A file is removed when dropped, but a process
//! killed midway (kill -9, OOM, power) never drops anything; so every process keeps its
//! scratch in a folder of its own under one root, holding an exclusive lock on a file in
//! it for as long as it lives, and the next process to need scratch removes every folder
//! whose lock nobody holds — the leftovers of processes that died.
//!
//! The root is `$FINOPS_SCRATCH_DIR`, else `finops-scratch` in the system's temporary
//! folder (README "Ingesting CUR").

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable naming the scratch root.
pub const SCRATCH_DIR_ENV: &str = "FINOPS_SCRATCH_DIR";

const LOCK: &str = ".owner.lock";
const RUN_PREFIX: &str = "run-";

/// Where scratch folders live.
pub fn scratch_root() -> PathBuf {
    std::env::var_os(SCRATCH_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| std::env::temp_dir().join("finops-scratch"), PathBuf::from)
}

/// This process's scratch folder, made (and the root swept) on first use.
struct RunFolder {
    path: PathBuf,
    // Held for the life of the process: the lock is what tells a sweeper we are alive.
    _lock: File,
}

static RUN: OnceLock<Option<RunFolder>> = OnceLock::new();

fn run_folder() -> Option<&'static RunFolder> {
    RUN.get_or_init(|| {
        let root = scratch_root();
        std::fs::create_dir_all(&root).ok()?;
        let swept = sweep(&root);
        if swept > 0 {
            tracing::info!(root = %root.display(), folders = swept, "removed scratch left by processes that died");
        }
        // Made under another name and renamed once locked, so a sweeper never sees a run
        // folder whose lock is not yet held.
        let name = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        let making = root.join(format!("making-{name}"));
        std::fs::create_dir_all(&making).ok()?;
        let lock = File::create(making.join(LOCK)).ok()?;
        lock.try_lock().ok()?;
        let path = root.join(format!("{RUN_PREFIX}{name}"));
        std::fs::rename(&making, &path).ok()?;
        Some(RunFolder { path, _lock: lock })
    })
    .as_ref()
}

/// Removes every run folder under `root` whose owner is gone (its lock is free); returns
/// how many. A folder being created right now (no lock file yet) is left alone.
pub fn sweep(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_run = entry.file_name().to_str().is_some_and(|n| n.starts_with(RUN_PREFIX));
        if !is_run || !path.is_dir() {
            continue;
        }
        let Ok(lock) = File::open(path.join(LOCK)) else { continue };
        if lock.try_lock().is_ok() {
            drop(lock);
            if std::fs::remove_dir_all(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// A temporary file (or folder: everything under it goes too), removed when dropped: whatever fails midway (a bad row, a full disk)
/// leaves nothing behind; a killed process's files are swept by the next one.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new file name in this process's scratch folder, ending in `.{suffix}` (in the
    /// system's temporary folder when no scratch folder can be made).
    pub fn new(suffix: &str) -> Self {
        let folder = run_folder().map_or_else(std::env::temp_dir, |r| r.path.clone());
        Self(folder.join(format!("finops-{}.{suffix}", uuid::Uuid::now_v7())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_root() -> PathBuf {
        let root = std::env::temp_dir().join(format!("finops-scratch-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// Regression (issue 10.13): an ingest killed midway left its scratch forever.
    #[test]
    fn a_dead_process_s_scratch_is_swept_and_a_live_one_is_kept() {
        let root = fresh_root();
        // A process that died: its lock file exists, nobody holds it.
        let dead = root.join("run-1-dead");
        std::fs::create_dir_all(&dead).unwrap();
        File::create(dead.join(LOCK)).unwrap();
        std::fs::write(dead.join("finops-x.lines.parquet"), vec![0u8; 4096]).unwrap();
        // A process that lives: it holds its lock.
        let alive = root.join("run-2-alive");
        std::fs::create_dir_all(&alive).unwrap();
        let held = File::create(alive.join(LOCK)).unwrap();
        held.try_lock().unwrap();
        std::fs::write(alive.join("finops-y.lines.parquet"), b"in use").unwrap();
        // Something else in the root is never touched.
        std::fs::write(root.join("notes.txt"), b"keep").unwrap();

        assert_eq!(sweep(&root), 1);
        assert!(!dead.exists(), "the dead process's scratch is gone");
        assert!(alive.join("finops-y.lines.parquet").exists(), "a live process's scratch stays");
        assert!(root.join("notes.txt").exists());
        drop(held);
        assert_eq!(sweep(&root), 1, "once its owner is gone, it goes too");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn scratch_files_live_in_this_process_s_folder_and_go_when_dropped() {
        let scratch = Scratch::new("test.bin");
        std::fs::write(&scratch.0, b"x").unwrap();
        let folder = scratch.0.parent().unwrap().to_owned();
        assert!(folder.file_name().unwrap().to_str().unwrap().starts_with(RUN_PREFIX), "{}", folder.display());
        // Other processes' leftovers may be swept meanwhile (tests run side by side share
        // the root); this process's folder is locked, never swept.
        sweep(folder.parent().unwrap());
        assert!(scratch.0.exists(), "this process's scratch stays while it runs");
        let path = scratch.0.clone();
        drop(scratch);
        assert!(!path.exists());
    }
}
