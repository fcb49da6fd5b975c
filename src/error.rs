//! Status codes, the error type of the safe core, and the calling thread's last error message.

use std::cell::RefCell;
use std::ffi::CString;

/// The result of every `mm_*` call that can fail. Codes are never reused for another meaning.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_status {
    /// Success.
    MM_OK = 0,
    /// A required pointer argument was NULL.
    MM_ERR_NULL_ARGUMENT = 1,
    /// An argument is out of range or malformed (the message names it).
    MM_ERR_INVALID_ARGUMENT = 2,
    /// The session handle was never created, or was already destroyed.
    MM_ERR_INVALID_HANDLE = 3,
    /// A file does not exist.
    MM_ERR_FILE_NOT_FOUND = 4,
    /// A path names a directory or something else that is not a regular file.
    MM_ERR_NOT_A_FILE = 5,
    /// A file exists but cannot be read, or is not a GGUF file.
    MM_ERR_FILE_UNREADABLE = 6,
    /// A GGUF file of the wrong kind: a projector given as the text model, or the reverse.
    MM_ERR_WRONG_FILE_KIND = 7,
    /// llama.cpp could not load the text model (the message carries its reason).
    MM_ERR_MODEL_LOAD = 8,
    /// llama.cpp could not create the context (often: not enough memory for the KV cache).
    MM_ERR_CONTEXT_CREATE = 9,
    /// The projector could not be loaded (the message carries the loader's reason).
    MM_ERR_PROJECTOR_LOAD = 10,
    /// The projector's output size differs from the text model's embedding size.
    MM_ERR_PROJECTOR_MISMATCH = 11,
    /// The progress callback asked to stop loading, or the call was cancelled.
    MM_ERR_CANCELLED = 12,
    /// The session cannot do this: media input without a projector, or a media kind the
    /// projector does not support.
    MM_ERR_UNSUPPORTED = 13,
    /// The prompt's markers and the media items differ in number.
    MM_ERR_MEDIA_COUNT = 14,
    /// A media item could not be read or decoded.
    MM_ERR_MEDIA_DECODE = 15,
    /// The request does not fit in the context window.
    MM_ERR_CONTEXT_FULL = 16,
    /// Tokenizing the prompt failed.
    MM_ERR_TOKENIZE = 17,
    /// Encoding media or evaluating the prompt or a generated token failed.
    MM_ERR_EVAL = 18,
    /// A saved state file is truncated, corrupt, or not a state file at all.
    MM_ERR_STATE_CORRUPT = 19,
    /// A saved state file belongs to another model or projector, or does not fit the context.
    MM_ERR_STATE_MISMATCH = 20,
    /// Writing a file failed.
    MM_ERR_IO = 21,
    /// A bug inside mm-session (a caught panic); the message says where. The session that was
    /// in use should be destroyed.
    MM_ERR_INTERNAL = 99,
}

/// A failure of the safe core: a status plus a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: mm_status,
    pub message: String,
}

impl Error {
    pub fn new(status: mm_status, message: impl Into<String>) -> Self {
        Error { status, message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A shorthand for `Err(Error::new(..))`.
pub fn fail<T>(status: mm_status, message: impl Into<String>) -> Result<T> {
    Err(Error::new(status, message))
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the calling thread's last error (interior NULs become spaces).
pub fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Clears the calling thread's last error, as a successful call does.
pub fn clear_last_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::default());
}

/// A pointer to the calling thread's last error; valid until this thread's next `mm_*` call.
pub fn last_error_ptr() -> *const std::os::raw::c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A short static description of a status.
pub fn status_str(status: i32) -> &'static std::ffi::CStr {
    use mm_status::*;
    let s: &'static [u8] = match status {
        x if x == MM_OK as i32 => b"ok\0",
        x if x == MM_ERR_NULL_ARGUMENT as i32 => b"a required pointer argument was NULL\0",
        x if x == MM_ERR_INVALID_ARGUMENT as i32 => b"invalid argument\0",
        x if x == MM_ERR_INVALID_HANDLE as i32 => b"invalid or destroyed session handle\0",
        x if x == MM_ERR_FILE_NOT_FOUND as i32 => b"file not found\0",
        x if x == MM_ERR_NOT_A_FILE as i32 => b"not a regular file\0",
        x if x == MM_ERR_FILE_UNREADABLE as i32 => b"file unreadable or not GGUF\0",
        x if x == MM_ERR_WRONG_FILE_KIND as i32 => b"wrong kind of GGUF file\0",
        x if x == MM_ERR_MODEL_LOAD as i32 => b"text model failed to load\0",
        x if x == MM_ERR_CONTEXT_CREATE as i32 => b"context creation failed\0",
        x if x == MM_ERR_PROJECTOR_LOAD as i32 => b"projector failed to load\0",
        x if x == MM_ERR_PROJECTOR_MISMATCH as i32 => b"projector does not match the text model\0",
        x if x == MM_ERR_CANCELLED as i32 => b"cancelled\0",
        x if x == MM_ERR_UNSUPPORTED as i32 => b"unsupported by this session\0",
        x if x == MM_ERR_MEDIA_COUNT as i32 => b"media markers and media items differ in number\0",
        x if x == MM_ERR_MEDIA_DECODE as i32 => b"media could not be decoded\0",
        x if x == MM_ERR_CONTEXT_FULL as i32 => b"request does not fit in the context\0",
        x if x == MM_ERR_TOKENIZE as i32 => b"tokenization failed\0",
        x if x == MM_ERR_EVAL as i32 => b"evaluation failed\0",
        x if x == MM_ERR_STATE_CORRUPT as i32 => b"state file truncated or corrupt\0",
        x if x == MM_ERR_STATE_MISMATCH as i32 => b"state file belongs to another model\0",
        x if x == MM_ERR_IO as i32 => b"writing a file failed\0",
        x if x == MM_ERR_INTERNAL as i32 => b"internal error\0",
        _ => b"unknown status\0",
    };
    std::ffi::CStr::from_bytes_with_nul(s).expect("static strings end in NUL")
}
