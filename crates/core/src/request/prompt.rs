//! Turns a request (a raw prompt, or chat messages rendered with the model's template) and its
//! decoded media into the parts the KV cache record is compared with, keeping the mtmd chunks
//! that evaluate the media parts.

use std::ffi::CString;

use crate::llama::{self, Bitmap, Chunk, Chunks, Model, Projector, Token, TokenizePart};
use crate::media::Media;
use crate::session::cache::Item;
use crate::session::report::PromptUsage;
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::{json, log};

/// One chat message: its role ("system", "user", "assistant", "tool", ...), text and media,
/// and what tool calls add: an assistant's calls (OpenAI's `tool_calls`, JSON text), a tool
/// result's call id and function name, and an earlier answer's reasoning.
#[derive(Clone, Copy, Default)]
pub struct Message<'a> {
    pub role: &'a str,
    pub text: &'a str,
    pub media: &'a [Media<'a>],
    pub tool_calls: Option<&'a str>,
    pub tool_call_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub reasoning: Option<&'a str>,
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

/// A chat message ready to render: its role, its text with markers placed, the index of its
/// first media item in the request, and its index among the request's messages.
pub struct ChatMessage {
    pub role: String,
    pub text: String,
    pub first_media: usize,
    pub source: usize,
}

/// Renders a chat twice, given two versions of its messages' texts (the placeholders, the
/// texts): the two prompts.
pub type Renders<'r> = dyn FnMut(&[&str], &[&str]) -> Result<(String, String)> + 'r;

/// The segments of a chat that `render` renders (given two versions of the messages' texts, in
/// order, it renders the whole chat with each: with placeholders, whose render's prompt alone
/// is wanted, and with the texts): the template's own markup may hold control tokens; the
/// messages' texts never do (a user cannot forge another role's turn).
///
/// The chat is rendered twice: once with a sentinel in place of each message's text, once with
/// the texts. The text between sentinels is markup; the texts' render is the prompt, cut at the
/// markup, so the prompt is exactly what the template renders, whatever it does to a text
/// (trimming it, quoting it as JSON). A template whose markup changes with the texts (its own
/// tests of what a message says) is followed as far as its markup can be found; the rest of the
/// prompt is then read as markup, with a warning in the log.
pub fn chat_segments(messages: &[ChatMessage], marker: &str, render: &mut Renders) -> Result<Vec<Segment>> {
    let nonce = loop {
        let n = format!(
            "{:016x}",
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), messages.len())
        );
        if !messages.iter().any(|m| m.text.contains(&n)) {
            break n;
        }
    };
    // Letters and digits only: a template that quotes a text as JSON quotes its sentinel alike.
    let sentinels: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| if m.text.is_empty() { String::new() } else { format!("mm{nonce}s{i}e") })
        .collect();
    let (skeleton, prompt) = render(
        &sentinels.iter().map(String::as_str).collect::<Vec<_>>(),
        &messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
    )?;
    let (markup, order) = split_sentinels(&skeleton, &nonce);
    let mut segments = Vec::new();
    let mut pos = match prompt.strip_prefix(markup[0].as_str()) {
        Some(_) => markup[0].len(),
        None => return Ok(unfollowed(&prompt, 0, segments, marker)),
    };
    push_markup(&mut segments, &markup[0]);
    for (k, &i) in order.iter().enumerate() {
        let m = &messages[i];
        let next = &markup[k + 1];
        let last = k + 1 == order.len();
        let rest = &prompt[pos..];
        let fits = |text: &str| {
            rest.strip_prefix(text).is_some_and(|after| {
                if last {
                    after == next.as_str()
                } else {
                    after.starts_with(next.as_str())
                }
            })
        };
        let trimmed = m.text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r'));
        let json = |t: &str| {
            let q = json::quote(t);
            q[1..q.len() - 1].to_string()
        };
        let candidates = [m.text.clone(), trimmed.to_string(), json(&m.text), json(trimmed)];
        let text = match candidates.iter().find(|c| fits(c)) {
            Some(c) => c.clone(),
            // A text the template changed in another way: up to the next markup.
            None => {
                match if last { rest.strip_suffix(next.as_str()).map(str::len) } else { rest.find(next.as_str()) } {
                    Some(len) => rest[..len].to_string(),
                    None => return Ok(unfollowed(&prompt, pos, segments, marker)),
                }
            }
        };
        push_split(&mut segments, &text, marker, false, m.first_media);
        pos += text.len() + next.len();
        push_markup(&mut segments, next);
    }
    Ok(segments)
}

fn push_markup(segments: &mut Vec<Segment>, markup: &str) {
    if !markup.is_empty() {
        segments.push(Segment::Text { text: markup.to_string(), special: true });
    }
}

/// `segments` followed by the rest of `prompt` from `pos`, read as markup (its markers being
/// the media items after those placed so far), when the template's markup could not be found.
fn unfollowed(prompt: &str, pos: usize, mut segments: Vec<Segment>, marker: &str) -> Vec<Segment> {
    log::emit(
        log::LogLevel::Warn,
        "the chat template's markup changes with the messages' texts: the rest of this chat is read with control tokens recognised in its texts too",
    );
    let placed = segments.iter().filter(|s| matches!(s, Segment::Media(_))).count();
    push_split(&mut segments, &prompt[pos..], marker, true, placed);
    segments
}

/// Splits a render at the sentinels made with `nonce`: the markup around them (one more segment
/// than sentinels) and the message index of each sentinel, in order.
fn split_sentinels(rendered: &str, nonce: &str) -> (Vec<String>, Vec<usize>) {
    let open = format!("mm{nonce}s");
    let mut markup = Vec::new();
    let mut order = Vec::new();
    let mut rest = rendered;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let Some(end) = after.find('e') else { break };
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
        let (markup, order) = split_sentinels("<s>mmabs1e</s><s>mmabs0e", "ab");
        assert_eq!(markup, vec!["<s>", "</s><s>", ""]);
        assert_eq!(order, vec![1, 0]);
    }
}
