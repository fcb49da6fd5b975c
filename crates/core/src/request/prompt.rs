//! Turns a request (a raw prompt, or chat messages rendered with the model's template) and its
//! decoded media into the parts the KV cache record is compared with, keeping the mtmd chunks
//! that evaluate the media parts.

use std::ffi::CString;

use crate::llama::chat::render_chat;
use crate::llama::{self, Bitmap, Chunk, Chunks, Model, Projector, Token, TokenizePart};
use crate::media::Media;
use crate::session::cache::Item;
use crate::session::report::PromptUsage;
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::log;

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

/// One part of a tokenized prompt: what the cache records, and for media the chunk of
/// [`Prompt::chunks`] that evaluates it.
pub struct Part {
    pub item: Item,
    pub chunk: Option<usize>,
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
    pub fn text_tokens(&self) -> Vec<Token> {
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
    fn from_tokens(tokens: &[Token]) -> Prompt {
        Prompt { parts: tokens.iter().map(|&t| Part { item: Item::Token(t), chunk: None }).collect(), chunks: None }
    }
}

/// A prompt before tokenization: text (with or without control tokens recognised) and media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text; with `special`, the text of control tokens (`<|im_start|>`, ...) becomes those
    /// tokens, otherwise it stays text.
    Text { text: String, special: bool },
    /// The media item of this index (into the request's decoded media).
    Media(usize),
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

/// Appends `text` split at its markers: text segments, and media segments numbered from `media`.
fn push_split(segments: &mut Vec<Segment>, text: &str, marker: &str, special: bool, mut media: usize) {
    for (i, part) in text.split(marker).enumerate() {
        if i > 0 {
            segments.push(Segment::Media(media));
            media += 1;
        }
        if !part.is_empty() {
            segments.push(Segment::Text { text: part.to_string(), special });
        }
    }
}

/// The segments of a raw prompt whose `n_media` media go at its markers. Evaluating media yields
/// no logits, and generation starts from the logits of the last position: a prompt that ends
/// with a media item gets a newline after it.
pub fn prompt_segments(text: &str, n_media: usize, marker: &str, special: bool) -> Result<Vec<Segment>> {
    let text = place_markers(text, n_media, marker, "the prompt")?;
    let mut segments = Vec::new();
    push_split(&mut segments, &text, marker, special, 0);
    if matches!(segments.last(), Some(Segment::Media(_))) {
        segments.push(Segment::Text { text: "\n".into(), special });
    }
    Ok(segments)
}

/// A chat message ready to render: its role, its text with markers placed, and the index of
/// its first media item in the request.
pub struct ChatMessage {
    pub role: String,
    pub text: String,
    pub first_media: usize,
}

/// The segments of a chat rendered with `template`: the template's own markup may hold control
/// tokens; the messages' texts never do (a user cannot forge another role's turn).
///
/// The chat is rendered with a sentinel in place of each message's text, once plain and once
/// padded with spaces: the text between sentinels is markup, and whether the padding survived
/// tells whether the template trims the message (many of llama.cpp's built-in templates do),
/// so that the texts are then put back exactly as the template would have put them.
pub fn chat_segments(template: &str, messages: &[ChatMessage], marker: &str) -> Result<Vec<Segment>> {
    let nonce = loop {
        let n = format!(
            "{:016x}",
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), messages.len())
        );
        if !messages.iter().any(|m| m.text.contains(&n)) {
            break n;
        }
    };
    let sentinel = |i: usize| format!("\u{1}{nonce}:{i}\u{1}");
    let render = |pad: &str| {
        render_chat(
            template,
            &messages
                .iter()
                .enumerate()
                .map(|(i, m)| (m.role.clone(), format!("{pad}{}{pad}", sentinel(i))))
                .collect::<Vec<_>>(),
        )
    };
    let (plain, padded) = (render("")?, render(" ")?);
    let (markup, order) = split_sentinels(&plain, &nonce);
    let (padded_markup, padded_order) = split_sentinels(&padded, &nonce);
    if order != padded_order {
        return fail(Internal, "the chat template rendered the messages in another order when their texts changed");
    }
    let mut segments = Vec::new();
    let mut previous_kept_padding = false;
    for (k, &i) in order.iter().enumerate() {
        let around =
            padded_markup[k].strip_prefix(if previous_kept_padding { " " } else { "" }).unwrap_or(&padded_markup[k]);
        let kept_padding = match around.strip_prefix(markup[k].as_str()) {
            Some(" ") => true,
            Some("") => false,
            _ => {
                return fail(
                    Unsupported,
                    format!("the chat template changes message {i}'s text in a way this library cannot follow"),
                )
            }
        };
        previous_kept_padding = kept_padding;
        if !markup[k].is_empty() {
            segments.push(Segment::Text { text: markup[k].clone(), special: true });
        }
        let m = &messages[i];
        let text = if kept_padding {
            m.text.as_str()
        } else {
            m.text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r'))
        };
        push_split(&mut segments, text, marker, false, m.first_media);
    }
    let last = markup.last().expect("one more markup segment than messages");
    if !last.is_empty() {
        segments.push(Segment::Text { text: last.clone(), special: true });
    }
    Ok(segments)
}

/// Splits a render at the sentinels made with `nonce`: the markup around them (one more segment
/// than sentinels) and the message index of each sentinel, in order.
fn split_sentinels(rendered: &str, nonce: &str) -> (Vec<String>, Vec<usize>) {
    let open = format!("\u{1}{nonce}:");
    let mut markup = Vec::new();
    let mut order = Vec::new();
    let mut rest = rendered;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let Some(end) = after.find('\u{1}') else { break };
        let Ok(i) = after[..end].parse::<usize>() else { break };
        markup.push(rest[..at].to_string());
        order.push(i);
        rest = &after[end + 1..];
    }
    markup.push(rest.to_string());
    (markup, order)
}

/// Tokenizes the segments of a text-only prompt.
pub fn tokenize_text(model: &Model, segments: &[Segment]) -> Result<Prompt> {
    let mut tokens = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Text { text, special } => tokens.extend(model.tokenize(text, i == 0, *special)?),
            Segment::Media(_) => return fail(Unsupported, "a media item in a text-only session"),
        }
    }
    Ok(Prompt::from_tokens(&tokens))
}

/// `segments` with each long text read with special tokens cut where its tokens stay the same
/// ([`Model::special_spans`]): mtmd tokenizes each text part on its own, and llama.cpp's
/// partition at special texts costs their number squared.
pub fn cut_special(model: &Model, segments: &[Segment]) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segments.len());
    for segment in segments {
        match segment {
            Segment::Text { text, special: true } => out.extend(
                model.special_spans(text).into_iter().map(|t| Segment::Text { text: t.to_string(), special: true }),
            ),
            other => out.push(other.clone()),
        }
    }
    out
}

/// Tokenizes the segments of a prompt with the bitmaps of the media they refer to.
pub fn tokenize_media(projector: &Projector, segments: &[Segment], bitmaps: &[Bitmap]) -> Result<Prompt> {
    let texts = segments
        .iter()
        .map(|p| match p {
            Segment::Text { text, .. } => CString::new(text.as_str())
                .map(Some)
                .or_else(|_| fail(InvalidArgument, "the prompt contains a NUL byte")),
            Segment::Media(_) => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    let parts = segments
        .iter()
        .zip(&texts)
        .map(|(p, t)| match (p, t) {
            (Segment::Text { special, .. }, Some(text)) => Ok(TokenizePart::Text { text, parse_special: *special }),
            (Segment::Media(i), _) => bitmaps
                .get(*i)
                .map(TokenizePart::Media)
                .ok_or_else(|| Error::new(Internal, format!("media item {i} of the prompt was not decoded"))),
            (Segment::Text { .. }, None) => fail(Internal, "a text segment without its text"),
        })
        .collect::<Result<Vec<_>>>()?;
    let (result, log) = log::capture(|| projector.tokenize_parts(&parts));
    let (status, chunks) = result?;
    match status {
        llama::projector::MTMD_TOKENIZE_OK => {}
        llama::projector::MTMD_TOKENIZE_PREPROCESS => {
            return fail(MediaDecode, format!("preprocessing a media item failed: {}", log::last_lines(&log)))
        }
        llama::projector::MTMD_TOKENIZE_BAD_PARTS => {
            return fail(Internal, format!("mtmd refused the prompt's parts: {}", log::last_lines(&log)))
        }
        s => return fail(Tokenize, format!("tokenizing the prompt failed ({s}): {}", log::last_lines(&log))),
    }
    let mut parts = Vec::new();
    for i in 0..chunks.len() {
        match chunks.chunk(i) {
            Chunk::Text(tokens) => parts.extend(tokens.iter().map(|&t| Part { item: Item::Token(t), chunk: None })),
            Chunk::Media { id, n_pos, .. } => {
                // Media without an id never matches the cache (so it is always encoded).
                static ANONYMOUS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let id = if id.is_empty() {
                    format!("anonymous-{}", ANONYMOUS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                } else {
                    id
                };
                parts.push(Part { item: Item::Media { id, n_pos }, chunk: Some(i) });
            }
        }
    }
    Ok(Prompt { parts, chunks: Some(chunks) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_split_into_media_segments() {
        let segments = prompt_segments("a <m> b <m>", 2, "<m>", true).unwrap();
        let text = |t: &str| Segment::Text { text: t.into(), special: true };
        assert_eq!(segments, vec![text("a "), Segment::Media(0), text(" b "), Segment::Media(1), text("\n")]);
    }

    #[test]
    fn sentinels_split_the_markup() {
        let (markup, order) = split_sentinels("<s>\u{1}ab:1\u{1}</s><s>\u{1}ab:0\u{1}", "ab");
        assert_eq!(markup, vec!["<s>", "</s><s>", ""]);
        assert_eq!(order, vec![1, 0]);
    }
}
