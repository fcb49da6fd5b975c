//! What the library found out about a file, remembered for the process while the file does not
//! change: a model's checks and fingerprint (`model/checked.rs`), an image file's content id
//! (`media/bitmap.rs`). A file is known by its device, inode, size, and modification and change
//! times.
//!
//! Why this is safe: a file's change time is set by the kernel on every write, truncation,
//! rename over it or change of its metadata, and cannot be set from user space. Only files whose
//! change time is at least [`SETTLED`] old are remembered, so that a write in the same clock
//! tick as the reading (file times follow the kernel's coarse clock) cannot go unseen: any later
//! change gives a newer time. A file replaced between a check and llama.cpp's own read of it is
//! the same race whether or not the check was remembered.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How old a file's last change must be for what was found about it to be remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// A file as the kernel describes it: any change to its contents changes this.
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(m: &Metadata) -> Self {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether the file's last change is at least [`SETTLED`] in the past.
    fn settled(&self) -> bool {
        let (secs, nanos) = self.ctime;
        let changed = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64) + Duration::from_nanos(nanos.max(0) as u64);
        SystemTime::now().duration_since(changed).is_ok_and(|age| age >= SETTLED)
    }
}

/// Up to `N` files and what was found about each (the oldest is forgotten first).
pub struct FileMemo<T, const N: usize>(Mutex<Vec<(Identity, T)>>);

impl<T: Clone, const N: usize> FileMemo<T, N> {
    pub const fn new() -> Self {
        FileMemo(Mutex::new(Vec::new()))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<(Identity, T)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was found about the file `m` describes, if it has not changed since.
    pub fn get(&self, m: &Metadata) -> Option<T> {
        let id = Identity::of(m);
        self.entries().iter().find(|(known, _)| *known == id).map(|(_, v)| v.clone())
    }

    /// Remembers `value` for the file `m` describes (`m` taken before the file was read), unless
    /// it changed too recently.
    pub fn put(&self, m: &Metadata, value: T) {
        let id = Identity::of(m);
        if !id.settled() {
            return;
        }
        let mut entries = self.entries();
        entries.retain(|(known, _)| *known != id);
        if entries.len() == N {
            entries.remove(0);
        }
        entries.push((id, value));
    }
}
