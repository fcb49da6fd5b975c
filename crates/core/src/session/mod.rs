//! The safe core: a session owns a text model, its context and (optionally) its projector, and
//! frees them together, projector first. It keeps a record of what its KV cache holds, so that a
//! follow-up request evaluates only what is new (see `ask.rs`).

pub mod cache;
mod state;

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use llama_cpp_sys_2 as sys;

use crate::llama::{Context, Model, Projector, TokenBatch};
use crate::model::checked;
use crate::model::loaded::{check_remote, EncoderAbort, Weights};
use crate::model::rpc::Remote;
use crate::request::prompt;
use crate::request::AskInfo;
use crate::session::cache::CacheRecord;
use crate::util::abort::{self, AbortState};
use crate::util::error::{fail, Error, ErrorKind::*, Result};
use crate::util::hash::{self, Digest256};
use crate::util::log;

/// Sessions that exist now (created and not yet dropped).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many sessions exist in this process.
pub fn live_sessions() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// The smallest context accepted, in positions.
pub const MIN_CONTEXT: u32 = 16;

/// The share of load progress given to the text model when a projector follows it.
const MODEL_PROGRESS_SHARE: f32 = 0.8;

/// Flash attention in the text model's context and the projector's encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashAttention {
    /// llama.cpp decides (on where the backend supports it).
    Auto,
    Off,
    On,
}

impl FlashAttention {
    fn llama(self) -> sys::llama_flash_attn_type {
        match self {
            FlashAttention::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttention::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            FlashAttention::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        }
    }
}

/// The element type of the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvType {
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    fn ggml(self) -> sys::ggml_type {
        match self {
            KvType::F16 => sys::GGML_TYPE_F16,
            KvType::Q8_0 => sys::GGML_TYPE_Q8_0,
            KvType::Q4_0 => sys::GGML_TYPE_Q4_0,
        }
    }

    fn is_quantized(self) -> bool {
        self != KvType::F16
    }

    fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        }
    }
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
    /// Layers of the text model offloaded to devices (RPC servers, local GPUs); negative: all.
    pub n_gpu_layers: i32,
    /// RPC servers that take offloaded layers, "host:port,host:port" (llama.cpp's RPC backend:
    /// `rpc.rs`); `None`: none. Needs the `rpc` feature (`Unsupported` without it).
    pub rpc_servers: Option<String>,
    /// The share of the offloaded layers each device takes, in device order: the RPC servers'
    /// devices as the servers are named, then the local GPUs. Empty or all zero: llama.cpp's
    /// default (in proportion to free memory).
    pub tensor_split: Vec<f32>,
    pub mmproj_use_gpu: bool,
    pub use_mmap: bool,
    /// Sampling seed of requests that do not set one; `u32::MAX`: random.
    pub seed: u32,
    /// The text that stands for a media item in prompts; `None`: mtmd's default marker.
    pub media_marker: Option<String>,
    /// Chat template (Jinja text llama.cpp recognises, or a built-in name such as "chatml");
    /// `None`: the model's own, or ChatML when it has none.
    pub chat_template: Option<String>,
    /// Flash attention in the context and in the projector's encoder.
    pub flash_attn: FlashAttention,
    /// KV cache types of K and V; a quantized V needs flash attention.
    pub kv_type_k: KvType,
    pub kv_type_v: KvType,
    /// Tokens computed in one graph step (the physical batch); 0: `n_batch`.
    pub n_ubatch: u32,
    /// Lock the model's memory in RAM.
    pub use_mlock: bool,
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
            rpc_servers: None,
            tensor_split: Vec::new(),
            mmproj_use_gpu: true,
            use_mmap: true,
            seed: u32::MAX,
            media_marker: None,
            chat_template: None,
            flash_attn: FlashAttention::Auto,
            kv_type_k: KvType::F16,
            kv_type_v: KvType::F16,
            n_ubatch: 0,
            use_mlock: false,
            progress: None,
        }
    }
}

impl SessionConfig<'_> {
    /// Refuses values llama.cpp would refuse late, or abort on.
    fn validate(&self) -> Result<()> {
        check_sizes(self.n_ctx, self.n_batch, self.n_threads)?;
        if self.n_ubatch > self.n_batch {
            return fail(
                InvalidArgument,
                format!(
                    "n_ubatch {} is larger than n_batch {}; it must be at most n_batch (0: n_batch)",
                    self.n_ubatch, self.n_batch
                ),
            );
        }
        // A marker is found in message texts that chat templates trim, and placed in front of a
        // text with a newline after it: whitespace at either end of it would be cut or doubled.
        if let Some(marker) = &self.media_marker {
            if marker.is_empty() || marker.trim() != marker {
                return fail(
                    InvalidArgument,
                    format!("media_marker {marker:?} is empty or starts or ends with whitespace; use visible text such as <image>"),
                );
            }
        }
        // llama.cpp reads a quantized V cache only in its flash attention kernels (it would
        // refuse the context with a log line; the caller gets the reason here instead).
        if self.kv_type_v.is_quantized() && self.flash_attn == FlashAttention::Off {
            return fail(
                InvalidArgument,
                format!(
                    "kv_type_v {} needs flash attention, but flash_attn is off; set it on or auto",
                    self.kv_type_v.name()
                ),
            );
        }
        // SAFETY: a plain query.
        if self.use_mlock && !unsafe { sys::llama_supports_mlock() } {
            return fail(Unsupported, "use_mlock: this system cannot lock memory");
        }
        Ok(())
    }
}

/// The thread count used when a session asks for 0: half the hardware threads (about the
/// physical cores on SMT machines), between 1 and 8. llama.cpp's threads spin while they wait,
/// so more threads than free cores is far slower, not faster.
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map(|n| (n.get() / 2).clamp(1, 8) as i32).unwrap_or(1)
}

/// The threads a session runs with: `requested`, or [`default_threads`] for 0, and never more
/// than the machine's hardware threads (llama.cpp's threads spin while they wait: 64 threads on
/// 2 cores took over a minute for 2 tokens). A larger request is lowered, with a warning in the
/// log.
fn threads_for(requested: i32) -> i32 {
    let hardware = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    match requested {
        0 => default_threads(),
        n if n > hardware => {
            log::emit(
                log::LogLevel::Warn,
                &format!("n_threads {n} is more than this machine's {hardware} hardware threads; using {hardware}"),
            );
            hardware
        }
        n => n,
    }
}

/// What a session is and holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Context window in positions.
    pub n_ctx: u32,
    /// Positions the conversation holds now.
    pub n_past: u32,
    pub supports_vision: bool,
    pub supports_audio: bool,
    /// Sample rate (Hz) the audio encoder expects; 0 without one.
    pub audio_sample_rate: u32,
}

/// Settings a session can start a fork with: `None` (or 0) keeps the parent's.
#[derive(Clone, Debug, Default)]
pub struct ForkConfig {
    /// Context window of the fork; 0: the parent's.
    pub n_ctx: u32,
    /// Largest number of tokens evaluated in one step; 0: the parent's.
    pub n_batch: u32,
    /// CPU threads; 0: the parent's.
    pub n_threads: i32,
    /// Sampling seed of requests that do not set one; `None`: the parent's.
    pub seed: Option<u32>,
    /// Start from a copy of the parent's conversation (its KV cache and the record of it), so a
    /// shared prefix is evaluated once; otherwise the fork starts empty.
    pub copy_conversation: bool,
}

/// How a session's own context is made.
#[derive(Clone, Copy, Debug)]
struct ContextSettings {
    n_ctx: u32,
    n_batch: u32,
    /// 0: `n_batch`.
    n_ubatch: u32,
    threads: i32,
    flash_attn: FlashAttention,
    kv_type_k: KvType,
    kv_type_v: KvType,
}

/// A conversation with a loaded multimodal model: its own context (KV cache, compute buffers)
/// over weights it may share with other sessions ([`Session::fork`]). Fields drop in
/// declaration order: the context, then the shared weights (freed with the last session that
/// uses them: projector, then model), then the abort state the context's callback points to.
pub struct Session {
    pub(crate) ctx: Context,
    weights: Arc<Weights>,
    abort: Arc<AbortState>,
    settings: ContextSettings,
    pub(crate) seed: u32,
    pub(crate) cache: CacheRecord,
    pub(crate) batch: TokenBatch,
    pub(crate) last: AskInfo,
}

// SAFETY: a llama.cpp context may be used from any thread as long as one thread at a time uses
// it, which `&mut self` (and the C layer's per-session lock) ensure; the shared weights are
// Sync (see weights.rs).
unsafe impl Send for Session {}

/// Passes llama.cpp's and mtmd's load progress to the user's callback, mapped to one range.
struct Progress<'a, 'b> {
    callback: Option<&'a mut (dyn FnMut(f32) -> bool + 'b)>,
    base: f32,
    span: f32,
    cancelled: bool,
}

impl Progress<'_, '_> {
    fn as_user_data(&mut self) -> *mut c_void {
        self as *mut Progress as *mut c_void
    }
}

/// llama.cpp's and mtmd's progress callback.
///
/// # Safety
/// `user_data` must come from [`Progress::as_user_data`] of a progress that outlives the load.
unsafe extern "C" fn progress_trampoline(progress: f32, user_data: *mut c_void) -> bool {
    // SAFETY: the caller's contract; the load runs on this thread, so nothing else uses it.
    let state = unsafe { &mut *(user_data as *mut Progress) };
    let Some(cb) = state.callback.as_mut() else { return true };
    let overall = state.base + state.span * progress.clamp(0.0, 1.0);
    let go_on = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(overall))).unwrap_or(false);
    state.cancelled |= !go_on;
    go_on
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .or_else(|_| fail(InvalidArgument, format!("{}: path contains a NUL byte", path.display())))
}

impl Session {
    /// Loads the model, creates its context and loads the projector. On failure everything
    /// made so far is freed, and the heap's free pages handed back as when a model unloads,
    /// before the error returns: failed creates leave the process as they found it.
    pub fn create(config: SessionConfig) -> Result<Session> {
        Self::load(config).inspect_err(|_| crate::llama::memory::release_free_heap())
    }

    fn load(mut config: SessionConfig) -> Result<Session> {
        crate::llama::backend::init();
        config.validate()?;
        let chat_template = config.chat_template.as_deref().map(check_chat_template).transpose()?;
        let model_found = checked::text_model(&config.model_path)?;
        let projector_found = config.mmproj_path.as_deref().map(checked::projector).transpose()?;
        let settings = ContextSettings {
            n_ctx: config.n_ctx,
            n_batch: config.n_batch,
            n_ubatch: config.n_ubatch,
            threads: threads_for(config.n_threads),
            flash_attn: config.flash_attn,
            kv_type_k: config.kv_type_k,
            kv_type_v: config.kv_type_v,
        };
        let model_span = if config.mmproj_path.is_some() { MODEL_PROGRESS_SHARE } else { 1.0 };
        let mut progress = Progress { callback: config.progress.take(), base: 0.0, span: model_span, cancelled: false };
        let abort = Arc::new(AbortState::default());
        let encoder_abort = Box::<EncoderAbort>::default();

        let remote = Remote::connect(config.rpc_servers.as_deref())?;
        let model = Self::load_model(&config, remote.as_ref(), &mut progress)?;
        let ctx = new_context(&model, settings, &abort)
            .or_else(|e| fail(e.kind, format!("text model {}: {}", config.model_path.display(), e.message)))?;
        check_remote(remote.as_ref())?;
        let (projector, marker) = match (&config.mmproj_path, &projector_found) {
            (Some(path), Some(found)) => {
                mm_gguf::check_projector_output(&found.outputs, path, model.n_embd() as u64)?;
                progress.base = model_span;
                progress.span = 1.0 - model_span;
                let p = Self::load_projector(path, &config, &model, settings.threads, &encoder_abort, &mut progress)?;
                let marker = p.marker();
                (Some(p), marker)
            }
            _ => (None, config.media_marker.clone().unwrap_or_else(default_marker)),
        };
        let chat_template =
            chat_template.or_else(|| model.chat_template()).unwrap_or_else(|| prompt::FALLBACK_TEMPLATE.into());
        let fingerprint = fingerprint_text(&model_found.fingerprint, projector_found.as_ref().map(|p| &p.fingerprint));
        let weights =
            Arc::new(Weights::new(model, remote, projector, encoder_abort, marker, chat_template, fingerprint));
        Ok(Session::with_context(ctx, weights, abort, settings, config.seed, CacheRecord::default()))
    }

    /// A session over `weights` with its own context (counted as live from here on).
    fn with_context(
        ctx: Context,
        weights: Arc<Weights>,
        abort: Arc<AbortState>,
        settings: ContextSettings,
        seed: u32,
        cache: CacheRecord,
    ) -> Session {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Session {
            batch: TokenBatch::new(ctx.n_batch() as usize),
            ctx,
            weights,
            abort,
            settings,
            seed,
            cache,
            last: AskInfo::default(),
        }
    }

    /// A new session over the same weights (nothing is loaded again) with a context of its own:
    /// its own size, threads and seed allowed, and, when asked, a copy of this session's
    /// conversation, so that a shared prefix (a system prompt, reference images) is evaluated
    /// once and forked per user. The weights are freed when the last session using them is.
    pub fn fork(&self, config: &ForkConfig) -> Result<Session> {
        self.weights.check_remote()?;
        let keep = |value: u32, parent: u32| if value == 0 { parent } else { value };
        let settings = ContextSettings {
            n_ctx: keep(config.n_ctx, self.settings.n_ctx),
            n_batch: keep(config.n_batch, self.settings.n_batch),
            threads: if config.n_threads == 0 { self.settings.threads } else { threads_for(config.n_threads) },
            ..self.settings
        };
        check_sizes(settings.n_ctx, settings.n_batch, config.n_threads)?;
        let abort = Arc::new(AbortState::default());
        let ctx = new_context(&self.weights.model, settings, &abort)?;
        let mut cache = CacheRecord::default();
        if config.copy_conversation && !self.cache.items().is_empty() {
            let held = self.cache.n_pos();
            if held >= ctx.n_ctx() as i32 {
                return fail(
                    ContextFull,
                    format!("the conversation takes {held} positions, the fork's context holds {}", ctx.n_ctx()),
                );
            }
            if !ctx.set_sequence_state(&self.ctx.sequence_state()?) {
                return fail(Internal, "llama.cpp refused a copy of the parent's KV cache");
            }
            cache = self.cache.clone();
        }
        self.weights.check_remote()?;
        Ok(Session::with_context(ctx, self.weights.clone(), abort, settings, config.seed.unwrap_or(self.seed), cache))
    }

    fn load_model(config: &SessionConfig, remote: Option<&Remote>, progress: &mut Progress) -> Result<Model> {
        let path = c_path(&config.model_path)?;
        // Layers go to the servers' devices (as named), then to the local GPUs; without servers
        // llama.cpp picks the local ones itself.
        let remote_devices = match remote {
            Some(r) => r.devices()?,
            None => Vec::new(),
        };
        let local = crate::llama::backend::local_gpus();
        let split = split_array(&config.tensor_split, remote_devices.len() + local.len())?;
        let mut devices = [remote_devices, local, vec![std::ptr::null_mut()]].concat();
        // SAFETY: returns a plain struct of defaults.
        let mut mp = unsafe { sys::llama_model_default_params() };
        mp.n_gpu_layers = if config.n_gpu_layers < 0 { i32::MAX } else { config.n_gpu_layers };
        if remote.is_some() {
            mp.devices = devices.as_mut_ptr();
        }
        if !split.is_empty() {
            mp.tensor_split = split.as_ptr();
        }
        mp.load_mode = match (config.use_mmap, config.use_mlock) {
            (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
            (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
            (false, false) => sys::LLAMA_LOAD_MODE_NONE,
            (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
        };
        mp.progress_callback = Some(progress_trampoline);
        mp.progress_callback_user_data = progress.as_user_data();
        // SAFETY: the path is NUL-terminated; `progress`, the NULL-terminated device list and the
        // split array (one entry per device at least) outlive the load.
        let (ptr, log) = log::capture(|| unsafe { sys::llama_model_load_from_file(path.as_ptr(), mp) });
        let model = Model::from_raw(ptr);
        check_remote(remote)?;
        match model {
            Some(m) => Ok(m),
            None if progress.cancelled => fail(
                Cancelled,
                format!(
                    "text model {}: loading cancelled by the progress callback; nothing was kept",
                    config.model_path.display()
                ),
            ),
            None => fail(
                ModelLoad,
                format!(
                    "text model {}: llama.cpp could not load it: {}",
                    config.model_path.display(),
                    log::last_lines(&log)
                ),
            ),
        }
    }

    fn load_projector(
        path: &Path,
        config: &SessionConfig,
        model: &Model,
        threads: i32,
        encoder_abort: &EncoderAbort,
        progress: &mut Progress,
    ) -> Result<Projector> {
        let path_c = c_path(path)?;
        let marker_c = config
            .media_marker
            .as_deref()
            .map(CString::new)
            .transpose()
            .or_else(|_| fail(InvalidArgument, "media_marker contains a NUL byte"))?;
        // SAFETY: returns a plain struct of defaults.
        let mut mp = unsafe { sys::mtmd_context_params_default() };
        mp.use_gpu = config.mmproj_use_gpu;
        mp.n_threads = threads;
        mp.print_timings = false;
        mp.flash_attn_type = config.flash_attn.llama();
        if let Some(m) = &marker_c {
            mp.media_marker = m.as_ptr();
        }
        mp.cb_eval = Some(abort::encoder_eval);
        mp.cb_eval_user_data = encoder_abort.as_user_data();
        mp.progress_callback = Some(progress_trampoline);
        mp.progress_callback_user_data = progress.as_user_data();
        // SAFETY: the path and marker are NUL-terminated and outlive the call; the model is
        // alive; the encoder's abort state outlives the projector (Weights drops the projector
        // first) and `progress` the load.
        let (ptr, log) = log::capture(|| unsafe { sys::mtmd_init_from_file(path_c.as_ptr(), model.as_ptr(), mp) });
        match Projector::from_raw(ptr) {
            Some(p) => Ok(p),
            None if progress.cancelled => fail(
                Cancelled,
                format!("projector {}: loading cancelled by the progress callback; nothing was kept", path.display()),
            ),
            None if log.contains("mismatch between text model") => fail(
                ProjectorMismatch,
                format!(
                    "projector {}: its output size differs from the embedding size of text model {} ({}): {}",
                    path.display(),
                    config.model_path.display(),
                    model.n_embd(),
                    log::last_lines(&log)
                ),
            ),
            None => fail(
                ProjectorLoad,
                format!("projector {}: could not be loaded: {}", path.display(), log::last_lines(&log)),
            ),
        }
    }

    /// The text that stands for a media item in this session's prompts.
    pub fn marker(&self) -> &str {
        &self.weights.marker
    }

    /// Figures of the last finished request.
    pub fn last_ask(&self) -> AskInfo {
        self.last
    }

    pub fn projector(&self) -> Option<&Projector> {
        self.weights.projector.as_ref()
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn model(&self) -> &Model {
        &self.weights.model
    }

    pub(crate) fn weights(&self) -> &Weights {
        &self.weights
    }

    /// How many sessions share this session's weights (itself included).
    pub fn weights_shared_by(&self) -> usize {
        Arc::strong_count(&self.weights)
    }

    /// The state other threads use to cancel this session's calls.
    pub fn abort_state(&self) -> Arc<AbortState> {
        self.abort.clone()
    }

    /// What identifies the session's model and projector files (saved states must match it).
    pub fn fingerprint(&self) -> &str {
        &self.weights.fingerprint
    }

    pub(crate) fn cache(&self) -> &CacheRecord {
        &self.cache
    }

    pub(crate) fn cache_mut(&mut self) -> &mut CacheRecord {
        &mut self.cache
    }

    /// Context size, conversation length and media support.
    pub fn info(&self) -> SessionInfo {
        let projector = self.projector();
        SessionInfo {
            n_ctx: self.ctx.n_ctx(),
            n_past: self.cache.n_pos() as u32,
            supports_vision: projector.is_some_and(|p| p.supports_vision()),
            supports_audio: projector.is_some_and(|p| p.supports_audio()),
            audio_sample_rate: projector.map_or(0, |p| p.audio_sample_rate()),
        }
    }

    /// The model's tokens for `text`, without the tokens the model adds around a prompt (BOS);
    /// `parse_special` turns the text of control tokens (such as "<|im_end|>") into them.
    pub fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<i32>> {
        self.model().tokenize(text, false, parse_special)
    }

    /// Empties the KV cache: the next request evaluates everything.
    pub fn reset(&mut self) {
        self.ctx.clear_memory();
        self.cache.clear();
    }
}

/// A chat template the caller named, checked by rendering one message with it.
fn check_chat_template(template: &str) -> Result<String> {
    match prompt::render_chat(template, &[("user".into(), "x".into())]) {
        Ok(_) => Ok(template.to_string()),
        Err(e) if e.kind == Unsupported => {
            let shown: String = template.chars().take(60).collect();
            let more = if shown.len() < template.len() { "..." } else { "" };
            fail(InvalidArgument, format!("chat_template \"{shown}{more}\" is not a template llama.cpp recognises: give a built-in name such as \"chatml\", \"llama3\" or \"gemma\", or the Jinja text of a known template"))
        }
        Err(e) => Err(e),
    }
}

fn default_marker() -> String {
    // SAFETY: mtmd's default marker is a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(sys::mtmd_default_marker()) }.to_string_lossy().into_owned()
}

impl Drop for Session {
    fn drop(&mut self) {
        // Fields follow: the context, then the weights (declaration order).
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// llama.cpp's split array for `shares` of the offloaded layers over `n_devices` devices: one
/// entry per device (zeros after the given ones), or empty when all are zero (llama.cpp's
/// default). Shares must be finite and not negative, and no more than the devices.
fn split_array(shares: &[f32], n_devices: usize) -> Result<Vec<f32>> {
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return fail(InvalidArgument, format!("tensor_split {shares:?}: shares must be finite and not negative"));
    }
    if shares.len() > n_devices {
        return fail(InvalidArgument, format!("tensor_split has {} entries, but there are {n_devices} devices to split layers over (the RPC servers' devices, then the local GPUs)", shares.len()));
    }
    if shares.iter().all(|s| *s == 0.0) {
        return Ok(Vec::new());
    }
    // SAFETY: a constant of the library.
    let mut array = vec![0.0; n_devices.max(unsafe { sys::llama_max_devices() })];
    array[..shares.len()].copy_from_slice(shares);
    Ok(array)
}

/// Refuses a context smaller than [`MIN_CONTEXT`], batches of 0 and negative thread counts.
fn check_sizes(n_ctx: u32, n_batch: u32, n_threads: i32) -> Result<()> {
    if n_ctx < MIN_CONTEXT || n_batch < 1 {
        return fail(
            InvalidArgument,
            format!("n_ctx {n_ctx} (min {MIN_CONTEXT}) or n_batch {n_batch} (min 1) too small"),
        );
    }
    if n_threads < 0 {
        return fail(InvalidArgument, format!("n_threads is {n_threads}; use 0 for the default"));
    }
    Ok(())
}

/// "model <hex>[; projector <hex>]": what saved states record of the files' contents.
fn fingerprint_text(model: &Digest256, projector: Option<&Digest256>) -> String {
    let projector = projector.map(|p| format!("; projector {}", hash::hex(p))).unwrap_or_default();
    format!("model {}{projector}", hash::hex(model))
}

/// A context over `model` as `settings` say, whose decodes `abort` can stop. A context whose KV
/// cache alone would take more memory than all devices have free is refused before llama.cpp
/// tries to allocate it (2^26 tokens took 3-4 s and 3.3 GB to fail, 2^28 35 s and 13 GB).
fn new_context(model: &Model, settings: ContextSettings, abort: &Arc<AbortState>) -> Result<Context> {
    let kv_bytes = model
        .kv_bytes_per_token(settings.kv_type_k.ggml(), settings.kv_type_v.ggml())
        .saturating_mul(settings.n_ctx as u64);
    let free = crate::llama::memory::free_on_all_devices();
    if kv_bytes > free {
        const MIB: u64 = 1 << 20;
        return fail(
            ContextCreate,
            format!(
                "a context of {} tokens needs {} MiB for its KV cache alone, more than the {} MiB free on this machine's devices",
                settings.n_ctx,
                kv_bytes / MIB,
                free / MIB
            ),
        );
    }
    // SAFETY: returns a plain struct of defaults.
    let mut cp = unsafe { sys::llama_context_default_params() };
    cp.n_ctx = settings.n_ctx;
    cp.n_batch = settings.n_batch;
    // A fork with a smaller n_batch than its parent's n_ubatch computes n_batch at a time.
    cp.n_ubatch = if settings.n_ubatch == 0 { settings.n_batch } else { settings.n_ubatch.min(settings.n_batch) };
    cp.flash_attn_type = settings.flash_attn.llama();
    cp.type_k = settings.kv_type_k.ggml();
    cp.type_v = settings.kv_type_v.ggml();
    cp.n_threads = settings.threads;
    cp.n_threads_batch = settings.threads;
    cp.no_perf = true;
    cp.abort_callback = Some(abort::llama_abort);
    cp.abort_callback_data = abort.as_user_data();
    // SAFETY: the model is alive; the abort state outlives the context (Session's field order
    // drops the context first).
    let (ptr, log) = log::capture(|| unsafe { sys::llama_init_from_model(model.as_ptr(), cp) });
    Context::from_raw(ptr).ok_or_else(|| {
        Error::new(
            ContextCreate,
            format!("could not create a context of {} tokens: {}", settings.n_ctx, log::last_lines(&log)),
        )
    })
}
