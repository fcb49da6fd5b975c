//! mm-session-core: the safe Rust core of mm-session. A [`Session`] owns a llama.cpp text model,
//! its context and (optionally) its multimodal projector, and frees them together; it keeps a
//! record of its KV cache so that a conversation's follow-ups evaluate only what is new.
//!
//! Nothing here knows C: errors are [`Error`]s with an [`ErrorKind`], and the C layer
//! (`mm-session`, crates/capi) maps them to status codes.
//!
//! Where things live: creating and freeing a session, `session.rs`; asking, `ask.rs`;
//! sampling options, `sampling.rs` (JSON Schemas, `json_schema.rs`; log-probabilities,
//! `logprobs.rs`); media formats, `media.rs`, and their memory-safe decoders, `decode.rs`;
//! prompts and chat
//! templates, `prompt.rs`; saved states, `state.rs`; llama.cpp objects and the C++ exception
//! barriers, `llama.rs` and `guard.rs`; layers on RPC servers, `rpc.rs` (`rpc_off.rs` without
//! the `rpc` feature).

#![deny(unsafe_op_in_unsafe_fn)]

mod abort;
mod ask;
mod backend;
mod cache;
mod checked;
pub mod decode;
mod error;
mod files;
mod fingerprint;
mod grammar;
mod guard;
mod hash;
mod json_schema;
mod llama;
pub mod log;
mod logprobs;
mod media;
mod memo;
mod memory;
mod pieces;
mod prompt;
#[cfg(feature = "rpc")]
mod rpc;
#[cfg(not(feature = "rpc"))]
#[path = "rpc_off.rs"]
mod rpc;
mod sampling;
mod session;
mod special;
mod state;
mod text;
mod weights;

pub use abort::AbortState;
pub use ask::{AskInfo, Overflow, PromptCount, Request, Sinks};
pub use backend::build_info;
pub use decode::MAX_IMAGE_SIDE;
pub use error::{Error, ErrorKind, Result};
pub use json_schema::{MAX_BYTES as JSON_SCHEMA_MAX_BYTES, MAX_DEPTH as JSON_SCHEMA_MAX_DEPTH};
pub use log::{LogLevel, LogSink};
pub use logprobs::{TokenChoice, TokenLogprob};
pub use media::{Format, Media, MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS};
pub use memory::MemoryStats;
pub use prompt::{Input, Message, PromptUsage};
#[cfg(feature = "rpc")]
pub use rpc::serve_rpc;
pub use sampling::{Dry, Penalties, Sampling};
pub use session::{
    default_threads, live_sessions, FlashAttention, ForkConfig, KvType, Session, SessionConfig, SessionInfo,
    MIN_CONTEXT,
};
pub use text::StopReason;
pub use weights::loaded_models;

/// Initialises llama.cpp's backends and the log routing (done by the first session too).
pub fn init() {
    backend::init();
}
