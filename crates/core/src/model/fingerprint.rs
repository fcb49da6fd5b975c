//! What identifies a model file's contents for saved states, at a bounded cost: the SHA-256 of
//! its GGUF header (metadata and tensor table) and of a sample of every tensor's data (its
//! first and middle [`SAMPLE`] bytes). Two files with the same architecture and sizes but other
//! weights differ in the samples; a multi-GB model costs its header plus two small reads a
//! tensor, not a read of its weights. Everything is read through one buffer of at most
//! [`CHUNK`] bytes, so a large header (a big vocabulary) leaves nothing of its size on the heap.

use std::os::unix::fs::FileExt;
use std::path::Path;

use mm_gguf::Gguf;

use crate::util::error::{Error, ErrorKind::*, Result};
use crate::util::hash::{Digest256, Hasher};

/// Bytes hashed at the start and in the middle of each tensor.
const SAMPLE: u64 = 256;
/// Bytes read at a time.
const CHUNK: u64 = 64 << 10;

/// The fingerprint of the GGUF file at `path`, whose header `gguf` was read from it.
pub fn of_file(path: &Path, gguf: &Gguf) -> Result<Digest256> {
    let unreadable = |e: std::io::Error| Error::new(FileUnreadable, format!("{}: cannot read it: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; CHUNK.min(gguf.data_start.max(SAMPLE)) as usize];
    let mut hash_range = |from: u64, len: u64| -> std::io::Result<()> {
        let mut at = from;
        while at < from + len {
            let n = (from + len - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(())
    };
    hash_range(0, gguf.data_start).map_err(unreadable)?;
    let mut tensors: Vec<_> = gguf.tensors.values().map(|t| (t.offset, t.bytes)).collect();
    tensors.sort_unstable();
    for (offset, bytes) in tensors {
        for at in [offset, offset + bytes / 2] {
            hash_range(gguf.data_start + at, SAMPLE.min(offset + bytes - at)).map_err(unreadable)?;
        }
    }
    Ok(hasher.finish())
}
