//! A projector (mtmd context): the vision and audio encoders bound to a text model.

use std::ffi::CStr;
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use crate::llama::abort::EncoderAbort;
use crate::llama::bitmap::Bitmap;
use crate::llama::chunks::Chunks;
use crate::llama::context::Context;
use crate::llama::guard::{self, check, THREW};
use crate::util::abort::AbortState;
use crate::util::error::{Error, ErrorKind, Result};

/// `mtmd_tokenize_from_parts` results (mtmd.h).
pub const MTMD_TOKENIZE_OK: i32 = 0;
/// A part has both a text and a bitmap, or neither.
pub const MTMD_TOKENIZE_BAD_PARTS: i32 = 1;
/// Preprocessing a media item failed (or the tokenizer threw).
pub const MTMD_TOKENIZE_PREPROCESS: i32 = 2;

/// A projector (mtmd context: vision and/or audio encoder) bound to a model (`mtmd_free` on
/// drop), with the encoder state its eval callback reads (dropped after it).
pub struct Projector {
    ptr: NonNull<sys::mtmd_context>,
    /// Boxed so that its address, given to mtmd, stays put.
    encoder: Box<EncoderAbort>,
}

// SAFETY: mtmd documents its tokenizer and its queries as thread-safe on a shared context;
// encoding media uses the encoder's compute buffers, and `eval_chunk` serializes encodes
// (`EncoderAbort::lend`). Nothing in it is tied to the thread that loaded it.
unsafe impl Sync for Projector {}
// SAFETY: as above.
unsafe impl Send for Projector {}

impl Projector {
    /// Owns `ptr` (NULL: `None`), made with `encoder` as its eval callback's user data.
    pub(super) fn from_raw(ptr: *mut sys::mtmd_context, encoder: Box<EncoderAbort>) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Projector { ptr, encoder })
    }
    pub(super) fn as_ptr(&self) -> *mut sys::mtmd_context {
        self.ptr.as_ptr()
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

    /// Whether chunk `index` (media) is evaluated in the text model with non-causal attention,
    /// and how many embeddings it has.
    pub fn media_eval_shape(&self, chunks: &Chunks, index: usize) -> (bool, u32) {
        let chunk = chunks.get(index);
        // SAFETY: the projector and the chunk are alive.
        unsafe {
            (sys::mtmd_decode_use_non_causal(self.as_ptr(), chunk), sys::mtmd_input_chunk_get_n_tokens(chunk) as u32)
        }
    }

    /// Encodes chunk `index` (media) and evaluates its embeddings in `ctx`, sequence `seq`, at
    /// `n_past`, the context's `n_batch` at a time, once the encoder is free, which `abort` can
    /// then stop; returns mtmd's status (0: done) and the position after it.
    pub fn eval_chunk(
        &self,
        abort: &AbortState,
        ctx: &Context,
        chunks: &Chunks,
        index: usize,
        (seq, n_past): (i32, i32),
        logits_last: bool,
    ) -> Result<(i32, i32)> {
        let mut new_n_past = 0;
        let _encoder = self.encoder.lend(abort);
        // SAFETY: the projector, context and chunk are alive; `new_n_past` is writable.
        let status = unsafe {
            guard::mm_guard_eval_chunk(
                self.as_ptr(),
                ctx.as_ptr(),
                chunks.get(index),
                n_past,
                seq,
                ctx.n_batch() as i32,
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
