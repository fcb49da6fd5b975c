//! The session: a conversation with a loaded multimodal model. It is a member of a context
//! group (`batch/`: its own context, or one shared with forks that decode together), shares
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

pub use config::{default_threads, FlashAttention, ForkConfig, KvType, SessionConfig, MAX_PARALLEL, MIN_CONTEXT};
pub use report::{Answer, AskInfo, MemoryStats, PromptUsage, SessionInfo, StopReason};

use crate::batch::{Group, Lease, Member};
use crate::llama::context::{EVAL_ABORTED, EVAL_NO_SLOT, EVAL_OK};
use crate::llama::{Chunks, Model, Projector, Token};
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

/// A conversation with a loaded multimodal model: a slot (KV cache) of a context group (its
/// own context, or one it shares with forks that decode together) over the model and projector
/// it may share with other sessions ([`Session::fork`]). Fields drop in declaration order: the
/// slot (and the group's context with the last member), then the shared `Loaded` (freed with
/// the last session that uses it: projector, then model). A session is `Send`, not `Sync`: one
/// thread at a time makes its calls.
pub struct Session {
    member: Member,
    loaded: Arc<Loaded>,
    abort: Arc<AbortState>,
    seed: u32,
    cache: CacheRecord,
    last: AskInfo,
    last_answer: Answer,
}

impl Session {
    /// A session over `loaded` in the group `member` belongs to (counted as live from here on).
    fn with_member(
        member: Member,
        loaded: Arc<Loaded>,
        abort: Arc<AbortState>,
        seed: u32,
        cache: CacheRecord,
    ) -> Session {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Session { member, loaded, abort, seed, cache, last: AskInfo::default(), last_answer: Answer::default() }
    }

    /// The text that stands for a media item in this session's prompts.
    pub fn marker(&self) -> &str {
        &self.loaded.marker
    }

    /// Figures of the last finished request.
    pub fn last_ask(&self) -> AskInfo {
        self.last
    }

    /// The last finished request's answer as its chat format reads it: content, reasoning and
    /// tool calls (for a raw prompt, or a chat without a format to parse, the content is the
    /// whole text).
    pub fn last_answer(&self) -> &Answer {
        &self.last_answer
    }

    pub fn projector(&self) -> Option<&Projector> {
        self.loaded.projector.as_ref()
    }

    /// The context group the session decodes in.
    pub(crate) fn group(&self) -> &Arc<Group> {
        self.member.group()
    }

    /// Positions the session's conversation may take.
    pub fn n_ctx(&self) -> u32 {
        self.group().n_ctx()
    }

    /// Waits for a slot of the group and holds it for a request (see [`Member::lease`]). When
    /// the session's KV cache was lost while its slot was lent, the record is emptied too: the
    /// request evaluates everything again.
    pub(crate) fn lease(&mut self) -> Result<Lease> {
        let lease = self.member.lease(&self.abort)?;
        if lease.kv_lost() {
            self.cache.clear();
        }
        Ok(lease)
    }

    /// The logits of the last position evaluated with logits.
    pub(crate) fn logits(&self) -> &[f32] {
        self.member.logits()
    }

    /// The most sessions one step of the current request carried (its own included).
    pub(crate) fn most_together(&self) -> u32 {
        self.member.most_together()
    }

    /// Removes positions `from..` from the KV cache (not from the record).
    pub(crate) fn forget_from(&self, from: i32) {
        self.member.forget_from(from);
    }

    /// Encodes media chunk `index` of `chunks` and evaluates it at `n_past` (see
    /// [`Member::eval_media`]); returns mtmd's status and the position after it.
    pub(crate) fn eval_media(
        &mut self,
        chunks: &Chunks,
        index: usize,
        n_past: i32,
        logits_last: bool,
    ) -> Result<(i32, i32)> {
        let Some(projector) = self.loaded.projector.as_ref() else {
            return fail(Internal, "media parts come from a projector");
        };
        self.member.eval_media(projector, &self.abort, chunks, index, n_past, logits_last)
    }

    pub fn model(&self) -> &Model {
        &self.loaded.model
    }

    /// The model and projector this session shares with its forks.
    pub(crate) fn loaded(&self) -> &Arc<Loaded> {
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

    /// Keeps the answer of the request that just finished (see [`Session::last_answer`]).
    pub(crate) fn set_last_answer(&mut self, answer: Answer) {
        self.last_answer = answer;
    }

    /// Evaluates text tokens at the end of the KV cache and records them.
    pub(crate) fn eval_tokens(&mut self, tokens: &[Token], logits_last: bool) -> Result<()> {
        let pos = self.cache.n_pos();
        let code = self.member.eval(tokens, pos, logits_last, &self.abort)?;
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
        let group = self.group();
        SessionInfo {
            n_ctx: group.n_ctx(),
            n_parallel: group.n_slots(),
            n_batch: group.n_batch(),
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
        self.member.clear();
        self.cache.clear();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Fields follow: the slot and context, then the model and projector (declaration order).
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
