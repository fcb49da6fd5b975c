//! Cancellation of a session's running call, from any thread.
//!
//! `mm_session_cancel` bumps an epoch; a call remembers the epoch it started in and stops when
//! it changes. Destroy sets `closing`, which stops every call for good. llama.cpp and the
//! projector's encoder check it through callbacks (`llama/abort.rs`), and the session checks it
//! between steps.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct AbortState {
    epoch: AtomicU64,
    started_in: AtomicU64,
    closing: AtomicBool,
}

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
}
