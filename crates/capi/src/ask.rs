//! Asking: `mm_ask_params`, media items, chat messages, logit biases and token
//! log-probabilities, `mm_session_ask`, `mm_session_count_tokens` and `mm_session_tokenize`.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::path::Path;

use mm_core::{
    Dry, Input, Media, Message, Overflow, Penalties, Reasoning, Request, Sampling, Sinks, TokenChoice, TokenLogprob,
    ToolCallDelta, ToolChoice, Tools,
};

use crate::boundary::{boundary, c_str, opt_c_str, required, slice, versioned};
use crate::library::hand_out_string;
use crate::session::{mm_session, with_session, MM_SEED_DEFAULT};
use crate::status::{fail, mm_status, Result};

/// How a media item is given.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_media_kind {
    /// `path`: an image or audio file (PNG, JPEG, GIF, BMP, PNM, WebP; WAV, FLAC, MP3).
    MM_MEDIA_FILE = 1,
    /// `data`, `size`: the bytes of such a file.
    MM_MEDIA_ENCODED = 2,
    /// `data`, `width`, `height`: raw pixels, 3 bytes (R, G, B) each, row after row;
    /// `size` must be at least width * height * 3.
    MM_MEDIA_RGB = 3,
    /// `data`, `size`: mono audio, 32-bit float samples (`size` in bytes, a multiple of 4) at
    /// the projector's sample rate (`mm_session_info.audio_sample_rate`).
    MM_MEDIA_PCM_F32 = 4,
}

/// One image or audio clip of a request. All pointers are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_media {
    /// An `mm_media_kind`.
    pub kind: i32,
    pub width: u32,
    pub height: u32,
    /// Reserved: set to zero.
    pub reserved0: u32,
    pub path: *const c_char,
    pub data: *const u8,
    pub size: usize,
}

/// One chat message. All pointers are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_message {
    /// "system", "user", "assistant" (or another role the chat template knows).
    pub role: *const c_char,
    /// The message text, UTF-8. Its media go where its markers stand, or before the text when it
    /// has none.
    pub text: *const c_char,
    /// `n_media` media items of this message (NULL when 0).
    pub media: *const mm_media,
    pub n_media: usize,
}

/// Version 4. What a chat message carries besides its role, text and media, for tool calls
/// (`mm_ask_params.message_ext`: one per message, in the same order). All pointers are NULL
/// (none) or UTF-8, NUL-terminated, and borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_message_ext {
    /// An assistant message's tool calls: OpenAI's `tool_calls` array as JSON text,
    /// `[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments":
    /// "{\"x\": 1}"}}]` (an answer's `mm_session_last_message` has it in this shape).
    pub tool_calls: *const c_char,
    /// A `"tool"` message's call id: the result of the earlier call with this id (a tool result
    /// for an id no earlier call has gives `MM_ERR_INVALID_ARGUMENT`).
    pub tool_call_id: *const c_char,
    /// A `"tool"` message's function name (some templates print it).
    pub name: *const c_char,
    /// An assistant message's reasoning (`reasoning_content` of an earlier answer), for the
    /// templates that show earlier reasoning.
    pub reasoning_content: *const c_char,
}

/// Version 4. What becomes of a model's reasoning (its `<think>` block and the like) in a chat
/// rendered by a Jinja template (`mm_ask_params.reasoning`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_reasoning {
    /// Kept apart from the text: streamed to `on_reasoning`, and the answer's
    /// `reasoning_content` (`mm_session_last_message`); the text holds the rest (default).
    MM_REASONING_SEPARATE = 0,
    /// Left in the text as the model wrote it.
    MM_REASONING_INLINE = 1,
    /// The template is asked not to think (`enable_thinking` false), where it knows how (for
    /// some, an empty think block in the prompt); llama.cpp's parser then reads the answer as
    /// text, so a think block the model writes anyway stays in it.
    MM_REASONING_OFF = 2,
}

/// Version 4. A change of one tool call of an answer being streamed (`mm_tool_call_callback`):
/// the call's index among the answer's calls, then its id and name when it first appears
/// ("" after), and a piece of its arguments (JSON text; "" when none is new). A caller
/// assembles the calls by index: the pieces of one call's arguments, joined in order, are its
/// arguments. Every pointer is NUL-terminated and valid only during the callback.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_tool_call_delta {
    pub index: usize,
    pub id: *const c_char,
    pub name: *const c_char,
    pub arguments: *const c_char,
}

/// Version 4. Receives the tool calls of an answer as they are generated: `user_data` from the
/// params and one change (see `mm_tool_call_delta`). Return false to stop generating. Called on
/// the thread that called `mm_session_ask`; it must not call into the same session.
pub type mm_tool_call_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, delta: *const mm_tool_call_delta) -> bool>;

/// What to do when a chat does not fit in the context.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_overflow {
    /// Fail with `MM_ERR_CONTEXT_FULL` before evaluating anything (default).
    MM_OVERFLOW_FAIL = 0,
    /// Drop the oldest turns (whole user/assistant exchanges), keeping a leading system
    /// message, until the chat fits.
    MM_OVERFLOW_DROP_OLDEST = 1,
}

/// Receives the answer as it is generated: `user_data` from the params, and a piece of text:
/// whole UTF-8 characters, NUL-terminated, `len` bytes; valid only during the call. Return
/// false to stop generating (the call then returns `MM_OK`). Called on the thread that called
/// `mm_session_ask`; it must not call into the same session.
pub type mm_text_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, text: *const c_char, len: usize) -> bool>;

/// A bias added to one token's logit (`mm_ask_params.logit_bias`): +100 all but forces the
/// token, -100 all but bans it, `-INFINITY` bans it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mm_logit_bias {
    /// A token id of the session's model (see `mm_session_tokenize`).
    pub token: i32,
    /// Added to the token's logit: a finite number, or `-INFINITY`.
    pub bias: f32,
}

/// A token and its log-probability (see `mm_token_callback`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_token_logprob {
    /// The token id.
    pub token: i32,
    /// The natural logarithm of the token's probability under the model: the softmax of the
    /// model's logits, before temperature, penalties, logit bias and grammar change them.
    pub logprob: f32,
    /// The token's text: `len` bytes, which may be part of a UTF-8 character (a byte-level
    /// token), NUL-terminated. Valid only during the callback.
    pub text: *const c_char,
    pub len: usize,
}

/// Receives each generated token, in generation order, before its text reaches `on_text`:
/// `user_data` from the params, the token chosen with its log-probability, and the `n_top`
/// (`mm_ask_params.n_probs`, at most the vocabulary size) most likely tokens at that place
/// (NULL when `n_top` is 0), most likely first (ties: the lower id first). Everything pointed to is valid only during
/// the call. Called once for each token `mm_ask_info.tokens_generated` counts (an end of
/// generation token is not reported), on the thread that called `mm_session_ask`; it must not
/// call into the same session.
pub type mm_token_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        chosen: *const mm_token_logprob,
        top: *const mm_token_logprob,
        n_top: usize,
    ),
>;

/// The largest image accepted, in pixels (width x height; 64 megapixels). Larger images are
/// refused with `MM_ERR_MEDIA_DECODE` (files, buffers) or `MM_ERR_INVALID_ARGUMENT` (raw RGB)
/// before they are decoded.
pub const MM_MAX_IMAGE_PIXELS: u64 = 67108864;
const _: () = assert!(MM_MAX_IMAGE_PIXELS == mm_core::MAX_IMAGE_PIXELS);

/// The longest side of an image accepted, in pixels (width or height). Longer images are
/// refused as larger ones are: the resampling before the encoder takes memory in proportion to
/// the longer side.
pub const MM_MAX_IMAGE_SIDE: u32 = 32768;
const _: () = assert!(MM_MAX_IMAGE_SIDE == mm_core::MAX_IMAGE_SIDE);

/// The longest audio clip accepted, in seconds (10 minutes). Longer clips are refused before
/// any sample is allocated or decoded: `MM_MEDIA_PCM_F32` with `MM_ERR_INVALID_ARGUMENT`.
pub const MM_MAX_AUDIO_SECONDS: u32 = 600;
const _: () = assert!(MM_MAX_AUDIO_SECONDS == mm_core::MAX_AUDIO_SECONDS);

/// One request. Get one from `mm_ask_params_default()`, then set `prompt` and the rest.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_ask_params {
    /// `sizeof(mm_ask_params)` of the caller's header; set by `mm_ask_params_default`.
    pub struct_size: u32,
    /// Most tokens to generate (default 256; at least 1).
    pub max_tokens: i32,
    /// The prompt, UTF-8. Each media item goes where a marker stands (see
    /// `mm_session_marker`), in order; with no marker in the prompt, the items go before the
    /// text. Borrowed for the call only.
    pub prompt: *const c_char,
    /// `n_media` media items (NULL when 0). Borrowed for the call only.
    pub media: *const mm_media,
    pub n_media: usize,
    /// Sampling temperature (default 0.8); 0: greedy, always the most likely token.
    pub temperature: f32,
    /// Keep the k most likely tokens (default 40); 0: off.
    pub top_k: i32,
    /// Nucleus sampling (default 0.95); 1: off.
    pub top_p: f32,
    /// Drop tokens below min_p times the best one's probability (default 0.05); 0: off.
    pub min_p: f32,
    /// Sampling seed; `MM_SEED_DEFAULT` (default): the session's seed. The same seed, session
    /// parameters and request give the same text.
    pub seed: u32,
    /// Reserved: set to zero.
    pub reserved0: u32,
    /// `n_stop` stop strings (none empty): generation ends before the first one that appears.
    /// Borrowed for the call only.
    pub stop: *const *const c_char,
    pub n_stop: usize,
    /// Optional streaming callback.
    pub on_text: mm_text_callback,
    /// Passed to `on_text` and `on_token`.
    pub user_data: *mut c_void,
    /// A chat instead of `prompt` (which must then be NULL): `n_messages` messages, rendered
    /// with the session's chat template and ending with the assistant's turn. Borrowed.
    pub messages: *const mm_message,
    pub n_messages: usize,
    /// A GBNF grammar (start rule `root`) the answer must follow; NULL (default): none. An
    /// invalid grammar gives `MM_ERR_INVALID_ARGUMENT`. Borrowed.
    pub grammar: *const c_char,
    /// An `mm_overflow`: what to do when a chat does not fit (default `MM_OVERFLOW_FAIL`).
    pub overflow: i32,
    /// Reserved: set to zero.
    pub reserved1: u32,
    /// Version 2. Repetition penalty on tokens seen in the last `penalty_last_n` tokens (the prompt's text
    /// tokens, then the answer's): a positive logit is divided by it, a negative one multiplied
    /// (default 1: off; > 0).
    pub repeat_penalty: f32,
    /// The window of `repeat_penalty`, `frequency_penalty` and `presence_penalty`, in tokens
    /// (default 64; 0: off; -1: the whole context; a larger window than the context is the
    /// context).
    pub penalty_last_n: i32,
    /// Subtracted from a seen token's logit once per time it was seen (default 0: off).
    pub frequency_penalty: f32,
    /// Subtracted once from the logit of every seen token (default 0: off).
    pub presence_penalty: f32,
    /// Locally typical sampling (default 1: off; in [0, 1]).
    pub typical_p: f32,
    /// DRY ("don't repeat yourself"): a token that would extend a repetition longer than
    /// `dry_allowed_length` tokens loses `dry_multiplier * dry_base^(length -
    /// dry_allowed_length)` of its logit (default 0: off; >= 0). Repetitions that cross a
    /// newline, ':', '"' or '*' are not penalised.
    pub dry_multiplier: f32,
    /// Default 1.75; >= 1.
    pub dry_base: f32,
    /// Default 2; >= 1.
    pub dry_allowed_length: i32,
    /// The window DRY looks for repetitions in, in tokens (default -1: the whole context; 0:
    /// off; a larger window than the context is the context).
    pub dry_penalty_last_n: i32,
    /// How many of the most likely tokens `on_token` receives with each generated token
    /// (default 0; requires `on_token`).
    pub n_probs: i32,
    /// `n_logit_bias` biases added to the logits of tokens, whatever the temperature (NULL
    /// when 0). Borrowed for the call only.
    pub logit_bias: *const mm_logit_bias,
    pub n_logit_bias: usize,
    /// A JSON Schema (JSON text) the answer must validate against, as llama.cpp's converter
    /// turns it into a grammar; NULL (default): none. Excludes `grammar`. A schema that is not
    /// JSON or that the converter cannot convert gives `MM_ERR_INVALID_ARGUMENT` with the
    /// reason. Borrowed for the call only.
    pub json_schema: *const c_char,
    /// Optional: receives each generated token with its log-probability and the `n_probs`
    /// most likely alternatives (OpenAI's `logprobs`).
    pub on_token: mm_token_callback,
    /// Tokenize `prompt` as plain text (default false): the text of control tokens
    /// (such as `<|im_start|>`) then stays text. By default a raw prompt's control-token text
    /// becomes those tokens, as hand-written templates need. Chat `messages` are always plain
    /// text: only the chat template's own markup holds control tokens.
    pub plain_prompt: bool,
    /// Reserved: set to zero.
    pub reserved2: [u8; 7],
    /// Version 4. NULL (default), or `n_messages` entries: what each message of `messages`
    /// carries for tool calls (see `mm_message_ext`). Borrowed for the call only.
    pub message_ext: *const mm_message_ext,
    /// Version 4. Functions the model may call (chats rendered by a Jinja template): OpenAI's
    /// `tools` array as JSON text, `[{"type": "function", "function": {"name": "f",
    /// "description": "...", "parameters": {JSON Schema}}}]`, at most `MM_MAX_TOOLS_BYTES`.
    /// The template describes them to the model, and the answer's tool calls come apart from
    /// its text: `on_tool_call`, `mm_session_last_message`, `mm_ask_info.tool_calls` and
    /// `MM_STOP_TOOL_CALLS`. NULL (default): none. Text that is not a JSON array of tools, or a
    /// schema llama.cpp's converter refuses, gives `MM_ERR_INVALID_ARGUMENT`. Borrowed.
    pub tools: *const c_char,
    /// Version 4. Whether the model must call a tool: "auto" (NULL, the default: it decides),
    /// "none" (text only), "required" (one or more calls, made well-formed by a grammar, so
    /// that even a poor model's arguments validate against their schema), or the name of one
    /// of the tools (a call to it). Borrowed for the call only.
    pub tool_choice: *const c_char,
    /// Version 4. Optional: receives the reasoning of the answer as it is generated
    /// (`MM_REASONING_SEPARATE`, with a template whose models think first). Return false to stop.
    pub on_reasoning: mm_text_callback,
    /// Version 4. Optional: receives the answer's tool calls as they are generated.
    pub on_tool_call: mm_tool_call_callback,
    /// Version 4. An `mm_reasoning` (default `MM_REASONING_SEPARATE`).
    pub reasoning: i32,
    /// Version 4. Whether one answer may make several tool calls (default false).
    pub parallel_tool_calls: bool,
    /// Reserved: set to zero.
    pub reserved3: [u8; 3],
}

/// The sizes of the released versions of `mm_ask_params`, oldest first (each is a `sizeof` an
/// older header gives; `tests/c/abi_snapshot.c` pins them). Fields are only ever appended.
pub(crate) const ASK_VERSIONS: [usize; 9] = [16, 32, 56, 72, 88, 104, 120, 200, 248];

/// The `bool` fields of `mm_ask_params`, checked by [`versioned`] before they are read.
const ASK_BOOLS: [(usize, &str); 2] = [
    (std::mem::offset_of!(mm_ask_params, plain_prompt), "plain_prompt"),
    (std::mem::offset_of!(mm_ask_params, parallel_tool_calls), "parallel_tool_calls"),
];

/// The largest `mm_ask_params.tools` accepted, in bytes.
pub const MM_MAX_TOOLS_BYTES: usize = 65536;
const _: () = assert!(MM_MAX_TOOLS_BYTES == mm_core::MAX_TOOLS_BYTES);

/// Default request parameters, with `struct_size` set and no prompt.
#[no_mangle]
pub extern "C" fn mm_ask_params_default() -> mm_ask_params {
    // SAFETY: all-zero is a valid mm_ask_params (NULL pointers and callback); ask refuses it
    // (struct_size 0), so it is the neutral value after a panic.
    crate::boundary::boundary_value("mm_ask_params_default", unsafe { std::mem::zeroed() }, ask_params_default)
}

fn ask_params_default() -> mm_ask_params {
    let d = Sampling::default();
    mm_ask_params {
        struct_size: std::mem::size_of::<mm_ask_params>() as u32,
        max_tokens: d.max_tokens,
        prompt: std::ptr::null(),
        media: std::ptr::null(),
        n_media: 0,
        temperature: d.temperature,
        top_k: d.top_k,
        top_p: d.top_p,
        min_p: d.min_p,
        seed: MM_SEED_DEFAULT,
        reserved0: 0,
        stop: std::ptr::null(),
        n_stop: 0,
        on_text: None,
        user_data: std::ptr::null_mut(),
        messages: std::ptr::null(),
        n_messages: 0,
        grammar: std::ptr::null(),
        overflow: mm_overflow::MM_OVERFLOW_FAIL as i32,
        reserved1: 0,
        repeat_penalty: d.penalties.repeat,
        penalty_last_n: d.penalties.last_n,
        frequency_penalty: d.penalties.frequency,
        presence_penalty: d.penalties.presence,
        typical_p: d.typical_p,
        dry_multiplier: d.dry.multiplier,
        dry_base: d.dry.base,
        dry_allowed_length: d.dry.allowed_length,
        dry_penalty_last_n: d.dry.last_n,
        n_probs: d.n_probs as i32,
        logit_bias: std::ptr::null(),
        n_logit_bias: 0,
        json_schema: std::ptr::null(),
        on_token: None,
        plain_prompt: false,
        reserved2: [0; 7],
        message_ext: std::ptr::null(),
        tools: std::ptr::null(),
        tool_choice: std::ptr::null(),
        on_reasoning: None,
        on_tool_call: None,
        reasoning: mm_reasoning::MM_REASONING_SEPARATE as i32,
        parallel_tool_calls: false,
        reserved3: [0; 3],
    }
}

/// A media item as the core takes it.
///
/// # Safety
/// The item's pointers must be valid as its kind says, for `'a`.
unsafe fn media_item<'a>(i: usize, m: &'a mm_media) -> Result<Media<'a>> {
    let what = format!("media[{i}]");
    // SAFETY: the caller's contract.
    unsafe {
        match m.kind {
            k if k == mm_media_kind::MM_MEDIA_FILE as i32 => {
                Ok(Media::File(Path::new(c_str(m.path, &format!("{what}.path"))?)))
            }
            k if k == mm_media_kind::MM_MEDIA_ENCODED as i32 => {
                Ok(Media::Encoded(slice(m.data, m.size, &format!("{what}.data"))?))
            }
            k if k == mm_media_kind::MM_MEDIA_RGB as i32 => Ok(Media::Rgb {
                width: m.width,
                height: m.height,
                pixels: slice(m.data, m.size, &format!("{what}.data"))?,
            }),
            k if k == mm_media_kind::MM_MEDIA_PCM_F32 as i32 => {
                Ok(Media::Pcm(slice(m.data, m.size, &format!("{what}.data"))?))
            }
            k => fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("{what}.kind is {k}, not an mm_media_kind")),
        }
    }
}

/// The request's parts, borrowed from the caller's params.
struct Parts<'a> {
    media: Vec<Media<'a>>,
    /// Each message's role and text, media, and its tool call fields.
    messages: Vec<(&'a str, &'a str, Vec<Media<'a>>, Message<'a>)>,
    prompt: Option<&'a str>,
    sampling: Sampling,
    overflow: Overflow,
    plain_prompt: bool,
    tools: Option<Tools<'a>>,
    reasoning: Reasoning,
}

impl<'a> Parts<'a> {
    /// # Safety
    /// Every pointer in `p` must be valid as its field's comment says, for `'a`.
    unsafe fn read(p: &'a mm_ask_params) -> Result<Parts<'a>> {
        // SAFETY: the caller's contract covers every pointer read here.
        unsafe {
            let media_of = |items: &'a [mm_media]| {
                items.iter().enumerate().map(|(i, m)| media_item(i, m)).collect::<Result<Vec<_>>>()
            };
            let ext = match p.message_ext.is_null() {
                true => None,
                false => Some(slice(p.message_ext, p.n_messages, "params.message_ext")?),
            };
            let messages = slice(p.messages, p.n_messages, "params.messages")?
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let tool_fields = match ext.map(|e| &e[i]) {
                        Some(e) => message_ext(i, e)?,
                        None => Message::default(),
                    };
                    Ok((
                        c_str(m.role, &format!("params.messages[{i}].role"))?,
                        c_str(m.text, &format!("params.messages[{i}].text"))?,
                        media_of(slice(m.media, m.n_media, &format!("params.messages[{i}].media"))?)?,
                        tool_fields,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let prompt = opt_c_str(p.prompt, "params.prompt")?;
            match (prompt.is_some(), p.n_messages > 0) {
                (true, true) => {
                    return fail(mm_status::MM_ERR_INVALID_ARGUMENT, "params has both a prompt and messages; set one")
                }
                (false, false) => {
                    return fail(mm_status::MM_ERR_NULL_ARGUMENT, "params.prompt is NULL and there are no messages")
                }
                (false, true) if p.n_media > 0 => {
                    return fail(
                        mm_status::MM_ERR_INVALID_ARGUMENT,
                        "params.media is for prompts; attach media to messages",
                    )
                }
                _ => {}
            }
            let stop = slice(p.stop, p.n_stop, "params.stop")?
                .iter()
                .enumerate()
                .map(|(i, &ptr)| c_str(ptr, &format!("params.stop[{i}]")).map(str::to_owned))
                .collect::<Result<Vec<_>>>()?;
            let overflow = match p.overflow {
                x if x == mm_overflow::MM_OVERFLOW_FAIL as i32 => Overflow::Fail,
                x if x == mm_overflow::MM_OVERFLOW_DROP_OLDEST as i32 => Overflow::DropOldest,
                x => {
                    return fail(
                        mm_status::MM_ERR_INVALID_ARGUMENT,
                        format!("params.overflow is {x}, not an mm_overflow"),
                    )
                }
            };
            if p.n_probs < 0 {
                return fail(
                    mm_status::MM_ERR_INVALID_ARGUMENT,
                    format!("params.n_probs is {}; it must be >= 0", p.n_probs),
                );
            }
            let sampling = Sampling {
                max_tokens: p.max_tokens,
                temperature: p.temperature,
                top_k: p.top_k,
                top_p: p.top_p,
                min_p: p.min_p,
                typical_p: p.typical_p,
                seed: (p.seed != MM_SEED_DEFAULT).then_some(p.seed),
                stop,
                grammar: opt_c_str(p.grammar, "params.grammar")?.map(str::to_owned),
                json_schema: opt_c_str(p.json_schema, "params.json_schema")?.map(str::to_owned),
                penalties: Penalties {
                    last_n: p.penalty_last_n,
                    repeat: p.repeat_penalty,
                    frequency: p.frequency_penalty,
                    presence: p.presence_penalty,
                },
                dry: Dry {
                    multiplier: p.dry_multiplier,
                    base: p.dry_base,
                    allowed_length: p.dry_allowed_length,
                    last_n: p.dry_penalty_last_n,
                },
                logit_bias: slice(p.logit_bias, p.n_logit_bias, "params.logit_bias")?
                    .iter()
                    .map(|b| (b.token, b.bias))
                    .collect(),
                n_probs: p.n_probs as usize,
            };
            Ok(Parts {
                media: media_of(slice(p.media, p.n_media, "params.media")?)?,
                messages,
                prompt,
                sampling,
                overflow,
                plain_prompt: p.plain_prompt,
                tools: tools(p)?,
                reasoning: reasoning(p.reasoning)?,
            })
        }
    }

    /// Runs `f` on the request these parts make.
    fn with_request<T>(self, f: impl FnOnce(&Request) -> Result<T>) -> Result<T> {
        let messages: Vec<Message> = self
            .messages
            .iter()
            .map(|(role, text, media, tool_fields)| Message { role, text, media, ..*tool_fields })
            .collect();
        let input = match self.prompt {
            Some(text) => Input::Prompt { text, media: &self.media },
            None => Input::Chat(&messages),
        };
        f(&Request {
            input,
            sampling: self.sampling,
            overflow: self.overflow,
            plain_prompt: self.plain_prompt,
            tools: self.tools,
            reasoning: self.reasoning,
        })
    }
}

/// The tool call fields of message `i`.
///
/// # Safety
/// `e`'s pointers are NULL or NUL-terminated strings valid for `'a`.
unsafe fn message_ext<'a>(i: usize, e: &'a mm_message_ext) -> Result<Message<'a>> {
    let field = |ptr, name: &str| {
        // SAFETY: the caller's contract.
        unsafe { opt_c_str(ptr, &format!("params.message_ext[{i}].{name}")) }
    };
    Ok(Message {
        tool_calls: field(e.tool_calls, "tool_calls")?,
        tool_call_id: field(e.tool_call_id, "tool_call_id")?,
        name: field(e.name, "name")?,
        reasoning: field(e.reasoning_content, "reasoning_content")?,
        ..Message::default()
    })
}

/// The request's tools and tool choice.
///
/// # Safety
/// `p.tools` and `p.tool_choice` are NULL or NUL-terminated strings valid for `'a`.
unsafe fn tools<'a>(p: &'a mm_ask_params) -> Result<Option<Tools<'a>>> {
    // SAFETY: the caller's contract.
    let (json, choice) =
        unsafe { (opt_c_str(p.tools, "params.tools")?, opt_c_str(p.tool_choice, "params.tool_choice")?) };
    let choice = match choice {
        None | Some("auto") => ToolChoice::Auto,
        Some("none") => ToolChoice::None,
        Some("required") => ToolChoice::Required,
        Some(name) => ToolChoice::Function(name),
    };
    match json {
        Some(json) => Ok(Some(Tools { json, choice, parallel: p.parallel_tool_calls })),
        None if choice != ToolChoice::Auto => {
            fail(mm_status::MM_ERR_INVALID_ARGUMENT, "params.tool_choice is set but params.tools is NULL")
        }
        None => Ok(None),
    }
}

fn reasoning(value: i32) -> Result<Reasoning> {
    match value {
        x if x == mm_reasoning::MM_REASONING_SEPARATE as i32 => Ok(Reasoning::Separate),
        x if x == mm_reasoning::MM_REASONING_INLINE as i32 => Ok(Reasoning::Inline),
        x if x == mm_reasoning::MM_REASONING_OFF as i32 => Ok(Reasoning::Off),
        x => fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("params.reasoning is {x}, not an mm_reasoning")),
    }
}

/// Asks the session one question, given as a raw `prompt` or as chat `messages`. The session
/// keeps its KV cache between calls: what a request shares with the cache (earlier turns, their
/// images) is not evaluated again, and a request that differs from it is evaluated from the
/// first difference. Then the answer is generated and streamed to `params->on_text`. On
/// `MM_OK`, if `out_text` is not NULL, `*out_text` is the whole answer (exactly the streamed
/// text), which the caller frees with `mm_string_free`. On failure `*out_text` is NULL.
/// `params` and all it points to are borrowed for the call only. Figures of the request:
/// `mm_session_last_ask`.
#[no_mangle]
pub unsafe extern "C" fn mm_session_ask(
    s: *mut mm_session,
    params: *const mm_ask_params,
    out_text: *mut *mut c_char,
) -> mm_status {
    boundary("mm_session_ask", || {
        if !out_text.is_null() {
            // SAFETY: the caller's contract: NULL or writable.
            unsafe { *out_text = std::ptr::null_mut() };
        }
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes. The struct's
        // other fields are integers, floats and pointers, and its bools are those listed.
        let p = unsafe { versioned(params, ask_params_default(), &ASK_VERSIONS, &ASK_BOOLS, "params") }?;
        let text_sink = |cb: mm_text_callback| {
            move |piece: &str| match cb {
                Some(cb) => {
                    let c = CString::new(piece).unwrap_or_default();
                    // SAFETY: the caller's callback, with its user data and a NUL-terminated piece.
                    unsafe { cb(p.user_data, c.as_ptr(), piece.len()) }
                }
                None => true,
            }
        };
        let (mut on_text, mut on_reasoning) = (text_sink(p.on_text), text_sink(p.on_reasoning));
        let mut on_tool_call = p.on_tool_call.map(|cb| {
            move |d: &ToolCallDelta| {
                let [id, name, arguments] = [d.id, d.name, d.arguments].map(|t| CString::new(t).unwrap_or_default());
                let delta = mm_tool_call_delta {
                    index: d.index,
                    id: id.as_ptr(),
                    name: name.as_ptr(),
                    arguments: arguments.as_ptr(),
                };
                // SAFETY: the caller's callback, with its user data and a delta whose strings
                // live for the call.
                unsafe { cb(p.user_data, &delta) }
            }
        });
        let mut on_token = p.on_token.map(|cb| {
            move |choice: &TokenChoice| {
                let c = CTokenChoice::new(choice);
                // NULL, not an empty Vec's dangling pointer, when there are no alternatives: a
                // runtime that scans its callback's frames (Go's) refuses a pointer of 8.
                let top = if c.top.is_empty() { std::ptr::null() } else { c.top.as_ptr() };
                // SAFETY: the caller's callback, with its user data and entries whose texts
                // live in `c` for the call.
                unsafe { cb(p.user_data, &c.chosen, top, c.top.len()) }
            }
        });
        // SAFETY: the caller's contract for everything `p` points to.
        let parts = unsafe { Parts::read(&p) }?;
        let text = parts.with_request(|request| {
            let sinks = Sinks {
                on_text: &mut on_text,
                on_token: on_token.as_mut().map(|f| f as &mut dyn FnMut(&TokenChoice)),
                on_reasoning: p.on_reasoning.is_some().then_some(&mut on_reasoning as &mut dyn FnMut(&str) -> bool),
                on_tool_call: on_tool_call.as_mut().map(|f| f as &mut dyn FnMut(&ToolCallDelta) -> bool),
            };
            with_session(s, |session| Ok(session.ask(request, sinks)?))
        })?;
        if !out_text.is_null() {
            // SAFETY: the caller's contract: NULL (checked) or writable.
            unsafe { hand_out_string(out_text, &text, "answer") }?;
        }
        Ok(())
    })
}

/// A token choice as the C callback receives it: entries whose texts point into `texts`.
struct CTokenChoice {
    chosen: mm_token_logprob,
    top: Vec<mm_token_logprob>,
    /// Each entry's text, NUL-terminated (the pointers above point into these).
    _texts: Vec<Vec<u8>>,
}

impl CTokenChoice {
    fn new(choice: &TokenChoice) -> Self {
        let texts: Vec<Vec<u8>> =
            std::iter::once(&choice.sampled).chain(&choice.top).map(|t| [&t.piece[..], b"\0"].concat()).collect();
        let entry = |t: &TokenLogprob, text: &[u8]| mm_token_logprob {
            token: t.token,
            logprob: t.logprob,
            text: text.as_ptr().cast(),
            len: t.piece.len(),
        };
        let chosen = entry(&choice.sampled, &texts[0]);
        let top = choice.top.iter().zip(&texts[1..]).map(|(t, text)| entry(t, text)).collect();
        CTokenChoice { chosen, top, _texts: texts }
    }
}

/// Writes to `*out_text` the text of the request's prompt: its chat `messages` rendered by the
/// session's chat template (with `tools`, `tool_choice` and `reasoning` as they change it), or
/// its raw `prompt`, with the marker (`mm_session_marker`) where each media item goes; nothing
/// is evaluated and media are not decoded. The caller frees the text with `mm_string_free`.
/// For a Jinja template it is the text llama.cpp's chat layer (`common_chat_templates_apply`)
/// renders, as llama-server would; the messages' texts are then tokenized without control
/// tokens, the template's markup with them. Sampling fields are ignored.
#[no_mangle]
pub unsafe extern "C" fn mm_session_apply_template(
    s: *mut mm_session,
    params: *const mm_ask_params,
    out_text: *mut *mut c_char,
) -> mm_status {
    boundary("mm_session_apply_template", || {
        // SAFETY: the caller's contract: NULL or writable.
        unsafe { required(out_text as *const *mut c_char, "out_text") }?;
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes. The struct's
        // other fields are integers, floats and pointers, and its bools are those listed.
        let p = unsafe { versioned(params, ask_params_default(), &ASK_VERSIONS, &ASK_BOOLS, "params") }?;
        // SAFETY: the caller's contract for everything `p` points to.
        let parts = unsafe { Parts::read(&p) }?;
        let text = parts.with_request(|request| with_session(s, |session| Ok(session.prompt_text(request)?)))?;
        // SAFETY: checked writable above.
        unsafe { hand_out_string(out_text, &text, "prompt") }
    })
}

/// Counts the positions the request's prompt would take in the context (text tokens plus media
/// embeddings, after the chat template and any dropped turns), without evaluating anything, and
/// writes them to `*out_positions`. Media are decoded to count them. Sampling fields are
/// ignored. A request that does not fit gets its count too, with `MM_ERR_CONTEXT_FULL`.
#[no_mangle]
pub unsafe extern "C" fn mm_session_count_tokens(
    s: *mut mm_session,
    params: *const mm_ask_params,
    out_positions: *mut u32,
) -> mm_status {
    boundary("mm_session_count_tokens", || {
        // SAFETY: the caller's contract: NULL or writable.
        unsafe { required(out_positions as *const u32, "out_positions") }?;
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes. The struct's
        // other fields are integers, floats and pointers, and its bools are those listed.
        let p = unsafe { versioned(params, ask_params_default(), &ASK_VERSIONS, &ASK_BOOLS, "params") }?;
        // SAFETY: the caller's contract for everything `p` points to.
        let parts = unsafe { Parts::read(&p) }?;
        let count = parts.with_request(|request| with_session(s, |session| Ok(session.count_positions(request)?)))?;
        // SAFETY: checked not NULL above.
        unsafe { *out_positions = count.positions };
        if count.positions >= count.n_ctx {
            return fail(
                mm_status::MM_ERR_CONTEXT_FULL,
                format!(
                    "the prompt takes {} positions but the context holds {} (one more is needed to answer)",
                    count.positions, count.n_ctx
                ),
            );
        }
        Ok(())
    })
}

/// Tokenizes `text` (UTF-8, NUL-terminated) with the session's model, without the tokens the
/// model adds around a prompt (BOS), for example to build `mm_ask_params.logit_bias`. With
/// `parse_special`, the text of a control token (such as "<|im_end|>") becomes that token.
/// `*out_n_tokens` is the number of tokens; the first `min(capacity, *out_n_tokens)` of them
/// are written to `tokens`, which the caller owns (NULL when `capacity` is 0, to ask for the
/// count). `text` is borrowed for the call only.
#[no_mangle]
pub unsafe extern "C" fn mm_session_tokenize(
    s: *const mm_session,
    text: *const c_char,
    parse_special: bool,
    tokens: *mut i32,
    capacity: usize,
    out_n_tokens: *mut usize,
) -> mm_status {
    boundary("mm_session_tokenize", || {
        // SAFETY: the caller's contract: NULL or writable.
        unsafe { required(out_n_tokens as *const usize, "out_n_tokens") }?;
        // SAFETY: the caller's contract: NULL or a NUL-terminated string.
        let text = unsafe { c_str(text, "text") }?;
        if tokens.is_null() && capacity > 0 {
            return fail(mm_status::MM_ERR_NULL_ARGUMENT, format!("tokens is NULL but capacity is {capacity}"));
        }
        let ids = with_session(s, |session| Ok(session.tokenize(text, parse_special)?))?;
        let n = ids.len().min(capacity);
        // SAFETY: `tokens` has room for `capacity` >= `n` tokens (the caller's contract), and
        // `out_n_tokens` was checked above.
        unsafe {
            if n > 0 {
                std::ptr::copy_nonoverlapping(ids.as_ptr(), tokens, n);
            }
            *out_n_tokens = ids.len();
        }
        Ok(())
    })
}
