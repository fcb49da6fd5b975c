//! Where the logs of llama.cpp, ggml and mtmd go: a sink the embedding sets, stderr, or nowhere.
//!
//! One trampoline is installed for all three once, at backend initialisation
//! (`llama/log_hook.rs`); it passes each message to `route`, which reads the current
//! configuration on every message. It also keeps the warning and error lines printed on
//! a thread while a step is watched ([`capture`]), so that a failed load or step can say why.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::io::Write;
use std::sync::{Arc, RwLock};

use crate::util::abort::{AbortState, StepAbort};

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
    static CALL: RefCell<Option<Arc<AbortState>>> = const { RefCell::new(None) };
    /// The cancel state of the shared step this thread evaluates, while it does.
    static STEP: RefCell<Option<Arc<StepAbort>>> = const { RefCell::new(None) };
}

/// Runs a call that `abort` can cancel: while it runs, the messages llama.cpp logs on this
/// thread after a cancel (a failed graph computation, a failed evaluation) are only debug messages,
/// since stopping was what the caller asked for.
pub(crate) fn in_call<T>(abort: &Arc<AbortState>, f: impl FnOnce() -> T) -> T {
    let outer = CALL.with(|c| c.replace(Some(abort.clone())));
    let out = f();
    CALL.with(|c| *c.borrow_mut() = outer);
    out
}

/// Runs a shared step (on a group's thread, which has no call of its own) that `abort` can
/// stop: as [`in_call`], the messages llama.cpp logs once every call of the step was cancelled
/// are only debug messages.
pub(crate) fn in_step<T>(abort: &Arc<StepAbort>, f: impl FnOnce() -> T) -> T {
    let outer = STEP.with(|c| c.replace(Some(abort.clone())));
    let out = f();
    STEP.with(|c| *c.borrow_mut() = outer);
    out
}

/// Whether the call, or the shared step, running on this thread was cancelled.
fn call_cancelled() -> bool {
    let call =
        CALL.try_with(|c| c.try_borrow().is_ok_and(|a| a.as_ref().is_some_and(|a| a.is_cancelled()))).unwrap_or(false);
    call || STEP
        .try_with(|c| c.try_borrow().is_ok_and(|a| a.as_ref().is_some_and(|a| a.is_cancelled())))
        .unwrap_or(false)
}

/// Logs a message of the library's own through the same route as llama.cpp's.
pub(crate) fn emit(level: LogLevel, message: &str) {
    if let Ok(text) = std::ffi::CString::new(format!("mm-session: {message}\n")) {
        route(Some(level as i32), &text);
    }
}

/// Sends messages of `min_level` and above to `sink` (`None`: stderr); `min_level` `None`
/// silences everything. The default is warnings and errors to stderr.
pub fn configure(min_level: Option<LogLevel>, sink: Option<LogSink>) {
    *CONFIG.write().unwrap_or_else(|e| e.into_inner()) = Config { min_level, sink };
}

/// Runs `f` while keeping the warning and error lines logged on this thread; returns them too.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(String::new()));
    let out = f();
    let text = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, text)
}

/// Sends one message of llama.cpp, ggml or mtmd (or of the library) where the configuration
/// says, at ggml's `level`; `None`: a continuation of the previous message on this thread.
pub(crate) fn route(level: Option<i32>, text: &CStr) {
    let level = match level {
        None => LAST_LEVEL.with(Cell::get),
        Some(level) => {
            LAST_LEVEL.with(|l| l.set(level));
            level
        }
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
