//! Owning wrappers of llama.cpp and mtmd objects: each frees its object exactly once, in `Drop`.
//!
//! The wrappers hold raw pointers and add no checks of their own; `session.rs` decides the order
//! in which they are made and dropped.

use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

/// A loaded text model (`llama_model_free` on drop).
pub struct Model(NonNull<sys::llama_model>);

impl Model {
    pub fn from_raw(ptr: *mut sys::llama_model) -> Option<Self> {
        NonNull::new(ptr).map(Model)
    }
    pub fn as_ptr(&self) -> *mut sys::llama_model {
        self.0.as_ptr()
    }
    pub fn vocab(&self) -> *const sys::llama_vocab {
        unsafe { sys::llama_model_get_vocab(self.as_ptr()) }
    }
    pub fn n_embd(&self) -> i32 {
        unsafe { sys::llama_model_n_embd_inp(self.as_ptr()) }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::llama_model_free(self.as_ptr()) }
    }
}

/// An inference context over a model: KV cache and compute buffers (`llama_free` on drop).
pub struct Context(NonNull<sys::llama_context>);

impl Context {
    pub fn from_raw(ptr: *mut sys::llama_context) -> Option<Self> {
        NonNull::new(ptr).map(Context)
    }
    pub fn as_ptr(&self) -> *mut sys::llama_context {
        self.0.as_ptr()
    }
    pub fn n_ctx(&self) -> u32 {
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }
    pub fn n_batch(&self) -> u32 {
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }
    /// Empties the KV cache.
    pub fn clear_memory(&self) {
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.as_ptr()), true) }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        unsafe { sys::llama_free(self.as_ptr()) }
    }
}

/// A projector (mtmd context: vision and/or audio encoder) bound to a model (`mtmd_free` on drop).
pub struct Projector(NonNull<sys::mtmd_context>);

impl Projector {
    pub fn from_raw(ptr: *mut sys::mtmd_context) -> Option<Self> {
        NonNull::new(ptr).map(Projector)
    }
    pub fn as_ptr(&self) -> *mut sys::mtmd_context {
        self.0.as_ptr()
    }
    pub fn supports_vision(&self) -> bool {
        unsafe { sys::mtmd_support_vision(self.as_ptr()) }
    }
    pub fn supports_audio(&self) -> bool {
        unsafe { sys::mtmd_support_audio(self.as_ptr()) }
    }
    /// The audio encoder's sample rate in Hz; 0 without one.
    pub fn audio_sample_rate(&self) -> u32 {
        unsafe { sys::mtmd_get_audio_sample_rate(self.as_ptr()) }.max(0) as u32
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        unsafe { sys::mtmd_free(self.as_ptr()) }
    }
}

/// Decoded media (image or audio samples) ready to tokenize (`mtmd_bitmap_free` on drop).
pub struct Bitmap(NonNull<sys::mtmd_bitmap>);

impl Bitmap {
    pub fn from_raw(ptr: *mut sys::mtmd_bitmap) -> Option<Self> {
        NonNull::new(ptr).map(Bitmap)
    }
    /// Takes the bitmap out of an mtmd helper result and frees the video context that comes
    /// with it (only videos have one; media items here are images and audio).
    pub fn from_helper(w: sys::mtmd_helper_bitmap_wrapper) -> Option<Self> {
        if !w.video_ctx.is_null() {
            unsafe { sys::mtmd_helper_video_free(w.video_ctx) };
        }
        Self::from_raw(w.bitmap)
    }
    pub fn as_ptr(&self) -> *const sys::mtmd_bitmap {
        self.0.as_ptr()
    }
}

impl Drop for Bitmap {
    fn drop(&mut self) {
        unsafe { sys::mtmd_bitmap_free(self.0.as_ptr()) }
    }
}

/// A tokenized multimodal prompt: text and media chunks (`mtmd_input_chunks_free` on drop).
pub struct Chunks(NonNull<sys::mtmd_input_chunks>);

impl Chunks {
    pub fn new() -> Option<Self> {
        NonNull::new(unsafe { sys::mtmd_input_chunks_init() }).map(Chunks)
    }
    pub fn as_ptr(&self) -> *mut sys::mtmd_input_chunks {
        self.0.as_ptr()
    }
    pub fn len(&self) -> usize {
        unsafe { sys::mtmd_input_chunks_size(self.as_ptr()) }
    }
    pub fn get(&self, i: usize) -> *const sys::mtmd_input_chunk {
        unsafe { sys::mtmd_input_chunks_get(self.as_ptr(), i) }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        unsafe { sys::mtmd_input_chunks_free(self.as_ptr()) }
    }
}

/// A sampler chain (`llama_sampler_free` on drop; it frees the samplers added to it).
pub struct Sampler(NonNull<sys::llama_sampler>);

impl Sampler {
    pub fn chain() -> Self {
        let params = unsafe { sys::llama_sampler_chain_default_params() };
        let ptr = unsafe { sys::llama_sampler_chain_init(params) };
        Sampler(NonNull::new(ptr).expect("llama_sampler_chain_init returned NULL"))
    }
    /// Adds a sampler the chain then owns.
    pub fn add(&mut self, s: *mut sys::llama_sampler) {
        assert!(!s.is_null(), "a llama sampler constructor returned NULL");
        unsafe { sys::llama_sampler_chain_add(self.0.as_ptr(), s) }
    }
    /// Samples a token from `logits` (one per vocabulary entry) and records it in the chain's
    /// state, as `llama_sampler_sample` does; `scratch` is reused between calls.
    pub fn sample_from(&mut self, logits: &[f32], scratch: &mut Vec<sys::llama_token_data>) -> crate::error::Result<sys::llama_token> {
        scratch.clear();
        scratch.extend(logits.iter().enumerate().map(|(id, &logit)| sys::llama_token_data { id: id as sys::llama_token, logit, p: 0.0 }));
        let mut candidates = sys::llama_token_data_array { data: scratch.as_mut_ptr(), size: scratch.len(), selected: -1, sorted: false };
        match unsafe { crate::guard::mm_guard_sample(self.0.as_ptr(), &mut candidates) } {
            -1 => crate::error::fail(crate::error::mm_status::MM_ERR_EVAL, format!("sampling failed: {}", crate::guard::what())),
            -2 => crate::error::fail(crate::error::mm_status::MM_ERR_EVAL, "the grammar allows no next token (no token of the vocabulary continues it)"),
            token => Ok(token),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        unsafe { sys::llama_sampler_free(self.0.as_ptr()) }
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

impl TokenBatch {
    pub fn new(capacity: usize) -> Self {
        let mut seq_zero = vec![0; capacity];
        let seq_ids = seq_zero.iter_mut().map(|s| s as *mut sys::llama_seq_id).collect();
        TokenBatch { tokens: vec![0; capacity], pos: vec![0; capacity], n_seq_id: vec![1; capacity], seq_ids, seq_zero, logits: vec![0; capacity] }
    }

    /// Refills the batch with `tokens` at positions `first_pos..`; only the last one gets
    /// logits, and only if `logits_last`. The result borrows the batch's arrays.
    pub fn fill(&mut self, tokens: &[sys::llama_token], first_pos: i32, logits_last: bool) -> sys::llama_batch {
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
