//! `mm_status`, the C layer's failures, and how the core's errors map to statuses.

use mm_core::{Error, ErrorKind};

/// The result of every `mm_*` call that can fail. Codes are stable and never reused for
/// another meaning.
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
    /// A file exists but cannot be read, or is not in the format expected (GGUF for models,
    /// an mm-session state file for states).
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
    /// Writing a file failed, or the path names something that is not a regular file.
    MM_ERR_IO = 21,
    /// A call on a session from inside a callback of a call on that same session (the session
    /// is held until the callback returns). Only `mm_session_cancel` may be called there.
    MM_ERR_BUSY = 22,
    /// The calling process was forked from one that had created sessions: sessions belong to
    /// the process that created them, and a forked child cannot use the library.
    MM_ERR_FORKED = 23,
    /// An RPC server of `mm_session_params.rpc_servers` could not be reached, did not answer
    /// its handshake, or speaks another protocol version (at create), or went away while the
    /// session used it: the session's layers there are gone, its later asks, forks and state
    /// saves and loads give this status too, and destroying it frees everything.
    MM_ERR_REMOTE = 24,
    /// A bug inside mm-session (a caught panic, or a C++ exception from llama.cpp); the message
    /// says where. The session that was in use should be destroyed.
    MM_ERR_INTERNAL = 99,
}

impl mm_status {
    /// A short static description.
    pub fn describe(self) -> &'static std::ffi::CStr {
        use mm_status::*;
        match self {
            MM_OK => c"ok",
            MM_ERR_NULL_ARGUMENT => c"a required pointer argument was NULL",
            MM_ERR_INVALID_ARGUMENT => c"invalid argument",
            MM_ERR_INVALID_HANDLE => c"invalid or destroyed session handle",
            MM_ERR_FILE_NOT_FOUND => c"file not found",
            MM_ERR_NOT_A_FILE => c"not a regular file",
            MM_ERR_FILE_UNREADABLE => c"file unreadable, or not in the expected format",
            MM_ERR_WRONG_FILE_KIND => c"wrong kind of GGUF file",
            MM_ERR_MODEL_LOAD => c"text model failed to load",
            MM_ERR_CONTEXT_CREATE => c"context creation failed",
            MM_ERR_PROJECTOR_LOAD => c"projector failed to load",
            MM_ERR_PROJECTOR_MISMATCH => c"projector does not match the text model",
            MM_ERR_CANCELLED => c"cancelled",
            MM_ERR_UNSUPPORTED => c"unsupported by this session",
            MM_ERR_MEDIA_COUNT => c"media markers and media items differ in number",
            MM_ERR_MEDIA_DECODE => c"media could not be decoded",
            MM_ERR_CONTEXT_FULL => c"request does not fit in the context",
            MM_ERR_TOKENIZE => c"tokenization failed",
            MM_ERR_EVAL => c"evaluation failed",
            MM_ERR_STATE_CORRUPT => c"state file truncated or corrupt",
            MM_ERR_STATE_MISMATCH => c"state file belongs to another model",
            MM_ERR_IO => c"writing a file failed",
            MM_ERR_BUSY => c"called from inside a callback of the same session",
            MM_ERR_FORKED => c"called in a process forked after sessions were created",
            MM_ERR_REMOTE => c"an RPC server could not be reached or went away",
            MM_ERR_INTERNAL => c"internal error",
        }
    }

    /// Every status, in code order.
    pub const ALL: [mm_status; 26] = {
        use mm_status::*;
        [
            MM_OK,
            MM_ERR_NULL_ARGUMENT,
            MM_ERR_INVALID_ARGUMENT,
            MM_ERR_INVALID_HANDLE,
            MM_ERR_FILE_NOT_FOUND,
            MM_ERR_NOT_A_FILE,
            MM_ERR_FILE_UNREADABLE,
            MM_ERR_WRONG_FILE_KIND,
            MM_ERR_MODEL_LOAD,
            MM_ERR_CONTEXT_CREATE,
            MM_ERR_PROJECTOR_LOAD,
            MM_ERR_PROJECTOR_MISMATCH,
            MM_ERR_CANCELLED,
            MM_ERR_UNSUPPORTED,
            MM_ERR_MEDIA_COUNT,
            MM_ERR_MEDIA_DECODE,
            MM_ERR_CONTEXT_FULL,
            MM_ERR_TOKENIZE,
            MM_ERR_EVAL,
            MM_ERR_STATE_CORRUPT,
            MM_ERR_STATE_MISMATCH,
            MM_ERR_IO,
            MM_ERR_BUSY,
            MM_ERR_FORKED,
            MM_ERR_REMOTE,
            MM_ERR_INTERNAL,
        ]
    };

    /// The status with code `code`, if any.
    pub fn from_code(code: i32) -> Option<mm_status> {
        mm_status::ALL.into_iter().find(|s| *s as i32 == code)
    }
}

/// A failed call of the C layer: a status and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: mm_status,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Failure>;

/// A shorthand for `Err(Failure { .. })`.
pub fn fail<T>(status: mm_status, message: impl Into<String>) -> Result<T> {
    Err(Failure { status, message: message.into() })
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        use mm_status::*;
        let status = match e.kind {
            ErrorKind::InvalidArgument => MM_ERR_INVALID_ARGUMENT,
            ErrorKind::FileNotFound => MM_ERR_FILE_NOT_FOUND,
            ErrorKind::NotAFile => MM_ERR_NOT_A_FILE,
            ErrorKind::FileUnreadable => MM_ERR_FILE_UNREADABLE,
            ErrorKind::WrongFileKind => MM_ERR_WRONG_FILE_KIND,
            ErrorKind::ModelLoad => MM_ERR_MODEL_LOAD,
            ErrorKind::ContextCreate => MM_ERR_CONTEXT_CREATE,
            ErrorKind::ProjectorLoad => MM_ERR_PROJECTOR_LOAD,
            ErrorKind::ProjectorMismatch => MM_ERR_PROJECTOR_MISMATCH,
            ErrorKind::Cancelled => MM_ERR_CANCELLED,
            ErrorKind::Unsupported => MM_ERR_UNSUPPORTED,
            ErrorKind::MediaCount => MM_ERR_MEDIA_COUNT,
            ErrorKind::MediaDecode => MM_ERR_MEDIA_DECODE,
            ErrorKind::ContextFull => MM_ERR_CONTEXT_FULL,
            ErrorKind::Tokenize => MM_ERR_TOKENIZE,
            ErrorKind::Eval => MM_ERR_EVAL,
            ErrorKind::StateCorrupt => MM_ERR_STATE_CORRUPT,
            ErrorKind::StateMismatch => MM_ERR_STATE_MISMATCH,
            ErrorKind::Io => MM_ERR_IO,
            ErrorKind::Remote => MM_ERR_REMOTE,
            ErrorKind::Internal => MM_ERR_INTERNAL,
        };
        Failure { status, message: e.message }
    }
}
