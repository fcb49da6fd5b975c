//! An inference context (KV cache and compute buffers) and the batches it evaluates.

use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{self, check, THREW};
use crate::util::error::{fail, ErrorKind, Result};

/// [`Context::eval`] results: `llama_decode`'s codes (llama.h).
pub const EVAL_OK: i32 = 0;
/// No KV cache slot for the batch.
pub const EVAL_NO_SLOT: i32 = 1;
/// The abort callback stopped it.
pub const EVAL_ABORTED: i32 = 2;

/// An inference context over a model: KV cache and compute buffers (`llama_free` on drop).
pub struct Context(NonNull<sys::llama_context>);

// SAFETY: a llama.cpp context may be used from any thread as long as one thread at a time uses
// it: `Context` is not `Sync`, so only its owner uses it (the C layer also locks each session).
unsafe impl Send for Context {}

impl Context {
    pub(super) fn from_raw(ptr: *mut sys::llama_context) -> Option<Self> {
        NonNull::new(ptr).map(Context)
    }
    pub(super) fn as_ptr(&self) -> *mut sys::llama_context {
        self.0.as_ptr()
    }
    pub fn n_ctx(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }
    pub fn n_batch(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }
    /// Tokens computed in one graph step.
    pub fn n_ubatch(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_ubatch(self.as_ptr()) }
    }
    /// Empties the KV cache.
    pub fn clear_memory(&self) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.as_ptr()), true) }
    }
    /// Removes positions `from..` of sequence 0 from the KV cache.
    pub fn forget_from(&self, from: i32) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.as_ptr()), 0, from, -1) };
    }

    /// Evaluates `tokens` at positions `first_pos..` of sequence 0 (`llama_decode`; logits for
    /// the last one when `logits_last`); returns llama_decode's code (`EVAL_OK`, ...).
    pub fn eval(
        &self,
        batch: &mut TokenBatch,
        tokens: &[sys::llama_token],
        first_pos: i32,
        logits_last: bool,
    ) -> Result<i32> {
        let batch = batch.fill(tokens, first_pos, logits_last);
        // SAFETY: the batch's arrays live in `batch`, borrowed for the call.
        check(unsafe { guard::mm_guard_decode(self.as_ptr(), batch, THREW) }, "llama_decode")
    }

    /// The logits of the last position that asked for them: one per vocabulary entry.
    pub fn last_logits(&self, n_vocab: usize) -> Result<&[f32]> {
        // SAFETY: the context is alive; -1 asks for the last logits row.
        let ptr = unsafe { sys::llama_get_logits_ith(self.as_ptr(), -1) };
        if ptr.is_null() {
            return fail(ErrorKind::Eval, "llama.cpp produced no logits for the last position");
        }
        // SAFETY: a logits row holds n_vocab floats, valid until the next evaluation (which needs
        // `&mut` access to the session, so not while this borrow lives).
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_vocab) })
    }

    /// The state of sequence 0 (its KV cache), as llama.cpp serialises it.
    pub fn sequence_state(&self) -> Result<Vec<u8>> {
        // SAFETY: the context is alive.
        let size = unsafe { guard::mm_guard_state_size(self.as_ptr()) };
        let mut buf = Vec::new();
        buf.try_reserve_exact(size)
            .or_else(|_| fail(ErrorKind::Internal, format!("no memory for a KV cache state of {size} bytes")))?;
        buf.resize(size, 0);
        // SAFETY: `buf` has `size` writable bytes.
        let written = unsafe { guard::mm_guard_state_get(self.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        buf.truncate(written);
        Ok(buf)
    }

    /// Replaces sequence 0 with `state`; false when llama.cpp refuses it.
    pub fn set_sequence_state(&self, state: &[u8]) -> bool {
        self.forget_from(0);
        // SAFETY: `state` is `state.len()` readable bytes.
        unsafe { guard::mm_guard_state_set(self.as_ptr(), state.as_ptr(), state.len()) != 0 }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_init_from_model and is freed only here.
        unsafe { sys::llama_free(self.as_ptr()) }
    }
}

/// A batch of text tokens with explicit positions in sequence 0. Its arrays are Rust vectors
/// (a handful of allocations, not `llama_batch_init`'s one per token).
pub struct TokenBatch {
    tokens: Vec<sys::llama_token>,
    pos: Vec<sys::llama_pos>,
    n_seq_id: Vec<i32>,
    seq_ids: Vec<*mut sys::llama_seq_id>,
    seq_zero: Vec<sys::llama_seq_id>,
    logits: Vec<i8>,
}

// SAFETY: the raw pointers point into the batch's own vectors.
unsafe impl Send for TokenBatch {}

impl TokenBatch {
    pub fn new(capacity: usize) -> Self {
        let mut seq_zero = vec![0; capacity];
        let seq_ids = seq_zero.iter_mut().map(|s| s as *mut sys::llama_seq_id).collect();
        TokenBatch {
            tokens: vec![0; capacity],
            pos: vec![0; capacity],
            n_seq_id: vec![1; capacity],
            seq_ids,
            seq_zero,
            logits: vec![0; capacity],
        }
    }

    /// Refills the batch with `tokens` at positions `first_pos..`; only the last one gets
    /// logits, and only if `logits_last`. The result borrows the batch's arrays.
    pub(super) fn fill(&mut self, tokens: &[sys::llama_token], first_pos: i32, logits_last: bool) -> sys::llama_batch {
        assert!(tokens.len() <= self.tokens.len(), "batch of {} tokens exceeds {}", tokens.len(), self.tokens.len());
        for (i, &token) in tokens.iter().enumerate() {
            self.tokens[i] = token;
            self.pos[i] = first_pos + i as i32;
            self.logits[i] = (logits_last && i + 1 == tokens.len()) as i8;
        }
        debug_assert!(self.seq_zero.iter().all(|&s| s == 0));
        sys::llama_batch {
            n_tokens: tokens.len() as i32,
            token: self.tokens.as_mut_ptr(),
            embd: std::ptr::null_mut(),
            pos: self.pos.as_mut_ptr(),
            n_seq_id: self.n_seq_id.as_mut_ptr(),
            seq_id: self.seq_ids.as_mut_ptr(),
            logits: self.logits.as_mut_ptr(),
        }
    }
}
