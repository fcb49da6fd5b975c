//! Saving and restoring a session's conversation: the KV cache of sequence 0 and the record of
//! which tokens and media it holds, in one file that names the model it belongs to.
//!
//! Layout (little-endian): magic `MMSTATE\0`, version u32, fingerprint (u32 length + bytes),
//! item count u32, items (tag u8: 0 = token i32; 1 = media: id as u32 length + bytes, n_pos
//! i32), llama.cpp's sequence state (u64 length + bytes), FNV-1a 64 checksum of all before it.

use std::ffi::CStr;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Result};
use crate::gguf_check::check_regular_file;
use crate::guard;
use crate::kv::Item;
use crate::session::Session;

const MAGIC: &[u8; 8] = b"MMSTATE\0";
const VERSION: u32 = 1;

/// What a state file must match: the model's description and sizes, and the projector's.
fn fingerprint(session: &Session) -> String {
    let model = session.model();
    let mut desc = [0u8; 128];
    let n = unsafe { sys::llama_model_desc(model.as_ptr(), desc.as_mut_ptr().cast(), desc.len()) };
    let desc = if n > 0 { unsafe { CStr::from_ptr(desc.as_ptr().cast()) }.to_string_lossy().into_owned() } else { String::new() };
    let projector = match session.projector_source() {
        Some((path, _, _)) => format!("mmproj {} bytes", std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)),
        None => "no mmproj".into(),
    };
    unsafe {
        format!(
            "{desc}; {} params; {} bytes; n_embd {}; n_vocab {}; {projector}",
            sys::llama_model_n_params(model.as_ptr()),
            sys::llama_model_size(model.as_ptr()),
            model.n_embd(),
            sys::llama_vocab_n_tokens(model.vocab())
        )
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
}

fn sequence_state(session: &Session) -> Vec<u8> {
    let ctx = session.context().as_ptr();
    let size = unsafe { guard::mm_guard_state_size(ctx) };
    let mut buf = vec![0u8; size];
    let written = unsafe { guard::mm_guard_state_get(ctx, buf.as_mut_ptr(), buf.len()) };
    buf.truncate(written);
    buf
}

/// Replaces sequence 0 with `state`; false when llama.cpp refuses it.
fn set_sequence_state(session: &Session, state: &[u8]) -> bool {
    let ctx = session.context().as_ptr();
    unsafe {
        sys::llama_memory_seq_rm(sys::llama_get_memory(ctx), 0, -1, -1);
        guard::mm_guard_state_set(ctx, state.as_ptr(), state.len()) != 0
    }
}

pub fn save(session: &Session, path: &Path) -> Result<()> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    let fp = fingerprint(session);
    out.extend_from_slice(&(fp.len() as u32).to_le_bytes());
    out.extend_from_slice(fp.as_bytes());
    let items = session.kv().items();
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        match item {
            Item::Token(t) => {
                out.push(0);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Item::Media { id, n_pos } => {
                out.push(1);
                out.extend_from_slice(&(id.len() as u32).to_le_bytes());
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(&n_pos.to_le_bytes());
            }
        }
    }
    let state = sequence_state(session);
    if state.is_empty() && !items.is_empty() {
        return fail(MM_ERR_INTERNAL, format!("state file {}: llama.cpp returned no KV cache to save: {}", path.display(), guard::what()));
    }
    out.extend_from_slice(&(state.len() as u64).to_le_bytes());
    out.extend_from_slice(&state);
    out.extend_from_slice(&fnv1a(&out).to_le_bytes());
    let tmp = path.with_extension("mmstate-partial");
    std::fs::write(&tmp, &out)
        .and_then(|_| std::fs::rename(&tmp, path))
        .or_else(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(MM_ERR_IO, format!("state file {}: {e}", path.display()))
        })
}

/// Reads fields off the file, failing with `MM_ERR_STATE_CORRUPT` at its end.
struct Reader<'a> {
    bytes: &'a [u8],
    what: String,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return fail(MM_ERR_STATE_CORRUPT, format!("{}: truncated", self.what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let what = self.what.clone();
        String::from_utf8(self.take(n)?.to_vec()).or_else(|_| fail(MM_ERR_STATE_CORRUPT, format!("{what}: a string is not UTF-8")))
    }
}

pub fn load(session: &mut Session, path: &Path) -> Result<()> {
    check_regular_file(path, "state file")?;
    let bytes = std::fs::read(path).or_else(|e| fail(MM_ERR_FILE_UNREADABLE, format!("state file {}: {e}", path.display())))?;
    let what = format!("state file {}", path.display());
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return fail(MM_ERR_STATE_CORRUPT, format!("{what}: not an mm-session state file"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv1a(body).to_le_bytes() != sum {
        return fail(MM_ERR_STATE_CORRUPT, format!("{what}: checksum mismatch (truncated or damaged)"));
    }
    let mut r = Reader { bytes: &body[MAGIC.len()..], what: what.clone() };
    let version = r.u32()?;
    if version != VERSION {
        return fail(MM_ERR_STATE_CORRUPT, format!("{what}: version {version}, this library reads version {VERSION}"));
    }
    let saved_for = r.string()?;
    let ours = fingerprint(session);
    if saved_for != ours {
        return fail(MM_ERR_STATE_MISMATCH, format!("{what}: saved for \"{saved_for}\", but this session is \"{ours}\""));
    }
    let n_items = r.u32()? as usize;
    let mut items = Vec::with_capacity(n_items.min(body.len()));
    for _ in 0..n_items {
        match r.take(1)?[0] {
            0 => items.push(Item::Token(r.i32()?)),
            1 => {
                let id = r.string()?;
                let n_pos = r.i32()?;
                if n_pos < 1 {
                    return fail(MM_ERR_STATE_CORRUPT, format!("{what}: media item of {n_pos} positions"));
                }
                items.push(Item::Media { id, n_pos });
            }
            tag => return fail(MM_ERR_STATE_CORRUPT, format!("{what}: unknown item tag {tag}")),
        }
    }
    let n_pos: i64 = items.iter().map(|i| i.n_pos() as i64).sum();
    let n_ctx = session.context().n_ctx() as i64;
    if n_pos >= n_ctx {
        return fail(MM_ERR_STATE_MISMATCH, format!("{what}: the conversation takes {n_pos} positions, the context holds {n_ctx}"));
    }
    let state_len = r.u64()?;
    let state = r.take(usize::try_from(state_len).unwrap_or(usize::MAX))?;
    if !r.bytes.is_empty() {
        return fail(MM_ERR_STATE_CORRUPT, format!("{what}: {} unexpected bytes after the state", r.bytes.len()));
    }

    let previous = sequence_state(session);
    if !set_sequence_state(session, state) {
        let restored = set_sequence_state(session, &previous);
        assert!(restored, "llama.cpp refused to restore the state it had just saved");
        return fail(MM_ERR_STATE_CORRUPT, format!("{what}: llama.cpp refused the saved KV cache"));
    }
    session.kv_mut().restore(items);
    Ok(())
}
