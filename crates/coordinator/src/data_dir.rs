//! The data directory: one owner at a time, and a check that says what is wrong with it.
//!
//! Two coordinators on one data directory act on the same sequencers from the same durable state
//! and undo each other's starts and stops. [`DataDirLock`] takes an exclusive OS lock (`flock` on
//! Unix, through [`std::fs::File::try_lock`]) on `DATA_DIR/LOCK` for as long as it lives and writes
//! the holder's PID into the file, so a second instance fails at once with an error naming the
//! file and that PID. The OS drops the lock with the process, so a crash never leaves a stale lock.
//!
//! The lock file is never deleted: a process that deleted it on exit could let a third instance
//! lock a fresh `LOCK` while a second still holds the old (deleted) one. Its content, the PID of
//! the last holder, is only a hint for the error message; the lock itself is what counts.
//!
//! [`check`] is `check-config`'s view of the directory: it exists or can be created, it is a
//! directory, a file can be created in it, and whether a running coordinator holds it.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read as _, Seek as _, Write as _},
    path::{Path, PathBuf},
    sync::Mutex,
};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// What is wrong with a data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The path (or one of its parents) is not a directory.
    #[error(
        "data_dir {dir}: {blocker} is a file, not a directory; point data_dir at a directory (or move \
         the file away)"
    )]
    NotADirectory {
        /// The configured data directory.
        dir: PathBuf,
        /// The path that is not a directory (the data dir itself or a parent).
        blocker: PathBuf,
    },
    /// The directory does not exist and cannot be created.
    #[error("data_dir {dir} does not exist and cannot be created in {parent}: {error}")]
    NotCreatable {
        /// The configured data directory.
        dir: PathBuf,
        /// Its nearest existing parent.
        parent: PathBuf,
        /// Why (not a `#[source]`: its text is already in this message, once).
        error: std::io::Error,
    },
    /// The directory exists but no file can be created in it.
    #[error("data_dir {dir} is a directory but not writable: {error}")]
    NotWritable {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "data_dir {dir} is in use by another op-coordinator ({holder}, which holds the lock on {lock}); \
         stop that one first, or give this one its own data_dir"
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// `PID n`, or why the PID is not known.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {lock}: {error}")]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// The exclusive lock on a data directory, held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// The data directory.
    dir: PathBuf,
    /// The locked file; replaced by [`DataDirLock::renew`] when the directory had to be recreated.
    file: Mutex<File>,
}

impl DataDirLock {
    /// Creates `dir` if missing and locks it, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, DataDirError> {
        create_dir(dir)?;
        let file = lock_file_in(dir)?;
        Ok(Self { dir: dir.to_owned(), file: Mutex::new(file) })
    }

    /// The lock file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// Locks a fresh lock file after the directory vanished and was recreated: the old lock is on
    /// a deleted file that no other instance would look at.
    pub fn renew(&self) -> Result<(), DataDirError> {
        let file = lock_file_in(&self.dir)?;
        // The old file's lock is released when it is replaced; it no longer guards anything.
        *self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = file;
        Ok(())
    }
}

fn create_dir(dir: &Path) -> Result<(), DataDirError> {
    match std::fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) => Err(explain_unusable(dir).unwrap_or_else(|| DataDirError::NotCreatable {
            dir: dir.to_owned(),
            parent: nearest_existing(dir),
            error,
        })),
    }
}

/// Opens and locks `dir/LOCK` and writes this process's PID into it.
fn lock_file_in(dir: &Path) -> Result<File, DataDirError> {
    let lock = dir.join(LOCK_FILE);
    let io = |error| DataDirError::Lock { lock: lock.clone(), error };
    // Not truncated on open: until the lock is ours, the content names the holder.
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(DataDirError::Locked {
                dir: dir.to_owned(),
                lock: lock.clone(),
                holder: holder(&mut file),
            });
        }
        Err(TryLockError::Error(error)) => return Err(io(error)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// `PID n` from the lock file's content, or why it is unknown.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) => match text.trim().parse::<u32>() {
            Ok(pid) => format!("PID {pid}"),
            // The holder locked the file but has not written its PID yet.
            Err(_) => "PID not written yet".to_owned(),
        },
        Err(err) => format!("PID unreadable: {err}"),
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirReport {
    /// The data directory.
    pub dir: PathBuf,
    /// False when `run` will create it.
    pub exists: bool,
    /// A running coordinator holds its lock: `Some(holder)` with `PID n` or why it is unknown.
    pub in_use_by: Option<String>,
}

impl std::fmt::Display for DataDirReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.exists {
            write!(f, "data_dir {}: a writable directory", self.dir.display())?;
        } else {
            write!(
                f,
                "data_dir {}: does not exist yet; run creates it (its parent {} is writable)",
                self.dir.display(),
                nearest_existing(&self.dir).display()
            )?;
        }
        if let Some(holder) = &self.in_use_by {
            write!(f, "; in use by a running op-coordinator ({holder})")?;
        }
        Ok(())
    }
}

/// Checks, without creating anything that stays, that `dir` is a usable data directory: it exists
/// or its nearest existing parent accepts new entries, it is a directory, and a file can be created
/// in it (a probe file, removed again). Also says whether a running coordinator holds it.
pub fn check(dir: &Path) -> Result<DataDirReport, DataDirError> {
    if let Some(problem) = explain_unusable(dir) {
        return Err(problem);
    }
    let exists = dir.is_dir();
    let probed = if exists { dir.to_owned() } else { nearest_existing(dir) };
    if let Err(error) = probe_write(&probed) {
        return Err(if exists {
            DataDirError::NotWritable { dir: dir.to_owned(), error }
        } else {
            DataDirError::NotCreatable { dir: dir.to_owned(), parent: probed, error }
        });
    }
    // A lock the OS cannot query here (some network file systems) is `run`'s to report.
    let in_use_by = lock_holder(dir).ok().flatten();
    Ok(DataDirReport { dir: dir.to_owned(), exists, in_use_by })
}

/// Fails with [`DataDirError::Locked`] when a running coordinator holds `dir`. For the binary,
/// before it binds its listeners: a second instance started from the same config is then told
/// about the data dir, not that its ports are taken. [`DataDirLock::acquire`] remains the check
/// that counts.
pub fn ensure_unlocked(dir: &Path) -> Result<(), DataDirError> {
    match lock_holder(dir) {
        Ok(Some(holder)) => {
            Err(DataDirError::Locked { dir: dir.to_owned(), lock: dir.join(LOCK_FILE), holder })
        }
        // Nobody, or the OS cannot tell: taking the lock will.
        Ok(None) | Err(_) => Ok(()),
    }
}

/// The path that makes `dir` unusable as a directory (itself or a parent being a file), if any.
fn explain_unusable(dir: &Path) -> Option<DataDirError> {
    let mut path = Some(dir);
    while let Some(current) = path {
        if let Ok(meta) = std::fs::metadata(current) {
            return (!meta.is_dir())
                .then(|| DataDirError::NotADirectory { dir: dir.to_owned(), blocker: current.to_owned() });
        }
        path = current.parent();
    }
    None
}

/// The nearest ancestor of `dir` that exists (`.` for a relative path with none).
fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .map(|path| if path.as_os_str().is_empty() { Path::new(".") } else { path })
        .find(|path| path.exists())
        .unwrap_or(Path::new("."))
        .to_owned()
}

/// Creates and removes a probe file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".op-coordinator-probe-{}", std::process::id()));
    OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Who holds the lock of `dir`: `Ok(None)` when nobody does, `Err` when the OS cannot tell. A
/// shared lock is taken and dropped at once: a `run` starting in exactly that instant would be
/// refused, which is harmless for a config check.
fn lock_holder(dir: &Path) -> Result<Option<String>, std::io::Error> {
    let mut file = match File::open(dir.join(LOCK_FILE)) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(Some(holder(&mut file))),
        Err(TryLockError::Error(err)) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_dir_is_refused_naming_the_file_and_the_pid_and_is_free_after_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let err = DataDirLock::acquire(dir.path()).expect_err("second lock").to_string();
        assert!(err.contains(&first.path().display().to_string()), "{err}");
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again after drop");
    }

    #[test]
    fn check_tells_an_existing_dir_a_missing_one_a_file_and_an_uncreatable_one_apart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let report = check(dir.path()).expect("existing dir");
        assert!(report.exists && report.in_use_by.is_none(), "{report}");
        let missing = dir.path().join("a/b");
        let report = check(&missing).expect("creatable");
        assert!(!report.exists && report.to_string().contains("run creates it"), "{report}");
        assert!(!missing.exists(), "the check creates nothing");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").expect("write");
        let err = check(&file.join("sub")).expect_err("under a file").to_string();
        assert!(err.contains("is a file, not a directory"), "{err}");
        let _lock = DataDirLock::acquire(dir.path()).expect("lock");
        let report = check(dir.path()).expect("locked dir");
        assert_eq!(report.in_use_by, Some(format!("PID {}", std::process::id())));
        let err = check(Path::new("/proc/1/nope")).expect_err("in /proc").to_string();
        assert!(err.contains("cannot be created in /proc/1"), "{err}");
    }
}
