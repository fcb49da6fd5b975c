//! Turns a request (a raw prompt, or chat messages rendered with the model's template) and its
//! decoded media into the parts the KV cache record is compared with, keeping the mtmd chunks
//! that evaluate the media parts.

use std::ffi::CString;

use llama_cpp_sys_2 as sys;

use crate::cache::Item;
use crate::error::{fail, ErrorKind::*, Result};
use crate::llama::{self, Bitmap, Chunk, Chunks, Model, Projector};
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

/// One part of a tokenized prompt: what the cache records, and for media the chunk of
/// [`Prompt::chunks`] that evaluates it.
pub struct Part {
    pub item: Item,
    pub chunk: Option<usize>,
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

/// A tokenized request.
pub struct Prompt {
    pub parts: Vec<Part>,
    /// The mtmd chunks media parts point into (`None` for text-only sessions).
    pub chunks: Option<Chunks>,
}

impl Prompt {
    pub fn n_pos(&self) -> i32 {
        self.parts.iter().map(|p| p.item.n_pos()).sum()
    }
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.parts.iter().map(|p| &p.item)
    }
    /// The prompt's text tokens, in order (media left out).
    pub fn text_tokens(&self) -> Vec<sys::llama_token> {
        self.items().filter_map(|i| if let Item::Token(t) = i { Some(*t) } else { None }).collect()
    }
    /// What the prompt is made of: text tokens, media items, their embeddings and positions.
    pub fn usage(&self) -> PromptUsage {
        let mut usage = PromptUsage::default();
        for part in &self.parts {
            let Item::Media { n_pos, .. } = &part.item else {
                usage.text_tokens += 1;
                continue;
            };
            usage.media_items += 1;
            usage.media_positions += *n_pos as u32;
            let chunk = part.chunk.zip(self.chunks.as_ref()).map(|(i, chunks)| chunks.chunk(i));
            if let Some(Chunk::Media { n_tokens, .. }) = chunk {
                usage.media_tokens += n_tokens as u32;
            }
        }
        usage
    }
    fn from_tokens(tokens: &[sys::llama_token]) -> Prompt {
        Prompt { parts: tokens.iter().map(|&t| Part { item: Item::Token(t), chunk: None }).collect(), chunks: None }
    }
}

/// Puts `n_media` markers in front of `text` when it has none; fails when it has some other
/// number of them.
pub fn place_markers(text: &str, n_media: usize, marker: &str, whose: &str) -> Result<String> {
    let n_markers = text.matches(marker).count();
    if n_markers == 0 && n_media > 0 {
        Ok(format!("{}{}", format!("{marker}\n").repeat(n_media), text))
    } else if n_markers != n_media {
        fail(MediaCount, format!("{whose} has {n_markers} marker(s) '{marker}' but {n_media} media item(s)"))
    } else {
        Ok(text.to_string())
    }
}

/// Renders messages (with their markers placed) with `template`, a Jinja template string
/// llama.cpp recognises or a built-in name such as "chatml".
pub fn render_chat(template: &str, messages: &[(String, String)]) -> Result<String> {
    let template_c = CString::new(template).or_else(|_| fail(InvalidArgument, "the chat template contains a NUL byte"))?;
    let c_strings = messages
        .iter()
        .enumerate()
        .map(|(i, (role, text))| match (CString::new(role.as_str()), CString::new(text.as_str())) {
            (Ok(r), Ok(t)) => Ok((r, t)),
            _ => fail(InvalidArgument, format!("message {i} contains a NUL byte")),
        })
        .collect::<Result<Vec<_>>>()?;
    let chat: Vec<sys::llama_chat_message> = c_strings.iter().map(|(r, t)| sys::llama_chat_message { role: r.as_ptr(), content: t.as_ptr() }).collect();
    let mut buf = vec![0u8; 256 + 2 * messages.iter().map(|(r, t)| r.len() + t.len()).sum::<usize>()];
    for _ in 0..2 {
        let n = llama::apply_chat_template(&template_c, &chat, &mut buf)?;
        if n < 0 {
            return fail(Unsupported, "llama.cpp does not recognise this chat template; set chat_template to a built-in name such as \"chatml\"");
        }
        if (n as usize) <= buf.len() {
            buf.truncate(n as usize);
            return String::from_utf8(buf).or_else(|_| fail(InvalidArgument, "the rendered chat is not UTF-8"));
        }
        buf.resize(n as usize, 0);
    }
    fail(Internal, "llama_chat_apply_template kept asking for more room")
}

/// Tokenizes a text-only prompt.
pub fn tokenize_text(model: &Model, text: &str, parse_special: bool) -> Result<Prompt> {
    Ok(Prompt::from_tokens(&model.tokenize(text, true, parse_special)?))
}

/// Tokenizes text with markers and the decoded media they stand for.
pub fn tokenize_media(projector: &Projector, text: &str, parse_special: bool, bitmaps: &[&Bitmap]) -> Result<Prompt> {
    let text_c = CString::new(text).or_else(|_| fail(InvalidArgument, "the prompt contains a NUL byte"))?;
    let (result, log) = log::capture(|| projector.tokenize(&text_c, parse_special, bitmaps));
    let (status, chunks) = result?;
    match status {
        llama::MTMD_TOKENIZE_OK => {}
        llama::MTMD_TOKENIZE_MEDIA_COUNT => return fail(MediaCount, format!("markers and media items differ in number: {}", log::last_lines(&log))),
        llama::MTMD_TOKENIZE_PREPROCESS => return fail(MediaDecode, format!("preprocessing a media item failed: {}", log::last_lines(&log))),
        s => return fail(Tokenize, format!("tokenizing the prompt failed ({s}): {}", log::last_lines(&log))),
    }
    let mut parts = Vec::new();
    for i in 0..chunks.len() {
        match chunks.chunk(i) {
            Chunk::Text(tokens) => parts.extend(tokens.iter().map(|&t| Part { item: Item::Token(t), chunk: None })),
            Chunk::Media { id, n_pos, .. } => {
                // Media without an id never matches the cache (so it is always encoded).
                static ANONYMOUS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let id = if id.is_empty() { format!("anonymous-{}", ANONYMOUS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) } else { id };
                parts.push(Part { item: Item::Media { id, n_pos }, chunk: Some(i) });
            }
        }
    }
    Ok(Prompt { parts, chunks: Some(chunks) })
}
