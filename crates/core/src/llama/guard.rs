//! The exception barriers of `shim/guard.cpp`: each calls one llama.cpp, mtmd or llama.cpp
//! `common` function that may throw a C++ exception and turns an exception into an error return
//! plus a message, since an exception unwinding into Rust aborts the process. Only the wrappers
//! in this folder call these; they hand out safe functions that return `Result`.

use std::ffi::CStr;
use std::os::raw::c_char;

use llama_cpp_sys_2 as sys;

use crate::util::error::{fail, ErrorKind, Result};

extern "C" {
    fn mm_guard_what() -> *const c_char;
    pub(crate) fn mm_guard_decode(ctx: *mut sys::llama_context, batch: sys::llama_batch, on_error: i32) -> i32;
    pub(crate) fn mm_guard_tokenize(
        vocab: *const sys::llama_vocab,
        text: *const c_char,
        len: i32,
        tokens: *mut sys::llama_token,
        n_max: i32,
        add_special: bool,
        parse_special: bool,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_token_to_piece(
        vocab: *const sys::llama_vocab,
        token: sys::llama_token,
        buf: *mut c_char,
        len: i32,
        special: bool,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_chat_apply_template(
        tmpl: *const c_char,
        chat: *const sys::llama_chat_message,
        n: usize,
        buf: *mut c_char,
        len: i32,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_mtmd_tokenize_parts(
        ctx: *mut sys::mtmd_context,
        out: *mut sys::mtmd_input_chunks,
        parts: *const *const sys::mtmd_input_part,
        n: usize,
        add_special: bool,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_eval_chunk(
        ctx: *mut sys::mtmd_context,
        lctx: *mut sys::llama_context,
        chunk: *const sys::mtmd_input_chunk,
        n_past: sys::llama_pos,
        seq: sys::llama_seq_id,
        n_batch: i32,
        logits_last: bool,
        new_n_past: *mut sys::llama_pos,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_sampler_init_grammar(
        vocab: *const sys::llama_vocab,
        grammar: *const c_char,
    ) -> *mut sys::llama_sampler;
    pub(crate) fn mm_guard_sampler_init_grammar_lazy(
        vocab: *const sys::llama_vocab,
        grammar: *const c_char,
        patterns: *const *const c_char,
        n_patterns: usize,
        tokens: *const sys::llama_token,
        n_tokens: usize,
    ) -> *mut sys::llama_sampler;
    pub(crate) fn mm_guard_grammar_parse(vocab: *const sys::llama_vocab, grammar: *const c_char) -> i32;
    pub(crate) fn mm_guard_grammar_steps(
        vocab: *const sys::llama_vocab,
        grammar: *const c_char,
        token_chars: i32,
        positions: i32,
        limit: i64,
    ) -> i64;
    pub(crate) fn mm_guard_sample(
        chain: *mut sys::llama_sampler,
        candidates: *mut sys::llama_token_data_array,
    ) -> sys::llama_token;
    pub(crate) fn mm_guard_sampler_accept(
        smpl: *mut sys::llama_sampler,
        tokens: *const sys::llama_token,
        n: usize,
        on_error: i32,
    ) -> i32;
    pub(crate) fn mm_guard_json_schema_to_grammar(schema: *const c_char) -> *mut c_char;
    pub(crate) fn mm_guard_free(p: *mut c_char);
    pub(crate) fn mm_guard_state_size(ctx: *mut sys::llama_context, seq: sys::llama_seq_id) -> usize;
    pub(crate) fn mm_guard_state_get(
        ctx: *mut sys::llama_context,
        dst: *mut u8,
        size: usize,
        seq: sys::llama_seq_id,
    ) -> usize;
    pub(crate) fn mm_guard_state_set(
        ctx: *mut sys::llama_context,
        src: *const u8,
        size: usize,
        seq: sys::llama_seq_id,
    ) -> usize;
    #[cfg(feature = "rpc")]
    pub(crate) fn mm_guard_rpc_add_server(endpoint: *const c_char) -> sys::ggml_backend_reg_t;
    #[cfg(feature = "rpc")]
    pub(crate) fn mm_guard_rpc_start_server(
        endpoint: *const c_char,
        cache_dir: *const c_char,
        n_threads: usize,
        n_devices: usize,
        devices: *mut sys::ggml_backend_dev_t,
        on_error: i32,
    ) -> i32;
}

/// The value the `int32_t` barriers return when they caught an exception.
pub(crate) const THREW: i32 = i32::MIN;

/// What `mm_guard_sample` returns when the chain threw or selected nothing.
pub(crate) const SAMPLE_FAILED: sys::llama_token = -1;
/// What `mm_guard_sample` returns when every token was ruled out (a grammar at a dead end).
pub(crate) const SAMPLE_DEAD_END: sys::llama_token = -2;

/// The message of the last exception a barrier caught on this thread.
pub(crate) fn what() -> String {
    // SAFETY: the shim returns a pointer to its thread-local string, NUL-terminated and valid
    // until the next barrier call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(mm_guard_what()) }.to_string_lossy().into_owned()
}

/// Turns a barrier's `THREW` into an error naming `call`.
pub(crate) fn check(code: i32, call: &str) -> Result<i32> {
    if code == THREW {
        return fail(ErrorKind::Internal, format!("{call} threw a C++ exception: {}", what()));
    }
    Ok(code)
}
