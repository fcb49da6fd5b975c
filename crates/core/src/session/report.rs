//! What a session reports: what it is and holds ([`SessionInfo`]), the memory it holds
//! ([`MemoryStats`]) and the figures of its last request ([`AskInfo`], with [`PromptUsage`] and
//! [`StopReason`]), and its answer ([`Answer`]), which the session keeps and the request fills.

use crate::llama::chat::ToolCall;

/// What a session is and holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Context window in positions (of this session's conversation).
    pub n_ctx: u32,
    /// Sessions that can decode together in the session's context (1: it decodes alone).
    pub n_parallel: u32,
    /// Most tokens one step evaluates (shared by the sessions that decode together).
    pub n_batch: u32,
    /// Positions the conversation holds now.
    pub n_past: u32,
    pub supports_vision: bool,
    pub supports_audio: bool,
    /// Sample rate (Hz) the audio encoder expects; 0 without one.
    pub audio_sample_rate: u32,
}

/// Figures of the last finished request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AskInfo {
    /// Positions the prompt (text and media) takes in the context.
    pub prompt_positions: u32,
    /// What the prompt is made of: text tokens, media items, their embeddings and positions.
    pub prompt_usage: PromptUsage,
    /// Positions of the prompt found in the cache from earlier requests (not evaluated again).
    pub positions_reused: u32,
    /// Prompt tokens (text and media embeddings) evaluated by this request.
    pub tokens_evaluated: u32,
    /// Media items run through the projector's encoder by this request.
    pub media_encoded: u32,
    /// Tokens generated.
    pub tokens_generated: u32,
    /// Oldest messages dropped to make the chat fit.
    pub messages_dropped: u32,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// Wall time of prompt evaluation (media encoding included) and of generation, in ms.
    pub prompt_ms: f64,
    pub generate_ms: f64,
    /// How long the request waited for a slot of its context (0: one was free).
    pub slot_wait_ms: f64,
    /// The most sessions whose tokens one step of this request carried, its own included (1:
    /// it decoded alone).
    pub most_together: u32,
    /// Tool calls in the answer.
    pub tool_calls: u32,
}

/// An answer as its chat format reads it: the text, the reasoning kept apart from it, and the
/// tool calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub content: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

/// What a prompt is made of, as a usage report counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptUsage {
    pub text_tokens: u32,
    pub media_items: u32,
    /// Embeddings the media give the model.
    pub media_tokens: u32,
    /// Positions those embeddings take (fewer than the embeddings with M-RoPE).
    pub media_positions: u32,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopReason {
    /// No request has finished yet (or the last one failed).
    #[default]
    None,
    /// The model produced an end-of-generation token.
    Eog,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// A stop string appeared (it is not part of the text).
    StopString,
    /// The text callback returned false.
    Callback,
    /// The context window filled up.
    ContextFull,
    /// The answer is tool calls (it ended as `Eog` or `StopString` would have).
    ToolCalls,
}

/// Bytes a session holds. "gpu" is any non-host device (CUDA, Vulkan, Metal); a CPU build
/// reports 0 there. All figures are exact: the sizes of the buffers llama.cpp and clip.cpp
/// allocated (with mmap, host model weights are file pages the kernel may share or evict).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Text model weights.
    pub model_host: u64,
    pub model_gpu: u64,
    /// KV cache.
    pub kv_host: u64,
    pub kv_gpu: u64,
    /// Compute buffers of the text model.
    pub compute_host: u64,
    pub compute_gpu: u64,
    /// Projector weights plus its compute buffers.
    pub projector_host: u64,
    pub projector_gpu: u64,
    /// How many sessions share the model and projector figures above (forks of one another):
    /// those bytes are held once for all of them.
    pub shared_by: u32,
    /// How many sessions share the context: its compute buffers are held once for all of them,
    /// and the KV cache figures are this session's share (its slot, plus its KV cache parked in
    /// host memory while its slot is lent). 1: the context is the session's own.
    pub context_shared_by: u32,
}
