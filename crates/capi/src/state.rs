//! Saved conversations: `mm_session_save_state` and `mm_session_load_state`.

use std::os::raw::c_char;
use std::path::PathBuf;

use crate::boundary::{boundary, c_str};
use crate::session::{mm_session, with_session};
use crate::status::mm_status;

/// Writes the conversation (KV cache and the record of which tokens and media it holds) to
/// `path`, so that a later session of the same model and projector files can resume it with
/// `mm_session_load_state` without evaluating it again. `path` is borrowed.
#[no_mangle]
pub unsafe extern "C" fn mm_session_save_state(s: *mut mm_session, path: *const c_char) -> mm_status {
    boundary("mm_session_save_state", || {
        // SAFETY: the caller's contract: NULL or a NUL-terminated string.
        let path = PathBuf::from(unsafe { c_str(path, "path") }?);
        with_session(s, |session| Ok(session.save_state(&path)?))
    })
}

/// Replaces the session's conversation with one saved by `mm_session_save_state`. A file from
/// other model or projector files (`MM_ERR_STATE_MISMATCH`), or a truncated or corrupt file
/// (`MM_ERR_STATE_CORRUPT`), gets a status and leaves the session as it was.
#[no_mangle]
pub unsafe extern "C" fn mm_session_load_state(s: *mut mm_session, path: *const c_char) -> mm_status {
    boundary("mm_session_load_state", || {
        // SAFETY: the caller's contract: NULL or a NUL-terminated string.
        let path = PathBuf::from(unsafe { c_str(path, "path") }?);
        with_session(s, |session| Ok(session.load_state(&path)?))
    })
}
