//! Where the logs of llama.cpp, ggml and mtmd go: a user callback, stderr, or nowhere.
//!
//! One trampoline is installed for all three once, at backend initialisation; it reads the
//! current configuration on every message. It also keeps the error lines printed during a load
//! on the loading thread, so that a failed load can say why.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::io::Write;
use std::os::raw::{c_char, c_void};
use std::sync::RwLock;

use llama_cpp_sys_2 as sys;

/// Log levels, as ggml numbers them. A message reaches the sink when its level is at least the
/// configured minimum; `MM_LOG_OFF` as minimum silences everything.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_log_level {
    MM_LOG_DEBUG = 1,
    MM_LOG_INFO = 2,
    MM_LOG_WARN = 3,
    MM_LOG_ERROR = 4,
    MM_LOG_OFF = 5,
}

/// Receives one log message: `user_data` as given to `mm_log_set`, the level (an
/// `mm_log_level`), and the text as llama.cpp printed it (UTF-8, NUL-terminated, often ending in
/// a newline; valid only during the call). Called on whichever thread logs: it must be
/// thread-safe and must not call back into mm-session.
pub type mm_log_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

#[derive(Clone, Copy)]
struct Sink {
    min_level: i32,
    callback: mm_log_callback,
    user_data: *mut c_void,
}

// SAFETY: the user data is only handed back to the user's callback, which the API documents as
// called from any thread.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

static SINK: RwLock<Sink> = RwLock::new(Sink {
    min_level: mm_log_level::MM_LOG_WARN as i32,
    callback: None,
    user_data: std::ptr::null_mut(),
});

thread_local! {
    /// ggml sends continuations (level CONT) of the previous message: they take its level.
    static LAST_LEVEL: Cell<i32> = const { Cell::new(mm_log_level::MM_LOG_INFO as i32) };
    /// Error and warning lines logged on this thread while a load is being watched.
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets the minimum level and the callback (`None`: stderr).
pub fn configure(min_level: i32, callback: mm_log_callback, user_data: *mut c_void) {
    let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
    *sink = Sink { min_level, callback, user_data };
}

/// Installs the trampoline for llama.cpp, ggml and mtmd (called once by `backend::init`).
pub fn install() {
    unsafe {
        sys::llama_log_set(Some(trampoline), std::ptr::null_mut());
        sys::mtmd_helper_log_set(Some(trampoline), std::ptr::null_mut());
    }
}

/// Runs `f` while keeping the warning and error lines logged on this thread; returns them too.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(String::new()));
    let out = f();
    let text = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, text)
}

unsafe extern "C" fn trampoline(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    // A panic must not unwind into C++; a lost log line is the lesser harm.
    let _ = std::panic::catch_unwind(|| {
        if text.is_null() {
            return;
        }
        let mut level = level as i32;
        if level == sys::GGML_LOG_LEVEL_CONT as i32 {
            level = LAST_LEVEL.with(|l| l.get());
        } else {
            LAST_LEVEL.with(|l| l.set(level));
        }
        if level >= mm_log_level::MM_LOG_WARN as i32 {
            let _ = CAPTURE.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    if let Some(buf) = c.as_mut() {
                        buf.push_str(&CStr::from_ptr(text).to_string_lossy());
                    }
                }
            });
        }
        let sink = *SINK.read().unwrap_or_else(|e| e.into_inner());
        if level < sink.min_level || sink.min_level >= mm_log_level::MM_LOG_OFF as i32 {
            return;
        }
        match sink.callback {
            Some(cb) => cb(sink.user_data, level, text),
            None => {
                let _ = std::io::stderr().write_all(CStr::from_ptr(text).to_bytes());
            }
        }
    });
}

/// The last lines of captured log text, on one line: the reason a load or step failed.
pub fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        "no reason was logged".into()
    } else {
        lines[lines.len().saturating_sub(3)..].join("; ")
    }
}
