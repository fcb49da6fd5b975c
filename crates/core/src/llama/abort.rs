//! The callbacks through which llama.cpp and mtmd stop a computation whose call was cancelled
//! ([`AbortState`]): llama.cpp checks between graph nodes (abort callback); the projector's
//! encoder every few nodes (scheduler eval callback).

use std::os::raw::c_void;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use llama_cpp_sys_2 as sys;

use crate::util::abort::{AbortState, StepAbort};

/// How many encoder graph nodes run between two looks at the flag.
const NODES_PER_CHECK: u32 = 32;

/// The user data of [`llama_abort`] for `abort`.
pub(super) fn abort_user_data(abort: &StepAbort) -> *mut c_void {
    abort as *const StepAbort as *mut c_void
}

/// llama.cpp's abort callback: true stops `llama_decode`.
///
/// # Safety
/// `data` must come from [`abort_user_data`] of a state that outlives the context.
pub(super) unsafe extern "C" fn llama_abort(data: *mut c_void) -> bool {
    // SAFETY: the caller's contract: `data` points to a live StepAbort.
    unsafe { (*(data as *const StepAbort)).is_cancelled() }
}

/// The projector's encoder, lent to one call at a time: the cancel state of the call encoding
/// media now, read by the projector's eval callback (which mtmd fixes once, when the projector
/// loads), and the lock that serializes encodes (the encoder's compute buffers are one per
/// projector).
#[derive(Default)]
pub struct EncoderAbort {
    current: AtomicPtr<AbortState>,
    lock: Mutex<()>,
}

/// Held while a call encodes media; clears the cancel state it lent when dropped.
pub(super) struct EncodeGuard<'a> {
    _lock: MutexGuard<'a, ()>,
    encoder: &'a EncoderAbort,
}

impl Drop for EncodeGuard<'_> {
    fn drop(&mut self) {
        self.encoder.current.store(std::ptr::null_mut(), Ordering::Release);
    }
}

impl EncoderAbort {
    pub(super) fn as_user_data(&self) -> *mut c_void {
        self as *const EncoderAbort as *mut c_void
    }

    /// Waits for the encoder and lends it to the call whose cancel state is `abort`.
    pub(super) fn lend<'a>(&'a self, abort: &'a AbortState) -> EncodeGuard<'a> {
        let lock = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.current.store(abort as *const AbortState as *mut AbortState, Ordering::Release);
        EncodeGuard { _lock: lock, encoder: self }
    }

    /// Whether the call that is encoding was cancelled.
    fn is_cancelled(&self) -> bool {
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: a pointer is stored only by `lend`, for as long as its guard lives, and the
        // state it points to outlives the guard.
        !current.is_null() && unsafe { (*current).is_cancelled() }
    }
}

/// The projector's scheduler callback. Asked about each node, it asks to see one node in
/// `NODES_PER_CHECK` (the scheduler then computes up to it and stops there); shown that node, it
/// returns false to end the computation when the call that is encoding was cancelled.
///
/// # Safety
/// `data` must come from [`EncoderAbort::as_user_data`] of a state that outlives the projector.
pub(super) unsafe extern "C" fn encoder_eval(_t: *mut sys::ggml_tensor, ask: bool, data: *mut c_void) -> bool {
    static NODES: AtomicU32 = AtomicU32::new(0);
    // SAFETY: the caller's contract: `data` points to a live EncoderAbort.
    let state = unsafe { &*(data as *const EncoderAbort) };
    if ask {
        NODES.fetch_add(1, Ordering::Relaxed).is_multiple_of(NODES_PER_CHECK)
    } else {
        !state.is_cancelled()
    }
}
