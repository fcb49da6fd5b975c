//! mm-session-core: the safe Rust core of mm-session. A [`Session`] owns a llama.cpp text model,
//! its context and (optionally) its multimodal projector, and frees them together; it keeps a
//! record of its KV cache so that a conversation's follow-ups evaluate only what is new.
//!
//! Nothing here knows C: errors are [`Error`]s with an [`ErrorKind`], and the C layer
//! (`mm-session`, crates/capi) maps them to status codes.
//!
//! # Layers
//!
//! Each folder uses only the folders above it in this list (no import cycle between folders or
//! between files; `crates/capi/tests/capi/source_rules.rs` checks both):
//!
//! - `util/`: errors, files, hashes, the per-file memo, the log's routing, a call's cancel state
//!   ([`AbortState`]). No llama.cpp.
//! - `llama/`: the only code that calls C (llama.cpp, ggml, mtmd through `llama_cpp_sys_2`, the
//!   C++ exception barriers `guard.rs` + `shim/`, and libc): owning wrappers (model, context,
//!   projector, bitmap, chunks, sampler), loading and context parameters (`load.rs`), chat
//!   templates, memory accounting, backends and devices, RPC calls. Every `unsafe` of the core
//!   is here.
//! - `batch/`: context groups: one context whose slots hold the KV caches of sessions that
//!   decode together, the lending of idle slots, and the shared steps (one `llama_decode` for
//!   every session's next token).
//! - `model/`: what forks share and what is checked before it loads: the loaded model and
//!   projector (`loaded.rs`), the file checks and fingerprints, the RPC servers and relays.
//! - `session/`: [`Session`] (fields private to this folder), its config, creation and forks,
//!   the KV cache record, saved state files, and what it reports ([`AskInfo`], [`SessionInfo`],
//!   [`MemoryStats`]).
//! - `media/`: formats and limits, the memory-safe decoders (`decode.rs`, no `unsafe`), and a
//!   media item to an mtmd bitmap (`bitmap.rs`).
//! - `request/`: one ask, from prompt to streamed text: prompts and chat segments, sampling,
//!   grammars, JSON Schemas, log-probabilities, the UTF-8 guard, the text stream, and tools,
//!   reasoning and the answer's parse (`chat.rs`).
//!
//! # Words with one meaning
//!
//! - **decode**: what the media decoders do (image and audio files to pixels and samples).
//! - **bitmap**: mtmd's form of a decoded media item; a media item becomes one by
//!   `media::to_bitmap`.
//! - **eval**: llama.cpp computing a batch in a context (`llama_decode`, mtmd's chunk
//!   evaluation): `llama::Context::eval`, `Session::eval_tokens`.
//! - **encode**: the projector's encoder turning a bitmap into embeddings (part of evaluating a
//!   media chunk).
//! - **piece**: the bytes of one token, as `llama_token_to_piece` gives them.
//! - **segment**: a part of a prompt before tokenizing: text (with or without special tokens)
//!   or a media item.
//! - **span**: a part of a long text read with special tokens, cut where its tokens stay the
//!   same, tokenized on its own.
//! - **UTF-8 guard**: the rule that keeps grammar-constrained answers valid UTF-8
//!   (`request/utf8.rs`).
//! - **loaded**: a text model with its projector, loaded once and shared by forks
//!   (`model::loaded::Loaded`).
//! - **chunk**: mtmd's unit of a tokenized prompt (text tokens or one media item).
//! - **group**: a context and the sessions that decode in it (`batch::Group`).
//! - **slot**: one sequence of a group's context, held by a request (`batch::Lease`).
//! - **step**: one `llama_decode` of a group, carrying every queued request's tokens.
//! - **render**: a chat template turning messages (and tools) into prompt text, by llama.cpp's
//!   chat layer or its fixed renderer (`model/template.rs`, `llama/chat.rs`).
//! - **markup**: the text a template adds around the messages' texts; tokenized with control
//!   tokens, the texts without (`request/prompt.rs`).
//! - **generic format**: the library's JSON tool call format for templates without a tool call
//!   syntax llama.cpp knows (`llama/shim/chat.cpp`).

#![deny(unsafe_op_in_unsafe_fn)]

pub use media::decode;
pub use util::log;

mod batch;
mod llama;
mod media;
mod model;
mod request;
mod session;
mod util;

pub use llama::backend::build_info;
pub use llama::chat::ToolCall;
pub use media::decode::MAX_IMAGE_SIDE;
pub use media::{Format, Media, MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS};
pub use model::loaded::loaded_models;
#[cfg(feature = "rpc")]
pub use model::rpc::serve_rpc;
pub use model::template::{
    set_render_limit as set_chat_render_limit, MAX_BYTES as CHAT_TEMPLATE_MAX_BYTES,
    MAX_DEPTH as CHAT_TEMPLATE_MAX_DEPTH, RENDER_LIMIT as CHAT_RENDER_LIMIT,
};
pub use request::chat::{Reasoning, ToolCallDelta, ToolChoice, Tools, MAX_TOOLS_BYTES};
pub use request::json_schema::{MAX_BYTES as JSON_SCHEMA_MAX_BYTES, MAX_DEPTH as JSON_SCHEMA_MAX_DEPTH};
pub use request::logprobs::{TokenChoice, TokenLogprob};
pub use request::prompt::{Input, Message};
pub use request::sampling::{Dry, Penalties, Sampling};
pub use request::{Overflow, PromptCount, Request, Sinks};
pub use session::{
    default_threads, live_sessions, Answer, AskInfo, FlashAttention, ForkConfig, KvType, MemoryStats, PromptUsage,
    Session, SessionConfig, SessionInfo, StopReason, MAX_PARALLEL, MIN_CONTEXT,
};
pub use util::abort::AbortState;
pub use util::error::{Error, ErrorKind, Result};
pub use util::json::quote as json_quote;
pub use util::log::{LogLevel, LogSink};

/// Initialises llama.cpp's backends and the log routing (done by the first session too).
pub fn init() {
    llama::backend::init();
}
