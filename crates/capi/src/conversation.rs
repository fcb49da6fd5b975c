//! The conversation a session keeps: the figures of its last request, and emptying it.

use std::os::raw::c_char;

use mm_core::{json_quote as quote, Answer, AskInfo, StopReason};

use crate::boundary::{boundary, required, write_versioned};
use crate::library::hand_out_string;
use crate::session::{mm_session, with_session};
use crate::status::mm_status;

/// Why generation ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_stop_reason {
    /// No request has finished yet (or the last one failed).
    MM_STOP_NONE = 0,
    /// The model produced an end-of-generation token.
    MM_STOP_EOG = 1,
    /// `max_tokens` tokens were generated.
    MM_STOP_MAX_TOKENS = 2,
    /// A stop string appeared (it is not part of the text).
    MM_STOP_STRING = 3,
    /// The text callback returned false.
    MM_STOP_CALLBACK = 4,
    /// The context window filled up.
    MM_STOP_CONTEXT_FULL = 5,
    /// Version 4. The answer is tool calls (`mm_ask_info.tool_calls`; OpenAI's
    /// `finish_reason: "tool_calls"`): it ended as `MM_STOP_EOG` or `MM_STOP_STRING` would have.
    MM_STOP_TOOL_CALLS = 6,
}

impl From<StopReason> for mm_stop_reason {
    fn from(r: StopReason) -> Self {
        match r {
            StopReason::None => mm_stop_reason::MM_STOP_NONE,
            StopReason::Eog => mm_stop_reason::MM_STOP_EOG,
            StopReason::MaxTokens => mm_stop_reason::MM_STOP_MAX_TOKENS,
            StopReason::StopString => mm_stop_reason::MM_STOP_STRING,
            StopReason::Callback => mm_stop_reason::MM_STOP_CALLBACK,
            StopReason::ContextFull => mm_stop_reason::MM_STOP_CONTEXT_FULL,
            StopReason::ToolCalls => mm_stop_reason::MM_STOP_TOOL_CALLS,
        }
    }
}

/// Figures of the last finished request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mm_ask_info {
    /// `sizeof(mm_ask_info)` of the caller's header: set it before the call.
    pub struct_size: u32,
    /// Positions the prompt (text and media) takes in the context.
    pub prompt_positions: u32,
    /// Positions of the prompt found in the cache from earlier requests (not evaluated again).
    pub positions_reused: u32,
    /// Prompt tokens (text and media embeddings) evaluated by this request.
    pub tokens_evaluated: u32,
    /// Media items run through the projector's encoder by this request.
    pub media_encoded: u32,
    /// Tokens generated.
    pub tokens_generated: u32,
    /// Oldest messages dropped to make the chat fit (`MM_OVERFLOW_DROP_OLDEST`).
    pub messages_dropped: u32,
    /// Why generation ended (an `mm_stop_reason`).
    pub stop_reason: i32,
    /// Wall time of prompt evaluation (media encoding included) and of generation, in ms.
    pub prompt_ms: f64,
    pub generate_ms: f64,
    /// Text tokens of the prompt, all of them (`prompt_positions` = `prompt_tokens` +
    /// `media_positions`). OpenAI's `usage.prompt_tokens` is `prompt_tokens + media_tokens`,
    /// its `completion_tokens` is `tokens_generated`, its `cached_tokens` `positions_reused`.
    pub prompt_tokens: u32,
    /// Media items in the prompt (encoded by this request or found in the cache).
    pub media_items: u32,
    /// Embeddings the prompt's media give the model.
    pub media_tokens: u32,
    /// Positions those embeddings take (fewer than `media_tokens` with M-RoPE models).
    pub media_positions: u32,
    /// Version 3. How long the request waited for a slot of its context, in ms: 0 when one was
    /// free (always, for a session created with `n_parallel` 1 and its forks).
    pub slot_wait_ms: f64,
    /// Version 3. The most sessions whose tokens one step of this request carried, its own
    /// included (1: it decoded alone).
    pub most_together: u32,
    /// Reserved (zero).
    pub reserved0: u32,
    /// Version 4. Tool calls in the answer (see `mm_session_last_message`).
    pub tool_calls: u32,
    /// Reserved (zero).
    pub reserved1: u32,
}

impl From<AskInfo> for mm_ask_info {
    fn from(i: AskInfo) -> Self {
        mm_ask_info {
            struct_size: std::mem::size_of::<mm_ask_info>() as u32,
            prompt_positions: i.prompt_positions,
            positions_reused: i.positions_reused,
            tokens_evaluated: i.tokens_evaluated,
            media_encoded: i.media_encoded,
            tokens_generated: i.tokens_generated,
            messages_dropped: i.messages_dropped,
            stop_reason: mm_stop_reason::from(i.stop_reason) as i32,
            prompt_ms: i.prompt_ms,
            generate_ms: i.generate_ms,
            prompt_tokens: i.prompt_usage.text_tokens,
            media_items: i.prompt_usage.media_items,
            media_tokens: i.prompt_usage.media_tokens,
            media_positions: i.prompt_usage.media_positions,
            slot_wait_ms: i.slot_wait_ms,
            most_together: i.most_together,
            reserved0: 0,
            tool_calls: i.tool_calls,
            reserved1: 0,
        }
    }
}

/// Fills `*out` (set `out->struct_size` first) with the figures of the session's last finished
/// request (zeros before the first): positions, positions reused from the cache, tokens
/// evaluated, media encoded, tokens generated, why it stopped, times, and what the prompt is
/// made of (text tokens, media items, media embeddings and positions).
#[no_mangle]
pub unsafe extern "C" fn mm_session_last_ask(s: *const mm_session, out: *mut mm_ask_info) -> mm_status {
    boundary("mm_session_last_ask", || {
        let info = mm_ask_info::from(with_session(s, |session| Ok(session.last_ask()))?);
        // SAFETY: the caller's contract: NULL or `struct_size` writable bytes.
        unsafe { write_versioned(out, &info, std::mem::size_of::<u32>(), "out") }
    })
}

/// Writes to `*out_json` the session's last finished answer as OpenAI's assistant message, JSON
/// text the caller frees with `mm_string_free`: `{"role": "assistant", "content": text (null
/// when the answer is only tool calls), "reasoning_content": the reasoning kept apart (when
/// there is some), "tool_calls": [{"id", "type": "function", "function": {"name",
/// "arguments"}}] (when there are some)}`. Before the first answer (or after a failed request)
/// the content is "". Tool call ids the model does not write are made up (`call_` and 24
/// letters and digits, from the request's seed).
#[no_mangle]
pub unsafe extern "C" fn mm_session_last_message(s: *const mm_session, out_json: *mut *mut c_char) -> mm_status {
    boundary("mm_session_last_message", || {
        // SAFETY: the caller's contract: NULL or writable.
        unsafe { required(out_json as *const *mut c_char, "out_json") }?;
        let json = with_session(s, |session| Ok(message_json(session.last_answer())))?;
        // SAFETY: checked writable above.
        unsafe { hand_out_string(out_json, &json, "message") }
    })
}

/// An answer as OpenAI's assistant message (JSON text).
fn message_json(a: &Answer) -> String {
    let content = if a.content.is_empty() && !a.tool_calls.is_empty() { "null".into() } else { quote(&a.content) };
    let mut out = format!("{{\"role\":\"assistant\",\"content\":{content}");
    if !a.reasoning.is_empty() {
        out.push_str(&format!(",\"reasoning_content\":{}", quote(&a.reasoning)));
    }
    if !a.tool_calls.is_empty() {
        let calls: Vec<String> = a
            .tool_calls
            .iter()
            .map(|c| {
                format!(
                    "{{\"id\":{},\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":{}}}}}",
                    quote(&c.id),
                    quote(&c.name),
                    quote(&c.arguments)
                )
            })
            .collect();
        out.push_str(&format!(",\"tool_calls\":[{}]", calls.join(",")));
    }
    out.push('}');
    out
}

/// Empties the session's conversation cache: the next request evaluates everything.
#[no_mangle]
pub extern "C" fn mm_session_reset(s: *mut mm_session) -> mm_status {
    boundary("mm_session_reset", || {
        with_session(s, |session| {
            let _: () = session.reset();
            Ok(())
        })
    })
}
