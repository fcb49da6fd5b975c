//! Calls into llama.cpp and mtmd that can throw C++ exceptions go through the barriers of
//! `shim/guard.cpp`: an exception becomes an error with its message, never an unwind into Rust.

use std::ffi::CStr;
use std::os::raw::c_char;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status, Result};

extern "C" {
    fn mm_guard_what() -> *const c_char;
    pub fn mm_guard_decode(ctx: *mut sys::llama_context, batch: sys::llama_batch, on_error: i32) -> i32;
    pub fn mm_guard_tokenize(vocab: *const sys::llama_vocab, text: *const c_char, len: i32, tokens: *mut sys::llama_token, n_max: i32, add_special: bool, parse_special: bool, on_error: i32) -> i32;
    pub fn mm_guard_token_to_piece(vocab: *const sys::llama_vocab, token: sys::llama_token, buf: *mut c_char, len: i32, on_error: i32) -> i32;
    pub fn mm_guard_chat_apply_template(tmpl: *const c_char, chat: *const sys::llama_chat_message, n: usize, buf: *mut c_char, len: i32, on_error: i32) -> i32;
    pub fn mm_guard_mtmd_tokenize(ctx: *mut sys::mtmd_context, out: *mut sys::mtmd_input_chunks, text: *const sys::mtmd_input_text, bitmaps: *const *const sys::mtmd_bitmap, n: usize, on_error: i32) -> i32;
    pub fn mm_guard_eval_chunk(ctx: *mut sys::mtmd_context, lctx: *mut sys::llama_context, chunk: *const sys::mtmd_input_chunk, n_past: sys::llama_pos, n_batch: i32, logits_last: bool, new_n_past: *mut sys::llama_pos, on_error: i32) -> i32;
    pub fn mm_guard_sampler_init_grammar(vocab: *const sys::llama_vocab, grammar: *const c_char) -> *mut sys::llama_sampler;
    pub fn mm_guard_sample(chain: *mut sys::llama_sampler, candidates: *mut sys::llama_token_data_array) -> sys::llama_token;
    pub fn mm_guard_state_size(ctx: *mut sys::llama_context) -> usize;
    pub fn mm_guard_state_get(ctx: *mut sys::llama_context, dst: *mut u8, size: usize) -> usize;
    pub fn mm_guard_state_set(ctx: *mut sys::llama_context, src: *const u8, size: usize) -> usize;
}

/// The value the barriers return when they caught an exception.
pub(crate) const THREW: i32 = i32::MIN;

/// The message of the last exception a barrier caught on this thread.
pub fn what() -> String {
    unsafe { CStr::from_ptr(mm_guard_what()) }.to_string_lossy().into_owned()
}

/// Turns a barrier's `THREW` into an error naming `call`.
pub fn check(code: i32, call: &str) -> Result<i32> {
    if code == THREW {
        return fail(mm_status::MM_ERR_INTERNAL, format!("{call} threw a C++ exception: {}", what()));
    }
    Ok(code)
}
