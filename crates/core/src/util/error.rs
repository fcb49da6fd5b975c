//! The error type of the safe core: what kind of failure, and a message for a person. The C
//! layer maps each kind to an `mm_status`.

use mm_gguf::{CheckError, CheckKind};

/// What went wrong, in the terms a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An argument is out of range or malformed (the message names it).
    InvalidArgument,
    /// A file does not exist.
    FileNotFound,
    /// A path names a directory or something else that is not a regular file.
    NotAFile,
    /// A file exists but cannot be read, or is not a GGUF file.
    FileUnreadable,
    /// A GGUF file of the wrong kind: a projector given as the text model, or the reverse.
    WrongFileKind,
    /// llama.cpp could not load the text model.
    ModelLoad,
    /// llama.cpp could not create the context.
    ContextCreate,
    /// The projector could not be loaded.
    ProjectorLoad,
    /// The projector's output size differs from the text model's embedding size.
    ProjectorMismatch,
    /// A progress callback or `cancel` stopped the call.
    Cancelled,
    /// The session cannot do this (media without a projector, a media kind it lacks).
    Unsupported,
    /// The prompt's markers and the media items differ in number.
    MediaCount,
    /// A media item could not be read or decoded.
    MediaDecode,
    /// The request does not fit in the context window.
    ContextFull,
    /// Tokenizing the prompt failed.
    Tokenize,
    /// Encoding media or evaluating tokens failed.
    Eval,
    /// A saved state file is truncated, corrupt, or not a state file.
    StateCorrupt,
    /// A saved state file belongs to another model or projector, or does not fit the context.
    StateMismatch,
    /// Writing a file failed.
    Io,
    /// An RPC server could not be reached, speaks another protocol version, or went away.
    Remote,
    /// A bug (or a C++ exception from llama.cpp); the message says where.
    Internal,
}

/// A failure: its kind and a message naming the file, argument or cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<CheckError> for Error {
    fn from(e: CheckError) -> Self {
        let kind = match e.kind {
            CheckKind::Unreadable => ErrorKind::FileUnreadable,
            CheckKind::WrongKind => ErrorKind::WrongFileKind,
            CheckKind::TextModel => ErrorKind::ModelLoad,
            CheckKind::Projector => ErrorKind::ProjectorLoad,
            CheckKind::ProjectorMismatch => ErrorKind::ProjectorMismatch,
        };
        Error::new(kind, e.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A shorthand for `Err(Error::new(..))`.
pub fn fail<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T> {
    Err(Error::new(kind, message))
}
