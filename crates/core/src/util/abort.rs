//! Cancellation of a session's running call, from any thread.
//!
//! `mm_session_cancel` bumps an epoch; a call remembers the epoch it started in and stops when
//! it changes. Destroy sets `closing`, which stops every call for good. llama.cpp checks the
//! flag between graph nodes (abort callback); the projector's encoder checks it every few nodes
//! (scheduler eval callback), and the session checks it between steps.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use llama_cpp_sys_2 as sys;

use crate::model::loaded::EncoderAbort;

#[derive(Default)]
pub struct AbortState {
    epoch: AtomicU64,
    started_in: AtomicU64,
    closing: AtomicBool,
}

/// How many encoder graph nodes run between two looks at the flag.
const NODES_PER_CHECK: u32 = 32;

impl AbortState {
    /// Cancels the call in progress, if any.
    pub fn cancel(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Cancels the call in progress and every later one (the session is being destroyed).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Marks the start of a call: earlier cancels do not apply to it.
    pub fn begin_call(&self) {
        self.started_in.store(self.epoch.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
            || self.epoch.load(Ordering::Relaxed) != self.started_in.load(Ordering::Relaxed)
    }

    /// The pointer the callbacks below take as user data.
    pub fn as_user_data(&self) -> *mut c_void {
        self as *const AbortState as *mut c_void
    }
}

/// llama.cpp's abort callback: true stops `llama_decode`.
///
/// # Safety
/// `data` must come from [`AbortState::as_user_data`] of a state that outlives the context.
pub unsafe extern "C" fn llama_abort(data: *mut c_void) -> bool {
    // SAFETY: the caller's contract: `data` points to a live AbortState.
    unsafe { (*(data as *const AbortState)).is_cancelled() }
}

/// The projector's scheduler callback. Asked about each node, it asks to see one node in
/// `NODES_PER_CHECK` (the scheduler then computes up to it and stops there); shown that node, it
/// returns false to end the computation when the call that is encoding was cancelled.
///
/// # Safety
/// `data` must come from [`EncoderAbort::as_user_data`] of a state that outlives the projector.
pub unsafe extern "C" fn encoder_eval(_t: *mut sys::ggml_tensor, ask: bool, data: *mut c_void) -> bool {
    static NODES: AtomicU32 = AtomicU32::new(0);
    // SAFETY: the caller's contract: `data` points to a live EncoderAbort.
    let state = unsafe { &*(data as *const EncoderAbort) };
    if ask {
        NODES.fetch_add(1, Ordering::Relaxed).is_multiple_of(NODES_PER_CHECK)
    } else {
        !state.is_cancelled()
    }
}
