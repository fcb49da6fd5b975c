//! The session: a conversation with a loaded multimodal model. It owns its context and shares
//! the loaded model and projector with its forks ([`Loaded`]), frees them together, projector
//! first, and keeps a record of what its KV cache holds, so that a follow-up request evaluates
//! only what is new.

pub mod cache;
pub mod config;
mod create;
mod memory;
pub mod report;
mod state;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use config::{default_threads, FlashAttention, ForkConfig, KvType, SessionConfig, MIN_CONTEXT};
pub use report::{AskInfo, MemoryStats, PromptUsage, SessionInfo, StopReason};

use crate::llama::context::{EVAL_ABORTED, EVAL_NO_SLOT, EVAL_OK};
use crate::llama::load::ContextSettings;
use crate::llama::{Context, Model, Projector, Token, TokenBatch};
use crate::model::loaded::Loaded;
use crate::session::cache::{CacheRecord, Item};
use crate::util::abort::AbortState;
use crate::util::error::{fail, ErrorKind::*, Result};

/// Sessions that exist now (created and not yet dropped).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many sessions exist in this process.
pub fn live_sessions() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// A conversation with a loaded multimodal model: its own context (KV cache, compute buffers)
/// over the model and projector it may share with other sessions ([`Session::fork`]). Fields
/// drop in declaration order: the context, then the shared `Loaded` (freed with the last
/// session that uses it: projector, then model), then the abort state the context's callback
/// points to. A session is `Send`, not `Sync`: one thread at a time uses its context.
pub struct Session {
    ctx: Context,
    loaded: Arc<Loaded>,
    abort: Arc<AbortState>,
    settings: ContextSettings,
    seed: u32,
    cache: CacheRecord,
    batch: TokenBatch,
    last: AskInfo,
}

impl Session {
    /// A session over `loaded` with its own context (counted as live from here on).
    fn with_context(
        ctx: Context,
        loaded: Arc<Loaded>,
        abort: Arc<AbortState>,
        settings: ContextSettings,
        seed: u32,
        cache: CacheRecord,
    ) -> Session {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Session {
            batch: TokenBatch::new(ctx.n_batch() as usize),
            ctx,
            loaded,
            abort,
            settings,
            seed,
            cache,
            last: AskInfo::default(),
        }
    }

    /// The text that stands for a media item in this session's prompts.
    pub fn marker(&self) -> &str {
        &self.loaded.marker
    }

    /// Figures of the last finished request.
    pub fn last_ask(&self) -> AskInfo {
        self.last
    }

    pub fn projector(&self) -> Option<&Projector> {
        self.loaded.projector.as_ref()
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn model(&self) -> &Model {
        &self.loaded.model
    }

    /// The model and projector this session shares with its forks.
    pub(crate) fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// How many sessions share this session's model and projector (itself included).
    pub(crate) fn loaded_shared_by(&self) -> usize {
        Arc::strong_count(&self.loaded)
    }

    /// The state other threads use to cancel this session's calls.
    pub fn abort_state(&self) -> Arc<AbortState> {
        self.abort.clone()
    }

    /// What identifies the session's model and projector files (saved states must match it).
    pub fn fingerprint(&self) -> &str {
        &self.loaded.fingerprint
    }

    pub(crate) fn cache(&self) -> &CacheRecord {
        &self.cache
    }

    pub(crate) fn cache_mut(&mut self) -> &mut CacheRecord {
        &mut self.cache
    }

    /// The sampling seed of requests that do not set one.
    pub(crate) fn seed(&self) -> u32 {
        self.seed
    }

    /// Keeps the figures of the request that just finished (see [`Session::last_ask`]).
    pub(crate) fn set_last_ask(&mut self, info: AskInfo) {
        self.last = info;
    }

    /// Evaluates text tokens at the end of the KV cache and records them.
    pub(crate) fn eval_tokens(&mut self, tokens: &[Token], logits_last: bool) -> Result<()> {
        let pos = self.cache.n_pos();
        let code = self.ctx.eval(&mut self.batch, tokens, pos, logits_last)?;
        self.loaded.check_remote()?;
        match code {
            EVAL_OK => {
                for (k, &t) in tokens.iter().enumerate() {
                    self.cache.push(Item::Token(t), pos + k as i32 + 1);
                }
                Ok(())
            }
            EVAL_ABORTED => fail(Cancelled, "the call was cancelled"),
            EVAL_NO_SLOT => fail(ContextFull, "llama.cpp found no room in the KV cache for the batch"),
            code => fail(Eval, format!("llama_decode failed with code {code}")),
        }
    }

    /// Context size, conversation length and media support.
    pub fn info(&self) -> SessionInfo {
        let projector = self.projector();
        SessionInfo {
            n_ctx: self.ctx.n_ctx(),
            n_past: self.cache.n_pos() as u32,
            supports_vision: projector.is_some_and(|p| p.supports_vision()),
            supports_audio: projector.is_some_and(|p| p.supports_audio()),
            audio_sample_rate: projector.map_or(0, |p| p.audio_sample_rate()),
        }
    }

    /// The model's tokens for `text`, without the tokens the model adds around a prompt (BOS);
    /// `parse_special` turns the text of control tokens (such as "<|im_end|>") into them.
    pub fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<i32>> {
        self.model().tokenize(text, false, parse_special)
    }

    /// Empties the KV cache: the next request evaluates everything.
    pub fn reset(&mut self) {
        self.ctx.clear_memory();
        self.cache.clear();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Fields follow: the context, then the model and projector (declaration order).
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
