//! Checks of paths the caller names (models, media, state files) before anything reads them.

use std::path::Path;

use crate::util::error::{fail, ErrorKind::*, Result};

/// Checks that `path` is a readable regular file (`what` names it in messages).
pub fn check_regular_file(path: &Path, what: &str) -> Result<()> {
    regular_file(path, what).map(drop)
}

/// The metadata of `path`, which must be a regular file (`what` names it in messages).
pub fn regular_file(path: &Path, what: &str) -> Result<std::fs::Metadata> {
    if path.as_os_str().is_empty() {
        return fail(InvalidArgument, format!("{what}: the path is empty"));
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fail(FileNotFound, format!("{what} {}: no such file", path.display()))
        }
        Err(e) => fail(FileUnreadable, format!("{what} {}: {e}", path.display())),
        Ok(m) if m.is_dir() => fail(NotAFile, format!("{what} {}: is a directory, not a file", path.display())),
        Ok(m) if !m.is_file() => fail(NotAFile, format!("{what} {}: is not a regular file", path.display())),
        Ok(m) => Ok(m),
    }
}

/// What kind of file system object `m` describes, for messages.
fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one whole: a
/// new temporary file in the same directory (created exclusively), flushed, renamed over `path`,
/// then the directory flushed. `path` may be missing or a regular file; a symbolic link is
/// followed to the file it names, which is then replaced; anything else (a directory, FIFO,
/// device, socket, a link to nothing) is refused with `Io` and left untouched.
pub fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    use std::io::Write;
    let io = |m: String| fail(Io, format!("{what} {}: {m}", path.display()));
    if path.as_os_str().is_empty() {
        return fail(InvalidArgument, format!("{what}: the path is empty"));
    }
    let target = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return io(format!("cannot examine it: {e}")),
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(t) => match std::fs::metadata(&t) {
                Ok(tm) if tm.is_file() => t,
                Ok(tm) => {
                    return io(format!(
                        "is a symbolic link to {}, which is {}; not replaced",
                        t.display(),
                        kind_of(&tm)
                    ))
                }
                Err(e) => return io(format!("is a symbolic link to {}: {e}", t.display())),
            },
            Err(_) => return io("is a symbolic link to nothing; not replaced".into()),
        },
        Ok(m) if !m.is_file() => return io(format!("is {}, not a regular file; not replaced", kind_of(&m))),
        Ok(_) => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return io(format!("cannot create a temporary file in {}: {e}", dir.display())),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", tmp.display()))
        .and_then(|_| std::fs::rename(&tmp, &target).map_err(|e| format!("renaming {} over it: {e}", tmp.display())));
    if let Err(m) = written {
        let _ = std::fs::remove_file(&tmp);
        return io(m);
    }
    // The rename is durable once the directory is flushed.
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .or_else(|e| io(format!("flushing directory {}: {e}", dir.display())))
}

/// Reads a whole file; running out of memory is an error, not an abort.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::OutOfMemory, format!("no memory for {len} bytes")))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
