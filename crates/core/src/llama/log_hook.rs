//! Routes the log messages of llama.cpp, ggml and mtmd to the library's log ([`crate::util::log`]).

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

use llama_cpp_sys_2 as sys;

use crate::util::log;

/// Installs the trampoline for llama.cpp, ggml and mtmd (called once by `backend::init`).
pub(super) fn install() {
    // SAFETY: the trampoline is a plain function that lives for the whole process.
    unsafe {
        sys::llama_log_set(Some(trampoline), std::ptr::null_mut());
        sys::mtmd_helper_log_set(Some(trampoline), std::ptr::null_mut());
    }
}

unsafe extern "C" fn trampoline(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated message, valid during the call.
    let text = unsafe { CStr::from_ptr(text) };
    // ggml sends continuations (level CONT) of the previous message.
    let level = (level != sys::GGML_LOG_LEVEL_CONT).then_some(level as i32);
    // A panic must not unwind into C++; a lost log line is the lesser harm.
    let _ = std::panic::catch_unwind(|| log::route(level, text));
}
