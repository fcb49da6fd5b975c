//! Saving and restoring a session's conversation: its KV cache (its sequence of the context, as
//! llama.cpp saves one sequence: the same layout for a session of its own and for one that
//! decodes together with others) and the record of which tokens and media it holds, in one
//! file that names the model it belongs to.
//!
//! Layout (little-endian): magic `MMSTATE\0`, version u32, fingerprint (u32 length + bytes),
//! item count u32, items (tag u8: 0 = token i32; 1 = media: id as u32 length + bytes, n_pos
//! i32), llama.cpp's sequence state (u64 length + bytes), then the SHA-256 of all before it.

use std::path::Path;

use mm_gguf::bytes::{Reader, Short};

use crate::session::cache::Item;
use crate::session::Session;
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::files::{check_regular_file, write_atomically};
use crate::util::hash;

const MAGIC: &[u8; 8] = b"MMSTATE\0";
/// Version 2: SHA-256 checksum, fingerprints from the model files' contents.
const VERSION: u32 = 2;
const CHECKSUM: usize = 32;

const TAG_TOKEN: u8 = 0;
const TAG_MEDIA: u8 = 1;

impl Session {
    /// Writes the conversation to `path` (see [`crate::util::files::write_atomically`] for what
    /// happens to an existing file).
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        let fp = self.fingerprint();
        out.extend_from_slice(&(fp.len() as u32).to_le_bytes());
        out.extend_from_slice(fp.as_bytes());
        let items = self.cache().items();
        out.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for item in items {
            match item {
                Item::Token(t) => {
                    out.push(TAG_TOKEN);
                    out.extend_from_slice(&t.to_le_bytes());
                }
                Item::Media { id, n_pos } => {
                    out.push(TAG_MEDIA);
                    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
                    out.extend_from_slice(id.as_bytes());
                    out.extend_from_slice(&n_pos.to_le_bytes());
                }
            }
        }
        let state = self.member.state()?;
        self.loaded().check_remote()?;
        if state.is_empty() && !items.is_empty() {
            return fail(
                Internal,
                format!(
                    "state file {}: llama.cpp returned no KV cache to save: {}",
                    path.display(),
                    crate::llama::guard::what()
                ),
            );
        }
        out.extend_from_slice(&(state.len() as u64).to_le_bytes());
        out.extend_from_slice(&state);
        out.extend_from_slice(&hash::sha256(&out));
        write_atomically(path, &out, "state file")
    }

    /// Replaces the conversation with one saved by [`Session::save_state`]. A file of another
    /// model or projector, or a truncated or corrupt one, leaves the session as it was.
    pub fn load_state(&mut self, path: &Path) -> Result<()> {
        check_regular_file(path, "state file")?;
        let bytes = crate::util::files::read_file(path)
            .or_else(|e| fail(FileUnreadable, format!("state file {}: {e}", path.display())))?;
        let what = format!("state file {}", path.display());
        if bytes.len() < MAGIC.len() + CHECKSUM || &bytes[..MAGIC.len()] != MAGIC {
            return fail(StateCorrupt, format!("{what}: not an mm-session state file"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if hash::sha256(body) != sum {
            return fail(StateCorrupt, format!("{what}: checksum mismatch (truncated or damaged)"));
        }
        let corrupt = |s: Short| Error::new(StateCorrupt, format!("{what}: truncated inside {}", s.what));
        let mut r = Reader::new(&body[MAGIC.len()..]);
        let version = r.u32("the version").map_err(corrupt)?;
        if version != VERSION {
            return fail(StateCorrupt, format!("{what}: version {version}, this library reads version {VERSION}"));
        }
        let saved_for = string(&mut r, &what)?;
        let ours = self.fingerprint();
        if saved_for != ours {
            return fail(
                StateMismatch,
                format!("{what}: saved for the model files \"{saved_for}\", but this session's are \"{ours}\""),
            );
        }
        let n_items = r.u32("the item count").map_err(corrupt)? as usize;
        let mut items = Vec::with_capacity(n_items.min(r.remaining() / 5));
        for _ in 0..n_items {
            match r.u8("an item").map_err(corrupt)? {
                TAG_TOKEN => items.push(Item::Token(r.i32("a token").map_err(corrupt)?)),
                TAG_MEDIA => {
                    let id = string(&mut r, &what)?;
                    let n_pos = r.i32("a media item").map_err(corrupt)?;
                    if n_pos < 1 {
                        return fail(StateCorrupt, format!("{what}: media item of {n_pos} positions"));
                    }
                    items.push(Item::Media { id, n_pos });
                }
                tag => return fail(StateCorrupt, format!("{what}: unknown item tag {tag}")),
            }
        }
        let n_pos: i64 = items.iter().map(|i| i.n_pos() as i64).sum();
        let n_ctx = self.n_ctx() as i64;
        if n_pos >= n_ctx {
            return fail(
                StateMismatch,
                format!("{what}: the conversation takes {n_pos} positions, the context holds {n_ctx}"),
            );
        }
        let state_len = r.u64("the KV cache length").map_err(corrupt)?;
        let state = r.take(state_len, "the KV cache").map_err(corrupt)?;
        if r.remaining() > 0 {
            return fail(StateCorrupt, format!("{what}: {} unexpected bytes after the state", r.remaining()));
        }

        self.abort.begin_call();
        let _lease = self.lease()?;
        let previous = self.member.state()?;
        if !self.member.set_state(state) {
            let restored = self.member.set_state(&previous);
            assert!(restored, "llama.cpp refused to restore the state it had just saved");
            return fail(StateCorrupt, format!("{what}: llama.cpp refused the saved KV cache"));
        }
        self.loaded().check_remote()?;
        self.cache_mut().restore(items);
        Ok(())
    }
}

/// A u32-length-prefixed UTF-8 string.
fn string(r: &mut Reader, what: &str) -> Result<String> {
    let n = r
        .u32("a string length")
        .map_err(|s| Error::new(StateCorrupt, format!("{what}: truncated inside {}", s.what)))?;
    let bytes = r
        .take(n as u64, "a string")
        .map_err(|s| Error::new(StateCorrupt, format!("{what}: truncated inside {}", s.what)))?;
    String::from_utf8(bytes.to_vec()).or_else(|_| fail(StateCorrupt, format!("{what}: a string is not UTF-8")))
}
