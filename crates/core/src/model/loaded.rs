//! What sessions of one model share: the text model and its projector, loaded once and freed
//! when the last session that uses them is dropped (in any order).
//!
//! A llama.cpp model is read-only once loaded, and any number of contexts may use it from any
//! threads. mtmd documents its tokenizer and its queries as thread-safe on a shared context;
//! the projector serializes encodes itself ([`crate::llama::Projector::eval_chunk`]).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::llama::memory::ReleaseFreeHeap;
use crate::llama::{Model, Projector};
use crate::model::rpc::Remote;
use crate::model::template::ChatTemplate;
use crate::util::error::Result;

/// Models loaded now (each shared by one or more sessions).
static LOADED: AtomicUsize = AtomicUsize::new(0);

/// How many models (with their projectors) are loaded in this process.
pub fn loaded_models() -> usize {
    LOADED.load(Ordering::SeqCst)
}

/// A text model, its projector, and what sessions made from them agree on. Fields drop in
/// declaration order: projector (with the encoder state its callback reads), then model (its
/// layers on RPC servers too); then the heap's free pages go back to the system.
pub struct Loaded {
    pub projector: Option<Projector>,
    pub model: Model,
    /// The RPC servers that hold some of the model's layers, if any.
    remote: Option<Remote>,
    /// The marker of media in prompts, and the chat template.
    pub marker: String,
    pub chat: ChatTemplate,
    /// Identifies the model and projector files' contents (saved states must match it).
    pub fingerprint: String,
    _release_heap: ReleaseFreeHeap,
}

impl Loaded {
    pub fn new(
        model: Model,
        remote: Option<Remote>,
        projector: Option<Projector>,
        marker: String,
        chat: ChatTemplate,
        fingerprint: String,
    ) -> Loaded {
        LOADED.fetch_add(1, Ordering::SeqCst);
        Loaded { projector, model, remote, marker, chat, fingerprint, _release_heap: ReleaseFreeHeap }
    }

    /// Fails with `Remote` when an RPC server that holds some of the model's layers went away:
    /// what the session computed since is void, and so is every later computation.
    pub fn check_remote(&self) -> Result<()> {
        check_remote(self.remote.as_ref())
    }
}

/// Fails with `Remote` when `remote` names a server that went away since it was connected.
pub fn check_remote(remote: Option<&Remote>) -> Result<()> {
    remote.map_or(Ok(()), Remote::check)
}

impl Drop for Loaded {
    fn drop(&mut self) {
        LOADED.fetch_sub(1, Ordering::SeqCst);
    }
}
