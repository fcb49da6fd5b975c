//! Process-wide calls: version, errors, status names, live-session count, logging, strings.

use std::os::raw::{c_char, c_void};

use crate::error::{last_error_ptr, mm_status, status_str};
use crate::ffi::{boundary, boundary_value};
use crate::log::{self, mm_log_callback, mm_log_level};

/// The library version, "MAJOR.MINOR.PATCH". Static string: do not free.
#[no_mangle]
pub extern "C" fn mm_version() -> *const c_char {
    boundary_value("mm_version", c"".as_ptr(), || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

/// The message of the calling thread's last failed `mm_*` call, naming the function, the file
/// and the cause; "" after a call that succeeded. Never NULL. Owned by the library: valid until
/// the calling thread's next `mm_*` call; copy it to keep it.
#[no_mangle]
pub extern "C" fn mm_last_error() -> *const c_char {
    boundary_value("mm_last_error", c"".as_ptr(), last_error_ptr)
}

/// A short static description of a status code (an `mm_status`; unknown values give
/// "unknown status"). Never NULL; do not free.
#[no_mangle]
pub extern "C" fn mm_status_str(status: i32) -> *const c_char {
    boundary_value("mm_status_str", c"unknown status".as_ptr(), || status_str(status).as_ptr())
}

/// The number of sessions that exist now in this process: created and not yet destroyed.
#[no_mangle]
pub extern "C" fn mm_live_sessions() -> usize {
    boundary_value("mm_live_sessions", 0, crate::session::live_sessions)
}

/// Routes the logs of llama.cpp, ggml and mtmd: messages of `min_level` (an `mm_log_level`)
/// and above go to `callback`, or to stderr when `callback` is NULL; `MM_LOG_OFF` silences
/// them. The default is `MM_LOG_WARN` to stderr. `user_data` is passed back untouched and must
/// stay valid until the next `mm_log_set`; the callback may run on any thread at any time.
#[no_mangle]
pub extern "C" fn mm_log_set(min_level: i32, callback: mm_log_callback, user_data: *mut c_void) -> mm_status {
    boundary("mm_log_set", || {
        if !(mm_log_level::MM_LOG_DEBUG as i32..=mm_log_level::MM_LOG_OFF as i32).contains(&min_level) {
            return crate::error::fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("min_level {min_level} is not an mm_log_level"));
        }
        crate::backend::init();
        log::configure(min_level, callback, user_data);
        Ok(())
    })
}

/// Frees a string the library returned to the caller (such as the text of `mm_session_ask`).
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn mm_string_free(s: *mut c_char) {
    boundary_value("mm_string_free", (), || libc::free(s.cast()))
}

/// Copies `text` into memory the caller frees with `mm_string_free`.
pub fn malloc_string(text: &str) -> *mut c_char {
    unsafe {
        let p = libc::malloc(text.len() + 1) as *mut u8;
        assert!(!p.is_null(), "out of memory copying {} bytes", text.len());
        std::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
        *p.add(text.len()) = 0;
        p.cast()
    }
}
