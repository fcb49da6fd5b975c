//! Process-wide calls: version, errors, status names, live-session count, logging, strings.

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::sync::Arc;

use mm_core::LogLevel;

use crate::boundary::{boundary, boundary_value, last_error_ptr};
use crate::status::{fail, mm_status, Result};

/// The major version of this header. Releases with another major version are incompatible.
pub const MM_VERSION_MAJOR: u32 = 0;
/// The minor version of this header. While the major version is 0, a new minor version may
/// change the ABI (and the library's soname says so).
pub const MM_VERSION_MINOR: u32 = 3;
/// The patch version of this header.
pub const MM_VERSION_PATCH: u32 = 0;
/// The header's version as one number, `MAJOR * 10000 + MINOR * 100 + PATCH`, to compare with
/// `mm_version_number()` at run time.
pub const MM_VERSION_NUMBER: u32 = MM_VERSION_MAJOR * 10000 + MM_VERSION_MINOR * 100 + MM_VERSION_PATCH;

/// The library version, "MAJOR.MINOR.PATCH". Static string: do not free.
#[no_mangle]
pub extern "C" fn mm_version() -> *const c_char {
    boundary_value("mm_version", c"".as_ptr(), || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

/// What this build runs on, as one line for people and bug reports: the library's version, the
/// CPU it was compiled for (`target-cpu: native` for source builds, which use every instruction
/// set of the building machine, or the baseline of a portable build), and each backend with the
/// features it was compiled with, for example
/// `mm-session 0.1.0; target-cpu: native; backends: CPU (SSE3 SSSE3 AVX AVX2 F16C FMA BMI2 AVX512 ...)`.
/// Static string: do not free. Never NULL ("" only after an internal error).
#[no_mangle]
pub extern "C" fn mm_build_info() -> *const c_char {
    boundary_value("mm_build_info", c"".as_ptr(), || mm_core::build_info().as_ptr())
}

/// The library's version as one number, `MAJOR * 10000 + MINOR * 100 + PATCH`. A program built
/// with this header runs with the library when both have the same major version and, while the
/// major version is 0, the same minor version, and the library's number is at least
/// `MM_VERSION_NUMBER`.
#[no_mangle]
pub extern "C" fn mm_version_number() -> u32 {
    boundary_value("mm_version_number", 0, || MM_VERSION_NUMBER)
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
    boundary_value("mm_status_str", c"unknown status".as_ptr(), || {
        mm_status::from_code(status).map_or(c"unknown status", mm_status::describe).as_ptr()
    })
}

/// The number of sessions that exist now in this process: created and not yet destroyed.
#[no_mangle]
pub extern "C" fn mm_live_sessions() -> usize {
    boundary_value("mm_live_sessions", 0, mm_core::live_sessions)
}

/// The number of text models (each with its projector) loaded now in this process: a session
/// and its forks share one.
#[no_mangle]
pub extern "C" fn mm_loaded_models() -> usize {
    boundary_value("mm_loaded_models", 0, mm_core::loaded_models)
}

/// Log levels for `mm_log_set`. A message reaches the callback when its level is at least the
/// chosen minimum.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_log_level {
    MM_LOG_DEBUG = 1,
    MM_LOG_INFO = 2,
    MM_LOG_WARN = 3,
    MM_LOG_ERROR = 4,
    /// As a minimum level: no messages at all.
    MM_LOG_OFF = 5,
}

/// Receives one log message: `user_data` as given to `mm_log_set`, the level (an
/// `mm_log_level`), and the text as llama.cpp printed it (UTF-8, NUL-terminated, often ending in
/// a newline; valid only during the call). Called on whichever thread logs: it must be
/// thread-safe and must not call back into mm-session.
pub type mm_log_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

/// A C callback and its user data, as a core log sink.
struct CSink {
    callback: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the user data is only handed back to the user's callback, which the API documents as
// called from any thread.
unsafe impl Send for CSink {}
// SAFETY: as above.
unsafe impl Sync for CSink {}

impl CSink {
    fn log(&self, level: LogLevel, text: &CStr) {
        // SAFETY: the caller of `mm_log_set` gave a callback that takes its user data, a level
        // and a NUL-terminated message valid during the call.
        unsafe { (self.callback)(self.user_data, level as i32, text.as_ptr()) }
    }
}

/// Routes the logs of llama.cpp, ggml and mtmd: messages of `min_level` (an `mm_log_level`)
/// and above go to `callback`, or to stderr when `callback` is NULL; `MM_LOG_OFF` silences
/// them. The default is `MM_LOG_WARN` to stderr. `user_data` is passed back untouched and must
/// stay valid until the next `mm_log_set`; the callback may run on any thread at any time.
#[no_mangle]
pub extern "C" fn mm_log_set(min_level: i32, callback: mm_log_callback, user_data: *mut c_void) -> mm_status {
    boundary("mm_log_set", || {
        let level = match min_level {
            x if x == mm_log_level::MM_LOG_DEBUG as i32 => Some(LogLevel::Debug),
            x if x == mm_log_level::MM_LOG_INFO as i32 => Some(LogLevel::Info),
            x if x == mm_log_level::MM_LOG_WARN as i32 => Some(LogLevel::Warn),
            x if x == mm_log_level::MM_LOG_ERROR as i32 => Some(LogLevel::Error),
            x if x == mm_log_level::MM_LOG_OFF as i32 => None,
            x => return fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("min_level {x} is not an mm_log_level")),
        };
        crate::registry::check_process()?;
        mm_core::init();
        let sink = callback.map(|callback| {
            let c = CSink { callback, user_data };
            Arc::new(move |level: LogLevel, text: &CStr| c.log(level, text)) as mm_core::LogSink
        });
        mm_core::log::configure(level, sink);
        Ok(())
    })
}

/// Frees a string the library returned to the caller (such as the text of `mm_session_ask`).
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn mm_string_free(s: *mut c_char) {
    // SAFETY: the caller's contract: NULL or a string from `malloc_string`.
    boundary_value("mm_string_free", (), || unsafe { libc::free(s.cast()) })
}

/// Copies `text` (`what` names it in the error) into memory the caller frees with
/// `mm_string_free`, and writes its address to `*out`.
///
/// # Safety
/// `out` is writable.
pub(crate) unsafe fn hand_out_string(out: *mut *mut c_char, text: &str, what: &str) -> Result<()> {
    let copy = malloc_string(text);
    if copy.is_null() {
        return fail(mm_status::MM_ERR_INTERNAL, format!("out of memory copying the {what} ({} bytes)", text.len()));
    }
    // SAFETY: the caller's contract.
    unsafe { *out = copy };
    Ok(())
}

/// Copies `text` into memory the caller frees with `mm_string_free`; NULL when memory runs out.
fn malloc_string(text: &str) -> *mut c_char {
    // SAFETY: malloc's result is checked; `text.len() + 1` bytes are written into it.
    unsafe {
        let p = libc::malloc(text.len() + 1) as *mut u8;
        if p.is_null() {
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
        *p.add(text.len()) = 0;
        p.cast()
    }
}
