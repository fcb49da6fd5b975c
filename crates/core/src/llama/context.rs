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
    /// Sequences (sessions) the context holds.
    pub fn n_seq(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_seq_max(self.as_ptr()) }
    }
    /// Empties the KV cache, every sequence and every cell (`llama_memory_clear`). Removing a
    /// sequence's positions cannot reach cells a corrupt saved state gave negative positions.
    pub fn clear_memory(&self) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.as_ptr()), true) }
    }
    /// Removes positions `from..` of sequence `seq` from the KV cache (0: all of them).
    pub fn forget_from(&self, seq: i32, from: i32) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.as_ptr()), seq, from, -1) };
    }

    /// Evaluates the batch (`llama_decode`); returns llama_decode's code (`EVAL_OK`, ...).
    pub fn eval(&self, batch: &mut TokenBatch) -> Result<i32> {
        let batch = batch.as_llama();
        // SAFETY: the batch's arrays live in `batch`, borrowed for the call.
        check(unsafe { guard::mm_guard_decode(self.as_ptr(), batch, THREW) }, "llama_decode")
    }

    /// The logits of output `i` of the last evaluation (-1: the last one): one per vocabulary
    /// entry, copied into `out`.
    pub fn copy_logits(&self, i: i32, n_vocab: usize, out: &mut Vec<f32>) -> Result<()> {
        // SAFETY: the context is alive.
        let ptr = unsafe { sys::llama_get_logits_ith(self.as_ptr(), i) };
        if ptr.is_null() {
            return fail(ErrorKind::Eval, "llama.cpp produced no logits for the position");
        }
        // SAFETY: a logits row holds n_vocab floats, valid until the next evaluation, which
        // cannot start while `&self` is borrowed here (the context is used by one thread).
        let row = unsafe { std::slice::from_raw_parts(ptr, n_vocab) };
        out.clear();
        out.extend_from_slice(row);
        Ok(())
    }

    /// The state of sequence `seq` (its part of the KV cache), as llama.cpp serialises it.
    pub fn sequence_state(&self, seq: i32) -> Result<Vec<u8>> {
        // SAFETY: the context is alive.
        let size = unsafe { guard::mm_guard_state_size(self.as_ptr(), seq) };
        let mut buf = Vec::new();
        buf.try_reserve_exact(size)
            .or_else(|_| fail(ErrorKind::Internal, format!("no memory for a KV cache state of {size} bytes")))?;
        buf.resize(size, 0);
        // SAFETY: `buf` has `size` writable bytes.
        let written = unsafe { guard::mm_guard_state_get(self.as_ptr(), buf.as_mut_ptr(), buf.len(), seq) };
        buf.truncate(written);
        Ok(buf)
    }

    /// Replaces sequence `seq` with `state`; false when llama.cpp refuses it.
    pub fn set_sequence_state(&self, seq: i32, state: &[u8]) -> bool {
        self.forget_from(seq, 0);
        // SAFETY: `state` is `state.len()` readable bytes.
        unsafe { guard::mm_guard_state_set(self.as_ptr(), state.as_ptr(), state.len(), seq) != 0 }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_init_from_model and is freed only here.
        unsafe { sys::llama_free(self.as_ptr()) }
    }
}

/// A batch of text tokens, each with its position and sequence. Its arrays are Rust vectors
/// of a fixed capacity (a handful of allocations, not `llama_batch_init`'s one per token).
pub struct TokenBatch {
    len: usize,
    tokens: Vec<sys::llama_token>,
    pos: Vec<sys::llama_pos>,
    n_seq_id: Vec<i32>,
    seq_ids: Vec<*mut sys::llama_seq_id>,
    seq: Vec<sys::llama_seq_id>,
    logits: Vec<i8>,
}

// SAFETY: the raw pointers point into the batch's own vectors, which never reallocate.
unsafe impl Send for TokenBatch {}

impl TokenBatch {
    pub fn new(capacity: usize) -> Self {
        let mut seq = vec![0; capacity];
        let seq_ids = seq.iter_mut().map(|s| s as *mut sys::llama_seq_id).collect();
        TokenBatch {
            len: 0,
            tokens: vec![0; capacity],
            pos: vec![0; capacity],
            n_seq_id: vec![1; capacity],
            seq_ids,
            seq,
            logits: vec![0; capacity],
        }
    }

    pub fn capacity(&self) -> usize {
        self.tokens.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `tokens` of sequence `seq` at positions `first_pos..`; only the last one gets
    /// logits, and only if `logits_last`. Returns the batch index of the last token.
    pub fn push(&mut self, tokens: &[sys::llama_token], first_pos: i32, seq: i32, logits_last: bool) -> usize {
        let start = self.len;
        assert!(
            start + tokens.len() <= self.capacity(),
            "batch of {} tokens exceeds {}",
            start + tokens.len(),
            self.capacity()
        );
        for (i, &token) in tokens.iter().enumerate() {
            let at = start + i;
            self.tokens[at] = token;
            self.pos[at] = first_pos + i as i32;
            self.seq[at] = seq;
            self.logits[at] = (logits_last && i + 1 == tokens.len()) as i8;
        }
        self.len += tokens.len();
        self.len - 1
    }

    /// The batch as llama.cpp takes it, borrowing the batch's arrays.
    fn as_llama(&mut self) -> sys::llama_batch {
        sys::llama_batch {
            n_tokens: self.len as i32,
            token: self.tokens.as_mut_ptr(),
            embd: std::ptr::null_mut(),
            pos: self.pos.as_mut_ptr(),
            n_seq_id: self.n_seq_id.as_mut_ptr(),
            seq_id: self.seq_ids.as_mut_ptr(),
            logits: self.logits.as_mut_ptr(),
        }
    }
}
