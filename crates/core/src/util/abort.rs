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

/// The cancel states of the calls whose tokens are in the batch being evaluated now: a batch
/// that carries several sessions' tokens stops only when every one of those calls is cancelled
/// (cancelling one session must not stop the others' step; it stops at the step's end).
#[derive(Default)]
pub struct StepAbort {
    calls: std::sync::Mutex<Vec<std::sync::Arc<AbortState>>>,
}

impl StepAbort {
    /// Names the calls of the batch about to be evaluated.
    pub fn set(&self, calls: Vec<std::sync::Arc<AbortState>>) {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()) = calls;
    }

    /// Whether every call of the batch being evaluated was cancelled. Never waits: while the
    /// list is being changed (between batches) the answer is no.
    pub fn is_cancelled(&self) -> bool {
        match self.calls.try_lock() {
            Ok(calls) => !calls.is_empty() && calls.iter().all(|c| c.is_cancelled()),
            Err(_) => false,
        }
    }
}
