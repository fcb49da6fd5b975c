//! Where the logs of llama.cpp, ggml and mtmd go: a sink the embedding sets, stderr, or nowhere.
//!
//! One trampoline is installed for all three once, at backend initialisation; it reads the
//! current configuration on every message. It also keeps the warning and error lines printed on
//! a thread while a step is watched ([`capture`]), so that a failed load or step can say why.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::io::Write;
use std::os::raw::{c_char, c_void};
use std::sync::{Arc, RwLock};

use llama_cpp_sys_2 as sys;

use crate::util::abort::AbortState;

/// Log levels, numbered as ggml numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

impl LogLevel {
    fn from_ggml(level: i32) -> LogLevel {
        match level {
            l if l <= LogLevel::Debug as i32 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }
}

/// Receives one log message (as llama.cpp printed it, often ending in a newline), on whichever
/// thread logs.
pub type LogSink = Arc<dyn Fn(LogLevel, &CStr) + Send + Sync>;

struct Config {
    /// `None`: silent.
    min_level: Option<LogLevel>,
    /// `None`: stderr.
    sink: Option<LogSink>,
}

static CONFIG: RwLock<Config> = RwLock::new(Config { min_level: Some(LogLevel::Warn), sink: None });

thread_local! {
    /// ggml sends continuations (level CONT) of the previous message: they take its level.
    static LAST_LEVEL: Cell<i32> = const { Cell::new(LogLevel::Info as i32) };
    /// Warning and error lines logged on this thread while a step is being watched.
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The cancel state of the call running on this thread, while one runs.
    static CALL: Cell<Option<*const AbortState>> = const { Cell::new(None) };
}

/// Runs a call that `abort` can cancel: while it runs, the messages llama.cpp logs on this
/// thread after a cancel (a failed graph computation, a failed decode) are only debug messages,
/// since stopping was what the caller asked for.
pub(crate) fn in_call<T>(abort: &AbortState, f: impl FnOnce() -> T) -> T {
    let outer = CALL.with(|c| c.replace(Some(abort as *const AbortState)));
    let out = f();
    CALL.with(|c| c.set(outer));
    out
}

/// Whether the call running on this thread was cancelled.
fn call_cancelled() -> bool {
    // SAFETY: the pointer is set by `in_call` only while the state it points to is borrowed
    // there, on this thread.
    CALL.with(|c| c.get().is_some_and(|a| unsafe { (*a).is_cancelled() }))
}

/// Logs a message of the library's own through the same route as llama.cpp's.
pub(crate) fn emit(level: LogLevel, message: &str) {
    if let Ok(text) = std::ffi::CString::new(format!("mm-session: {message}\n")) {
        route(level as i32, &text);
    }
}

/// Sends messages of `min_level` and above to `sink` (`None`: stderr); `min_level` `None`
/// silences everything. The default is warnings and errors to stderr.
pub fn configure(min_level: Option<LogLevel>, sink: Option<LogSink>) {
    *CONFIG.write().unwrap_or_else(|e| e.into_inner()) = Config { min_level, sink };
}

/// Installs the trampoline for llama.cpp, ggml and mtmd (called once by `backend::init`).
pub(crate) fn install() {
    // SAFETY: the trampoline is a plain function that lives for the whole process.
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
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated message, valid during the call.
    let text = unsafe { CStr::from_ptr(text) };
    // A panic must not unwind into C++; a lost log line is the lesser harm.
    let _ = std::panic::catch_unwind(|| route(level as i32, text));
}

fn route(level: i32, text: &CStr) {
    let level = if level == sys::GGML_LOG_LEVEL_CONT as i32 {
        LAST_LEVEL.with(Cell::get)
    } else {
        LAST_LEVEL.with(|l| l.set(level));
        level
    };
    let mut level = LogLevel::from_ggml(level);
    if level >= LogLevel::Warn && call_cancelled() {
        level = LogLevel::Debug;
    }
    if level >= LogLevel::Warn {
        let _ = CAPTURE.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                if let Some(buf) = c.as_mut() {
                    buf.push_str(&text.to_string_lossy());
                }
            }
        });
    }
    let sink = {
        let config = CONFIG.read().unwrap_or_else(|e| e.into_inner());
        match config.min_level {
            Some(min) if level >= min => config.sink.clone(),
            _ => return,
        }
    };
    match sink {
        Some(sink) => sink(level, text),
        None => {
            let _ = std::io::stderr().write_all(text.to_bytes());
        }
    }
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
