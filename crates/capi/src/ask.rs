//! Asking: `mm_ask_params`, media items and chat messages, `mm_session_ask` and
//! `mm_session_count_tokens`.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::path::Path;

use mm_core::{Input, Media, Message, Overflow, Request, Sampling};

use crate::boundary::{boundary, c_str, opt_c_str, required, slice, versioned};
use crate::library::malloc_string;
use crate::session::{mm_session, with_session};
use crate::status::{fail, mm_status, Result};

/// How a media item is given.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mm_media_kind {
    /// `path`: an image or audio file (PNG, JPEG, BMP, GIF, ...; WAV, MP3, FLAC).
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
pub type mm_text_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, text: *const c_char, len: usize) -> bool>;

/// `seed` value meaning: use the session's seed.
pub const MM_SEED_DEFAULT: u32 = 0xFFFF_FFFF;

/// The largest image accepted, in pixels (width x height; 64 megapixels). Larger images are
/// refused with `MM_ERR_MEDIA_DECODE` (files, buffers) or `MM_ERR_INVALID_ARGUMENT` (raw RGB)
/// before they are decoded.
pub const MM_MAX_IMAGE_PIXELS: u64 = 67108864;
const _: () = assert!(MM_MAX_IMAGE_PIXELS == mm_core::MAX_IMAGE_PIXELS);

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
    /// Passed to `on_text`.
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
    /// Version 2. Tokenize `prompt` as plain text (default false): the text of control tokens
    /// (such as `<|im_start|>`) then stays text. By default a raw prompt's control-token text
    /// becomes those tokens, as hand-written templates need. Chat `messages` are always plain
    /// text: only the chat template's own markup holds control tokens.
    pub plain_prompt: bool,
    /// Reserved: set to zero.
    pub reserved2: [u8; 7],
}

/// The sizes of the released versions of `mm_ask_params`, oldest first (each is a `sizeof` an
/// older header gives; `tests/c/abi_snapshot.c` pins them). Fields are only ever appended.
pub(crate) const ASK_VERSIONS: [usize; 8] = [16, 32, 56, 72, 88, 104, 120, 128];

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
        plain_prompt: false,
        reserved2: [0; 7],
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
            k if k == mm_media_kind::MM_MEDIA_FILE as i32 => Ok(Media::File(Path::new(c_str(m.path, &format!("{what}.path"))?))),
            k if k == mm_media_kind::MM_MEDIA_ENCODED as i32 => Ok(Media::Encoded(slice(m.data, m.size, &format!("{what}.data"))?)),
            k if k == mm_media_kind::MM_MEDIA_RGB as i32 => Ok(Media::Rgb { width: m.width, height: m.height, pixels: slice(m.data, m.size, &format!("{what}.data"))? }),
            k if k == mm_media_kind::MM_MEDIA_PCM_F32 as i32 => Ok(Media::Pcm(slice(m.data, m.size, &format!("{what}.data"))?)),
            k => fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("{what}.kind is {k}, not an mm_media_kind")),
        }
    }
}

/// The request's parts, borrowed from the caller's params.
struct Parts<'a> {
    media: Vec<Media<'a>>,
    messages: Vec<(&'a str, &'a str, Vec<Media<'a>>)>,
    prompt: Option<&'a str>,
    sampling: Sampling,
    overflow: Overflow,
    plain_prompt: bool,
}

impl<'a> Parts<'a> {
    /// # Safety
    /// Every pointer in `p` must be valid as its field's comment says, for `'a`.
    unsafe fn read(p: &'a mm_ask_params) -> Result<Parts<'a>> {
        // SAFETY: the caller's contract covers every pointer read here.
        unsafe {
            let media_of = |items: &'a [mm_media]| items.iter().enumerate().map(|(i, m)| media_item(i, m)).collect::<Result<Vec<_>>>();
            let messages = slice(p.messages, p.n_messages, "params.messages")?
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    Ok((
                        c_str(m.role, &format!("params.messages[{i}].role"))?,
                        c_str(m.text, &format!("params.messages[{i}].text"))?,
                        media_of(slice(m.media, m.n_media, &format!("params.messages[{i}].media"))?)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let prompt = opt_c_str(p.prompt, "params.prompt")?;
            match (prompt.is_some(), p.n_messages > 0) {
                (true, true) => return fail(mm_status::MM_ERR_INVALID_ARGUMENT, "params has both a prompt and messages; set one"),
                (false, false) => return fail(mm_status::MM_ERR_NULL_ARGUMENT, "params.prompt is NULL and there are no messages"),
                (false, true) if p.n_media > 0 => return fail(mm_status::MM_ERR_INVALID_ARGUMENT, "params.media is for prompts; attach media to messages"),
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
                x => return fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("params.overflow is {x}, not an mm_overflow")),
            };
            let sampling = Sampling {
                max_tokens: p.max_tokens,
                temperature: p.temperature,
                top_k: p.top_k,
                top_p: p.top_p,
                min_p: p.min_p,
                seed: (p.seed != MM_SEED_DEFAULT).then_some(p.seed),
                stop,
                grammar: opt_c_str(p.grammar, "params.grammar")?.map(str::to_owned),
            };
            Ok(Parts { media: media_of(slice(p.media, p.n_media, "params.media")?)?, messages, prompt, sampling, overflow, plain_prompt: p.plain_prompt })
        }
    }

    /// Runs `f` on the request these parts make.
    fn with_request<T>(self, f: impl FnOnce(&Request) -> Result<T>) -> Result<T> {
        let messages: Vec<Message> = self.messages.iter().map(|(role, text, media)| Message { role, text, media }).collect();
        let input = match self.prompt {
            Some(text) => Input::Prompt { text, media: &self.media },
            None => Input::Chat(&messages),
        };
        f(&Request { input, sampling: self.sampling, overflow: self.overflow, plain_prompt: self.plain_prompt })
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
pub unsafe extern "C" fn mm_session_ask(s: *mut mm_session, params: *const mm_ask_params, out_text: *mut *mut c_char) -> mm_status {
    boundary("mm_session_ask", || {
        if !out_text.is_null() {
            // SAFETY: the caller's contract: NULL or writable.
            unsafe { *out_text = std::ptr::null_mut() };
        }
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes.
        let p = unsafe { versioned(params, ask_params_default(), &ASK_VERSIONS, "params") }?;
        let mut on_text = |piece: &str| match p.on_text {
            Some(cb) => {
                let c = CString::new(piece).unwrap_or_default();
                // SAFETY: the caller's callback, with its user data and a NUL-terminated piece.
                unsafe { cb(p.user_data, c.as_ptr(), piece.len()) }
            }
            None => true,
        };
        // SAFETY: the caller's contract for everything `p` points to.
        let parts = unsafe { Parts::read(&p) }?;
        let text = parts.with_request(|request| with_session(s, |session| Ok(session.ask(request, &mut on_text)?)))?;
        if !out_text.is_null() {
            let copy = malloc_string(&text);
            if copy.is_null() {
                return fail(mm_status::MM_ERR_INTERNAL, format!("out of memory copying the answer ({} bytes)", text.len()));
            }
            // SAFETY: checked writable above.
            unsafe { *out_text = copy };
        }
        Ok(())
    })
}

/// Counts the positions the request's prompt would take in the context (text tokens plus media
/// embeddings, after the chat template and any dropped turns), without evaluating anything, and
/// writes them to `*out_positions`. Media are decoded to count them. Sampling fields are
/// ignored. A request that does not fit gets its count too, with `MM_ERR_CONTEXT_FULL`.
#[no_mangle]
pub unsafe extern "C" fn mm_session_count_tokens(s: *mut mm_session, params: *const mm_ask_params, out_positions: *mut u32) -> mm_status {
    boundary("mm_session_count_tokens", || {
        // SAFETY: the caller's contract: NULL or writable.
        unsafe { required(out_positions as *const u32, "out_positions") }?;
        // SAFETY: the caller's contract: NULL or `struct_size` readable bytes.
        let p = unsafe { versioned(params, ask_params_default(), &ASK_VERSIONS, "params") }?;
        // SAFETY: the caller's contract for everything `p` points to.
        let parts = unsafe { Parts::read(&p) }?;
        let count = parts.with_request(|request| with_session(s, |session| Ok(session.count_positions(request)?)))?;
        // SAFETY: checked not NULL above.
        unsafe { *out_positions = count.positions };
        if count.positions >= count.n_ctx {
            return fail(mm_status::MM_ERR_CONTEXT_FULL, format!("the prompt takes {} positions but the context holds {} (one more is needed to answer)", count.positions, count.n_ctx));
        }
        Ok(())
    })
}
