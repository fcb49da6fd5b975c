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
    pub fn chunk_type(&self, i: usize) -> sys::mtmd_input_chunk_type {
        unsafe { sys::mtmd_input_chunk_get_type(sys::mtmd_input_chunks_get(self.as_ptr(), i)) }
    }
    /// Positions the chunks take in the KV cache.
    pub fn n_pos(&self) -> i32 {
        unsafe { sys::mtmd_helper_get_n_pos(self.as_ptr()) }
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
    /// Samples from the last output of `ctx` and records the token in the chain's state.
    pub fn sample(&mut self, ctx: &Context) -> sys::llama_token {
        unsafe { sys::llama_sampler_sample(self.0.as_ptr(), ctx.as_ptr(), -1) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        unsafe { sys::llama_sampler_free(self.0.as_ptr()) }
    }
}
