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

pub use media::decode;
pub use util::log;

mod llama;
mod media;
mod model;
mod request;
mod session;
mod util;

pub use llama::backend::build_info;
pub use media::decode::MAX_IMAGE_SIDE;
pub use media::{Format, Media, MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS};
pub use model::loaded::loaded_models;
#[cfg(feature = "rpc")]
pub use model::rpc::serve_rpc;
pub use request::json_schema::{MAX_BYTES as JSON_SCHEMA_MAX_BYTES, MAX_DEPTH as JSON_SCHEMA_MAX_DEPTH};
pub use request::logprobs::{TokenChoice, TokenLogprob};
pub use request::prompt::{Input, Message};
pub use request::sampling::{Dry, Penalties, Sampling};
pub use request::{Overflow, PromptCount, Request, Sinks};
pub use session::{
    default_threads, live_sessions, AskInfo, FlashAttention, ForkConfig, KvType, MemoryStats, PromptUsage, Session,
    SessionConfig, SessionInfo, StopReason, MIN_CONTEXT,
};
pub use util::abort::AbortState;
pub use util::error::{Error, ErrorKind, Result};
pub use util::log::{LogLevel, LogSink};

/// Initialises llama.cpp's backends and the log routing (done by the first session too).
pub fn init() {
    llama::backend::init();
}
