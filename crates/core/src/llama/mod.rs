//! Owning wrappers of llama.cpp and mtmd objects, each freed exactly once in `Drop`, and the safe
//! functions the rest of the core calls them through (C++ exceptions caught by `guard`).
//!
//! The wrappers add no policy of their own; `session.rs` decides the order in which they are
//! made and dropped.

pub mod backend;
pub mod guard;
pub mod memory;
pub mod special;

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::OnceLock;

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{check, THREW};
use crate::llama::special::{SpecialText, Specials};
use crate::util::error::{fail, Error, ErrorKind, Result};

/// The smallest piece a long text read with special tokens is tokenized in.
const SPECIAL_PIECE: usize = 4096;

/// `llama_decode` results (llama.h).
pub const DECODE_OK: i32 = 0;
/// No KV cache slot for the batch.
pub const DECODE_NO_SLOT: i32 = 1;
/// The abort callback stopped it.
pub const DECODE_ABORTED: i32 = 2;

/// `mtmd_tokenize_from_parts` results (mtmd.h).
pub const MTMD_TOKENIZE_OK: i32 = 0;
/// A part has both a text and a bitmap, or neither.
pub const MTMD_TOKENIZE_BAD_PARTS: i32 = 1;
/// Preprocessing a media item failed (or the tokenizer threw).
pub const MTMD_TOKENIZE_PREPROCESS: i32 = 2;

/// A loaded text model (`llama_model_free` on drop).
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    /// Its special tokens' texts, for cutting long texts before tokenizing (made on first use).
    specials: OnceLock<Option<Specials>>,
}

// SAFETY: a llama_model is read-only after loading; llama.cpp shares one model between contexts
// on different threads.
unsafe impl Send for Model {}
// SAFETY: as above: every method here only reads the model.
unsafe impl Sync for Model {}

impl Model {
    pub fn from_raw(ptr: *mut sys::llama_model) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Model { ptr, specials: OnceLock::new() })
    }
    pub fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }
    pub fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: the model is alive; the vocabulary lives as long as it.
        unsafe { sys::llama_model_get_vocab(self.as_ptr()) }
    }
    /// Width of the embeddings the model takes (a projector must produce this many).
    pub fn n_embd(&self) -> i32 {
        // SAFETY: the model is alive.
        unsafe { sys::llama_model_n_embd_inp(self.as_ptr()) }
    }
    /// The most bytes one token of context takes in the KV cache, keys of `type_k` and values
    /// of `type_v`: every layer keeping every token (layers with a sliding window keep fewer).
    pub fn kv_bytes_per_token(&self, type_k: sys::ggml_type, type_v: sys::ggml_type) -> u64 {
        // SAFETY: the model is alive; plain queries.
        let (layers, heads, kv_heads) = unsafe {
            (
                sys::llama_model_n_layer(self.as_ptr()),
                sys::llama_model_n_head(self.as_ptr()),
                sys::llama_model_n_head_kv(self.as_ptr()),
            )
        };
        let arch = self.meta("general.architecture").unwrap_or_default();
        let head_len = |what: &str| {
            self.meta(&format!("{arch}.attention.{what}_length"))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(self.n_embd() as i64 / heads.max(1) as i64)
        };
        // The bytes of `n` values of type `t`, in whole blocks (ggml_row_size asserts that `n`
        // fills its blocks, which a quantized cache of small heads does not; llama.cpp refuses
        // that context after this check).
        let row = |t: sys::ggml_type, n: i64| {
            // SAFETY: plain queries of a type's sizes.
            let (size, block) = unsafe { (sys::ggml_type_size(t), sys::ggml_blck_size(t)) };
            size as u64 * (n.max(0) as u64).div_ceil(block.max(1) as u64)
        };
        let per_layer = row(type_k, head_len("key")) + row(type_v, head_len("value"));
        layers.max(0) as u64 * kv_heads.max(0) as u64 * per_layer
    }
    /// A metadata value of the model as text.
    fn meta(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        let mut buf = [0u8; 128];
        // SAFETY: the model is alive; the key is NUL-terminated; llama.cpp writes at most
        // `buf.len()` bytes, NUL included.
        let n =
            unsafe { sys::llama_model_meta_val_str(self.as_ptr(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = usize::try_from(n).ok()?.min(buf.len() - 1);
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    /// Parses `grammar` with llama.cpp's own parser, quietly (`mm_guard_grammar_parse` in
    /// shim/guard.cpp; llama.cpp's `parse` prints the whole grammar to stderr on an error): the
    /// parser's message when it does not parse.
    pub fn grammar_parse(&self, grammar: &CStr) -> std::result::Result<(), String> {
        // SAFETY: the vocabulary lives with the model; `grammar` is NUL-terminated.
        match unsafe { guard::mm_guard_grammar_parse(self.vocab(), grammar.as_ptr()) } {
            1 => Ok(()),
            _ => Err(guard::what()),
        }
    }
    /// What checking one token of `token_chars` characters against `grammar` costs llama.cpp's
    /// sampler, in steps, the most over `positions` places of a text the grammar allows,
    /// counting no further than just past `limit` (`mm_guard_grammar_steps` in shim/guard.cpp);
    /// 0 when the grammar does not parse or throws.
    pub fn grammar_steps(&self, grammar: &CStr, token_chars: u32, positions: u32, limit: u64) -> u64 {
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // SAFETY: the vocabulary lives with the model; `grammar` is NUL-terminated.
        let n = unsafe {
            guard::mm_guard_grammar_steps(self.vocab(), grammar.as_ptr(), clamp(token_chars), clamp(positions), limit)
        };
        u64::try_from(n).unwrap_or(0)
    }
    pub fn n_vocab(&self) -> usize {
        // SAFETY: the vocabulary is alive with the model.
        unsafe { sys::llama_vocab_n_tokens(self.vocab()) }.max(0) as usize
    }
    pub fn is_eog(&self, token: sys::llama_token) -> bool {
        // SAFETY: the vocabulary is alive with the model; any token id is accepted.
        unsafe { sys::llama_vocab_is_eog(self.vocab(), token) }
    }

    /// The model's own chat template, if it has one.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: the model is alive; NULL asks for the default template.
        let ptr = unsafe { sys::llama_model_chat_template(self.as_ptr(), std::ptr::null()) };
        // SAFETY: a non-NULL result is a NUL-terminated string owned by the model.
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
    }

    /// Tokenizes `text`; `add_special` adds the tokens the model starts a text with (BOS), and
    /// `parse_special` turns the text of control tokens into those tokens.
    /// Tokenizes `text`, with a BOS token first when `add_special` and the vocabulary wants it,
    /// and special tokens' texts read as those tokens when `parse_special`. A long text read
    /// with special tokens is tokenized in pieces of [`SPECIAL_PIECE`] bytes or more, cut where
    /// the tokens are the same (`special.rs`): llama.cpp's partition at special texts costs
    /// their number squared.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<sys::llama_token>> {
        // SAFETY: the vocabulary is alive with the model; a plain query.
        let adds_eos = add_special && unsafe { sys::llama_vocab_get_add_eos(self.vocab()) };
        if !parse_special || adds_eos {
            return self.tokenize_whole(text, add_special, parse_special);
        }
        let mut tokens = Vec::new();
        for (k, piece) in self.special_pieces(text).into_iter().enumerate() {
            tokens.extend(self.tokenize_whole(piece, add_special && k == 0, true)?);
        }
        Ok(tokens)
    }

    /// `text`, to be read with special tokens, cut into pieces of [`SPECIAL_PIECE`] bytes or
    /// more that tokenize (without BOS and EOS) to the tokens of the whole (`special.rs`); the
    /// whole when it is short, or when this vocabulary's tokenizer does not allow it.
    pub fn special_pieces<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let specials = self.specials.get_or_init(|| self.special_texts());
        let Some(specials) = specials.as_ref().filter(|_| text.len() >= 2 * SPECIAL_PIECE) else { return vec![text] };
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in specials.cuts(text.as_bytes(), SPECIAL_PIECE).into_iter().chain([text.len()]) {
            pieces.push(&text[from..cut]);
            from = cut;
        }
        pieces
    }

    /// The special texts of the vocabulary, when its tokenizer tokenizes the pieces of a cut
    /// text as it would the whole (SPM and BPE, no special token with an empty text).
    fn special_texts(&self) -> Option<Specials> {
        let vocab = self.vocab();
        // SAFETY: the vocabulary is alive with the model; a plain query.
        if !matches!(unsafe { sys::llama_vocab_type(vocab) }, sys::LLAMA_VOCAB_TYPE_SPM | sys::LLAMA_VOCAB_TYPE_BPE) {
            return None;
        }
        let special =
            sys::LLAMA_TOKEN_ATTR_CONTROL | sys::LLAMA_TOKEN_ATTR_USER_DEFINED | sys::LLAMA_TOKEN_ATTR_UNKNOWN;
        let strips = sys::LLAMA_TOKEN_ATTR_LSTRIP | sys::LLAMA_TOKEN_ATTR_RSTRIP;
        let mut texts = Vec::new();
        for token in 0..self.n_vocab() as sys::llama_token {
            // SAFETY: `token` is below the vocabulary's size.
            let attr = unsafe { sys::llama_vocab_get_attr(vocab, token) };
            if attr & special == 0 {
                continue;
            }
            // SAFETY: as above; the text is NUL-terminated, lives with the vocabulary, and is
            // copied at once.
            let text = unsafe { CStr::from_ptr(sys::llama_vocab_get_text(vocab, token)) }.to_bytes().to_vec();
            if text.is_empty() {
                return None;
            }
            let cut_after = attr & strips == 0 && !text.iter().any(u8::is_ascii_whitespace);
            texts.push(SpecialText { text, cut_after });
        }
        Some(Specials::new(texts))
    }

    fn tokenize_whole(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<sys::llama_token>> {
        let len =
            i32::try_from(text.len()).or_else(|_| fail(ErrorKind::ContextFull, "the prompt is longer than 2 GiB"))?;
        let mut tokens: Vec<sys::llama_token> = vec![0; text.len() + 8];
        for _ in 0..2 {
            // SAFETY: `text` is `len` readable bytes and `tokens` has room for `tokens.len()`.
            let n = unsafe {
                guard::mm_guard_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    tokens.len() as i32,
                    add_special,
                    parse_special,
                    THREW,
                )
            };
            match check(n, "llama_tokenize")? {
                n if n >= 0 => {
                    tokens.truncate(n as usize);
                    return Ok(tokens);
                }
                // Too small: llama.cpp says how many it needs.
                n => tokens.resize(n.unsigned_abs() as usize, 0),
            }
        }
        fail(ErrorKind::Tokenize, "llama_tokenize kept asking for more room")
    }

    /// The text of one token (any length; not NUL-terminated), as generation prints it.
    pub fn token_piece(&self, token: sys::llama_token, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(buf.capacity().max(64), 0);
        for _ in 0..2 {
            // SAFETY: `buf` has room for `buf.len()` bytes.
            let n = unsafe {
                guard::mm_guard_token_to_piece(self.vocab(), token, buf.as_mut_ptr().cast(), buf.len() as i32, THREW)
            };
            match check(n, "llama_token_to_piece")? {
                n if n >= 0 => {
                    buf.truncate(n as usize);
                    return Ok(());
                }
                n => buf.resize(n.unsigned_abs() as usize, 0),
            }
        }
        fail(ErrorKind::Internal, format!("llama_token_to_piece kept asking for more room for token {token}"))
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed only here.
        unsafe { sys::llama_model_free(self.as_ptr()) }
    }
}

/// Renders chat messages with `template` (Jinja text llama.cpp recognises, or a built-in name)
/// into `buf`; returns the length it needs, or a negative value for an unknown template.
pub fn apply_chat_template(template: &CStr, chat: &[sys::llama_chat_message], buf: &mut [u8]) -> Result<i32> {
    // SAFETY: the messages' strings outlive the call, and `buf` has room for `buf.len()` bytes.
    let n = unsafe {
        guard::mm_guard_chat_apply_template(
            template.as_ptr(),
            chat.as_ptr(),
            chat.len(),
            buf.as_mut_ptr().cast(),
            buf.len().min(i32::MAX as usize) as i32,
            THREW,
        )
    };
    check(n, "llama_chat_apply_template")
}

/// Converts a JSON Schema (text) to a GBNF grammar (start rule `root`) with llama.cpp's
/// converter; the error is the converter's reason.
pub fn json_schema_to_grammar(schema: &CStr) -> std::result::Result<String, String> {
    // SAFETY: `schema` is NUL-terminated and outlives the call.
    let ptr = unsafe { guard::mm_guard_json_schema_to_grammar(schema.as_ptr()) };
    if ptr.is_null() {
        return Err(guard::what());
    }
    // SAFETY: a non-NULL result is a NUL-terminated string the shim allocated; it is copied,
    // then freed once, by the shim's allocator.
    unsafe {
        let grammar = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        guard::mm_guard_free(ptr);
        Ok(grammar)
    }
}

/// An inference context over a model: KV cache and compute buffers (`llama_free` on drop).
pub struct Context(NonNull<sys::llama_context>);

impl Context {
    pub fn from_raw(ptr: *mut sys::llama_context) -> Option<Self> {
        NonNull::new(ptr).map(Context)
    }
    pub fn as_ptr(&self) -> *mut sys::llama_context {
        self.0.as_ptr()
    }
    pub fn n_ctx(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }
    pub fn n_batch(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }
    /// Tokens computed in one graph step.
    pub fn n_ubatch(&self) -> u32 {
        // SAFETY: the context is alive.
        unsafe { sys::llama_n_ubatch(self.as_ptr()) }
    }
    /// Empties the KV cache.
    pub fn clear_memory(&self) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.as_ptr()), true) }
    }
    /// Removes positions `from..` of sequence 0 from the KV cache.
    pub fn forget_from(&self, from: i32) {
        // SAFETY: the context and its memory are alive.
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.as_ptr()), 0, from, -1) };
    }

    /// Decodes `tokens` at positions `first_pos..` of sequence 0 (logits for the last one when
    /// `logits_last`); returns llama_decode's code (`DECODE_OK`, ...).
    pub fn decode(
        &self,
        batch: &mut TokenBatch,
        tokens: &[sys::llama_token],
        first_pos: i32,
        logits_last: bool,
    ) -> Result<i32> {
        let batch = batch.fill(tokens, first_pos, logits_last);
        // SAFETY: the batch's arrays live in `batch`, borrowed for the call.
        check(unsafe { guard::mm_guard_decode(self.as_ptr(), batch, THREW) }, "llama_decode")
    }

    /// The logits of the last position that asked for them: one per vocabulary entry.
    pub fn last_logits(&self, n_vocab: usize) -> Result<&[f32]> {
        // SAFETY: the context is alive; -1 asks for the last logits row.
        let ptr = unsafe { sys::llama_get_logits_ith(self.as_ptr(), -1) };
        if ptr.is_null() {
            return fail(ErrorKind::Eval, "llama.cpp produced no logits for the last position");
        }
        // SAFETY: a logits row holds n_vocab floats, valid until the next decode (which needs
        // `&mut` access to the session, so not while this borrow lives).
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_vocab) })
    }

    /// The state of sequence 0 (its KV cache), as llama.cpp serialises it.
    pub fn sequence_state(&self) -> Result<Vec<u8>> {
        // SAFETY: the context is alive.
        let size = unsafe { guard::mm_guard_state_size(self.as_ptr()) };
        let mut buf = Vec::new();
        buf.try_reserve_exact(size)
            .or_else(|_| fail(ErrorKind::Internal, format!("no memory for a KV cache state of {size} bytes")))?;
        buf.resize(size, 0);
        // SAFETY: `buf` has `size` writable bytes.
        let written = unsafe { guard::mm_guard_state_get(self.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        buf.truncate(written);
        Ok(buf)
    }

    /// Replaces sequence 0 with `state`; false when llama.cpp refuses it.
    pub fn set_sequence_state(&self, state: &[u8]) -> bool {
        self.forget_from(0);
        // SAFETY: `state` is `state.len()` readable bytes.
        unsafe { guard::mm_guard_state_set(self.as_ptr(), state.as_ptr(), state.len()) != 0 }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_init_from_model and is freed only here.
        unsafe { sys::llama_free(self.as_ptr()) }
    }
}

/// A projector (mtmd context: vision and/or audio encoder) bound to a model (`mtmd_free` on drop).
pub struct Projector(NonNull<sys::mtmd_context>);

impl Projector {
    pub fn from_raw(ptr: *mut sys::mtmd_context) -> Option<Self> {
        NonNull::new(ptr).map(Projector)
    }
    pub fn as_ptr(&self) -> *mut sys::mtmd_context {
        self.0.as_ptr()
    }
    pub fn supports_vision(&self) -> bool {
        // SAFETY: the projector is alive.
        unsafe { sys::mtmd_support_vision(self.as_ptr()) }
    }
    pub fn supports_audio(&self) -> bool {
        // SAFETY: the projector is alive.
        unsafe { sys::mtmd_support_audio(self.as_ptr()) }
    }
    /// The audio encoder's sample rate in Hz; 0 without one.
    pub fn audio_sample_rate(&self) -> u32 {
        // SAFETY: the projector is alive.
        unsafe { sys::mtmd_get_audio_sample_rate(self.as_ptr()) }.max(0) as u32
    }
    /// The marker mtmd looks for in prompts.
    pub fn marker(&self) -> String {
        // SAFETY: the projector is alive and its marker a NUL-terminated string it owns.
        unsafe { CStr::from_ptr(sys::mtmd_get_marker(self.as_ptr())) }.to_string_lossy().into_owned()
    }

    /// Tokenizes a prompt given as parts: texts (each with its own `parse_special`) and bitmaps,
    /// in order; returns mtmd's code (`MTMD_TOKENIZE_OK`, ...) and the chunks.
    pub fn tokenize_parts(&self, parts: &[TokenizePart]) -> Result<(i32, Chunks)> {
        let texts: Vec<sys::mtmd_input_text> = parts
            .iter()
            .filter_map(|p| match p {
                TokenizePart::Text { text, parse_special } => Some(sys::mtmd_input_text {
                    text: text.as_ptr(),
                    text_len: text.to_bytes().len(),
                    add_special: false,
                    parse_special: *parse_special,
                }),
                TokenizePart::Media(_) => None,
            })
            .collect();
        let mut next_text = texts.iter();
        let inputs: Vec<sys::mtmd_input_part> = parts
            .iter()
            .map(|p| match p {
                TokenizePart::Text { .. } => sys::mtmd_input_part {
                    text: next_text.next().expect("one input text per text part"),
                    bitmap: std::ptr::null(),
                },
                TokenizePart::Media(b) => sys::mtmd_input_part { text: std::ptr::null(), bitmap: b.as_ptr() },
            })
            .collect();
        let ptrs: Vec<*const sys::mtmd_input_part> = inputs.iter().map(|p| p as *const _).collect();
        let chunks =
            Chunks::new().ok_or_else(|| Error::new(ErrorKind::Internal, "mtmd_input_chunks_init returned NULL"))?;
        // SAFETY: the texts, bitmaps, parts and chunks all outlive the call.
        let status = unsafe {
            guard::mm_guard_mtmd_tokenize_parts(self.as_ptr(), chunks.as_ptr(), ptrs.as_ptr(), ptrs.len(), true, THREW)
        };
        Ok((check(status, "mtmd_tokenize_from_parts")?, chunks))
    }

    /// Whether chunk `index` (media) is decoded into the text model with non-causal attention,
    /// and how many embeddings it has.
    pub fn media_decoding(&self, chunks: &Chunks, index: usize) -> (bool, u32) {
        let chunk = chunks.get(index);
        // SAFETY: the projector and the chunk are alive.
        unsafe {
            (sys::mtmd_decode_use_non_causal(self.as_ptr(), chunk), sys::mtmd_input_chunk_get_n_tokens(chunk) as u32)
        }
    }

    /// Encodes chunk `index` (media) and decodes its embeddings into `ctx` at `n_past`; returns
    /// mtmd's status (0: done) and the position after it.
    pub fn eval_chunk(
        &self,
        ctx: &Context,
        chunks: &Chunks,
        index: usize,
        n_past: i32,
        n_batch: i32,
        logits_last: bool,
    ) -> Result<(i32, i32)> {
        let mut new_n_past = 0;
        // SAFETY: the projector, context and chunk are alive; `new_n_past` is writable.
        let status = unsafe {
            guard::mm_guard_eval_chunk(
                self.as_ptr(),
                ctx.as_ptr(),
                chunks.get(index),
                n_past,
                n_batch,
                logits_last,
                &mut new_n_past,
                THREW,
            )
        };
        Ok((check(status, "mtmd_helper_eval_chunk_single")?, new_n_past))
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        // SAFETY: the pointer came from mtmd_init_from_file and is freed only here.
        unsafe { sys::mtmd_free(self.as_ptr()) }
    }
}

/// One part of a prompt for [`Projector::tokenize_parts`].
pub enum TokenizePart<'a> {
    /// Text; with `parse_special`, the text of control tokens becomes those tokens.
    Text {
        text: &'a CStr,
        parse_special: bool,
    },
    Media(&'a Bitmap),
}

/// Decoded media (image or audio samples) ready to tokenize (`mtmd_bitmap_free` on drop).
pub struct Bitmap(NonNull<sys::mtmd_bitmap>);

impl Bitmap {
    /// An image of `width` x `height` RGB pixels (`rgb` holds exactly that many), named `id`.
    pub fn image(width: u32, height: u32, rgb: &[u8], id: &CStr) -> Option<Self> {
        debug_assert_eq!(rgb.len() as u64, width as u64 * height as u64 * 3);
        // SAFETY: `rgb` holds width * height * 3 bytes, which mtmd copies.
        let bitmap = NonNull::new(unsafe { sys::mtmd_bitmap_init(width, height, rgb.as_ptr()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    /// An image of `width` x `height` pixels without its pixels, named `id`: mtmd tokenizes
    /// it (same positions, same id) without preprocessing, and refuses to encode it.
    pub fn placeholder(width: u32, height: u32, id: &CStr) -> Option<Self> {
        // SAFETY: NULL data makes a placeholder; nothing is read.
        let bitmap = NonNull::new(unsafe { sys::mtmd_bitmap_init(width, height, std::ptr::null()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    /// Mono audio samples, named `id`.
    pub fn audio(samples: &[f32], id: &CStr) -> Option<Self> {
        // SAFETY: mtmd copies `samples.len()` floats.
        let bitmap =
            NonNull::new(unsafe { sys::mtmd_bitmap_init_from_audio(samples.len(), samples.as_ptr()) }).map(Bitmap)?;
        bitmap.set_id(id);
        Some(bitmap)
    }
    fn set_id(&self, id: &CStr) {
        // SAFETY: the bitmap is alive and mtmd copies the id.
        unsafe { sys::mtmd_bitmap_set_id(self.0.as_ptr(), id.as_ptr()) };
    }
    pub fn as_ptr(&self) -> *const sys::mtmd_bitmap {
        self.0.as_ptr()
    }
    pub fn is_audio(&self) -> bool {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_is_audio(self.as_ptr()) }
    }
    pub fn width(&self) -> u32 {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_get_nx(self.as_ptr()) }
    }
    pub fn height(&self) -> u32 {
        // SAFETY: the bitmap is alive.
        unsafe { sys::mtmd_bitmap_get_ny(self.as_ptr()) }
    }
    /// The id it was given.
    pub fn id(&self) -> CString {
        // SAFETY: the bitmap is alive and its id a NUL-terminated string it owns.
        unsafe { CStr::from_ptr(sys::mtmd_bitmap_get_id(self.as_ptr())) }.to_owned()
    }
}

impl Drop for Bitmap {
    fn drop(&mut self) {
        // SAFETY: the pointer came from mtmd_bitmap_init* and is freed only here.
        unsafe { sys::mtmd_bitmap_free(self.0.as_ptr()) }
    }
}

/// A tokenized multimodal prompt: text and media chunks (`mtmd_input_chunks_free` on drop).
pub struct Chunks(NonNull<sys::mtmd_input_chunks>);

/// One chunk of a tokenized prompt.
pub enum Chunk<'a> {
    Text(&'a [sys::llama_token]),
    /// A media item: its id (empty when mtmd gave none), the embeddings it gives and the
    /// positions they take (fewer than the embeddings with M-RoPE).
    Media {
        id: String,
        n_tokens: usize,
        n_pos: i32,
    },
}

impl Chunks {
    fn new() -> Option<Self> {
        // SAFETY: a plain constructor; NULL is handled.
        NonNull::new(unsafe { sys::mtmd_input_chunks_init() }).map(Chunks)
    }
    fn as_ptr(&self) -> *mut sys::mtmd_input_chunks {
        self.0.as_ptr()
    }
    pub fn len(&self) -> usize {
        // SAFETY: the chunks are alive.
        unsafe { sys::mtmd_input_chunks_size(self.as_ptr()) }
    }
    fn get(&self, i: usize) -> *const sys::mtmd_input_chunk {
        assert!(i < self.len(), "chunk {i} of {}", self.len());
        // SAFETY: `i` is in range.
        unsafe { sys::mtmd_input_chunks_get(self.as_ptr(), i) }
    }
    /// Chunk `i`: its text tokens, or its media id, embeddings and positions.
    pub fn chunk(&self, i: usize) -> Chunk<'_> {
        let chunk = self.get(i);
        // SAFETY: the chunk belongs to these chunks and lives as long as they do; the token
        // array and the id are owned by it.
        unsafe {
            if sys::mtmd_input_chunk_get_type(chunk) == sys::MTMD_INPUT_CHUNK_TYPE_TEXT {
                let mut n = 0usize;
                let tokens = sys::mtmd_input_chunk_get_tokens_text(chunk, &mut n);
                Chunk::Text(if n == 0 { &[] } else { std::slice::from_raw_parts(tokens, n) })
            } else {
                let id = sys::mtmd_input_chunk_get_id(chunk);
                let id = if id.is_null() { String::new() } else { CStr::from_ptr(id).to_string_lossy().into_owned() };
                Chunk::Media {
                    id,
                    n_tokens: sys::mtmd_input_chunk_get_n_tokens(chunk),
                    n_pos: sys::mtmd_input_chunk_get_n_pos(chunk),
                }
            }
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        // SAFETY: the pointer came from mtmd_input_chunks_init and is freed only here.
        unsafe { sys::mtmd_input_chunks_free(self.as_ptr()) }
    }
}

/// A sampler chain (`llama_sampler_free` on drop; it frees the samplers added to it).
pub struct Sampler {
    chain: NonNull<sys::llama_sampler>,
    /// Indexes in the chain of the samplers that keep a history of tokens (penalties, DRY).
    history: Vec<i32>,
    /// Whether a grammar is in the chain (what a dead end is blamed on).
    grammar: bool,
}

impl Sampler {
    pub fn chain() -> Self {
        // SAFETY: plain constructors; the result is checked.
        let ptr = unsafe { sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params()) };
        Sampler {
            chain: NonNull::new(ptr).expect("llama_sampler_chain_init returned NULL"),
            history: Vec::new(),
            grammar: false,
        }
    }
    /// Adds a sampler (from one of llama.cpp's `llama_sampler_init_*`) that the chain then owns.
    pub fn add(&mut self, s: *mut sys::llama_sampler) {
        assert!(!s.is_null(), "a llama sampler constructor returned NULL");
        // SAFETY: the chain is alive and takes ownership of `s`.
        unsafe { sys::llama_sampler_chain_add(self.chain.as_ptr(), s) }
    }
    /// Adds a sampler that keeps a history of tokens (penalties, DRY), which `remember` feeds.
    pub fn add_with_history(&mut self, s: *mut sys::llama_sampler) {
        // SAFETY: the chain is alive.
        self.history.push(unsafe { sys::llama_sampler_chain_n(self.chain.as_ptr()) });
        self.add(s);
    }
    /// Feeds tokens that came before the answer (the prompt's) to the samplers that keep a
    /// history, and to no other (a grammar must not see them).
    pub fn remember(&mut self, tokens: &[sys::llama_token]) -> Result<()> {
        for &i in &self.history {
            // SAFETY: the chain is alive and `i` is the index of one of its samplers.
            let s = unsafe { sys::llama_sampler_chain_get(self.chain.as_ptr(), i) };
            // SAFETY: `s` belongs to the chain; `tokens` holds `tokens.len()` tokens.
            check(
                unsafe { guard::mm_guard_sampler_accept(s, tokens.as_ptr(), tokens.len(), THREW) },
                "llama_sampler_accept",
            )?;
        }
        Ok(())
    }
    /// Adds a GBNF grammar sampler (start rule `root`); `None` when llama.cpp refuses the
    /// grammar (it logs why).
    pub fn add_grammar(&mut self, model: &Model, grammar: &CString) -> Option<()> {
        // SAFETY: the vocabulary and the grammar text outlive the call.
        let s = unsafe { guard::mm_guard_sampler_init_grammar(model.vocab(), grammar.as_ptr()) };
        (!s.is_null()).then(|| {
            self.grammar = true;
            self.add(s)
        })
    }
    /// Samples a token from `logits` (one per vocabulary entry), leaving out the tokens
    /// `allowed` refuses, and records it in the chain's state, as `llama_sampler_sample` does;
    /// `scratch` is reused between calls.
    pub fn sample_from(
        &mut self,
        logits: &[f32],
        mut allowed: Option<&mut dyn FnMut(usize) -> bool>,
        scratch: &mut Vec<sys::llama_token_data>,
    ) -> Result<sys::llama_token> {
        scratch.clear();
        scratch.extend(logits.iter().enumerate().map(|(id, &logit)| {
            let ruled_out = allowed.as_mut().is_some_and(|allowed| !allowed(id));
            let logit = if ruled_out { f32::NEG_INFINITY } else { logit };
            sys::llama_token_data { id: id as sys::llama_token, logit, p: 0.0 }
        }));
        let mut candidates = sys::llama_token_data_array {
            data: scratch.as_mut_ptr(),
            size: scratch.len(),
            selected: -1,
            sorted: false,
        };
        // SAFETY: the chain is alive and `candidates` points into `scratch`.
        match unsafe { guard::mm_guard_sample(self.chain.as_ptr(), &mut candidates) } {
            guard::SAMPLE_FAILED => fail(ErrorKind::Eval, format!("sampling failed: {}", guard::what())),
            guard::SAMPLE_DEAD_END if self.grammar => fail(ErrorKind::Eval, "no next token is allowed: no token of the vocabulary continues the grammar here, or the logit biases (with the penalties and the temperature) took every token it allows to -infinity"),
            guard::SAMPLE_DEAD_END => fail(ErrorKind::Eval, "no next token is allowed: the logit biases (with the penalties and the temperature) took every token's logit to -infinity"),
            token => Ok(token),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain came from llama_sampler_chain_init and is freed only here.
        unsafe { sys::llama_sampler_free(self.chain.as_ptr()) }
    }
}

/// A batch of text tokens with explicit positions in sequence 0. Its arrays are Rust vectors
/// (a handful of allocations, not `llama_batch_init`'s one per token).
pub struct TokenBatch {
    tokens: Vec<sys::llama_token>,
    pos: Vec<sys::llama_pos>,
    n_seq_id: Vec<i32>,
    seq_ids: Vec<*mut sys::llama_seq_id>,
    seq_zero: Vec<sys::llama_seq_id>,
    logits: Vec<i8>,
}

// SAFETY: the raw pointers point into the batch's own vectors.
unsafe impl Send for TokenBatch {}

impl TokenBatch {
    pub fn new(capacity: usize) -> Self {
        let mut seq_zero = vec![0; capacity];
        let seq_ids = seq_zero.iter_mut().map(|s| s as *mut sys::llama_seq_id).collect();
        TokenBatch {
            tokens: vec![0; capacity],
            pos: vec![0; capacity],
            n_seq_id: vec![1; capacity],
            seq_ids,
            seq_zero,
            logits: vec![0; capacity],
        }
    }

    /// Refills the batch with `tokens` at positions `first_pos..`; only the last one gets
    /// logits, and only if `logits_last`. The result borrows the batch's arrays.
    fn fill(&mut self, tokens: &[sys::llama_token], first_pos: i32, logits_last: bool) -> sys::llama_batch {
        assert!(tokens.len() <= self.tokens.len(), "batch of {} tokens exceeds {}", tokens.len(), self.tokens.len());
        for (i, &token) in tokens.iter().enumerate() {
            self.tokens[i] = token;
            self.pos[i] = first_pos + i as i32;
            self.logits[i] = (logits_last && i + 1 == tokens.len()) as i8;
        }
        debug_assert!(self.seq_zero.iter().all(|&s| s == 0));
        sys::llama_batch {
            n_tokens: tokens.len() as i32,
            token: self.tokens.as_mut_ptr(),
            embd: std::ptr::null_mut(),
            pos: self.pos.as_mut_ptr(),
            n_seq_id: self.n_seq_id.as_mut_ptr(),
            seq_id: self.seq_ids.as_mut_ptr(),
            logits: self.logits.as_mut_ptr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sys;

    /// The pure-Rust table of ggml type sizes that mm-gguf reads files with matches ggml's own.
    #[test]
    fn ggml_type_table_matches_ggml() {
        assert_eq!(mm_gguf::ggml_types::TYPE_COUNT, sys::GGML_TYPE_COUNT);
        for t in 0..sys::GGML_TYPE_COUNT {
            // SAFETY: plain lookups in ggml's type table, for every type number it has.
            let (block, size) = unsafe { (sys::ggml_blck_size(t) as u64, sys::ggml_type_size(t) as u64) };
            let expected = (block > 0 && size > 0).then_some((block, size));
            assert_eq!(mm_gguf::ggml_types::block(t), expected, "ggml type {t}");
        }
    }
}
