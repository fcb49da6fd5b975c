//! The safe core: a session owns a text model, its context and (optionally) its projector, and
//! frees them together, projector first.

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use llama_cpp_sys_2 as sys;

use crate::error::{fail, mm_status::*, Error, Result};
use crate::generate::{mm_stop_reason, Flow, TextStream};
use crate::gguf_check;
use crate::llama::{Chunks, Context, Model, Projector, Sampler};
use crate::log;
use crate::media::{self, Media};

/// Sessions that exist now (created and not yet dropped).
static LIVE: AtomicUsize = AtomicUsize::new(0);

pub fn live_sessions() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// What a session is made from. `Default` gives the documented defaults.
pub struct SessionConfig<'a> {
    pub model_path: PathBuf,
    pub mmproj_path: Option<PathBuf>,
    /// Context window in tokens.
    pub n_ctx: u32,
    /// Largest number of tokens evaluated in one step.
    pub n_batch: u32,
    /// CPU threads; 0 chooses [`default_threads`].
    pub n_threads: i32,
    /// Layers of the text model on the GPU; negative: all.
    pub n_gpu_layers: i32,
    pub mmproj_use_gpu: bool,
    pub use_mmap: bool,
    /// Sampling seed of requests that do not set one; `u32::MAX`: random.
    pub seed: u32,
    /// The text that stands for a media item in prompts; `None`: mtmd's default marker.
    pub media_marker: Option<String>,
    /// Load progress in [0, 1]; returning false cancels the load.
    pub progress: Option<&'a mut dyn FnMut(f32) -> bool>,
}

impl Default for SessionConfig<'_> {
    fn default() -> Self {
        SessionConfig {
            model_path: PathBuf::new(),
            mmproj_path: None,
            n_ctx: 4096,
            n_batch: 512,
            n_threads: 0,
            n_gpu_layers: -1,
            mmproj_use_gpu: true,
            use_mmap: true,
            seed: u32::MAX,
            media_marker: None,
            progress: None,
        }
    }
}

/// The thread count used when a session asks for 0: half the hardware threads (about the
/// physical cores on SMT machines), between 1 and 8. llama.cpp's threads spin while they wait,
/// so more threads than free cores is far slower, not faster.
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map(|n| (n.get() / 2).clamp(1, 8) as i32).unwrap_or(1)
}

/// Sampling settings of one request.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub max_tokens: i32,
    /// 0: greedy (always the most likely token).
    pub temperature: f32,
    /// 0: off.
    pub top_k: i32,
    /// 1: off.
    pub top_p: f32,
    /// 0: off.
    pub min_p: f32,
    /// `None`: the session's seed.
    pub seed: Option<u32>,
    /// Generation stops before any of these; none may be empty.
    pub stop: Vec<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { max_tokens: 256, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, seed: None, stop: Vec::new() }
    }
}

impl Sampling {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| fail(MM_ERR_INVALID_ARGUMENT, m);
        if self.max_tokens < 1 {
            return bad(format!("max_tokens is {}; it must be at least 1", self.max_tokens));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature is {}; it must be a finite number >= 0", self.temperature));
        }
        if self.top_k < 0 {
            return bad(format!("top_k is {}; it must be >= 0 (0: off)", self.top_k));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad(format!("top_p is {}; it must be in [0, 1] (1: off)", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p is {}; it must be in [0, 1] (0: off)", self.min_p));
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("a stop string is empty".into());
        }
        Ok(())
    }

    fn sampler(&self, default_seed: u32) -> Sampler {
        let mut chain = Sampler::chain();
        unsafe {
            if self.temperature <= 0.0 {
                chain.add(sys::llama_sampler_init_greedy());
                return chain;
            }
            if self.top_k > 0 {
                chain.add(sys::llama_sampler_init_top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.add(sys::llama_sampler_init_top_p(self.top_p, 1));
            }
            if self.min_p > 0.0 {
                chain.add(sys::llama_sampler_init_min_p(self.min_p, 1));
            }
            chain.add(sys::llama_sampler_init_temp(self.temperature));
            chain.add(sys::llama_sampler_init_dist(self.seed.unwrap_or(default_seed)));
        }
        chain
    }
}

/// One question: a prompt, the media its markers stand for, and how to sample the answer.
pub struct Request<'a> {
    pub prompt: &'a str,
    pub media: &'a [Media<'a>],
    pub sampling: Sampling,
}

/// Figures of the last finished request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mm_ask_info {
    /// Positions the prompt (text and media) takes in the context.
    pub prompt_positions: u32,
    /// Prompt tokens (text and media embeddings) evaluated by this request.
    pub tokens_evaluated: u32,
    /// Media items run through the projector's encoder by this request.
    pub media_encoded: u32,
    /// Tokens generated.
    pub tokens_generated: u32,
    /// Why generation ended (an `mm_stop_reason`).
    pub stop_reason: i32,
    /// Wall time of prompt evaluation (media encoding included) and of generation, in ms.
    pub prompt_ms: f64,
    pub generate_ms: f64,
}

impl Default for mm_ask_info {
    fn default() -> Self {
        mm_ask_info {
            prompt_positions: 0,
            tokens_evaluated: 0,
            media_encoded: 0,
            tokens_generated: 0,
            stop_reason: mm_stop_reason::MM_STOP_NONE as i32,
            prompt_ms: 0.0,
            generate_ms: 0.0,
        }
    }
}

/// A loaded multimodal model. Fields drop in declaration order: projector, context, model.
pub struct Session {
    projector: Option<Projector>,
    ctx: Context,
    model: Model,
    marker: String,
    marker_c: CString,
    seed: u32,
    mmproj: Option<(PathBuf, bool, i32)>,
    last: mm_ask_info,
}

// SAFETY: llama.cpp's model, context and mtmd context may be used from any thread as long as
// one thread at a time uses them; the registry's per-session mutex ensures that.
unsafe impl Send for Session {}

/// Passes llama.cpp's and mtmd's load progress to the user's callback, mapped to one range.
struct Progress<'a, 'b> {
    callback: Option<&'a mut (dyn FnMut(f32) -> bool + 'b)>,
    base: f32,
    span: f32,
    cancelled: bool,
}

unsafe extern "C" fn progress_trampoline(progress: f32, user_data: *mut c_void) -> bool {
    let state = &mut *(user_data as *mut Progress);
    let Some(cb) = state.callback.as_mut() else { return true };
    let overall = state.base + state.span * progress.clamp(0.0, 1.0);
    let go_on = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(overall))).unwrap_or(false);
    state.cancelled |= !go_on;
    go_on
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, format!("{}: path contains a NUL byte", path.display())))
}

/// The last lines llama.cpp logged about a failure, on one line.
fn reason(log: &str) -> String {
    let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        "no reason was logged".into()
    } else {
        lines[lines.len().saturating_sub(3)..].join("; ")
    }
}

impl Session {
    /// Loads the model, creates its context and loads the projector. On failure everything
    /// made so far is freed before the error returns.
    pub fn create(mut config: SessionConfig) -> Result<Session> {
        crate::backend::init();
        if config.n_ctx < 16 || config.n_batch < 1 {
            return fail(MM_ERR_INVALID_ARGUMENT, format!("n_ctx {} (min 16) or n_batch {} (min 1) too small", config.n_ctx, config.n_batch));
        }
        if config.n_threads < 0 {
            return fail(MM_ERR_INVALID_ARGUMENT, format!("n_threads is {}; use 0 for the default", config.n_threads));
        }
        gguf_check::expect_text_model(&config.model_path)?;
        if let Some(mmproj) = &config.mmproj_path {
            gguf_check::expect_projector(mmproj)?;
        }
        if let Some(marker) = &config.media_marker {
            if marker.is_empty() {
                return fail(MM_ERR_INVALID_ARGUMENT, "media_marker is empty");
            }
        }
        let threads = if config.n_threads == 0 { default_threads() } else { config.n_threads };
        let model_span = if config.mmproj_path.is_some() { 0.8 } else { 1.0 };
        let mut progress = Progress { callback: config.progress.take(), base: 0.0, span: model_span, cancelled: false };

        let model = Self::load_model(&config, &mut progress)?;
        let ctx = Self::new_context(&config, &model, threads)?;
        let marker_c;
        let (projector, marker) = match &config.mmproj_path {
            None => (None, config.media_marker.clone().unwrap_or_else(default_marker)),
            Some(path) => {
                progress.base = model_span;
                progress.span = 1.0 - model_span;
                marker_c = config.media_marker.as_deref().map(|m| CString::new(m)).transpose().or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "media_marker contains a NUL byte"))?;
                let p = Self::load_projector(path, &config, &model, threads, marker_c.as_ref(), &mut progress)?;
                let marker = unsafe { std::ffi::CStr::from_ptr(sys::mtmd_get_marker(p.as_ptr())) }.to_string_lossy().into_owned();
                (Some(p), marker)
            }
        };
        LIVE.fetch_add(1, Ordering::SeqCst);
        Ok(Session {
            projector,
            ctx,
            model,
            marker_c: CString::new(marker.clone()).expect("markers have no NUL"),
            marker,
            seed: config.seed,
            mmproj: config.mmproj_path.clone().map(|p| (p, config.mmproj_use_gpu, threads)),
            last: mm_ask_info::default(),
        })
    }

    fn load_model(config: &SessionConfig, progress: &mut Progress) -> Result<Model> {
        let path = c_path(&config.model_path)?;
        let mut mp = unsafe { sys::llama_model_default_params() };
        mp.n_gpu_layers = if config.n_gpu_layers < 0 { i32::MAX } else { config.n_gpu_layers };
        mp.load_mode = if config.use_mmap { sys::LLAMA_LOAD_MODE_MMAP } else { sys::LLAMA_LOAD_MODE_NONE };
        mp.progress_callback = Some(progress_trampoline);
        mp.progress_callback_user_data = progress as *mut Progress as *mut c_void;
        let (ptr, log) = log::capture(|| unsafe { sys::llama_model_load_from_file(path.as_ptr(), mp) });
        match Model::from_raw(ptr) {
            Some(m) => Ok(m),
            None if progress.cancelled => fail(MM_ERR_CANCELLED, format!("text model {}: loading cancelled by the progress callback; nothing was kept", config.model_path.display())),
            None => fail(MM_ERR_MODEL_LOAD, format!("text model {}: llama.cpp could not load it: {}", config.model_path.display(), reason(&log))),
        }
    }

    fn new_context(config: &SessionConfig, model: &Model, threads: i32) -> Result<Context> {
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = config.n_ctx;
        cp.n_batch = config.n_batch;
        cp.n_ubatch = config.n_batch;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        cp.no_perf = true;
        let (ptr, log) = log::capture(|| unsafe { sys::llama_init_from_model(model.as_ptr(), cp) });
        Context::from_raw(ptr).ok_or_else(|| {
            Error::new(MM_ERR_CONTEXT_CREATE, format!("text model {}: could not create a context of {} tokens: {}", config.model_path.display(), config.n_ctx, reason(&log)))
        })
    }

    fn load_projector(path: &Path, config: &SessionConfig, model: &Model, threads: i32, marker: Option<&CString>, progress: &mut Progress) -> Result<Projector> {
        let path_c = c_path(path)?;
        let mut mp = unsafe { sys::mtmd_context_params_default() };
        mp.use_gpu = config.mmproj_use_gpu;
        mp.n_threads = threads;
        mp.print_timings = false;
        if let Some(m) = marker {
            mp.media_marker = m.as_ptr();
        }
        mp.progress_callback = Some(progress_trampoline);
        mp.progress_callback_user_data = progress as *mut Progress as *mut c_void;
        let (ptr, log) = log::capture(|| unsafe { sys::mtmd_init_from_file(path_c.as_ptr(), model.as_ptr(), mp) });
        match Projector::from_raw(ptr) {
            Some(p) => Ok(p),
            None if progress.cancelled => fail(MM_ERR_CANCELLED, format!("projector {}: loading cancelled by the progress callback; nothing was kept", path.display())),
            None if log.contains("mismatch between text model") => fail(
                MM_ERR_PROJECTOR_MISMATCH,
                format!("projector {}: its output size differs from the embedding size of text model {} ({}): {}", path.display(), config.model_path.display(), model.n_embd(), reason(&log)),
            ),
            None => fail(MM_ERR_PROJECTOR_LOAD, format!("projector {}: could not be loaded: {}", path.display(), reason(&log))),
        }
    }

    pub fn marker(&self) -> &str {
        &self.marker
    }

    pub fn marker_c(&self) -> &CString {
        &self.marker_c
    }

    pub fn last_info(&self) -> mm_ask_info {
        self.last
    }

    pub fn projector(&self) -> Option<&Projector> {
        self.projector.as_ref()
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The projector's file, whether it was asked to run on the GPU, and its thread count.
    pub fn projector_source(&self) -> Option<&(PathBuf, bool, i32)> {
        self.mmproj.as_ref()
    }

    /// Evaluates the request and generates the answer, streaming it to `on_text` (which returns
    /// false to stop). Returns the whole answer. `cancel` is checked between tokens.
    pub fn ask(&mut self, req: &Request, on_text: &mut dyn FnMut(&str) -> bool, cancel: &AtomicBool) -> Result<String> {
        req.sampling.validate()?;
        let started = Instant::now();
        let mut info = mm_ask_info::default();
        self.ctx.clear_memory();
        let n_ctx = self.ctx.n_ctx();
        let n_past = match &self.projector {
            Some(p) => {
                let chunks = self.tokenize_media(p, req)?;
                let n_pos = chunks.n_pos().max(0) as u32;
                check_fits(n_pos, n_ctx)?;
                info.prompt_positions = n_pos;
                let mut n_past = 0;
                let status = unsafe {
                    sys::mtmd_helper_eval_chunks(p.as_ptr(), self.ctx.as_ptr(), chunks.as_ptr(), 0, 0, self.ctx.n_batch() as i32, true, &mut n_past)
                };
                if status != 0 {
                    return fail(MM_ERR_EVAL, format!("evaluating the prompt failed (mtmd status {status})"));
                }
                info.media_encoded = (0..chunks.len()).filter(|&i| chunks.chunk_type(i) != sys::MTMD_INPUT_CHUNK_TYPE_TEXT).count() as u32;
                info.tokens_evaluated = n_pos;
                n_past
            }
            None => {
                if !req.media.is_empty() {
                    return fail(MM_ERR_UNSUPPORTED, format!("{} media item(s) given, but this session has no projector (text only)", req.media.len()));
                }
                let mut tokens = self.tokenize_text(req.prompt)?;
                check_fits(tokens.len() as u32, n_ctx)?;
                info.prompt_positions = tokens.len() as u32;
                for batch in tokens.chunks_mut(self.ctx.n_batch() as usize) {
                    self.decode(batch)?;
                }
                info.tokens_evaluated = tokens.len() as u32;
                tokens.len() as i32
            }
        };
        info.prompt_ms = started.elapsed().as_secs_f64() * 1e3;
        let generating = Instant::now();
        let result = self.generate(req, n_past, on_text, cancel, &mut info);
        info.generate_ms = generating.elapsed().as_secs_f64() * 1e3;
        self.last = info;
        result
    }

    fn generate(&mut self, req: &Request, mut n_past: i32, on_text: &mut dyn FnMut(&str) -> bool, cancel: &AtomicBool, info: &mut mm_ask_info) -> Result<String> {
        let mut sampler = req.sampling.sampler(self.seed);
        let vocab = self.model.vocab();
        let mut stream = TextStream::new(&req.sampling.stop, on_text);
        let mut reason = mm_stop_reason::MM_STOP_MAX_TOKENS;
        let mut piece = [0u8; 256];
        for _ in 0..req.sampling.max_tokens {
            if cancel.load(Ordering::Relaxed) {
                stream.finish();
                return fail(MM_ERR_CANCELLED, "the request was cancelled");
            }
            if n_past as u32 >= self.ctx.n_ctx() {
                reason = mm_stop_reason::MM_STOP_CONTEXT_FULL;
                break;
            }
            let mut token = sampler.sample(&self.ctx);
            if unsafe { sys::llama_vocab_is_eog(vocab, token) } {
                reason = mm_stop_reason::MM_STOP_EOG;
                break;
            }
            info.tokens_generated += 1;
            let n = unsafe { sys::llama_token_to_piece(vocab, token, piece.as_mut_ptr().cast(), piece.len() as i32, 0, false) };
            if let Flow::Stop(r) = stream.push(&piece[..n.clamp(0, piece.len() as i32) as usize]) {
                reason = r;
                break;
            }
            self.decode(std::slice::from_mut(&mut token))?;
            n_past += 1;
        }
        info.stop_reason = reason as i32;
        Ok(stream.finish())
    }

    fn decode(&self, tokens: &mut [sys::llama_token]) -> Result<()> {
        let batch = unsafe { sys::llama_batch_get_one(tokens.as_mut_ptr(), tokens.len() as i32) };
        match unsafe { sys::llama_decode(self.ctx.as_ptr(), batch) } {
            0 => Ok(()),
            code => fail(MM_ERR_EVAL, format!("llama_decode failed with code {code}")),
        }
    }

    fn tokenize_text(&self, text: &str) -> Result<Vec<sys::llama_token>> {
        let vocab = self.model.vocab();
        let len = i32::try_from(text.len()).or_else(|_| fail(MM_ERR_CONTEXT_FULL, "the prompt is longer than 2 GiB"))?;
        let mut tokens = vec![0; text.len() + 8];
        let mut n = unsafe { sys::llama_tokenize(vocab, text.as_ptr().cast(), len, tokens.as_mut_ptr(), tokens.len() as i32, true, true) };
        if n < 0 {
            tokens.resize(n.unsigned_abs() as usize, 0);
            n = unsafe { sys::llama_tokenize(vocab, text.as_ptr().cast(), len, tokens.as_mut_ptr(), tokens.len() as i32, true, true) };
        }
        if n < 0 {
            return fail(MM_ERR_TOKENIZE, format!("tokenizing the prompt failed ({n})"));
        }
        tokens.truncate(n as usize);
        Ok(tokens)
    }

    /// Decodes the media, places them at their markers and tokenizes text and media.
    fn tokenize_media(&self, projector: &Projector, req: &Request) -> Result<Chunks> {
        let n_markers = req.prompt.matches(self.marker.as_str()).count();
        let prompt = if n_markers == 0 && !req.media.is_empty() {
            format!("{}{}", format!("{}\n", self.marker).repeat(req.media.len()), req.prompt)
        } else if n_markers != req.media.len() {
            return fail(MM_ERR_MEDIA_COUNT, format!("the prompt has {n_markers} marker(s) '{}' but {} media item(s) were given", self.marker, req.media.len()));
        } else {
            req.prompt.to_string()
        };
        let bitmaps = req.media.iter().enumerate().map(|(i, m)| media::decode(projector, i, m)).collect::<Result<Vec<_>>>()?;
        let ptrs: Vec<*const sys::mtmd_bitmap> = bitmaps.iter().map(|b| b.as_ptr()).collect();
        let text_c = CString::new(prompt).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "the prompt contains a NUL byte"))?;
        let text = sys::mtmd_input_text { text: text_c.as_ptr(), text_len: text_c.as_bytes().len(), add_special: true, parse_special: true };
        let chunks = Chunks::new().ok_or_else(|| Error::new(MM_ERR_INTERNAL, "mtmd_input_chunks_init returned NULL"))?;
        let (status, log) = log::capture(|| unsafe { sys::mtmd_tokenize(projector.as_ptr(), chunks.as_ptr(), &text, ptrs.as_ptr(), ptrs.len()) });
        match status {
            0 => Ok(chunks),
            1 => fail(MM_ERR_MEDIA_COUNT, format!("markers and media items differ in number: {}", reason(&log))),
            2 => fail(MM_ERR_MEDIA_DECODE, format!("preprocessing a media item failed: {}", reason(&log))),
            s => fail(MM_ERR_TOKENIZE, format!("tokenizing the prompt failed ({s}): {}", reason(&log))),
        }
    }
}

fn check_fits(n_pos: u32, n_ctx: u32) -> Result<()> {
    if n_pos >= n_ctx {
        return fail(MM_ERR_CONTEXT_FULL, format!("the prompt takes {n_pos} positions but the context holds {n_ctx} (one more is needed to answer)"));
    }
    Ok(())
}

fn default_marker() -> String {
    unsafe { std::ffi::CStr::from_ptr(sys::mtmd_default_marker()) }.to_string_lossy().into_owned()
}

impl Drop for Session {
    fn drop(&mut self) {
        // Fields follow: projector, then context, then model (declaration order).
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
