//! Loading a text model and its projector, and creating a context, from the settings the
//! session chose: llama.cpp's and mtmd's parameter structs, callbacks and log lines.

use std::ffi::{c_void, CStr};
use std::sync::Arc;

use llama_cpp_sys_2 as sys;

use crate::llama::abort::{abort_user_data, encoder_eval, llama_abort, EncoderAbort};
use crate::llama::backend::Device;
use crate::llama::context::Context;
use crate::llama::model::Model;
use crate::llama::options::{FlashAttention, KvType};
use crate::llama::projector::Projector;
use crate::util::abort::StepAbort;
use crate::util::log;

/// How a context is made: for one session, or shared by `n_seq` sessions that decode together.
#[derive(Clone, Copy, Debug)]
pub struct ContextSettings {
    /// Positions of each session's conversation.
    pub n_ctx: u32,
    /// Sessions (sequences) the context holds at once: 1 for a session of its own.
    pub n_seq: u32,
    pub n_batch: u32,
    /// 0: `n_batch`.
    pub n_ubatch: u32,
    pub threads: i32,
    pub flash_attn: FlashAttention,
    pub kv_type_k: KvType,
    pub kv_type_v: KvType,
}

/// Passes llama.cpp's and mtmd's load progress to the user's callback, mapped to the range
/// `base..base + span`.
pub struct Progress<'a, 'b> {
    pub callback: Option<&'a mut (dyn FnMut(f32) -> bool + 'b)>,
    pub base: f32,
    pub span: f32,
    /// Whether the callback asked to stop.
    pub cancelled: bool,
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

/// How a text model is loaded.
pub struct ModelSettings<'a> {
    pub path: &'a CStr,
    /// Layers offloaded to devices; negative: all.
    pub n_gpu_layers: i32,
    /// The devices layers go to, in order; `None`: llama.cpp picks the local ones itself.
    pub devices: Option<&'a [Device]>,
    /// llama.cpp's split array (one entry per device at least), or empty for its default.
    pub tensor_split: &'a [f32],
    pub use_mmap: bool,
    pub use_mlock: bool,
}

/// Loads a text model; `None` when llama.cpp could not (or `progress` cancelled), with the
/// warning and error lines it logged meanwhile.
pub fn load_model(settings: &ModelSettings, progress: &mut Progress) -> (Option<Model>, String) {
    let mut devices: Vec<sys::ggml_backend_dev_t> = settings.devices.unwrap_or_default().iter().map(|d| d.0).collect();
    devices.push(std::ptr::null_mut());
    // SAFETY: returns a plain struct of defaults.
    let mut mp = unsafe { sys::llama_model_default_params() };
    mp.n_gpu_layers = if settings.n_gpu_layers < 0 { i32::MAX } else { settings.n_gpu_layers };
    if settings.devices.is_some() {
        mp.devices = devices.as_mut_ptr();
    }
    if !settings.tensor_split.is_empty() {
        mp.tensor_split = settings.tensor_split.as_ptr();
    }
    mp.load_mode = match (settings.use_mmap, settings.use_mlock) {
        (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
        (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
        (false, false) => sys::LLAMA_LOAD_MODE_NONE,
        (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
    };
    mp.progress_callback = Some(progress_trampoline);
    mp.progress_callback_user_data = progress.as_user_data();
    // SAFETY: the path is NUL-terminated; `progress`, the NULL-terminated device list and the
    // split array (one entry per device at least) outlive the load.
    let (ptr, log) = log::capture(|| unsafe { sys::llama_model_load_from_file(settings.path.as_ptr(), mp) });
    (Model::from_raw(ptr), log)
}

/// Creates a context over `model` as `settings` say, whose evaluations `abort` can stop; `None`
/// when llama.cpp could not, with the warning and error lines it logged meanwhile. A context of
/// several sequences has one KV cache for all of them (`kv_unified`): a sequence's saved state
/// then has the same layout as a single session's, so states move between both.
pub fn new_context(model: &Model, settings: &ContextSettings, abort: &Arc<StepAbort>) -> (Option<Context>, String) {
    // SAFETY: returns a plain struct of defaults.
    let mut cp = unsafe { sys::llama_context_default_params() };
    cp.n_ctx = settings.n_ctx.saturating_mul(settings.n_seq);
    cp.n_seq_max = settings.n_seq;
    cp.kv_unified = settings.n_seq > 1;
    cp.n_batch = settings.n_batch;
    // A fork with a smaller n_batch than its parent's n_ubatch computes n_batch at a time.
    cp.n_ubatch = if settings.n_ubatch == 0 { settings.n_batch } else { settings.n_ubatch.min(settings.n_batch) };
    cp.flash_attn_type = settings.flash_attn.llama();
    cp.type_k = settings.kv_type_k.ggml();
    cp.type_v = settings.kv_type_v.ggml();
    cp.n_threads = settings.threads;
    cp.n_threads_batch = settings.threads;
    cp.no_perf = true;
    cp.abort_callback = Some(llama_abort);
    cp.abort_callback_data = abort_user_data(abort);
    // SAFETY: the model is alive; the abort state outlives the context (Session's field order
    // drops the context first).
    let (ptr, log) = log::capture(|| unsafe { sys::llama_init_from_model(model.as_ptr(), cp) });
    (Context::from_raw(ptr), log)
}

/// How a projector is loaded.
pub struct ProjectorSettings<'a> {
    pub path: &'a CStr,
    /// The text that stands for a media item in prompts; `None`: mtmd's default.
    pub marker: Option<&'a CStr>,
    pub use_gpu: bool,
    pub threads: i32,
    pub flash_attn: FlashAttention,
}

/// Loads a projector for `model`; `None` when mtmd could not (or `progress` cancelled), with the
/// warning and error lines it logged meanwhile.
pub fn load_projector(
    model: &Model,
    settings: &ProjectorSettings,
    progress: &mut Progress,
) -> (Option<Projector>, String) {
    let encoder = Box::<EncoderAbort>::default();
    // SAFETY: returns a plain struct of defaults.
    let mut mp = unsafe { sys::mtmd_context_params_default() };
    mp.use_gpu = settings.use_gpu;
    mp.n_threads = settings.threads;
    mp.print_timings = false;
    mp.flash_attn_type = settings.flash_attn.llama();
    if let Some(m) = settings.marker {
        mp.media_marker = m.as_ptr();
    }
    mp.cb_eval = Some(encoder_eval);
    mp.cb_eval_user_data = encoder.as_user_data();
    mp.progress_callback = Some(progress_trampoline);
    mp.progress_callback_user_data = progress.as_user_data();
    // SAFETY: the path and marker are NUL-terminated and outlive the call; the model is alive;
    // the encoder's state outlives the projector (the projector owns it and frees mtmd first)
    // and `progress` the load.
    let (ptr, log) = log::capture(|| unsafe { sys::mtmd_init_from_file(settings.path.as_ptr(), model.as_ptr(), mp) });
    (Projector::from_raw(ptr, encoder), log)
}

/// mtmd's default marker of media in prompts.
pub fn default_marker() -> String {
    // SAFETY: mtmd's default marker is a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::mtmd_default_marker()) }.to_string_lossy().into_owned()
}
