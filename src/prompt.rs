//! Turns a request (a raw prompt, or chat messages rendered with the model's template) and its
//! media into the items the KV cache is compared with, keeping the mtmd chunks that evaluate
//! them.

use std::ffi::{CStr, CString};

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Error, Result};
use crate::guard;
use crate::kv::Item;
use crate::llama::{Bitmap, Chunks, Model, Projector};
use crate::log;
use crate::media::Media;

/// One chat message: its role ("system", "user", "assistant", ...), text and media.
pub struct Message<'a> {
    pub role: &'a str,
    pub text: &'a str,
    pub media: &'a [Media<'a>],
}

/// What a request says.
pub enum Input<'a> {
    /// Text used as it is, media at its markers.
    Prompt { text: &'a str, media: &'a [Media<'a>] },
    /// Messages rendered with the chat template, ending with the assistant's turn.
    Chat(&'a [Message<'a>]),
}

/// The chat template used when a model has none: ChatML.
pub const FALLBACK_TEMPLATE: &str = "chatml";

/// A tokenized request: its items and, for media items, the chunk that evaluates them.
pub struct Prompt {
    pub items: Vec<Item>,
    /// For each item, the index of its chunk when it is media.
    pub media_chunk: Vec<Option<usize>>,
    pub chunks: Option<Chunks>,
}

impl Prompt {
    pub fn n_pos(&self) -> i32 {
        self.items.iter().map(Item::n_pos).sum()
    }
}

/// Puts `n_media` markers in front of `text` when it has none; fails when it has some other
/// number of them.
pub fn place_markers(text: &str, n_media: usize, marker: &str, whose: &str) -> Result<String> {
    let n_markers = text.matches(marker).count();
    if n_markers == 0 && n_media > 0 {
        Ok(format!("{}{}", format!("{marker}\n").repeat(n_media), text))
    } else if n_markers != n_media {
        fail(MM_ERR_MEDIA_COUNT, format!("{whose} has {n_markers} marker(s) '{marker}' but {n_media} media item(s)"))
    } else {
        Ok(text.to_string())
    }
}

/// Renders messages (with their markers placed) with `template`, a Jinja template string
/// llama.cpp recognises or a built-in name such as "chatml".
pub fn render_chat(template: &str, messages: &[(String, String)]) -> Result<String> {
    let template_c = CString::new(template).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "the chat template contains a NUL byte"))?;
    let owned = messages
        .iter()
        .enumerate()
        .map(|(i, (role, text))| Ok((CString::new(role.as_str()), CString::new(text.as_str()), i)))
        .collect::<Result<Vec<_>>>()?;
    let mut c_strings = Vec::with_capacity(owned.len());
    for (role, text, i) in owned {
        match (role, text) {
            (Ok(r), Ok(t)) => c_strings.push((r, t)),
            _ => return fail(MM_ERR_INVALID_ARGUMENT, format!("message {i} contains a NUL byte")),
        }
    }
    let chat: Vec<sys::llama_chat_message> = c_strings.iter().map(|(r, t)| sys::llama_chat_message { role: r.as_ptr(), content: t.as_ptr() }).collect();
    let mut buf = vec![0u8; 256 + 2 * messages.iter().map(|(r, t)| r.len() + t.len()).sum::<usize>()];
    for _ in 0..2 {
        let n = guard::check(unsafe { guard::mm_guard_chat_apply_template(template_c.as_ptr(), chat.as_ptr(), chat.len(), buf.as_mut_ptr().cast(), buf.len() as i32, guard::THREW) }, "llama_chat_apply_template")?;
        if n < 0 {
            return fail(MM_ERR_UNSUPPORTED, "llama.cpp does not recognise this model's chat template; set chat_template to a built-in name such as \"chatml\"");
        }
        if (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return String::from_utf8(buf).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "the rendered chat is not UTF-8"));
        }
        buf.resize(n as usize, 0);
    }
    fail(MM_ERR_INTERNAL, "llama_chat_apply_template kept asking for more room")
}

/// The model's own chat template, if it has one.
pub fn model_template(model: &Model) -> Option<String> {
    let ptr = unsafe { sys::llama_model_chat_template(model.as_ptr(), std::ptr::null()) };
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// Tokenizes a text-only prompt.
pub fn tokenize_text(model: &Model, text: &str) -> Result<Prompt> {
    let vocab = model.vocab();
    let len = i32::try_from(text.len()).or_else(|_| fail(MM_ERR_CONTEXT_FULL, "the prompt is longer than 2 GiB"))?;
    let mut tokens = vec![0; text.len() + 8];
    let tokenize = |tokens: &mut Vec<sys::llama_token>| {
        guard::check(unsafe { guard::mm_guard_tokenize(vocab, text.as_ptr().cast(), len, tokens.as_mut_ptr(), tokens.len() as i32, true, true, guard::THREW) }, "llama_tokenize")
    };
    let mut n = tokenize(&mut tokens)?;
    if n < 0 {
        tokens.resize(n.unsigned_abs() as usize, 0);
        n = tokenize(&mut tokens)?;
    }
    if n < 0 {
        return fail(MM_ERR_TOKENIZE, format!("tokenizing the prompt failed ({n})"));
    }
    tokens.truncate(n as usize);
    Ok(Prompt { media_chunk: vec![None; tokens.len()], items: tokens.into_iter().map(Item::Token).collect(), chunks: None })
}

/// Tokenizes text with markers and the decoded media they stand for.
pub fn tokenize_media(projector: &Projector, text: &str, bitmaps: &[&Bitmap]) -> Result<Prompt> {
    let ptrs: Vec<*const sys::mtmd_bitmap> = bitmaps.iter().map(|b| b.as_ptr()).collect();
    let text_c = CString::new(text).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "the prompt contains a NUL byte"))?;
    let input = sys::mtmd_input_text { text: text_c.as_ptr(), text_len: text_c.as_bytes().len(), add_special: true, parse_special: true };
    let chunks = Chunks::new().ok_or_else(|| Error::new(MM_ERR_INTERNAL, "mtmd_input_chunks_init returned NULL"))?;
    let (status, log) = log::capture(|| unsafe { guard::mm_guard_mtmd_tokenize(projector.as_ptr(), chunks.as_ptr(), &input, ptrs.as_ptr(), ptrs.len(), guard::THREW) });
    match guard::check(status, "mtmd_tokenize")? {
        0 => {}
        1 => return fail(MM_ERR_MEDIA_COUNT, format!("markers and media items differ in number: {}", log::last_lines(&log))),
        2 => return fail(MM_ERR_MEDIA_DECODE, format!("preprocessing a media item failed: {}", log::last_lines(&log))),
        s => return fail(MM_ERR_TOKENIZE, format!("tokenizing the prompt failed ({s}): {}", log::last_lines(&log))),
    }
    let mut prompt = Prompt { items: Vec::new(), media_chunk: Vec::new(), chunks: None };
    for i in 0..chunks.len() {
        let chunk = chunks.get(i);
        if unsafe { sys::mtmd_input_chunk_get_type(chunk) } == sys::MTMD_INPUT_CHUNK_TYPE_TEXT {
            let mut n = 0usize;
            let tokens = unsafe { sys::mtmd_input_chunk_get_tokens_text(chunk, &mut n) };
            for k in 0..n {
                prompt.items.push(Item::Token(unsafe { *tokens.add(k) }));
                prompt.media_chunk.push(None);
            }
        } else {
            let id = unsafe { sys::mtmd_input_chunk_get_id(chunk) };
            // Media without an id never matches the cache (so it is always encoded).
            static ANONYMOUS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let id = if id.is_null() || unsafe { *id } == 0 { format!("anonymous-{}", ANONYMOUS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) } else { unsafe { CStr::from_ptr(id) }.to_string_lossy().into_owned() };
            prompt.items.push(Item::Media { id, n_pos: unsafe { sys::mtmd_input_chunk_get_n_pos(chunk) } });
            prompt.media_chunk.push(Some(i));
        }
    }
    prompt.chunks = Some(chunks);
    Ok(prompt)
}
