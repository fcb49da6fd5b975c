//! A tokenized multimodal prompt: mtmd's chunks of text tokens and media.

use std::ffi::CStr;
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use crate::llama::model::Token;

/// A tokenized multimodal prompt: text and media chunks (`mtmd_input_chunks_free` on drop).
pub struct Chunks(NonNull<sys::mtmd_input_chunks>);

/// One chunk of a tokenized prompt.
pub enum Chunk<'a> {
    Text(&'a [Token]),
    /// A media item: its id (empty when mtmd gave none), the embeddings it gives and the
    /// positions they take (fewer than the embeddings with M-RoPE).
    Media {
        id: String,
        n_tokens: usize,
        n_pos: i32,
    },
}

impl Chunks {
    pub(super) fn new() -> Option<Self> {
        // SAFETY: a plain constructor; NULL is handled.
        NonNull::new(unsafe { sys::mtmd_input_chunks_init() }).map(Chunks)
    }
    pub(super) fn as_ptr(&self) -> *mut sys::mtmd_input_chunks {
        self.0.as_ptr()
    }
    pub fn len(&self) -> usize {
        // SAFETY: the chunks are alive.
        unsafe { sys::mtmd_input_chunks_size(self.as_ptr()) }
    }
    pub(super) fn get(&self, i: usize) -> *const sys::mtmd_input_chunk {
        assert!(i < self.len(), "chunk {i} of {}", self.len());
        // SAFETY: `i` is in range.
        unsafe { sys::mtmd_input_chunks_get(self.as_ptr(), i) }
    }
    /// Chunk `i`: its text tokens, or its media id, embeddings and positions.
    pub fn chunk(&self, i: usize) -> Chunk<'_> {
        let chunk = self.get(i);
        // SAFETY: the chunk belongs to these chunks and lives as long as they do; the token
        // array and the id are owned by it.
        unsafe {
            if sys::mtmd_input_chunk_get_type(chunk) == sys::MTMD_INPUT_CHUNK_TYPE_TEXT {
                let mut n = 0usize;
                let tokens = sys::mtmd_input_chunk_get_tokens_text(chunk, &mut n);
                Chunk::Text(if n == 0 { &[] } else { std::slice::from_raw_parts(tokens, n) })
            } else {
                let id = sys::mtmd_input_chunk_get_id(chunk);
                let id = if id.is_null() { String::new() } else { CStr::from_ptr(id).to_string_lossy().into_owned() };
                Chunk::Media {
                    id,
                    n_tokens: sys::mtmd_input_chunk_get_n_tokens(chunk),
                    n_pos: sys::mtmd_input_chunk_get_n_pos(chunk),
                }
            }
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        // SAFETY: the pointer came from mtmd_input_chunks_init and is freed only here.
        unsafe { sys::mtmd_input_chunks_free(self.as_ptr()) }
    }
}
