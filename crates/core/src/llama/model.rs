//! A loaded text model: its vocabulary, tokenizer, metadata and sizes.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::OnceLock;

use llama_cpp_sys_2 as sys;

use crate::llama::guard::{self, check, THREW};
use crate::llama::options::KvType;
use crate::llama::special::{SpecialText, Specials};
use crate::util::error::{fail, ErrorKind, Result};

/// The smallest span a long text read with special tokens is tokenized in.
const SPECIAL_SPAN: usize = 4096;

/// A token of a model's vocabulary (llama.cpp's `llama_token`).
pub type Token = sys::llama_token;

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
    pub(super) fn from_raw(ptr: *mut sys::llama_model) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Model { ptr, specials: OnceLock::new() })
    }
    pub(super) fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }
    pub(super) fn vocab(&self) -> *const sys::llama_vocab {
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
    pub fn kv_bytes_per_token(&self, type_k: KvType, type_v: KvType) -> u64 {
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
        let per_layer = row(type_k.ggml(), head_len("key")) + row(type_v.ggml(), head_len("value"));
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
    /// with special tokens is tokenized in spans of [`SPECIAL_SPAN`] bytes or more, cut where
    /// the tokens are the same (`special.rs`): llama.cpp's partition at special texts costs
    /// their number squared.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<sys::llama_token>> {
        // SAFETY: the vocabulary is alive with the model; a plain query.
        let adds_eos = add_special && unsafe { sys::llama_vocab_get_add_eos(self.vocab()) };
        if !parse_special || adds_eos {
            return self.tokenize_whole(text, add_special, parse_special);
        }
        let mut tokens = Vec::new();
        for (k, span) in self.special_spans(text).into_iter().enumerate() {
            tokens.extend(self.tokenize_whole(span, add_special && k == 0, true)?);
        }
        Ok(tokens)
    }

    /// `text`, to be read with special tokens, cut into spans of [`SPECIAL_SPAN`] bytes or
    /// more that tokenize (without BOS and EOS) to the tokens of the whole (`special.rs`); the
    /// whole when it is short, or when this vocabulary's tokenizer does not allow it.
    pub fn special_spans<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let specials = self.specials.get_or_init(|| self.special_texts());
        let Some(specials) = specials.as_ref().filter(|_| text.len() >= 2 * SPECIAL_SPAN) else { return vec![text] };
        let mut spans = Vec::new();
        let mut from = 0;
        for cut in specials.cuts(text.as_bytes(), SPECIAL_SPAN).into_iter().chain([text.len()]) {
            spans.push(&text[from..cut]);
            from = cut;
        }
        spans
    }

    /// The special texts of the vocabulary, when its tokenizer tokenizes the spans of a cut
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
        self.token_text(token, false, buf)
    }

    /// The text of one token; with `special`, a control token's text too (such as
    /// "<tool_call>", which a chat format's parser must see), otherwise nothing for it.
    pub fn token_text(&self, token: sys::llama_token, special: bool, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(buf.capacity().max(64), 0);
        for _ in 0..2 {
            // SAFETY: `buf` has room for `buf.len()` bytes.
            let n = unsafe {
                guard::mm_guard_token_to_piece(
                    self.vocab(),
                    token,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i32,
                    special,
                    THREW,
                )
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
