//! One ask, from prompt to streamed text: what a request is (this file), how it is asked
//! (`ask.rs`: evaluated from its first difference with the KV cache record, then generated and
//! streamed), its prompt (`prompt.rs`), its sampling (`sampling.rs`, with `grammar.rs`,
//! `json_schema.rs` and the UTF-8 guard, `utf8.rs`), its log-probabilities (`logprobs.rs`), the
//! text stream (`text.rs`), and for chats through llama.cpp's chat layer the tools, reasoning
//! and the answer's parse (`chat.rs`).

mod ask;
pub mod chat;
pub mod grammar;
pub mod json_schema;
pub mod logprobs;
pub mod prompt;
pub mod sampling;
pub mod text;
pub mod utf8;

use crate::request::chat::{Reasoning, ToolCallDelta, Tools};
use crate::request::logprobs::TokenChoice;
use crate::request::prompt::Input;
use crate::request::sampling::Sampling;

/// What to do when a chat does not fit in the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Fail with `ContextFull` before evaluating anything.
    Fail,
    /// Drop the oldest messages after the system message until it fits.
    DropOldest,
}

/// One question: what it says, and how to sample the answer.
pub struct Request<'a> {
    pub input: Input<'a>,
    pub sampling: Sampling,
    pub overflow: Overflow,
    /// Tokenize a raw prompt as plain text: the text of control tokens stays text. (Chat
    /// messages are always plain text; only the template's markup holds control tokens.)
    pub plain_prompt: bool,
    /// Functions the model may call (chats only).
    pub tools: Option<Tools<'a>>,
    /// What becomes of the model's reasoning (chats only).
    pub reasoning: Reasoning,
}

/// What a request would take of the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptCount {
    pub positions: u32,
    pub messages_dropped: u32,
    /// The context's size: the prompt fits when `positions < n_ctx`.
    pub n_ctx: u32,
}

/// Where an answer goes as it is generated.
pub struct Sinks<'a> {
    /// Receives the text in parts of whole UTF-8 characters; returns false to stop.
    pub on_text: &'a mut dyn FnMut(&str) -> bool,
    /// Receives each generated token with its log-probability and `Sampling::n_probs`
    /// alternatives, in generation order (before its text is streamed).
    pub on_token: Option<&'a mut dyn FnMut(&TokenChoice)>,
    /// Receives the reasoning of a chat's answer, kept apart from the text
    /// (`Reasoning::Separate`); returns false to stop.
    pub on_reasoning: Option<&'a mut dyn FnMut(&str) -> bool>,
    /// Receives the tool calls of a chat's answer as they grow; returns false to stop.
    pub on_tool_call: Option<&'a mut dyn FnMut(&ToolCallDelta) -> bool>,
}
