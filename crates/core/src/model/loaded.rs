//! What sessions of one model share: the text model and its projector, loaded once and freed
//! when the last session that uses them is dropped (in any order).
//!
//! A llama.cpp model is read-only once loaded, and any number of contexts may use it from any
//! threads. mtmd documents its tokenizer and its queries as thread-safe on a shared context;
//! encoding media uses the encoder's compute buffers, so encodes are serialized
//! ([`Weights::encode`]).

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::llama::memory::ReleaseFreeHeap;
use crate::llama::{Model, Projector};
use crate::model::rpc::Remote;
use crate::util::abort::AbortState;
use crate::util::error::Result;

/// Weights loaded now (each shared by one or more sessions).
static LOADED: AtomicUsize = AtomicUsize::new(0);

/// How many models (with their projectors) are loaded in this process.
pub fn loaded_models() -> usize {
    LOADED.load(Ordering::SeqCst)
}

/// The cancel state of the call encoding media now, read by the projector's eval callback
/// (which mtmd fixes once, when the projector loads).
#[derive(Default)]
pub(crate) struct EncoderAbort(AtomicPtr<AbortState>);

impl EncoderAbort {
    pub(crate) fn as_user_data(&self) -> *mut std::os::raw::c_void {
        self as *const EncoderAbort as *mut std::os::raw::c_void
    }

    /// Whether the call that is encoding was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        let current = self.0.load(Ordering::Acquire);
        // SAFETY: a pointer is stored only by `Weights::encode`, for as long as its guard lives,
        // and the state it points to outlives the guard.
        !current.is_null() && unsafe { (*current).is_cancelled() }
    }
}

/// A text model, its projector, and what sessions made from them agree on. Fields drop in
/// declaration order: projector, then model (its layers on RPC servers too), then the callback
/// state the projector points to; then the heap's free pages go back to the system.
pub(crate) struct Weights {
    pub(crate) projector: Option<Projector>,
    pub(crate) model: Model,
    /// The RPC servers that hold some of the model's layers, if any.
    remote: Option<Remote>,
    /// The marker of media in prompts, and the chat template.
    pub(crate) marker: String,
    pub(crate) chat_template: String,
    /// Identifies the model and projector files' contents (saved states must match it).
    pub(crate) fingerprint: String,
    encode_lock: Mutex<()>,
    /// Boxed so that its address, given to mtmd, stays put.
    pub(crate) encoder_abort: Box<EncoderAbort>,
    _release_heap: ReleaseFreeHeap,
}

/// Held while a session encodes media: the projector's encoder is one per model.
pub(crate) struct EncodeGuard<'a> {
    _lock: MutexGuard<'a, ()>,
    abort: &'a EncoderAbort,
}

impl Drop for EncodeGuard<'_> {
    fn drop(&mut self) {
        self.abort.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

impl Weights {
    pub(crate) fn new(
        model: Model,
        remote: Option<Remote>,
        projector: Option<Projector>,
        encoder_abort: Box<EncoderAbort>,
        marker: String,
        chat_template: String,
        fingerprint: String,
    ) -> Weights {
        LOADED.fetch_add(1, Ordering::SeqCst);
        Weights {
            projector,
            model,
            remote,
            marker,
            chat_template,
            fingerprint,
            encode_lock: Mutex::new(()),
            encoder_abort,
            _release_heap: ReleaseFreeHeap,
        }
    }

    /// Fails with `Remote` when an RPC server that holds some of the model's layers went away:
    /// what the session computed since is void, and so is every later computation.
    pub(crate) fn check_remote(&self) -> Result<()> {
        check_remote(self.remote.as_ref())
    }

    /// Waits for the encoder and lends it to the call whose cancel state is `abort`.
    pub(crate) fn encode<'a>(&'a self, abort: &'a AbortState) -> EncodeGuard<'a> {
        let lock = self.encode_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.encoder_abort.0.store(abort as *const AbortState as *mut AbortState, Ordering::Release);
        EncodeGuard { _lock: lock, abort: &self.encoder_abort }
    }
}

/// Fails with `Remote` when `remote` names a server that went away since it was connected.
pub(crate) fn check_remote(remote: Option<&Remote>) -> Result<()> {
    remote.map_or(Ok(()), Remote::check)
}

impl Drop for Weights {
    fn drop(&mut self) {
        LOADED.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: the model is read-only after loading and llama.cpp lets any number of contexts use it
// from any threads; mtmd's tokenizer and queries are documented thread-safe on a shared context,
// and encoding is serialized by `encode_lock`; the rest is plain data or atomics.
unsafe impl Sync for Weights {}
// SAFETY: as above; nothing in it is tied to the thread that loaded it.
unsafe impl Send for Weights {}
