//! `mm_session_ask`: one question with media, answered as a stream and as a whole.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::path::Path;

use crate::capi::library::malloc_string;
use crate::capi::session::{mm_session, with_session};
use crate::error::{fail, mm_status, Result};
use crate::ffi::{boundary, c_str, required, slice, versioned};
use crate::media::Media;
use crate::session::{mm_ask_info, Request, Sampling};

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
}

/// One image or audio clip of a request. All pointers are borrowed for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mm_media {
    /// An `mm_media_kind`.
    pub kind: i32,
    pub width: u32,
    pub height: u32,
    pub path: *const c_char,
    pub data: *const u8,
    pub size: usize,
}

/// Receives the answer as it is generated: `user_data` from the params, and a piece of text:
/// whole UTF-8 characters, NUL-terminated, `len` bytes; valid only during the call. Return
/// false to stop generating (the call then returns `MM_OK`). Called on the thread that called
/// `mm_session_ask`; it must not call into the same session.
pub type mm_text_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, text: *const c_char, len: usize) -> bool>;

/// `seed` value meaning: use the session's seed.
pub const MM_SEED_DEFAULT: u32 = 0xFFFF_FFFF;

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
    /// `n_stop` stop strings (none empty): generation ends before the first one that appears.
    /// Borrowed for the call only.
    pub stop: *const *const c_char,
    pub n_stop: usize,
    /// Optional streaming callback.
    pub on_text: mm_text_callback,
    /// Passed to `on_text`.
    pub user_data: *mut c_void,
}

/// The bytes every version of `mm_ask_params` has: up to and including `prompt`.
const ASK_MIN_SIZE: usize = std::mem::offset_of!(mm_ask_params, prompt) + std::mem::size_of::<*const c_char>();

/// Default request parameters, with `struct_size` set and no prompt.
#[no_mangle]
pub extern "C" fn mm_ask_params_default() -> mm_ask_params {
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
        stop: std::ptr::null(),
        n_stop: 0,
        on_text: None,
        user_data: std::ptr::null_mut(),
    }
}

unsafe fn media_item<'a>(i: usize, m: &'a mm_media) -> Result<Media<'a>> {
    let what = format!("media[{i}]");
    match m.kind {
        k if k == mm_media_kind::MM_MEDIA_FILE as i32 => Ok(Media::File(Path::new(c_str(m.path, &format!("{what}.path"))?))),
        k if k == mm_media_kind::MM_MEDIA_ENCODED as i32 => Ok(Media::Encoded(slice(m.data, m.size, &format!("{what}.data"))?)),
        k if k == mm_media_kind::MM_MEDIA_RGB as i32 => Ok(Media::Rgb { width: m.width, height: m.height, pixels: slice(m.data, m.size, &format!("{what}.data"))? }),
        k => fail(mm_status::MM_ERR_INVALID_ARGUMENT, format!("{what}.kind is {k}, not an mm_media_kind")),
    }
}

/// Asks the session one question: evaluates the prompt and its media, then generates the
/// answer, streaming it to `params->on_text`. On `MM_OK`, if `out_text` is not NULL,
/// `*out_text` is the whole answer (exactly the streamed text), which the caller frees with
/// `mm_string_free`. On failure `*out_text` is NULL. `params` and all it points to are borrowed
/// for the call only. Figures of the request: `mm_session_last_ask`.
#[no_mangle]
pub unsafe extern "C" fn mm_session_ask(s: *mut mm_session, params: *const mm_ask_params, out_text: *mut *mut c_char) -> mm_status {
    boundary("mm_session_ask", || {
        if !out_text.is_null() {
            *out_text = std::ptr::null_mut();
        }
        let p = versioned(params, mm_ask_params_default(), ASK_MIN_SIZE, "params")?;
        let prompt = c_str(p.prompt, "params.prompt")?;
        let items = slice(p.media, p.n_media, "params.media")?;
        let media = items.iter().enumerate().map(|(i, m)| media_item(i, m)).collect::<Result<Vec<_>>>()?;
        let stop = slice(p.stop, p.n_stop, "params.stop")?
            .iter()
            .enumerate()
            .map(|(i, &ptr)| c_str(ptr, &format!("params.stop[{i}]")).map(str::to_owned))
            .collect::<Result<Vec<_>>>()?;
        let sampling = Sampling {
            max_tokens: p.max_tokens,
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            min_p: p.min_p,
            seed: (p.seed != MM_SEED_DEFAULT).then_some(p.seed),
            stop,
        };
        let request = Request { prompt, media: &media, sampling };
        let mut on_text = |piece: &str| match p.on_text {
            Some(cb) => {
                let c = CString::new(piece).unwrap_or_default();
                cb(p.user_data, c.as_ptr(), piece.len())
            }
            None => true,
        };
        let text = with_session(s, |session, cancel| session.ask(&request, &mut on_text, cancel))?;
        if !out_text.is_null() {
            *out_text = malloc_string(&text);
        }
        Ok(())
    })
}

/// Fills `*out` with the figures of the session's last finished request (zeros before the
/// first): positions, tokens evaluated, media encoded, tokens generated, why it stopped, times.
#[no_mangle]
pub unsafe extern "C" fn mm_session_last_ask(s: *const mm_session, out: *mut mm_ask_info) -> mm_status {
    boundary("mm_session_last_ask", || {
        required(out as *const mm_ask_info, "out")?;
        *out = with_session(s, |session, _| Ok(session.last_info()))?;
        Ok(())
    })
}
