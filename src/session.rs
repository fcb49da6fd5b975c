//! The safe core: a session owns a text model, its context and (optionally) its projector, and
//! frees them together, projector first. It keeps track of what its KV cache holds, so that a
//! follow-up request evaluates only what is new.

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_sys_2 as sys;

use crate::abort::{self, AbortState};
use crate::error::{fail, mm_status::*, Error, Result};
use crate::generate::{mm_stop_reason, Flow, TextStream};
use crate::gguf_check;
use crate::guard;
use crate::kv::{Item, KvCache};
use crate::llama::{Bitmap, Context, Model, Projector, Sampler, TokenBatch};
use crate::log;
use crate::media;
use crate::prompt::{self, Input, Prompt};

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
    /// Chat template (Jinja text llama.cpp recognises, or a built-in name such as "chatml");
    /// `None`: the model's own, or ChatML when it has none.
    pub chat_template: Option<String>,
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
            chat_template: None,
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
    /// A GBNF grammar (rule `root`) the output must follow.
    pub grammar: Option<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { max_tokens: 256, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, seed: None, stop: Vec::new(), grammar: None }
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

    fn sampler(&self, model: &Model, default_seed: u32) -> Result<Sampler> {
        let mut chain = Sampler::chain();
        if let Some(grammar) = &self.grammar {
            crate::grammar_limits::check(grammar).or_else(|why| fail(MM_ERR_INVALID_ARGUMENT, format!("grammar refused: {why}")))?;
            let g = CString::new(grammar.as_str()).or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "the grammar contains a NUL byte"))?;
            let (s, log) = log::capture(|| unsafe { guard::mm_guard_sampler_init_grammar(model.vocab(), g.as_ptr()) });
            if s.is_null() {
                return fail(MM_ERR_INVALID_ARGUMENT, format!("invalid grammar: {}", log::last_lines(&log)));
            }
            chain.add(s);
        }
        unsafe {
            if self.temperature <= 0.0 {
                chain.add(sys::llama_sampler_init_greedy());
                return Ok(chain);
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
        Ok(chain)
    }
}

/// What to do when a chat does not fit in the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Fail with `MM_ERR_CONTEXT_FULL` before evaluating anything.
    Fail,
    /// Drop the oldest messages after the system message until it fits.
    DropOldest,
}

/// One question: what it says, and how to sample the answer.
pub struct Request<'a> {
    pub input: Input<'a>,
    pub sampling: Sampling,
    pub overflow: Overflow,
}

/// Figures of the last finished request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mm_ask_info {
    /// `sizeof(mm_ask_info)` of the caller's header: set it before the call.
    pub struct_size: u32,
    /// Positions the prompt (text and media) takes in the context.
    pub prompt_positions: u32,
    /// Positions of the prompt found in the cache from earlier requests (not evaluated again).
    pub positions_reused: u32,
    /// Prompt tokens (text and media embeddings) evaluated by this request.
    pub tokens_evaluated: u32,
    /// Media items run through the projector's encoder by this request.
    pub media_encoded: u32,
    /// Tokens generated.
    pub tokens_generated: u32,
    /// Oldest messages dropped to make the chat fit (`MM_OVERFLOW_DROP_OLDEST`).
    pub messages_dropped: u32,
    /// Why generation ended (an `mm_stop_reason`).
    pub stop_reason: i32,
    /// Wall time of prompt evaluation (media encoding included) and of generation, in ms.
    pub prompt_ms: f64,
    pub generate_ms: f64,
}

impl Default for mm_ask_info {
    fn default() -> Self {
        mm_ask_info {
            struct_size: std::mem::size_of::<mm_ask_info>() as u32,
            prompt_positions: 0,
            positions_reused: 0,
            tokens_evaluated: 0,
            media_encoded: 0,
            tokens_generated: 0,
            messages_dropped: 0,
            stop_reason: mm_stop_reason::MM_STOP_NONE as i32,
            prompt_ms: 0.0,
            generate_ms: 0.0,
        }
    }
}

/// A loaded multimodal model. Fields drop in declaration order: projector, context, model,
/// then the abort state their callbacks point to.
pub struct Session {
    projector: Option<Projector>,
    ctx: Context,
    model: Model,
    abort: Arc<AbortState>,
    marker: String,
    marker_c: CString,
    chat_template: String,
    seed: u32,
    mmproj: Option<(PathBuf, bool, i32)>,
    kv: KvCache,
    batch: TokenBatch,
    last: mm_ask_info,
}

// SAFETY: llama.cpp's model, context and mtmd context may be used from any thread as long as
// one thread at a time uses them; the registry's per-session mutex ensures that. The batch's
// pointers point into its own vectors.
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
        // The checks run on a short-lived thread so that their many small allocations come from
        // another malloc arena: made on this thread, between loads, they fragmented the heap
        // that llama.cpp's buffers are then carved from (resident memory grew by up to 5 MB
        // over 500 create/destroy cycles, though nothing leaked).
        let projector_outputs = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    gguf_check::expect_text_model(&config.model_path)?;
                    config.mmproj_path.as_deref().map(gguf_check::expect_projector).transpose()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        if config.media_marker.as_deref() == Some("") {
            return fail(MM_ERR_INVALID_ARGUMENT, "media_marker is empty");
        }
        let threads = if config.n_threads == 0 { default_threads() } else { config.n_threads };
        let model_span = if config.mmproj_path.is_some() { 0.8 } else { 1.0 };
        let mut progress = Progress { callback: config.progress.take(), base: 0.0, span: model_span, cancelled: false };
        let abort = Arc::new(AbortState::default());

        let model = Self::load_model(&config, &mut progress)?;
        let ctx = Self::new_context(&config, &model, threads, &abort)?;
        let (projector, marker) = match &config.mmproj_path {
            None => (None, config.media_marker.clone().unwrap_or_else(default_marker)),
            Some(path) => {
                gguf_check::expect_projector_output(projector_outputs.as_ref().expect("read above"), path, model.n_embd())?;
                progress.base = model_span;
                progress.span = 1.0 - model_span;
                let p = Self::load_projector(path, &config, &model, threads, &abort, &mut progress)?;
                let marker = unsafe { std::ffi::CStr::from_ptr(sys::mtmd_get_marker(p.as_ptr())) }.to_string_lossy().into_owned();
                (Some(p), marker)
            }
        };
        let chat_template = config.chat_template.clone().or_else(|| prompt::model_template(&model)).unwrap_or_else(|| prompt::FALLBACK_TEMPLATE.into());
        LIVE.fetch_add(1, Ordering::SeqCst);
        Ok(Session {
            batch: TokenBatch::new(ctx.n_batch() as usize),
            projector,
            ctx,
            model,
            abort,
            marker_c: CString::new(marker.clone()).expect("markers have no NUL"),
            marker,
            chat_template,
            seed: config.seed,
            mmproj: config.mmproj_path.clone().map(|p| (p, config.mmproj_use_gpu, threads)),
            kv: KvCache::default(),
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
            None => fail(MM_ERR_MODEL_LOAD, format!("text model {}: llama.cpp could not load it: {}", config.model_path.display(), log::last_lines(&log))),
        }
    }

    fn new_context(config: &SessionConfig, model: &Model, threads: i32, abort: &Arc<AbortState>) -> Result<Context> {
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = config.n_ctx;
        cp.n_batch = config.n_batch;
        cp.n_ubatch = config.n_batch;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        cp.no_perf = true;
        cp.abort_callback = Some(abort::llama_abort);
        cp.abort_callback_data = abort.as_user_data();
        let (ptr, log) = log::capture(|| unsafe { sys::llama_init_from_model(model.as_ptr(), cp) });
        Context::from_raw(ptr).ok_or_else(|| {
            Error::new(MM_ERR_CONTEXT_CREATE, format!("text model {}: could not create a context of {} tokens: {}", config.model_path.display(), config.n_ctx, log::last_lines(&log)))
        })
    }

    fn load_projector(path: &Path, config: &SessionConfig, model: &Model, threads: i32, abort: &Arc<AbortState>, progress: &mut Progress) -> Result<Projector> {
        let path_c = c_path(path)?;
        let marker_c = config.media_marker.as_deref().map(CString::new).transpose().or_else(|_| fail(MM_ERR_INVALID_ARGUMENT, "media_marker contains a NUL byte"))?;
        let mut mp = unsafe { sys::mtmd_context_params_default() };
        mp.use_gpu = config.mmproj_use_gpu;
        mp.n_threads = threads;
        mp.print_timings = false;
        if let Some(m) = &marker_c {
            mp.media_marker = m.as_ptr();
        }
        mp.cb_eval = Some(abort::encoder_eval);
        mp.cb_eval_user_data = abort.as_user_data();
        mp.progress_callback = Some(progress_trampoline);
        mp.progress_callback_user_data = progress as *mut Progress as *mut c_void;
        let (ptr, log) = log::capture(|| unsafe { sys::mtmd_init_from_file(path_c.as_ptr(), model.as_ptr(), mp) });
        match Projector::from_raw(ptr) {
            Some(p) => Ok(p),
            None if progress.cancelled => fail(MM_ERR_CANCELLED, format!("projector {}: loading cancelled by the progress callback; nothing was kept", path.display())),
            None if log.contains("mismatch between text model") => fail(
                MM_ERR_PROJECTOR_MISMATCH,
                format!("projector {}: its output size differs from the embedding size of text model {} ({}): {}", path.display(), config.model_path.display(), model.n_embd(), log::last_lines(&log)),
            ),
            None => fail(MM_ERR_PROJECTOR_LOAD, format!("projector {}: could not be loaded: {}", path.display(), log::last_lines(&log))),
        }
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

    /// The state other threads use to cancel this session's calls.
    pub fn abort_state(&self) -> Arc<AbortState> {
        self.abort.clone()
    }

    /// Positions of the KV cache in use.
    pub fn n_past(&self) -> i32 {
        self.kv.n_pos()
    }

    pub(crate) fn kv(&self) -> &KvCache {
        &self.kv
    }

    /// Replaces the cache bookkeeping after `state_file` restored the KV cache.
    pub(crate) fn kv_mut(&mut self) -> &mut KvCache {
        &mut self.kv
    }

    /// The projector's file, whether it was asked to run on the GPU, and its thread count.
    pub fn projector_source(&self) -> Option<&(PathBuf, bool, i32)> {
        self.mmproj.as_ref()
    }

    /// Empties the KV cache: the next request evaluates everything.
    pub fn reset(&mut self) {
        self.ctx.clear_memory();
        self.kv.clear();
    }

    /// Positions the request's prompt would take, without evaluating anything.
    pub fn count_positions(&mut self, req: &Request) -> Result<(i32, u32)> {
        let bitmaps = self.decode_media(&req.input)?;
        let (prompt, dropped) = self.build_prompt(req, &bitmaps)?;
        Ok((prompt.n_pos(), dropped))
    }

    /// Evaluates what the request adds to the cache and generates the answer, streaming it to
    /// `on_text` (which returns false to stop). Returns the whole answer.
    pub fn ask(&mut self, req: &Request, on_text: &mut dyn FnMut(&str) -> bool) -> Result<String> {
        self.abort.begin_call();
        req.sampling.validate()?;
        let mut sampler = req.sampling.sampler(&self.model, self.seed)?;
        let started = Instant::now();
        let mut info = mm_ask_info::default();
        let bitmaps = self.decode_media(&req.input)?;
        let (prompt, dropped) = self.build_prompt(req, &bitmaps)?;
        info.messages_dropped = dropped;
        info.prompt_positions = prompt.n_pos() as u32;
        if prompt.items.is_empty() {
            return fail(MM_ERR_INVALID_ARGUMENT, "the prompt is empty: it has no token and no media");
        }

        // Reuse the cached prefix. Evaluate at least one item unless the logits that followed
        // exactly this prompt were kept.
        let mut common = self.kv.common_prefix(&prompt.items);
        let reuse_logits = common == prompt.items.len() && self.kv.logits_after(common).is_some();
        if common == prompt.items.len() && !reuse_logits {
            common -= 1;
        }
        let cut = self.kv.truncate(common);
        self.forget_from(cut);
        info.positions_reused = cut as u32;

        let evaluated = self.evaluate(&prompt, common, &mut info);
        info.prompt_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = evaluated {
            self.last = info;
            return Err(e);
        }
        if !reuse_logits {
            let logits = self.last_logits()?.to_vec();
            self.kv.save_logits(logits);
        }
        let logits = self.kv.logits_after(prompt.items.len()).expect("kept above").to_vec();

        let generating = Instant::now();
        let result = self.generate(req, &mut sampler, logits, on_text, &mut info);
        info.generate_ms = generating.elapsed().as_secs_f64() * 1e3;
        self.last = info;
        result
    }

    /// Decodes every media item of the request, in order.
    fn decode_media(&self, input: &Input) -> Result<Vec<Bitmap>> {
        let all: Vec<&media::Media> = match input {
            Input::Prompt { media, .. } => media.iter().collect(),
            Input::Chat(messages) => messages.iter().flat_map(|m| m.media.iter()).collect(),
        };
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let Some(projector) = &self.projector else {
            return fail(MM_ERR_UNSUPPORTED, format!("{} media item(s) given, but this session has no projector (text only)", all.len()));
        };
        all.iter().enumerate().map(|(i, m)| media::decode(projector, i, m)).collect()
    }

    /// Renders and tokenizes the request; with `Overflow::DropOldest`, drops the oldest
    /// messages after a leading system message until the prompt fits. Returns the prompt and
    /// the number of messages dropped.
    fn build_prompt(&self, req: &Request, bitmaps: &[Bitmap]) -> Result<(Prompt, u32)> {
        let n_ctx = self.ctx.n_ctx() as i32;
        let messages = match &req.input {
            Input::Prompt { text, media } => {
                let mut text = prompt::place_markers(text, media.len(), &self.marker, "the prompt")?;
                let used: Vec<&Bitmap> = bitmaps.iter().collect();
                let mut prompt = self.tokenize(&text, &used)?;
                // Evaluating media yields no logits, and generation starts from the logits of
                // the last position: a prompt that ends with a media item gets a newline after it.
                if matches!(prompt.items.last(), Some(Item::Media { .. })) {
                    text.push('\n');
                    prompt = self.tokenize(&text, &used)?;
                }
                return fits(prompt.n_pos(), n_ctx).map(|_| (prompt, 0));
            }
            Input::Chat(messages) if messages.is_empty() => return fail(MM_ERR_INVALID_ARGUMENT, "the chat has no message"),
            Input::Chat(messages) => messages,
        };
        let mut media_start = vec![0];
        for m in messages.iter() {
            media_start.push(media_start.last().unwrap() + m.media.len());
        }
        let system = (messages[0].role == "system") as usize;
        let mut start = system;
        loop {
            let kept: Vec<usize> = (0..system).chain(start..messages.len()).collect();
            let rendered = kept
                .iter()
                .map(|&i| Ok((messages[i].role.to_string(), prompt::place_markers(messages[i].text, messages[i].media.len(), &self.marker, &format!("message {i}"))?)))
                .collect::<Result<Vec<_>>>()?;
            let text = prompt::render_chat(&self.chat_template, &rendered)?;
            let used: Vec<&Bitmap> = kept.iter().flat_map(|&i| &bitmaps[media_start[i]..media_start[i + 1]]).collect();
            let prompt = self.tokenize(&text, &used)?;
            if prompt.n_pos() < n_ctx || req.overflow == Overflow::Fail {
                return fits(prompt.n_pos(), n_ctx).map(|_| (prompt, (start - system) as u32));
            }
            // Drop the oldest turn: at least one message, then up to the next user message.
            start += 1;
            while start < messages.len() && messages[start].role != "user" {
                start += 1;
            }
            if start >= messages.len() {
                return fits(prompt.n_pos(), n_ctx).map(|_| (prompt, 0));
            }
        }
    }

    fn tokenize(&self, text: &str, bitmaps: &[&Bitmap]) -> Result<Prompt> {
        match &self.projector {
            Some(p) => prompt::tokenize_media(p, text, bitmaps),
            None => prompt::tokenize_text(&self.model, text),
        }
    }

    /// Removes positions from `pos` on from the KV cache (the bookkeeping is cut by the caller).
    fn forget_from(&self, pos: i32) {
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ctx.as_ptr()), 0, pos, -1) };
    }

    fn cancelled(&self) -> Result<()> {
        if self.abort.is_cancelled() {
            return fail(MM_ERR_CANCELLED, "the call was cancelled");
        }
        Ok(())
    }

    /// Evaluates `prompt.items[from..]`, adding each to the cache once it is in the KV cache.
    /// On failure or cancellation the KV cache is cut back to what the bookkeeping holds.
    fn evaluate(&mut self, prompt: &Prompt, from: usize, info: &mut mm_ask_info) -> Result<()> {
        let result = self.evaluate_items(prompt, from, info);
        if result.is_err() {
            self.forget_from(self.kv.n_pos());
        }
        result
    }

    fn evaluate_items(&mut self, prompt: &Prompt, from: usize, info: &mut mm_ask_info) -> Result<()> {
        let n_batch = self.ctx.n_batch() as usize;
        let last = prompt.items.len() - 1;
        let mut i = from;
        while i < prompt.items.len() {
            self.cancelled()?;
            match (&prompt.items[i], prompt.media_chunk[i]) {
                (Item::Media { n_pos, .. }, Some(chunk_index)) => {
                    let projector = self.projector.as_ref().expect("media items come from a projector");
                    let chunk = prompt.chunks.as_ref().expect("media items have chunks").get(chunk_index);
                    let mut new_n_past = 0;
                    let (status, log) = log::capture(|| unsafe {
                        guard::mm_guard_eval_chunk(projector.as_ptr(), self.ctx.as_ptr(), chunk, self.kv.n_pos(), n_batch as i32, i == last, &mut new_n_past, guard::THREW)
                    });
                    let status = guard::check(status, "mtmd_helper_eval_chunk_single")?;
                    self.cancelled()?;
                    if status != 0 {
                        return fail(MM_ERR_EVAL, format!("encoding media item failed ({status}): {}", log::last_lines(&log)));
                    }
                    info.media_encoded += 1;
                    info.tokens_evaluated += *n_pos as u32;
                    self.kv.push(prompt.items[i].clone(), new_n_past);
                    i += 1;
                }
                _ => {
                    let mut end = i;
                    while end < prompt.items.len() && end - i < n_batch && matches!(prompt.items[end], Item::Token(_)) {
                        end += 1;
                    }
                    let tokens: Vec<sys::llama_token> = prompt.items[i..end].iter().map(|it| if let Item::Token(t) = it { *t } else { unreachable!() }).collect();
                    self.decode_tokens(&tokens, end - 1 == last)?;
                    info.tokens_evaluated += tokens.len() as u32;
                    i = end;
                }
            }
        }
        Ok(())
    }

    /// Decodes text tokens at the end of the cache and records them.
    fn decode_tokens(&mut self, tokens: &[sys::llama_token], logits_last: bool) -> Result<()> {
        let pos = self.kv.n_pos();
        let batch = self.batch.fill(tokens, pos, logits_last);
        match guard::check(unsafe { guard::mm_guard_decode(self.ctx.as_ptr(), batch, guard::THREW) }, "llama_decode")? {
            0 => {
                for (k, &t) in tokens.iter().enumerate() {
                    self.kv.push(Item::Token(t), pos + k as i32 + 1);
                }
                Ok(())
            }
            2 => fail(MM_ERR_CANCELLED, "the call was cancelled"),
            code => fail(MM_ERR_EVAL, format!("llama_decode failed with code {code}")),
        }
    }

    fn last_logits(&self) -> Result<&[f32]> {
        let n_vocab = unsafe { sys::llama_vocab_n_tokens(self.model.vocab()) } as usize;
        let ptr = unsafe { sys::llama_get_logits_ith(self.ctx.as_ptr(), -1) };
        if ptr.is_null() {
            return fail(MM_ERR_EVAL, "llama.cpp produced no logits for the last position");
        }
        Ok(unsafe { std::slice::from_raw_parts(ptr, n_vocab) })
    }

    fn generate(&mut self, req: &Request, sampler: &mut Sampler, first_logits: Vec<f32>, on_text: &mut dyn FnMut(&str) -> bool, info: &mut mm_ask_info) -> Result<String> {
        let vocab = self.model.vocab();
        let n_ctx = self.ctx.n_ctx() as i32;
        let mut stream = TextStream::new(&req.sampling.stop, on_text);
        let mut reason = mm_stop_reason::MM_STOP_MAX_TOKENS;
        let mut piece = [0u8; 256];
        let mut candidates = Vec::new();
        let mut token = sampler.sample_from(&first_logits, &mut candidates)?;
        for n in 0..req.sampling.max_tokens {
            if n > 0 {
                token = sampler.sample_from(self.last_logits()?, &mut candidates)?;
            }
            if unsafe { sys::llama_vocab_is_eog(vocab, token) } {
                reason = mm_stop_reason::MM_STOP_EOG;
                break;
            }
            info.tokens_generated += 1;
            let len = guard::check(unsafe { guard::mm_guard_token_to_piece(vocab, token, piece.as_mut_ptr().cast(), piece.len() as i32, guard::THREW) }, "llama_token_to_piece")?;
            if let Flow::Stop(r) = stream.push(&piece[..len.clamp(0, piece.len() as i32) as usize]) {
                reason = r;
                break;
            }
            if n + 1 == req.sampling.max_tokens {
                break;
            }
            if self.kv.n_pos() >= n_ctx {
                reason = mm_stop_reason::MM_STOP_CONTEXT_FULL;
                break;
            }
            if let Err(e) = self.cancelled().and_then(|_| self.decode_tokens(&[token], true)) {
                self.forget_from(self.kv.n_pos());
                info.stop_reason = mm_stop_reason::MM_STOP_NONE as i32;
                return Err(e);
            }
        }
        info.stop_reason = reason as i32;
        Ok(stream.finish())
    }
}

/// Fails unless a prompt of `n_pos` positions leaves room for an answer.
fn fits(n_pos: i32, n_ctx: i32) -> Result<()> {
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
